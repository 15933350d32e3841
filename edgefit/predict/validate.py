"""The self-check: predict what was measured here without having fitted on it.

    (a) rung back-test:   per precision, fit on the smaller ladder rungs, predict the larger ones measured
    (b) held-out models:  architectures that are not in the ladder (other width/depth, GQA ratio, tied
                          embeddings, ~0.5-1.1B parameters), built and measured by the same worker in the same
                          time window as a fresh quick ladder, predicted from that ladder's calibration

Every comparison is ``predicted / measured - 1``. Times are compared after the same drift normalisation the
calibration uses (``calibrate.normalisation``: to the ladder's median conditions); the raw error is kept
beside it. The result is a plain dict for ``Store.save_validation`` so reports can quote it.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from edgefit import catalog
from edgefit.bench.measurement import Measurement, Phase
from edgefit.catalog import ModelSpec
from edgefit.errors import PredictError
from edgefit.predict import accounting
from edgefit.predict.calibrate import Calibration, calibrate, normalisation, time_statistic
from edgefit.predict.translate import predict
from edgefit.profiles import DeviceProfile

# Done-when targets of issue 4 (held-out architectures, median |error| / none beyond)
TARGETS: dict[str, tuple[float, float]] = {
    "decode": (0.10, 0.20),
    "peak_rss": (0.10, 0.20),
    "prefill": (0.15, 0.30),
}
DEFAULT_HELD_OUT = ("qwen2.5-0.5b", "tinyllama-1.1b")
DEFAULT_PRECISIONS = ("fp32", "int4")


@dataclass(frozen=True, slots=True)
class Comparison:
    kind: str  # "rung" (back-test on the ladder) | "held_out" (architecture not in the ladder)
    model_id: str
    precision: str
    figure: str  # decode | prefill | peak_rss
    workload_tokens: int  # decode: KV depth; prefill: prompt length; peak_rss: 0
    predicted: float  # s or bytes
    low: float
    high: float
    measured: float  # drift-normalised for decode
    measured_raw: float
    error_rel: float  # predicted / measured - 1
    error_raw_rel: float

    @property
    def within_interval(self) -> bool:
        return self.low <= self.measured <= self.high


@dataclass(frozen=True, slots=True)
class ValidationResult:
    comparisons: tuple[Comparison, ...]
    fit_rungs: Mapping[str, tuple[str, ...]]  # precision -> rungs the back-test fitted on
    held_out_models: tuple[str, ...]
    drift_ratio: float
    run_ids: tuple[str, ...]
    created_at: str
    notes: tuple[str, ...] = ()
    summary: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": 1,
            "created_at": self.created_at,
            "run_ids": list(self.run_ids),
            "drift_ratio": self.drift_ratio,
            "held_out_models": list(self.held_out_models),
            "fit_rungs": {k: list(v) for k, v in self.fit_rungs.items()},
            "summary": dict(self.summary),
            "comparisons": [asdict(c) | {"within_interval": c.within_interval} for c in self.comparisons],
            "notes": list(self.notes),
        }


def _median(xs: Iterable[float]) -> float:
    return float(statistics.median(list(xs)))


def compare(
    kind: str,
    measurements: Sequence[Measurement],
    calibration: Calibration,
    host: DeviceProfile,
    specs: Mapping[str, ModelSpec],
) -> list[Comparison]:
    """Predict every decode/prefill measurement (and each model's peak RSS) of ``measurements`` on the host."""
    out: list[Comparison] = []
    peaks: dict[tuple[str, str], list[Measurement]] = {}
    factors = normalisation(measurements, calibration)
    for m, factor in zip(measurements, factors, strict=True):
        spec = specs.get(m.model_id)
        if m.peak_rss_bytes and spec is not None and m.precision in calibration.precisions:
            peaks.setdefault((m.model_id, m.precision), []).append(m)
        if spec is None or m.precision not in calibration.precisions or not m.samples_s:
            continue
        raw = time_statistic(m.samples_s)
        if m.phase == Phase.DECODE:
            p = predict(spec, m.precision, host, calibration, context_tokens=m.context_tokens, prompt_tokens=1)
            est = p.decode_s_per_token
            out.append(_cmp(kind, m, "decode", m.context_tokens, est.value, est.low, est.high, raw * factor, raw))
        elif m.phase == Phase.PREFILL and m.prompt_tokens > 0:
            p = predict(spec, m.precision, host, calibration, context_tokens=0, prompt_tokens=m.prompt_tokens)
            est = p.prefill_s
            out.append(_cmp(kind, m, "prefill", m.prompt_tokens, est.value, est.low, est.high, raw * factor, raw))
    for (mid, prec), ms in sorted(peaks.items()):
        spec = specs[mid]
        depth = max(m.context_tokens for m in ms)
        prompt = max((m.prompt_tokens for m in ms if m.phase == Phase.PREFILL), default=1)
        p = predict(spec, prec, host, calibration, context_tokens=depth, prompt_tokens=prompt)
        peak = float(max(m.peak_rss_bytes or 0 for m in ms))
        tot = p.memory.total
        out.append(_cmp(kind, ms[0], "peak_rss", 0, tot.value, tot.low, tot.high, peak, peak))
    return out


def _cmp(
    kind: str, m: Measurement, figure: str, tokens: int, pred: float, low: float, high: float, meas: float, raw: float
) -> Comparison:
    return Comparison(
        kind=kind,
        model_id=m.model_id,
        precision=m.precision,
        figure=figure,
        workload_tokens=tokens,
        predicted=pred,
        low=low,
        high=high,
        measured=meas,
        measured_raw=raw,
        error_rel=pred / meas - 1.0 if meas > 0 else float("nan"),
        error_raw_rel=pred / raw - 1.0 if raw > 0 else float("nan"),
    )


def backtest_rungs(
    measurements: Sequence[Measurement],
    host: DeviceProfile,
    specs: Mapping[str, ModelSpec],
    *,
    held_out_fraction: float = 0.34,
) -> tuple[list[Comparison], dict[str, tuple[str, ...]]]:
    """Per precision: the largest ``held_out_fraction`` of the rungs (at least one, leaving at least three)
    are removed, the rest calibrate, the removed ones are predicted."""
    by_prec: dict[str, dict[str, int]] = {}
    for m in measurements:
        by_prec.setdefault(m.precision, {})[m.model_id] = m.weight_read_bytes_per_token
    keep: set[tuple[str, str]] = set()
    fit_rungs: dict[str, tuple[str, ...]] = {}
    for prec, sizes in by_prec.items():
        order = sorted(sizes, key=lambda mid: sizes[mid])
        n_out = max(1, round(len(order) * held_out_fraction))
        if len(order) - n_out < 3:
            continue
        fit_rungs[prec] = tuple(order[:-n_out])
        keep |= {(prec, mid) for mid in order[:-n_out]}
    if not fit_rungs:
        return [], {}
    fit_ms = [m for m in measurements if (m.precision, m.model_id) in keep]
    test_ms = [m for m in measurements if m.precision in fit_rungs and (m.precision, m.model_id) not in keep]
    cal = calibrate(fit_ms, host, specs=specs)
    return compare("rung", test_ms, cal, host, specs), fit_rungs


def summarize(comparisons: Sequence[Comparison]) -> dict[str, Any]:
    """Per kind, figure and precision: n, median and max |error|, share inside the interval, and for the
    held-out architectures whether the issue's targets are met."""
    groups: dict[tuple[str, str, str], list[Comparison]] = {}
    for c in comparisons:
        groups.setdefault((c.kind, c.figure, c.precision), []).append(c)
    out: dict[str, Any] = {}
    for (kind, fig, prec), cs in sorted(groups.items()):
        errs = [abs(c.error_rel) for c in cs]
        entry: dict[str, Any] = {
            "n": len(cs),
            "median_abs_error": _median(errs),
            "max_abs_error": max(errs),
            "median_abs_error_raw": _median(abs(c.error_raw_rel) for c in cs),
            "within_interval": sum(c.within_interval for c in cs) / len(cs),
        }
        if kind == "held_out" and fig in TARGETS:
            med_t, max_t = TARGETS[fig]
            entry["target_median_abs_error"] = med_t
            entry["target_max_abs_error"] = max_t
            entry["meets_target"] = entry["median_abs_error"] <= med_t and entry["max_abs_error"] <= max_t
        out[f"{kind}/{fig}/{prec}"] = entry
    return out


def validate(
    ladder_measurements: Sequence[Measurement],
    host: DeviceProfile,
    *,
    held_out_measurements: Sequence[Measurement] = (),
    specs: Mapping[str, ModelSpec] | None = None,
    run_ids: Sequence[str] = (),
) -> ValidationResult:
    """Back-test the rungs of ``ladder_measurements`` and, when given, predict ``held_out_measurements`` from a
    calibration on the whole ladder."""
    if not ladder_measurements:
        raise PredictError("nothing to validate: no ladder measurements; run `edgefit bench --ladder quick` first")
    ids = {m.model_id for m in ladder_measurements} | {m.model_id for m in held_out_measurements}
    spec_map = accounting.resolve_specs(ids, given=specs)
    comparisons, fit_rungs = backtest_rungs(ladder_measurements, host, spec_map)
    notes: list[str] = []
    if not fit_rungs:
        notes.append("rung back-test skipped: fewer than 4 rungs per precision")
    cal = calibrate(ladder_measurements, host, specs=spec_map)
    if held_out_measurements:
        comparisons += compare("held_out", held_out_measurements, cal, host, spec_map)
    notes += list(cal.warnings)
    return ValidationResult(
        comparisons=tuple(comparisons),
        fit_rungs=fit_rungs,
        held_out_models=tuple(sorted({m.model_id for m in held_out_measurements})),
        drift_ratio=cal.drift_ratio,
        run_ids=tuple(run_ids),
        created_at=datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        notes=tuple(notes),
        summary=summarize(comparisons),
    )


@dataclass(frozen=True, slots=True)
class HeldOutRung:
    """What ``bench.run_ladder(rungs=...)`` needs: a spec and the precisions to measure it at."""

    spec: ModelSpec
    precisions: tuple[str, ...]


def measure_fresh(
    db: Path,
    *,
    models: Sequence[str] = DEFAULT_HELD_OUT,
    precisions: Sequence[str] = DEFAULT_PRECISIONS,
    threads: int | None = None,
    progress: bool = False,
    budget_s: float = 1.0,
) -> tuple[list[Measurement], list[Measurement], list[str], list[str]]:
    """The quick ladder and the held-out models in ONE benchmark run, interleaved by size (each held-out model
    right after the ladder rung nearest below it), with the benchmarker's worker: the same measurement path and
    the same time window, so drift hits both alike. Returns (ladder, held-out, run ids, notes)."""
    import importlib

    from edgefit import bench

    rungs = list(importlib.import_module("edgefit.ladder").load_ladder("quick"))
    ladder_ids = {r.spec.id for r in rungs}
    clash = [m for m in models if m in ladder_ids]
    if clash:
        raise PredictError(f"held-out models must not be ladder rungs: {', '.join(clash)}")
    held = [HeldOutRung(catalog.load_spec(m), tuple(precisions)) for m in models]

    def size(r: Any) -> int:
        return catalog.param_counts(r.spec).total

    order: list[Any] = sorted([*rungs, *held], key=size)
    summary = bench.run_ladder("quick", precisions=precisions, threads=threads, db_path=db, progress=progress,
                               rungs=order, budget_s=budget_s)  # fmt: skip
    held_ids = {h.spec.id for h in held}
    ladder = [m for m in summary.measurements if m.model_id not in held_ids]
    out = [m for m in summary.measurements if m.model_id in held_ids]
    notes = list(summary.notes)
    notes += [f"{o.model_id} {o.precision}: {o.status} {o.message}" for o in summary.outcomes if o.status != "measured"]
    return ladder, out, [summary.run_id] if summary.run_id else [], notes
