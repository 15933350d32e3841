"""PowerReading: what one sensor measured over one window (a measurement's timed samples, or the idle window).

A reading is derived from raw sensor samples by ``edgefit.power.sampler``; it is the record stored with a
Measurement (``Measurement.power``), so it carries everything a later report needs: which sensor, what part of
the machine it covers, how it was sampled, and how far to trust it.

    covers        package  CPU package only (RAPL package-N zones: cores, caches, memory controller)
                  soc      the SoC's rails (Jetson rails without VDD_IN; macOS powermetrics CPU+GPU+ANE)
                  platform RAPL psys (SoC + platform rails on some Intel laptops)
                  board    the whole board or module input (Jetson VDD_IN; Pi 5 PMIC rails; hwmon board sensors)
                  battery  what the battery delivers while discharging (the whole laptop)

Uncertainty (``uncertainty_rel``, relative, ~1 sigma): for an energy counter, the counter's update period at
each end of the window over the window; for an instantaneous power sensor, one sampling interval of unseen power
at the window's edges over the window, combined with the standard error of the sampled mean.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from edgefit.errors import StoreError

COVERS = ("board", "battery", "platform", "soc", "package")  # preference order when several sensors exist
METHODS = ("energy_counter", "power")


@dataclass(frozen=True, slots=True)
class PowerReading:
    sensor: str  # e.g. "rapl:package-0", "pi5-pmic", "ina3221:VDD_IN", "battery:BAT0"
    covers: str  # one of COVERS
    method: str  # "energy_counter" (differences of a cumulative counter) | "power" (sampled watts, integrated)
    interval_s: float  # sampling interval asked of the thread
    window_s: float  # from the first to the last sample
    samples: int
    mean_w: float
    energy_j: float
    uncertainty_rel: float
    warnings: tuple[str, ...] = ()  # a sensor that vanished or returned garbage: the reading is kept, said here
    note: str = ""  # what the figure includes / excludes
    idle_w: float | None = None  # the same sensor's mean just before the run (campaign idle window)
    idle_uncertainty_rel: float | None = None

    def __post_init__(self) -> None:
        if self.covers not in COVERS:
            raise ValueError(f"covers {self.covers!r}: expected one of {', '.join(COVERS)}")
        if self.method not in METHODS:
            raise ValueError(f"method {self.method!r}: expected one of {', '.join(METHODS)}")
        for name in ("interval_s", "window_s", "mean_w", "energy_j", "uncertainty_rel"):
            v = getattr(self, name)
            if not math.isfinite(v) or v < 0:
                raise ValueError(f"{name} = {v!r}: expected a finite number >= 0")
        if self.samples < 1:
            raise ValueError(f"samples = {self.samples}: expected at least 1")

    @property
    def above_idle_w(self) -> float | None:
        """Mean draw above the idle figure (never below 0), or None without an idle figure."""
        return None if self.idle_w is None else max(0.0, self.mean_w - self.idle_w)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["warnings"] = list(self.warnings)
        return d

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "power reading") -> PowerReading:
        """Rebuild from ``to_dict`` output; StoreError names the first bad field."""
        if not isinstance(data, Mapping):
            raise StoreError(f"{where}: expected an object, found {type(data).__name__}")

        def num(name: str, optional: bool = False) -> Any:
            v = data.get(name)
            if v is None and optional:
                return None
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise StoreError(f"{where}.{name}: expected a number, found {v!r}")
            return float(v)

        def text(name: str, default: str | None = None) -> str:
            v = data.get(name, default)
            if not isinstance(v, str):
                raise StoreError(f"{where}.{name}: expected a string, found {v!r}")
            return v

        samples = data.get("samples")
        if isinstance(samples, bool) or not isinstance(samples, int):
            raise StoreError(f"{where}.samples: expected an integer, found {samples!r}")
        warnings = data.get("warnings", [])
        if not isinstance(warnings, list) or not all(isinstance(w, str) for w in warnings):
            raise StoreError(f"{where}.warnings: expected a list of strings, found {warnings!r}")
        try:
            return cls(
                sensor=text("sensor"),
                covers=text("covers"),
                method=text("method"),
                interval_s=num("interval_s"),
                window_s=num("window_s"),
                samples=samples,
                mean_w=num("mean_w"),
                energy_j=num("energy_j"),
                uncertainty_rel=num("uncertainty_rel"),
                warnings=tuple(warnings),
                note=text("note", ""),
                idle_w=num("idle_w", optional=True),
                idle_uncertainty_rel=num("idle_uncertainty_rel", optional=True),
            )
        except ValueError as exc:
            raise StoreError(f"{where}: {exc}") from None


def primary(readings: tuple[PowerReading, ...] | list[PowerReading]) -> PowerReading | None:
    """The reading that best answers "what does this device draw": the widest coverage (board before battery
    before platform before SoC before package), then the lowest uncertainty."""
    if not readings:
        return None
    return min(readings, key=lambda r: (COVERS.index(r.covers), r.uncertainty_rel))


@dataclass(frozen=True, slots=True)
class EnergyPerUnit:
    """Energy of one token (decode), one prompt token (prefill) or one inference (run), from a reading."""

    sensor: str
    covers: str
    mean_w: float
    energy_j: float  # total: mean draw x latency of one unit
    energy_above_idle_j: float | None
    uncertainty_rel: float


def energy_per_unit(reading: PowerReading, latency_s: float, units: int = 1) -> EnergyPerUnit:
    """Energy per unit: the reading's mean draw times ``latency_s`` (the median of the samples) over ``units``
    (a prefill's prompt tokens; 1 for a decoded token or an inference)."""
    units = max(1, units)
    above = reading.above_idle_w
    return EnergyPerUnit(
        sensor=reading.sensor,
        covers=reading.covers,
        mean_w=reading.mean_w,
        energy_j=reading.mean_w * latency_s / units,
        energy_above_idle_j=None if above is None else above * latency_s / units,
        uncertainty_rel=reading.uncertainty_rel,
    )
