"""The sampling thread: reads every sensor at a fixed interval while a measurement runs.

    start() ── read all (t0) ──> thread: [sleep interval ── read all]* ──> stop() ── join ── read all (t1)
                                                                                   └─> PowerReading per sensor

The first and last reads happen in the caller's thread right at the window's edges, so a counter's energy covers
exactly the timed samples. A read that fails is a warning on the reading (garbage: that sample is skipped;
vanished: the sensor is not asked again), never an exception: the measurement is kept. The clock and the sleep are
injectable so tests drive the thread with a fake clock.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import statistics
import threading
import time
from collections.abc import Callable, Sequence

from edgefit.power.reading import COVERS, PowerReading
from edgefit.power.sensors import MAX_PLAUSIBLE_W, Sensor, SensorError

Clock = Callable[[], float]


class PowerSampler:
    def __init__(
        self,
        sensors: Sequence[Sensor],
        interval_s: float = 0.1,
        *,
        clock: Clock = time.monotonic,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        if interval_s <= 0:
            raise ValueError(f"interval_s = {interval_s}: expected > 0")
        self.sensors = tuple(sensors)
        slowest = max((s.min_interval_s for s in self.sensors), default=0.0)
        self.interval_s = max(interval_s, slowest)
        self.clock = clock  # public: sustained mode puts the sampler on its own clock
        self._stop = threading.Event()
        self._sleep = sleep or (lambda dt: self._stop.wait(dt) and None)
        self._points: list[list[tuple[float, float]]] = [[] for _ in self.sensors]
        self._warnings: list[dict[str, int]] = [{} for _ in self.sensors]
        self._gone = [False] * len(self.sensors)
        self._thread: threading.Thread | None = None
        self._t_start: float | None = None
        self._t_stop: float | None = None

    # -------------------------------------------------------------------------------------- sampling

    def _read_all(self) -> None:
        for i, s in enumerate(self.sensors):
            if self._gone[i]:
                continue
            try:
                value = s.read()
                t = self.clock()
            except SensorError as exc:
                key = f"{'vanished' if exc.vanished else 'bad reading'}: {exc}"
                self._warnings[i][key] = self._warnings[i].get(key, 0) + 1
                if exc.vanished:
                    self._gone[i] = True
                continue
            except Exception as exc:  # a sensor bug must not kill a measurement
                key = f"bad reading: {type(exc).__name__}: {exc}"
                self._warnings[i][key] = self._warnings[i].get(key, 0) + 1
                continue
            self._points[i].append((t, value))

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._sleep(self.interval_s)
            if self._stop.is_set():
                break
            self._read_all()

    def start(self) -> None:
        if not self.sensors:
            return
        self._t_start = self.clock()
        self._read_all()
        self._thread = threading.Thread(target=self._loop, name="edgefit-power", daemon=True)
        self._thread.start()

    def stop(self) -> tuple[PowerReading, ...]:
        if not self.sensors:
            return ()
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._read_all()
        self._t_stop = self.clock()
        out = []
        for i, s in enumerate(self.sensors):
            r = self._reading(i, s)
            if r is not None:
                out.append(r)
        return tuple(out)

    def start_manual(self) -> None:
        """Start without a thread: the caller reads with ``sample_now()`` at its own points, then ``stop()``."""
        if self.sensors:
            self._t_start = self.clock()
            self._read_all()

    def sample_now(self) -> float | None:
        """Read every sensor now; the primary sensor's watts since its previous read (a counter's energy over
        the time between, or a power sensor's value), None when it has no two readings yet."""
        if not self.sensors:
            return None
        self._read_all()
        i = min(range(len(self.sensors)), key=lambda k: COVERS.index(self.sensors[k].covers))
        pts = self._points[i]
        if self.sensors[i].method == "power":
            return pts[-1][1] if pts else None
        if len(pts) < 2 or pts[-1][0] <= pts[-2][0]:
            return None
        w = (pts[-1][1] - pts[-2][1]) / (pts[-1][0] - pts[-2][0])
        return w if 0 <= w <= MAX_PLAUSIBLE_W else None

    @property
    def stopping(self) -> bool:
        """True once ``stop()`` was called (an injected ``sleep`` may wait for it)."""
        return self._stop.is_set()

    def warnings(self) -> tuple[str, ...]:
        """Every warning of every sensor (also those that gave no reading at all)."""
        return tuple(_fmt(s.name, w) for s, ws in zip(self.sensors, self._warnings, strict=True) for w in ws.items())

    def __enter__(self) -> PowerSampler:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if not self._stop.is_set():
            self.stop()

    # -------------------------------------------------------------------------------------- readings

    def _reading(self, i: int, s: Sensor) -> PowerReading | None:
        pts = self._points[i]
        warns = dict(self._warnings[i])
        if s.method == "energy_counter":
            energy, window, n = _counter_energy(pts, warns)
            if n < 2 or window <= 0:
                return None
            mean = energy / window
            rel = math.sqrt(2.0) * max(s.resolution_s, 1e-9) / window
        else:
            if not pts:
                return None
            n = len(pts)
            if n >= 2:
                window = pts[-1][0] - pts[0][0]
                energy = sum((b[0] - a[0]) * (a[1] + b[1]) / 2 for a, b in itertools.pairwise(pts))
                mean = energy / window if window > 0 else statistics.fmean(w for _, w in pts)
                gaps = [b[0] - a[0] for a, b in itertools.pairwise(pts)]
                gap = statistics.median(gaps)
            else:
                window = max(0.0, (self._t_stop or 0.0) - (self._t_start or 0.0))
                mean = pts[0][1]
                energy = mean * window
                gap = self.interval_s
            edge = gap / window if window > 0 else 1.0
            watts = [w for _, w in pts]
            se = statistics.stdev(watts) / mean / math.sqrt(n) if n >= 2 and mean > 0 else 0.0
            rel = math.sqrt(edge**2 + se**2)
            if window <= 0:
                window = 0.0
                energy = 0.0
        if self._gone[i]:
            warns.setdefault("sensor vanished mid-run: the reading covers the window before it went", 1)
        return PowerReading(
            sensor=s.name,
            covers=s.covers,
            method=s.method,
            interval_s=self.interval_s,
            window_s=window,
            samples=n,
            mean_w=max(0.0, mean),
            energy_j=max(0.0, energy),
            uncertainty_rel=rel,
            warnings=tuple(_fmt(s.name, w) for w in warns.items()),
            note=s.note,
        )


def _fmt(name: str, item: tuple[str, int]) -> str:
    text, count = item
    return f"{name}: {text}" + (f" (x{count})" if count > 1 else "")


def _counter_energy(pts: list[tuple[float, float]], warns: dict[str, int]) -> tuple[float, float, int]:
    """Sum of plausible increments of a cumulative counter: a jump that would mean more than MAX_PLAUSIBLE_W
    between two reads is garbage and left out (with a warning)."""
    if len(pts) < 2:
        return 0.0, 0.0, len(pts)
    energy = 0.0
    for (t0, e0), (t1, e1) in itertools.pairwise(pts):
        de, dt = e1 - e0, t1 - t0
        if de < 0 or (dt > 0 and de / dt > MAX_PLAUSIBLE_W) or (dt <= 0 and de > 0):
            key = f"bad reading: counter jumped by {de:.3g} J in {dt:.3g} s (left out)"
            warns[key] = warns.get(key, 0) + 1
            continue
        energy += de
    return energy, pts[-1][0] - pts[0][0], len(pts)


def sample_for(
    sensors: Sequence[Sensor],
    duration_s: float,
    interval_s: float = 0.1,
    *,
    clock: Clock = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[PowerReading, ...]:
    """Sample for ``duration_s`` (the idle window before a run): the caller's thread sleeps meanwhile."""
    sampler = PowerSampler(sensors, interval_s, clock=clock)
    sampler.start()
    sleep(duration_s)
    return sampler.stop()


def with_idle(readings: Sequence[PowerReading], idle: Sequence[PowerReading]) -> tuple[PowerReading, ...]:
    """Each reading with the idle mean of the same sensor attached (when there is one)."""
    by_name = {r.sensor: r for r in idle}
    out = []
    for r in readings:
        i = by_name.get(r.sensor)
        if i is not None:
            r = dataclasses.replace(r, idle_w=i.mean_w, idle_uncertainty_rel=i.uncertainty_rel)
        out.append(r)
    return tuple(out)
