"""Prediction: a model's ops priced with a kernel table, translated to any device profile.

Stages (each a module): ``calibration`` (which kernel table answers for which device; the memory model) ->
``price`` (ops x kernel costs, split into fixed / memory / compute parts) -> ``translate`` (a Prediction for a
DeviceProfile) -> ``validate`` (back-test against whole models measured here).
"""

from edgefit.predict.calibration import Calibration
from edgefit.predict.memfit import fits_in_memory
from edgefit.predict.prediction import Basis, Estimate, MemoryBreakdown, Prediction
from edgefit.predict.translate import max_context_that_fits, predict

__all__ = [
    "Basis",
    "Calibration",
    "Estimate",
    "MemoryBreakdown",
    "Prediction",
    "fits_in_memory",
    "max_context_that_fits",
    "predict",
]
