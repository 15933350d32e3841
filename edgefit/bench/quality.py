"""Quality warnings: data on every Measurement, each with the figure that triggered it and what to do.

Pure functions of one ``PhaseResult`` and its context (weight bytes, last-level cache, the model's first
bandwidth probe), so the thresholds are tested without running anything.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from edgefit import stats
from edgefit.bench.loop import STOP_BUDGET, PhaseResult
from edgefit.bench.measurement import Phase, QualityWarning, WarningCode
from edgefit.units import MIB

# Thresholds, with why:
# Repetitions inside one session vary 1-2 % on a quiet machine (ONNXRUNTIME-NOTES): 5 % is noise. Measured
# robustly (1.4826 x MAD / median, a normal-consistent CV): sub-millisecond steps always have a few outliers
# (a timer tick, a page fault) that inflate the plain CV without moving the median the bench reports.
HIGH_CV = 0.05
MIN_SAMPLES = 6  # fewer and the median has no 95 % interval (stats.MIN_SAMPLES_FOR_CI95)
BUSY_OTHERS_CORES = 0.25  # other processes took a quarter of a core or more while we measured
DRIFT_REL = 0.10  # the bandwidth probe moved > 10 % since the run's first probe


@dataclass(frozen=True, slots=True)
class QualityContext:
    weight_read_bytes_per_token: int
    last_level_cache_bytes: int | None
    reference_probe_bytes_per_s: float | None  # the run's first bandwidth probe
    target_rel_ci: float = 0.02
    cores: int | None = None


def assess(r: PhaseResult, ctx: QualityContext) -> tuple[QualityWarning, ...]:
    out: list[QualityWarning] = []
    if r.phase == Phase.LOAD.value:
        return ()
    n = len(r.samples_s)
    if n >= 2:
        med = stats.median(r.samples_s)
        cv = 1.4826 * stats.mad(r.samples_s) / med if med > 0 else math.inf
        if cv > HIGH_CV:
            out.append(
                QualityWarning(
                    WarningCode.HIGH_VARIANCE,
                    cv if math.isfinite(cv) else -1.0,
                    HIGH_CV,
                    f"latency robust CV (1.4826 MAD / median) {cv:.1%} > {HIGH_CV:.0%}: other load or frequency "
                    "changes; re-run on a quiet machine",
                )
            )
    if n < MIN_SAMPLES:
        out.append(
            QualityWarning(
                WarningCode.TOO_FEW_SAMPLES,
                float(n),
                float(MIN_SAMPLES),
                f"{n} samples < {MIN_SAMPLES}: the median has no 95 % interval; raise --budget-s",
            )
        )
    if r.stop_reason == STOP_BUDGET and n >= 1:
        rel = stats.median_ci95_rel(r.samples_s)
        shown = "n/a" if not math.isfinite(rel) else f"±{rel:.1%}"
        out.append(
            QualityWarning(
                WarningCode.TIME_BUDGET_EXHAUSTED,
                rel if math.isfinite(rel) else -1.0,
                ctx.target_rel_ci,
                f"time budget ran out with the median known to {shown} (target ±{ctx.target_rel_ci:.0%}); "
                "raise --budget-s for a tighter figure",
            )
        )
    if r.others_cpu_cores is not None and r.others_cpu_cores > BUSY_OTHERS_CORES:
        load = f", load average {r.load_average_1m:.2f}" if r.load_average_1m is not None else ""
        out.append(
            QualityWarning(
                WarningCode.BUSY_MACHINE,
                r.others_cpu_cores,
                BUSY_OTHERS_CORES,
                f"other processes used {r.others_cpu_cores:.2f} cores while this was measured{load}; "
                "the figure is pessimistic: stop them and re-run",
            )
        )
    if r.throttle_events:
        out.append(
            QualityWarning(
                WarningCode.THROTTLED,
                float(r.throttle_events),
                0.0,
                f"{r.throttle_events} thermal-throttle events during the measurement; cool the device and re-run",
            )
        )
    llc = ctx.last_level_cache_bytes
    if llc and 0 < ctx.weight_read_bytes_per_token <= llc and r.phase == Phase.DECODE.value:
        out.append(
            QualityWarning(
                WarningCode.FITS_IN_CACHE,
                float(ctx.weight_read_bytes_per_token),
                float(llc),
                f"weights read per token ({ctx.weight_read_bytes_per_token / MIB:.0f} MiB) fit in the "
                f"{llc / MIB:.0f} MiB last-level cache: faster per byte than DRAM-resident models; "
                "the fit must treat it apart",
            )
        )
    ref, bw = ctx.reference_probe_bytes_per_s, r.probe_bandwidth_bytes_per_s
    if ref and bw:
        drift = abs(bw / ref - 1.0)
        if drift > DRIFT_REL:
            out.append(
                QualityWarning(
                    WarningCode.DRIFT,
                    drift,
                    DRIFT_REL,
                    f"memory bandwidth probe moved {drift:.0%} since the run's first probe ({ref / 1e9:.1f} -> "
                    f"{bw / 1e9:.1f} GB/s): the machine's state changed; fits normalise with the probe, but "
                    "compare raw figures with care or re-run",
                )
            )
    return tuple(out)
