"""Sustained mode: one model's decode (or a user model's inference) run back to back for N seconds, with heat,
clocks, throttling and power recorded over time (`edgefit bench --sustained SECONDS --model ID|FILE.onnx`).

    prepare ─> warmups ─> step, step, ... until the steps add up to N s (or Ctrl-C)
                          └─ every interval: one point = rate over the interval, thermal zones, mean CPU clock,
                             `vcgencmd get_throttled` (a Pi), power of the primary sensor over the interval
    ─> PhaseResult(phase "sustained", samples = every step, sustained = SustainedSeries)

Time is the sum of the timed steps (as the measurement loop's budget), so a ScriptedRunner test is exact and a
real run's clock is the work done. Points are taken between steps, never inside a timed one; the power sensors
are read at the same points (no second thread competing with onnxruntime for the cores).

The sustained/burst ratio (1 / median step over the last 25 % of the run, over the first 10 %) is the
per-device factor: < 1 means the device slows down once warm (or when another job shares it; a VM cannot tell).
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from edgefit.bench.loop import MeasurePolicy, PhasePlan, PhaseResult, _now_iso, rss_bytes, worker_peak_rss_bytes
from edgefit.bench.measurement import Phase
from edgefit.bench.runner import Runner
from edgefit.bench.series import SustainedSeries
from edgefit.power.reading import primary
from edgefit.power.sampler import PowerSampler

STOP_DURATION = "duration"
BURST_FRACTION = 0.10  # the first 10 % of the run (after warmups) is the burst
SUSTAINED_FRACTION = 0.25  # the last 25 % is the sustained state
MAX_POINTS_INTERVAL_S = 1.0  # one point per second (or duration / 20 for short runs)
MAX_STORED_SAMPLES = 50_000  # beyond this, samples_s keeps every k-th step (said in the notes)

# Where the monitor reads thermal zones and cpufreq (tests point it at a fake tree).
SYSFS_ROOT = Path("/sys")


def point_interval_s(duration_s: float) -> float:
    return min(MAX_POINTS_INTERVAL_S, duration_s / 20.0)


class Monitor:
    """Reads heat, clocks and throttle flags at each point; knows what this machine does not expose."""

    def __init__(
        self, sysfs_root: Path | None = None, run: Callable[[Sequence[str]], str | None] | None = None
    ) -> None:
        from edgefit.power.sensors import run_command

        self.root = Path(sysfs_root) if sysfs_root is not None else SYSFS_ROOT
        self.run = run or run_command
        first = self._temps()
        self.zones = tuple(name for name, _ in first)
        self.has_vcgencmd = self._throttled() is not None

    def _temps(self) -> tuple[tuple[str, float], ...]:
        from edgefit.bench.env import read_thermal

        return read_thermal(str(self.root / "class" / "thermal"))

    def _throttled(self) -> int | None:
        from edgefit.bench.env import parse_vcgencmd_throttled

        out = self.run(["vcgencmd", "get_throttled"])
        parsed = None if out is None else parse_vcgencmd_throttled(out)
        return None if parsed is None else parsed.raw

    def point(self) -> tuple[tuple[float | None, ...], float | None, int | None]:
        from edgefit.bench.env import read_cpufreq

        temps = dict(self._temps())
        _, clocks, _ = read_cpufreq(str(self.root / "devices" / "system" / "cpu"))
        clock = statistics.fmean(clocks) if clocks else None
        bits = self._throttled() if self.has_vcgencmd else None
        return tuple(temps.get(z) for z in self.zones), clock, bits

    def missing_notes(self, clocks_seen: bool, power_sensors: int) -> tuple[str, ...]:
        notes = []
        if not self.zones:
            notes.append(f"no thermal zones readable here ({self.root}/class/thermal): temperatures absent")
        if not clocks_seen:
            notes.append("no CPU clocks readable (cpufreq scaling_cur_freq absent, as in most VMs): clocks absent")
        if not self.has_vcgencmd:
            notes.append("no throttle flags (`vcgencmd get_throttled` is a Raspberry Pi command): flags absent")
        if power_sensors == 0:
            notes.append("no power sensor found: power absent")
        return tuple(notes)


def measure_sustained(
    runner: Runner,
    plan: PhasePlan,
    policy: MeasurePolicy,
    *,
    power: Callable[[], PowerSampler | None] | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    monitor: Monitor | None = None,
) -> PhaseResult:
    """Run ``plan`` (phase SUSTAINED: decode at ``context_tokens`` for a decoder, else one inference) for
    ``policy.budget_s`` seconds of steps."""
    started = _now_iso()
    duration = policy.budget_s
    decoder = runner.is_decoder
    runner.prepare(Phase.DECODE if decoder else Phase.RUN, plan.prompt_tokens, plan.context_tokens)
    warm = [runner.step_s() for _ in range(policy.warmups)]
    steady = rss_bytes()
    mon = monitor or Monitor()
    interval = point_interval_s(duration)
    sampler = power() if power is not None else None
    t = 0.0  # seconds of timed steps so far: the run's clock
    if sampler is not None:
        sampler.start_manual()  # power on the wall clock: the sensors measure real time
    samples: list[float] = []
    ends: list[float] = []
    pts_t: list[float] = []
    rates: list[float] = []
    temps: list[tuple[float | None, ...]] = []
    clocks: list[float | None] = []
    flags: list[int | None] = []
    powers: list[float | None] = []
    last_t, last_n, next_point = 0.0, 0, interval
    reason = STOP_DURATION
    while t < duration:
        s = runner.step_s()
        samples.append(s)
        t += s
        ends.append(t)
        if t >= next_point or t >= duration:
            temp_row, clock, bits = mon.point()
            w = sampler.sample_now() if sampler is not None else None
            span = t - last_t
            pts_t.append(t)
            rates.append((len(samples) - last_n) / span if span > 0 else 0.0)
            temps.append(temp_row)
            clocks.append(clock)
            flags.append(bits)
            powers.append(w)
            last_t, last_n = t, len(samples)
            next_point = t + interval
            if should_stop():
                reason = "interrupted"
                break
    readings = sampler.stop() if sampler is not None else ()
    burst, sustained = burst_and_sustained(samples, ends)
    notes = list(mon.missing_notes(any(c is not None for c in clocks), len(sampler.sensors) if sampler else 0))
    stored = samples
    if len(samples) > MAX_STORED_SAMPLES:
        k = -(-len(samples) // MAX_STORED_SAMPLES)
        stored = samples[::k]
        notes.append(f"samples_s keeps every {k}th of {len(samples)} steps (the series has them all)")
    series = SustainedSeries(
        duration_s=duration,
        interval_s=interval,
        unit="tokens" if decoder else "inferences",
        t_s=tuple(pts_t),
        rate_per_s=tuple(rates),
        zones=mon.zones,
        temperatures_c=tuple(temps),
        cpu_freq_hz=tuple(clocks),
        throttled=tuple(flags),
        power_w=tuple(powers),
        burst_rate_per_s=burst,
        sustained_rate_per_s=sustained,
        notes=tuple(notes),
    )
    return PhaseResult(
        phase=Phase.SUSTAINED.value,
        prompt_tokens=plan.prompt_tokens,
        context_tokens=plan.context_tokens,
        samples_s=tuple(stored),
        warmup_samples_s=tuple(warm),
        stop_reason=reason,
        steady_rss_bytes=steady,
        peak_rss_bytes=worker_peak_rss_bytes(),
        probe_bandwidth_bytes_per_s=None,
        others_cpu_cores=None,
        throttle_events=series.throttled_points() if mon.has_vcgencmd else None,
        load_average_1m=None,
        started_at=started,
        power=tuple(r.to_dict() for r in readings),
        sustained=series.to_dict(),
    )


def burst_and_sustained(samples: Sequence[float], ends: Sequence[float]) -> tuple[float, float]:
    """(burst, sustained) rates per second: 1 / median step over the first BURST_FRACTION of the run's time and
    over its last SUSTAINED_FRACTION (at least 3 steps each)."""
    if not samples:
        return 0.0, 0.0
    total = ends[-1]
    first = [s for s, e in zip(samples, ends, strict=True) if e <= BURST_FRACTION * total] or list(samples[:3])
    last = [s for s, e in zip(samples, ends, strict=True) if e >= (1 - SUSTAINED_FRACTION) * total]
    if len(first) < 3:
        first = list(samples[:3])
    if len(last) < 3:
        last = list(samples[-3:])

    def rate(xs: Sequence[float]) -> float:
        m = statistics.median(xs)
        return 1.0 / m if m > 0 else 0.0

    return rate(first), rate(last)


def series_power_w(readings: Sequence[dict[str, Any]]) -> float | None:
    """Mean draw of the primary sensor over the whole run (for summaries)."""
    from edgefit.power.reading import PowerReading

    p = primary([PowerReading.from_dict(r) for r in readings])
    return None if p is None else p.mean_w
