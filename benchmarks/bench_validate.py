"""How fast the prediction stage is: calibrating a quick ladder's worth of measurements, one prediction, the
whole device x catalog matrix a report makes, and a rung back-test (``validate --no-build``'s work).

    python -m pytest benchmarks/bench_validate.py --benchmark-enable

Synthetic measurements (edgefit.predict.synthetic) stand in for a stored ladder, so this times edgefit's own
code, not onnxruntime. A report predicts every catalog model at every precision on every profile (~1600
predictions): about a millisecond each on this 2-core VM, so the matrix takes about a second.
"""

from __future__ import annotations

from typing import Any

from edgefit import catalog, ladder
from edgefit.predict import calibrate, predict
from edgefit.predict import synthetic as sy
from edgefit.predict.validate import validate
from edgefit.profiles import load_profiles

MIB = 2**20
PHYSICS = {
    "fp32": sy.Physics(22e9, cache_speedup=1.4, knee_bytes=150 * MIB),
    "int8": sy.Physics(20e9, rss_k=1.05),
    "int4": sy.Physics(13e9, rss_k=1.27),
}
SPECS = [r.spec for r in ladder.load_ladder("quick")]
MEASUREMENTS = sy.measurements(SPECS, PHYSICS, noise_rel=0.01, probes=[23e9, 27e9, 25e9])
HOST = sy.device()


def test_calibrate(benchmark: Any) -> None:
    cal = benchmark(calibrate, MEASUREMENTS, HOST)
    assert set(cal.precisions) == set(PHYSICS)


def test_prediction_matrix(benchmark: Any) -> None:
    cal = calibrate(MEASUREMENTS, HOST)
    devices = load_profiles()
    models = catalog.list_specs()

    def matrix() -> int:
        n = 0
        for d in devices:
            for m in models:
                for p in ("fp32", "int8", "int4", "q4_k_m"):
                    predict(m, p, d, cal, context_tokens=2048, prompt_tokens=256)
                    n += 1
        return n

    assert benchmark(matrix) == len(devices) * len(models) * 4


def test_rung_backtest(benchmark: Any) -> None:
    result = benchmark(validate, MEASUREMENTS, HOST)
    assert any(c.kind == "rung" for c in result.comparisons)
