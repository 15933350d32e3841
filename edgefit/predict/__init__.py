"""Prediction: fit this host's ladder, calibrate against its probes, translate to any device profile.

Stages (each a module): ``fit`` (least squares, cache knee, drift factors) -> ``calibrate`` (per-precision
efficiencies and overheads) -> ``translate`` (a Prediction for a DeviceProfile) -> ``validate`` (back-test).
"""

from edgefit.predict.calibrate import Calibration, PrecisionCalibration, calibrate
from edgefit.predict.prediction import Basis, Estimate, MemoryBreakdown, Prediction
from edgefit.predict.translate import fits_in_memory, max_context_that_fits, predict

__all__ = [
    "Basis",
    "Calibration",
    "Estimate",
    "MemoryBreakdown",
    "PrecisionCalibration",
    "Prediction",
    "calibrate",
    "fits_in_memory",
    "max_context_that_fits",
    "predict",
]
