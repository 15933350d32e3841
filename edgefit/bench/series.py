"""SustainedSeries: what `edgefit bench --sustained` recorded over time (stored on a "sustained" Measurement).

One point per monitor interval: the rate over that interval (tokens/s of decode, or inferences/s of a user
model), every readable thermal zone, the mean CPU clock, a Pi's `vcgencmd get_throttled` bits, and the power of
the primary sensor. A reading that is not available on this machine is None (a VM has no thermal zones), and
``notes`` says which were missing, once. The sustained/burst ratio is the per-device factor verdicts may use.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from edgefit.errors import StoreError


@dataclass(frozen=True, slots=True)
class SustainedSeries:
    duration_s: float  # asked for
    interval_s: float  # between points
    unit: str  # "tokens" (decode) | "inferences" (a user model's run)
    t_s: tuple[float, ...]  # end of each interval, seconds since the first timed step
    rate_per_s: tuple[float, ...]  # units completed in the interval / its length
    zones: tuple[str, ...]  # thermal zone types, the columns of temperatures_c
    temperatures_c: tuple[tuple[float | None, ...], ...]  # per point, one value per zone
    cpu_freq_hz: tuple[float | None, ...]  # per point: mean current clock over the CPUs (cpufreq)
    throttled: tuple[int | None, ...]  # per point: `vcgencmd get_throttled` bits (a Pi), else None
    power_w: tuple[float | None, ...]  # per point: the primary power sensor's mean over the interval
    burst_rate_per_s: float  # 1 / median step time over the first BURST_FRACTION of the run
    sustained_rate_per_s: float  # 1 / median step time over the last SUSTAINED_FRACTION of the run
    notes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        n = len(self.t_s)
        for name in ("rate_per_s", "temperatures_c", "cpu_freq_hz", "throttled", "power_w"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"{name}: expected {n} points (one per t_s), found {len(getattr(self, name))}")
        if any(len(row) != len(self.zones) for row in self.temperatures_c):
            raise ValueError("temperatures_c: every point needs one value per zone")

    @property
    def sustained_ratio(self) -> float | None:
        """Sustained over burst rate: 1.0 = no slowdown; 0.7 = 30 % slower after heating up."""
        if self.burst_rate_per_s <= 0:
            return None
        return self.sustained_rate_per_s / self.burst_rate_per_s

    def max_temperature_c(self) -> float | None:
        values = [v for row in self.temperatures_c for v in row if v is not None]
        return max(values) if values else None

    def throttled_points(self) -> int:
        """Points where the Pi said throttled or frequency-capped right now (bits 1 and 2)."""
        return sum(1 for b in self.throttled if b is not None and b & 0x6)

    def to_dict(self) -> dict[str, Any]:
        return {
            "duration_s": self.duration_s,
            "interval_s": self.interval_s,
            "unit": self.unit,
            "t_s": list(self.t_s),
            "rate_per_s": list(self.rate_per_s),
            "zones": list(self.zones),
            "temperatures_c": [list(row) for row in self.temperatures_c],
            "cpu_freq_hz": list(self.cpu_freq_hz),
            "throttled": list(self.throttled),
            "power_w": list(self.power_w),
            "burst_rate_per_s": self.burst_rate_per_s,
            "sustained_rate_per_s": self.sustained_rate_per_s,
            "sustained_ratio": self.sustained_ratio,
            "notes": list(self.notes),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "sustained") -> SustainedSeries:
        if not isinstance(data, Mapping):
            raise StoreError(f"{where}: expected an object, found {type(data).__name__}")

        def num(v: Any, at: str, optional: bool = False) -> Any:
            if v is None and optional:
                return None
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(float(v)):
                raise StoreError(f"{where}.{at}: expected a finite number, found {v!r}")
            return float(v)

        def seq(name: str) -> list[Any]:
            v = data.get(name)
            if not isinstance(v, list):
                raise StoreError(f"{where}.{name}: expected a list, found {v!r}")
            return v

        def bits(v: Any, at: str) -> int | None:
            if v is None:
                return None
            if isinstance(v, bool) or not isinstance(v, int):
                raise StoreError(f"{where}.{at}: expected an integer or null, found {v!r}")
            return v

        try:
            return cls(
                duration_s=num(data.get("duration_s"), "duration_s"),
                interval_s=num(data.get("interval_s"), "interval_s"),
                unit=str(data.get("unit", "tokens")),
                t_s=tuple(num(v, f"t_s[{i}]") for i, v in enumerate(seq("t_s"))),
                rate_per_s=tuple(num(v, f"rate_per_s[{i}]") for i, v in enumerate(seq("rate_per_s"))),
                zones=tuple(str(z) for z in seq("zones")),
                temperatures_c=tuple(
                    tuple(num(v, f"temperatures_c[{i}]", optional=True) for v in row)
                    for i, row in enumerate(seq("temperatures_c"))
                ),
                cpu_freq_hz=tuple(num(v, f"cpu_freq_hz[{i}]", True) for i, v in enumerate(seq("cpu_freq_hz"))),
                throttled=tuple(bits(v, f"throttled[{i}]") for i, v in enumerate(seq("throttled"))),
                power_w=tuple(num(v, f"power_w[{i}]", True) for i, v in enumerate(seq("power_w"))),
                burst_rate_per_s=num(data.get("burst_rate_per_s"), "burst_rate_per_s"),
                sustained_rate_per_s=num(data.get("sustained_rate_per_s"), "sustained_rate_per_s"),
                notes=tuple(str(n) for n in data.get("notes", [])),
            )
        except TypeError:
            raise StoreError(f"{where}: temperatures_c rows must be lists") from None
        except ValueError as exc:
            raise StoreError(f"{where}: {exc}") from None
