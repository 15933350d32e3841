"""The measurement loop, pyperf style, driven through the ``Runner`` seam.

Per model (one worker process):

    load ──> for each (phase, prompt, context) in the plan:
                 prepare (untimed) ─> [bandwidth probe: before the model's first decode measurement]
                 ─> warmups (recorded, discarded)
                 ─> read steady RSS ─> samples until the median's 95 % CI is within ±target
                                        or the time budget is spent or max_samples is reached
                 ─> emit PhaseResult (stop_reason says which rule stopped it)

Budget accounting sums the timed samples (not wall time), so a ScriptedRunner test is deterministic and the
rule means the same on a Pi and a laptop. Everything here is plain data: the worker ships it as JSON lines.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from glob import glob
from typing import Any

from edgefit import memory, stats
from edgefit.bench.measurement import Phase
from edgefit.bench.runner import Runner
from edgefit.power.sampler import PowerSampler

# Makes a fresh sampler for one measurement (None: no sensors); the worker binds it to the sensors it found.
PowerFactory = Callable[[], PowerSampler | None]

STOP_TARGET = "target_precision"
STOP_BUDGET = "time_budget"
STOP_MAX = "max_samples"


@dataclass(frozen=True, slots=True)
class MeasurePolicy:
    budget_s: float = 1.0  # per measurement: sum of timed samples
    min_samples: int = 5
    max_samples: int = 2000
    warmups: int = 2
    target_rel_ci: float = 0.02  # stop once the median's 95 % CI half-width is within ±2 % of it
    # Bandwidth probe once per model, just before its first decode measurement (all its decode rows carry it);
    # 0 disables. Once, not per depth: each probe streams a working set of 4x the LLC three times or more,
    # ~0.5-1 s on the 2-core VM, which per depth would cost ~20 s of the quick ladder's 120 s.
    probe_s: float = 0.1

    def __post_init__(self) -> None:
        if self.budget_s <= 0 or self.min_samples < 1 or self.max_samples < self.min_samples or self.warmups < 0:
            raise ValueError(f"invalid MeasurePolicy {self}")


@dataclass(frozen=True, slots=True)
class PhaseResult:
    phase: str
    prompt_tokens: int
    context_tokens: int
    samples_s: tuple[float, ...]
    warmup_samples_s: tuple[float, ...]
    stop_reason: str
    steady_rss_bytes: int | None
    peak_rss_bytes: int | None
    probe_bandwidth_bytes_per_s: float | None
    others_cpu_cores: float | None  # CPU used by other processes during the samples, in cores
    throttle_events: int | None  # new thermal-throttle events during the samples (None: not readable)
    load_average_1m: float | None
    started_at: str
    power: tuple[dict[str, Any], ...] = ()  # PowerReading.to_dict() per sensor sampled during the samples
    sustained: dict[str, Any] | None = None  # SustainedSeries.to_dict() of a sustained run
    inputs: tuple[str, ...] = ()  # a user model's run: each input as fed, e.g. "x[1, 3, 640, 640] (image, ...)"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PhaseResult:
        return cls(
            phase=str(d["phase"]),
            prompt_tokens=int(d["prompt_tokens"]),
            context_tokens=int(d["context_tokens"]),
            samples_s=tuple(float(x) for x in d["samples_s"]),
            warmup_samples_s=tuple(float(x) for x in d["warmup_samples_s"]),
            stop_reason=str(d["stop_reason"]),
            steady_rss_bytes=_opt_int(d.get("steady_rss_bytes")),
            peak_rss_bytes=_opt_int(d.get("peak_rss_bytes")),
            probe_bandwidth_bytes_per_s=_opt_float(d.get("probe_bandwidth_bytes_per_s")),
            others_cpu_cores=_opt_float(d.get("others_cpu_cores")),
            throttle_events=_opt_int(d.get("throttle_events")),
            load_average_1m=_opt_float(d.get("load_average_1m")),
            started_at=str(d["started_at"]),
            power=tuple(d.get("power") or ()),
            sustained=d.get("sustained"),
            inputs=tuple(str(x) for x in d.get("inputs") or ()),
        )


@dataclass(frozen=True, slots=True)
class PhasePlan:
    phase: Phase
    prompt_tokens: int
    context_tokens: int


@dataclass(frozen=True, slots=True)
class MeasurePlan:
    phases: tuple[PhasePlan, ...]
    policy: MeasurePolicy = field(default_factory=MeasurePolicy)


def _opt_int(v: Any) -> int | None:
    return None if v is None else int(v)


def _opt_float(v: Any) -> float | None:
    return None if v is None else float(v)


def _now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


# --- process and machine readings -------------------------------------------------------------------------


def rss_bytes() -> int | None:
    try:
        return memory.current_rss_bytes()
    except Exception:  # psutil cannot read it on this platform: say so with None
        return None


def parse_vm_hwm_bytes(status_text: str) -> int | None:
    """``VmHWM:  123456 kB`` from /proc/<pid>/status, in bytes."""
    for line in status_text.splitlines():
        if line.startswith("VmHWM:"):
            parts = line.split()
            if len(parts) >= 2 and parts[1].isdigit():
                unit = parts[2].lower() if len(parts) > 2 else "kb"
                return int(parts[1]) * (1024 if unit == "kb" else 1)
    return None


def worker_peak_rss_bytes() -> int | None:
    """High-water RSS of this process's own address space.

    Linux: /proc/self/status VmHWM, not getrusage's ru_maxrss, which carries the *parent's* high-water mark
    across fork + exec (a parent holding the bandwidth probe's 1.2 GiB arrays made every worker report
    1.2 GiB). Elsewhere (macOS): ru_maxrss via edgefit.memory, which converts its units.
    """
    try:
        with open("/proc/self/status") as fh:
            value = parse_vm_hwm_bytes(fh.read())
        if value is not None:
            return value
    except OSError:
        pass
    return memory.peak_rss_bytes()


def throttle_count() -> int | None:
    """Thermal-throttle events so far: Linux x86 sysfs counters, or a Pi's ``vcgencmd get_throttled`` bits."""
    files = glob("/sys/devices/system/cpu/cpu*/thermal_throttle/*_throttle_count")
    if files:
        total = 0
        for f in files:
            try:
                with open(f) as fh:
                    total += int(fh.read().strip() or 0)
            except (OSError, ValueError):
                continue
        return total
    if shutil.which("vcgencmd"):
        try:
            out = subprocess.run(["vcgencmd", "get_throttled"], capture_output=True, text=True, timeout=2).stdout
            bits = int(out.strip().split("=")[-1], 16)
            return 1 if bits & 0x6 else 0  # bit 1: frequency capped, bit 2: currently throttled
        except (OSError, ValueError, subprocess.SubprocessError):
            return None
    return None


class _CpuWatch:
    """CPU time used by *other* processes over a window: system busy time minus this process's own."""

    def __init__(self) -> None:
        import psutil

        self._psutil = psutil
        self._proc = psutil.Process()
        self._t0 = time.perf_counter()
        self._sys0 = self._busy()
        self._own0 = self._own()

    def _busy(self) -> float:
        t = self._psutil.cpu_times()
        return float(sum(t)) - float(t.idle) - float(getattr(t, "iowait", 0.0))

    def _own(self) -> float:
        c = self._proc.cpu_times()
        return float(c.user + c.system)

    def others_cores(self) -> float | None:
        wall = time.perf_counter() - self._t0
        if wall < 0.05:
            return None  # too short for the kernel's tick-based accounting
        return max(0.0, (self._busy() - self._sys0 - (self._own() - self._own0)) / wall)


def no_probe(duration_s: float) -> float | None:
    return None


# --- the loop -----------------------------------------------------------------------------------------------


def precise_enough(samples: Sequence[float], target_rel_ci: float) -> bool:
    return bool(stats.enough_samples(samples, rel_precision=target_rel_ci))


def measure_phase(
    runner: Runner,
    plan: PhasePlan,
    policy: MeasurePolicy,
    *,
    probe: Callable[[float], float | None] = no_probe,
    power: PowerFactory | None = None,
) -> PhaseResult:
    started = _now_iso()
    runner.prepare(plan.phase, plan.prompt_tokens, plan.context_tokens)
    probe_bw = probe(policy.probe_s) if plan.phase == Phase.DECODE else None
    warm: list[float] = []
    for _ in range(policy.warmups):
        warm.append(runner.step_s())
        if sum(warm) > policy.budget_s / 4:  # a slow step: one warmup is enough, keep the budget for samples
            break
    steady = rss_bytes()
    try:
        watch: _CpuWatch | None = _CpuWatch()
    except Exception:
        watch = None
    throttle0 = throttle_count()
    load1 = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    samples: list[float] = []
    spent = 0.0
    reason = STOP_MAX
    # Power is sampled over exactly the timed samples (after warmups), in a background thread
    sampler = power() if power is not None else None
    if sampler is not None:
        sampler.start()
    while len(samples) < policy.max_samples:
        s = runner.step_s()
        samples.append(s)
        spent += s
        n = len(samples)
        if n >= policy.min_samples and (n < 64 or n % 8 == 0) and precise_enough(samples, policy.target_rel_ci):
            reason = STOP_TARGET
            break
        if spent >= policy.budget_s:
            reason = STOP_BUDGET
            break
    readings = sampler.stop() if sampler is not None else ()
    throttle1 = throttle_count()
    return PhaseResult(
        phase=plan.phase.value,
        prompt_tokens=plan.prompt_tokens,
        context_tokens=plan.context_tokens,
        samples_s=tuple(samples),
        warmup_samples_s=tuple(warm),
        stop_reason=reason,
        steady_rss_bytes=steady,
        peak_rss_bytes=worker_peak_rss_bytes(),
        probe_bandwidth_bytes_per_s=probe_bw,
        others_cpu_cores=watch.others_cores() if watch is not None else None,
        throttle_events=None if throttle0 is None or throttle1 is None else max(0, throttle1 - throttle0),
        load_average_1m=load1,
        started_at=started,
        power=tuple(r.to_dict() for r in readings),
        inputs=_inputs_used(runner) if plan.phase == Phase.RUN else (),
    )


def _inputs_used(runner: Runner) -> tuple[str, ...]:
    """What the runner fed (OrtRunner says; a ScriptedRunner feeds nothing)."""
    describe = getattr(runner, "inputs_used", None)
    return tuple(describe()) if callable(describe) else ()


def measure_model(
    runner: Runner,
    plan: MeasurePlan,
    emit: Callable[[PhaseResult], None],
    *,
    should_stop: Callable[[], bool] = lambda: False,
    probe: Callable[[float], float | None] = no_probe,
    power: PowerFactory | None = None,
) -> None:
    """Load, then each planned phase; ``emit`` each result as soon as it is complete. ``should_stop`` is
    checked between measurements (Ctrl-C finishes the current one, then stops)."""
    started = _now_iso()
    load_s = runner.load()
    cached: dict[str, float | None] = {}

    def once(duration_s: float) -> float | None:
        if "bw" not in cached:
            cached["bw"] = probe(duration_s)
        return cached["bw"]

    emit(
        PhaseResult(
            phase=Phase.LOAD.value,
            prompt_tokens=0,
            context_tokens=0,
            samples_s=(load_s,),
            warmup_samples_s=(),
            stop_reason=STOP_MAX,
            steady_rss_bytes=rss_bytes(),
            peak_rss_bytes=worker_peak_rss_bytes(),
            probe_bandwidth_bytes_per_s=None,
            others_cpu_cores=None,
            throttle_events=None,
            load_average_1m=os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
            started_at=started,
        )
    )
    for ph in plan.phases:
        if should_stop():
            break
        if ph.phase == Phase.SUSTAINED:
            from edgefit.bench.sustained import measure_sustained

            emit(measure_sustained(runner, ph, plan.policy, power=power, should_stop=should_stop))
        else:
            emit(measure_phase(runner, ph, plan.policy, probe=once, power=power))
    runner.close()
