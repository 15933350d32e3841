"""Fits recover known parameters from synthetic measurements; knee detection; drift normalisation."""

from __future__ import annotations

import math

import pytest

from edgefit.errors import PredictError
from edgefit.predict import synthetic as sy
from edgefit.predict.calibrate import Calibration, calibrate
from edgefit.predict.fit import DecodePoint, drift_factors, fit_decode, nnls_fit

MIB = 2**20


def test_nnls_recovers_exact_line_and_drops_negative_terms() -> None:
    xs = [1e6, 3e6, 1e7, 3e7, 1e8]
    rows = [[1.0, x, -x * 1e-9] for x in xs]  # third regressor would need a negative weight
    y = [2e-4 + x * 4e-11 for x in xs]
    fit = nnls_fit(rows, y, ("c", "a", "neg"))
    assert fit.coef("c") == pytest.approx(2e-4, rel=1e-6)
    assert fit.coef("a") == pytest.approx(4e-11, rel=1e-6)
    assert fit.coef("neg") == 0.0
    assert fit.r2 == pytest.approx(1.0)
    assert fit.rms_rel < 1e-9


def _points(knee: float | None, speedup: float, a: float = 1 / 22e9, call: float = 3e-4) -> list[DecodePoint]:
    pts = []
    for i, mib in enumerate([8, 20, 45, 90, 200, 400, 800, 1600]):
        b = mib * MIB
        per_byte = a / speedup if knee is not None and b < knee else a
        pts.append(DecodePoint(f"r{i}", b, 0.0, 4 + i, call + per_byte * b))
    return pts


def test_knee_detected_and_dram_slope_uses_only_rungs_above_it() -> None:
    fit = fit_decode(_points(knee=150 * MIB, speedup=1.4))
    assert fit.knee_bytes == 200 * MIB
    assert fit.cache_labels == ("r0", "r1", "r2", "r3")
    assert fit.dram_labels == ("r4", "r5", "r6", "r7")
    assert 1 / fit.a_dram_s_per_byte == pytest.approx(22e9, rel=1e-3)
    assert fit.a_cache_s_per_byte is not None
    assert fit.a_dram_s_per_byte / fit.a_cache_s_per_byte == pytest.approx(1.4, rel=1e-3)


def test_no_knee_when_all_rungs_share_one_slope() -> None:
    fit = fit_decode(_points(knee=None, speedup=1.0))
    assert fit.knee_bytes is None
    assert fit.cache_labels == ()
    assert fit.call_s == pytest.approx(3e-4, rel=1e-3)


def test_single_slope_fit_through_a_knee_would_underpredict_large_models() -> None:
    """Why the knee matters: ignoring it biases the slope toward the faster cache regime."""
    pts = _points(knee=150 * MIB, speedup=1.4)
    with_knee = fit_decode(pts)
    without = fit_decode(pts, knee_gain=1e9)  # never accept a split
    big = 4 * 2**30
    assert without.knee_bytes is None
    assert without.seconds(big, 30) < with_knee.seconds(big, 30)


def test_kv_bytes_get_their_own_slope() -> None:
    pts = []
    for i, mib in enumerate([200, 400, 800, 1600]):
        for kv in (0.0, 8 * MIB, 40 * MIB):
            w = mib * MIB
            pts.append(DecodePoint(f"r{i}", w, kv, 8, 3e-4 + w / 14e9 + kv / 25e9))
    fit = fit_decode(pts)
    assert 1 / fit.a_dram_s_per_byte == pytest.approx(14e9, rel=1e-3)
    assert 1 / fit.a_kv_s_per_byte == pytest.approx(25e9, rel=1e-3)


def test_implausible_rss_fit_falls_back_to_the_catalog_prepack_factor() -> None:
    # a busy or broken run whose peaks barely grow with the weights (k ~ 0.1) must not shrink big models' memory
    specs = sy.ladder_specs(5)
    truth = {"int4": sy.Physics(13e9, rss_k=0.1, rss_base_bytes=400 * MIB)}
    ms = sy.measurements(specs, truth, noise_rel=0.0)
    cal = calibrate(ms, sy.device(), specs={s.id: s for s in specs})
    int4 = cal.precisions["int4"]
    assert int4.rss_weight_factor_source == "prior"
    assert int4.rss_weight_factor == pytest.approx(1.27)
    assert any("peak-RSS fit was implausible" in w for w in cal.warnings)
    # a plausible truth is fitted, not replaced
    ok = calibrate(
        sy.measurements(specs, {"int4": sy.Physics(13e9, rss_k=1.3)}), sy.device(), specs={s.id: s for s in specs}
    )
    assert ok.precisions["int4"].rss_weight_factor_source == "fit"
    assert ok.precisions["int4"].rss_weight_factor == pytest.approx(1.3, rel=0.02)


def test_drift_factors_normalise_to_the_median_probe() -> None:
    factors, ref, drift = drift_factors([20e9, None, 25e9, 30e9])
    assert ref == 25e9
    assert factors == (0.8, 1.0, 1.0, 1.2)
    assert drift == pytest.approx(1.5)


def test_calibration_recovers_bandwidth_overhead_and_memory_despite_probe_drift() -> None:
    specs = sy.ladder_specs(7)
    truth = {
        "fp32": sy.Physics(22e9, call_s=3e-4, cache_speedup=1.4, knee_bytes=150 * MIB, prefill_flops_per_s=1.2e11),
        "int4": sy.Physics(13e9, call_s=3e-4, rss_k=1.27, prefill_flops_per_s=2e11),
    }
    # probes move 23..30 GB/s and times move with them (what this VM does); normalisation must undo it
    ms = sy.measurements(specs, truth, probes=[23e9, 30e9, 25e9, 27e9], reference_probe=25e9, noise_rel=0.0)
    cal = calibrate(
        ms, sy.device(measured_bandwidth_bytes_per_s=25e9, gemm_flops_per_s=150e9), specs={s.id: s for s in specs}
    )
    fp32, int4 = cal.precisions["fp32"], cal.precisions["int4"]
    # median probe over the run is 26 GB/s, so the normalised times are at 26/25 of the ground truth speed
    scale = 26e9 / 25e9
    assert 1 / fp32.decode_s_per_byte_dram == pytest.approx(22e9 * scale, rel=0.01)
    assert fp32.knee_bytes is not None and 150 * MIB <= fp32.knee_bytes < 400 * MIB
    assert fp32.bound_on_host == "memory"
    assert int4.bound_on_host == "compute"
    # efficiency is against the probe at the same conditions: the ground truth 22 of 25 GB/s, whatever the drift
    assert fp32.bandwidth_efficiency == pytest.approx(22e9 / 25e9, rel=0.01)
    assert 1 / fp32.prefill_s_per_flop == pytest.approx(1.2e11 * scale, rel=0.01)
    assert fp32.prefill_half_tokens == 16.0
    assert int4.rss_weight_factor == pytest.approx(1.27, rel=0.01)
    assert int4.rss_base_bytes == pytest.approx(50 * MIB, rel=0.05)
    assert cal.drift_ratio == pytest.approx(30 / 23)
    assert any("drifted" in w for w in cal.warnings)


def test_device_predictions_do_not_depend_on_how_busy_the_host_was() -> None:
    from edgefit import catalog
    from edgefit.predict import predict
    from edgefit.profiles import get_profile

    specs = sy.ladder_specs(6)
    truth = {"fp32": sy.Physics(22e9), "int4": sy.Physics(13e9, rss_k=1.27)}
    host = sy.device(measured_bandwidth_bytes_per_s=25e9)
    quiet = calibrate(sy.measurements(specs, truth, probes=[25e9]), host, specs={s.id: s for s in specs})
    # the same ladder while other processes halved everything (and the probe beside it saw that)
    busy = calibrate(sy.measurements(specs, truth, probes=[12.5e9]), host, specs={s.id: s for s in specs})
    assert any("busy" in w for w in busy.warnings)
    pi5 = get_profile("raspberry-pi-5-8gb")
    model = catalog.load_spec("qwen2.5-1.5b")
    for prec in ("fp32", "int4"):
        a = predict(model, prec, pi5, quiet, context_tokens=512, prompt_tokens=128)
        b = predict(model, prec, pi5, busy, context_tokens=512, prompt_tokens=128)
        assert b.decode_s_per_token.value == pytest.approx(a.decode_s_per_token.value, rel=1e-6)
        assert b.prefill_s.value == pytest.approx(a.prefill_s.value, rel=1e-6)


def test_calibration_round_trips_through_json_dict() -> None:
    specs = sy.ladder_specs(5)
    ms = sy.measurements(specs, {"fp32": sy.Physics(20e9)})
    cal = calibrate(ms, sy.device(), specs={s.id: s for s in specs})
    again = Calibration.from_dict(cal.to_dict())
    assert again == cal


def test_no_measurements_is_a_predict_error_naming_the_bench_command() -> None:
    with pytest.raises(PredictError, match="edgefit bench --ladder quick"):
        calibrate([], sy.device())


def test_implausible_efficiency_is_a_warning_not_silence() -> None:
    specs = sy.ladder_specs(5)
    ms = sy.measurements(specs, {"fp32": sy.Physics(20e9)})
    # a host profile claiming 1 TB/s: the fitted 20 GB/s is 2 % of it
    cal = calibrate(ms, sy.device(measured_bandwidth_bytes_per_s=1e12), specs={s.id: s for s in specs})
    assert any("implausible" in w and "bandwidth" in w for w in cal.warnings)
    assert not math.isnan(cal.precisions["fp32"].bandwidth_efficiency)


def test_robust_fit_is_not_dragged_by_one_slowed_measurement() -> None:
    pts = _points(knee=None, speedup=1.0)
    slowed = [*pts[:5], DecodePoint("r5", pts[5].weight_bytes, 0.0, pts[5].layers, pts[5].seconds * 3), *pts[6:]]
    fit = fit_decode(slowed)
    assert 1 / fit.a_dram_s_per_byte == pytest.approx(22e9, rel=0.01)
    plain = nnls_fit([[1.0, p.weight_bytes] for p in slowed], [p.seconds for p in slowed], ("c", "a"), robust=False)
    assert abs(1 / plain.coef("a") / 22e9 - 1) > 0.03  # what least squares alone would have made of it


def test_cpu_share_left_by_other_processes_normalises_times() -> None:
    """On a shared machine the bench records the cores other processes used during the samples; a measurement
    that had only half the cores took twice as long and is brought back to the run's median conditions."""
    import dataclasses

    from edgefit.bench.measurement import QualityWarning, WarningCode

    specs = sy.ladder_specs(6)
    truth = {"fp32": sy.Physics(22e9), "int4": sy.Physics(13e9, rss_k=1.27)}
    quiet = sy.measurements(specs, truth)
    busy = []
    for i, m in enumerate(quiet):
        others = 1.0 if i % 2 else 0.0  # every other measurement shared the 2 cores with a 1-core job
        warn = QualityWarning(WarningCode.BUSY_MACHINE, others, 0.25, "busy") if others else None
        slow = 2.0 / (2.0 - others)
        busy.append(dataclasses.replace(m, samples_s=tuple(t * slow for t in m.samples_s),
                                        warnings=(warn,) if warn else ()))  # fmt: skip
    host = sy.device()
    ref = calibrate(quiet, host, specs={s.id: s for s in specs})
    cal = calibrate(busy, host, specs={s.id: s for s in specs})
    assert cal.drift_source == "cpu" and ref.drift_source == "probe"
    # the median conditions of the busy run are 0.75 of the cores: times at that reference are 1/0.75 slower
    for p in ("fp32", "int4"):
        a, b = ref.precisions[p], cal.precisions[p]
        assert b.decode_s_per_byte_dram == pytest.approx(a.decode_s_per_byte_dram / 0.75, rel=0.02)
        assert b.decode_rms_rel < 0.02  # the alternating slow-downs are gone, not averaged in


def test_rungs_the_benchmark_saw_in_cache_never_set_the_dram_slope() -> None:
    # noisy enough that BIC alone would not separate the two regimes: the bench's cache flag does
    pts = _points(knee=150 * MIB, speedup=1.4)
    fit = fit_decode(pts, in_cache={"r0", "r1", "r2", "r3"})
    assert fit.cache_labels == ("r0", "r1", "r2", "r3")
    assert 1 / fit.a_dram_s_per_byte == pytest.approx(22e9, rel=1e-3)
    # flags on all but one model: the largest flagged one goes back to the DRAM side (two models needed there)
    assert fit_decode(pts, in_cache={f"r{i}" for i in range(7)}).dram_labels == ("r6", "r7")
