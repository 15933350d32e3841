"""The measurement loop and quality warnings, driven by a ScriptedRunner (milliseconds, no onnxruntime)."""

from __future__ import annotations

import itertools

import pytest

from edgefit import stats
from edgefit.bench.loop import (
    STOP_BUDGET,
    STOP_MAX,
    STOP_TARGET,
    MeasurePlan,
    MeasurePolicy,
    PhasePlan,
    PhaseResult,
    measure_model,
    measure_phase,
    parse_vm_hwm_bytes,
    worker_peak_rss_bytes,
)
from edgefit.bench.measurement import Phase, WarningCode
from edgefit.bench.quality import BUSY_OTHERS_CORES, HIGH_CV, QualityContext, assess
from edgefit.bench.runner import ScriptedRunner

DEC = PhasePlan(Phase.DECODE, 1, 128)
PRE = PhasePlan(Phase.PREFILL, 64, 0)


def test_steady_latencies_stop_on_target_precision_at_first_possible_sample() -> None:
    runner = ScriptedRunner({(Phase.DECODE, 1, 128): [0.010]})
    r = measure_phase(runner, DEC, MeasurePolicy(budget_s=100.0, probe_s=0))
    assert r.stop_reason == STOP_TARGET
    assert len(r.samples_s) == stats.MIN_SAMPLES_FOR_CI95  # identical samples: the first n with a 95 % CI
    assert stats.enough_samples(r.samples_s)


def test_noisy_latencies_run_out_of_budget_exactly() -> None:
    # Alternating 1 ms / 3 ms: the median's interval never narrows to +-2 %.
    runner = ScriptedRunner({(Phase.DECODE, 1, 128): [0.001, 0.003]})
    budget = 0.05
    r = measure_phase(runner, DEC, MeasurePolicy(budget_s=budget, probe_s=0, warmups=0))
    assert r.stop_reason == STOP_BUDGET
    assert sum(r.samples_s) >= budget > sum(r.samples_s[:-1])


def test_max_samples_caps_a_noisy_fast_step() -> None:
    runner = ScriptedRunner({(Phase.DECODE, 1, 128): [0.001, 0.003]})
    r = measure_phase(runner, DEC, MeasurePolicy(budget_s=100.0, max_samples=40, probe_s=0))
    assert r.stop_reason == STOP_MAX and len(r.samples_s) == 40


def test_warmups_are_recorded_and_excluded() -> None:
    seq = [0.5, 0.4] + [0.01] * 100
    runner = ScriptedRunner({(Phase.PREFILL, 64, 0): seq})
    r = measure_phase(runner, PRE, MeasurePolicy(budget_s=100.0, warmups=2, probe_s=0))
    assert r.warmup_samples_s == (0.5, 0.4)
    assert max(r.samples_s) == 0.01


def test_a_slow_first_warmup_saves_the_budget() -> None:
    runner = ScriptedRunner({(Phase.PREFILL, 64, 0): [0.4, 0.2, 0.2, 0.2]})
    r = measure_phase(runner, PRE, MeasurePolicy(budget_s=1.0, warmups=3, probe_s=0))
    assert len(r.warmup_samples_s) == 1


def test_probe_runs_beside_decode_only() -> None:
    calls: list[float] = []

    def probe(d: float) -> float:
        calls.append(d)
        return 2.5e10

    runner = ScriptedRunner(lambda ph, p, c: 0.01)
    plan = MeasurePlan((PRE, DEC, PhasePlan(Phase.DECODE, 1, 0)), MeasurePolicy(budget_s=1.0, probe_s=0.1))
    out: list[PhaseResult] = []
    measure_model(runner, plan, out.append, probe=probe)
    assert [r.phase for r in out] == ["load", "prefill", "decode", "decode"]
    assert calls == [0.1]  # once per model, before its first decode measurement
    assert [r.probe_bandwidth_bytes_per_s for r in out] == [None, None, 2.5e10, 2.5e10]


def test_should_stop_is_checked_between_measurements() -> None:
    out: list[PhaseResult] = []
    runner = ScriptedRunner(lambda ph, p, c: 0.01)
    plan = MeasurePlan((PRE, DEC, DEC), MeasurePolicy(budget_s=1.0, probe_s=0))
    measure_model(runner, plan, out.append, should_stop=lambda: len(out) >= 2)
    assert [r.phase for r in out] == ["load", "prefill"]  # the measurement in progress finished, no more
    assert all(len(r.samples_s) >= 1 for r in out)


def test_phase_result_json_round_trip() -> None:
    runner = ScriptedRunner({(Phase.DECODE, 1, 128): [0.010, 0.011]})
    r = measure_phase(runner, DEC, MeasurePolicy(budget_s=0.2, probe_s=0))
    assert PhaseResult.from_dict(r.to_dict()) == r


def test_vm_hwm_parsing_and_own_peak() -> None:
    text = "Name:\tpython\nVmPeak:\t  900000 kB\nVmHWM:\t   81234 kB\nVmRSS:\t   80000 kB\n"
    assert parse_vm_hwm_bytes(text) == 81234 * 1024
    assert parse_vm_hwm_bytes("Name: x\n") is None
    peak = worker_peak_rss_bytes()
    assert peak is not None and peak > 1 << 20


# --- quality warnings ---------------------------------------------------------------------------------------


def _result(samples: list[float], **kw: object) -> PhaseResult:
    base: dict[str, object] = dict(
        phase="decode", prompt_tokens=1, context_tokens=128, samples_s=tuple(samples), warmup_samples_s=(),
        stop_reason=STOP_TARGET, steady_rss_bytes=None, peak_rss_bytes=None, probe_bandwidth_bytes_per_s=None,
        others_cpu_cores=0.0, throttle_events=0, load_average_1m=0.1, started_at="2026-01-01T00:00:00+00:00",
    )  # fmt: skip
    base.update(kw)
    return PhaseResult(**base)  # type: ignore[arg-type]


CTX = QualityContext(weight_read_bytes_per_token=500 << 20, last_level_cache_bytes=32 << 20,
                     reference_probe_bytes_per_s=None)  # fmt: skip
STEADY = [0.010 + 0.00001 * (i % 3) for i in range(30)]


def _codes(r: PhaseResult, ctx: QualityContext = CTX) -> set[WarningCode]:
    return {w.code for w in assess(r, ctx)}


def test_clean_measurement_has_no_warning() -> None:
    assert _codes(_result(STEADY)) == set()


def test_high_variance_fires_with_its_figure() -> None:
    noisy = [v for v in itertools.islice(itertools.cycle([0.010, 0.013, 0.016]), 30)]
    ws = [w for w in assess(_result(noisy), CTX) if w.code == WarningCode.HIGH_VARIANCE]
    assert len(ws) == 1 and ws[0].value > HIGH_CV and ws[0].threshold == HIGH_CV


def test_one_outlier_is_not_high_variance() -> None:
    assert WarningCode.HIGH_VARIANCE not in _codes(_result([*STEADY, 0.5]))


def test_too_few_samples_and_budget() -> None:
    codes = _codes(_result([0.5, 0.6], stop_reason=STOP_BUDGET))
    assert {WarningCode.TOO_FEW_SAMPLES, WarningCode.TIME_BUDGET_EXHAUSTED} <= codes


def test_busy_machine_and_throttling() -> None:
    codes = _codes(_result(STEADY, others_cpu_cores=BUSY_OTHERS_CORES * 3, throttle_events=2))
    assert {WarningCode.BUSY_MACHINE, WarningCode.THROTTLED} <= codes
    assert WarningCode.BUSY_MACHINE not in _codes(_result(STEADY, others_cpu_cores=BUSY_OTHERS_CORES / 2))


def test_fits_in_cache_only_when_weights_fit() -> None:
    small = QualityContext(16 << 20, 32 << 20, None)
    assert WarningCode.FITS_IN_CACHE in _codes(_result(STEADY), small)
    assert WarningCode.FITS_IN_CACHE not in _codes(_result(STEADY))
    assert WarningCode.FITS_IN_CACHE not in _codes(_result(STEADY), QualityContext(16 << 20, None, None))


@pytest.mark.parametrize(("probe", "fires"), [(2.0e10, False), (2.5e10, True)])
def test_drift_against_the_first_probe(probe: float, fires: bool) -> None:
    ctx = QualityContext(500 << 20, None, reference_probe_bytes_per_s=2.05e10)
    assert (WarningCode.DRIFT in _codes(_result(STEADY, probe_bandwidth_bytes_per_s=probe), ctx)) == fires
