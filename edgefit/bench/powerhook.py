"""Power during a bench campaign: find the sensors once, measure idle just before the first model, and turn the
worker's raw readings into PowerReadings with the idle figure attached.

    campaign start ─> discover() ─ none ─> PowerSetup(off, note "no power sensor found ...") (said once)
                                 └ some ─> idle: sample IDLE_S seconds with nothing running
                                           ─> PowerSetup(interval, idle readings, note "power sensors: ...")
    each result   ─> readings(result) = worker readings + idle of the same sensor (total and above-idle)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from edgefit.power.reading import EnergyPerUnit, PowerReading, energy_per_unit, primary
from edgefit.power.sampler import sample_for, with_idle
from edgefit.power.sensors import Discovery, discover

IDLE_S = 2.0  # idle window before the run: 20 samples at 0.1 s; a counter's figure is exact at any length
INTERVAL_S = 0.1  # sampling interval during measurements (command-based sensors ask for more: Pi 5 PMIC 0.2 s)


@dataclass(frozen=True, slots=True)
class PowerSetup:
    interval_s: float | None  # None: no sensor, nothing is sampled
    idle: tuple[PowerReading, ...] = ()
    note: str = ""

    @property
    def enabled(self) -> bool:
        return self.interval_s is not None

    def readings(self, raw: Sequence[Mapping[str, Any]]) -> tuple[PowerReading, ...]:
        """The worker's readings (dicts) as PowerReadings with this campaign's idle figures attached."""
        out = []
        for i, d in enumerate(raw):
            out.append(PowerReading.from_dict(d, where=f"power reading {i}"))
        return with_idle(out, self.idle)


OFF = PowerSetup(None)


def setup_power(discovery: Discovery | None = None, idle_s: float = IDLE_S) -> PowerSetup:
    """Discover this machine's sensors and measure idle power now (the caller runs nothing meanwhile)."""
    d = discovery if discovery is not None else discover()
    if not d.sensors:
        return PowerSetup(None, (), d.describe() + "; energy figures stay the device profile's estimates")
    idle = sample_for(d.sensors, idle_s, INTERVAL_S)
    p = primary(idle)
    idle_text = "" if p is None else f"; idle {p.mean_w:.2f} W on {p.sensor} ({idle_s:.0f} s before the run)"
    notes = "".join(f"; {n}" for n in d.notes)
    return PowerSetup(INTERVAL_S, idle, d.describe() + idle_text + notes)


def measured_energy(m: Any) -> EnergyPerUnit | None:
    """Energy per unit of a Measurement from its primary power reading: per decoded token (decode, sustained
    decode), per prompt token (prefill), per inference (a user model's run); None without a reading."""
    from edgefit import stats

    r = primary(m.power)
    if r is None or not m.samples_s:
        return None
    units = m.prompt_tokens if m.phase.value == "prefill" else 1
    return energy_per_unit(r, stats.median(m.samples_s), units)


def energy_unit(m: Any) -> str:
    """What one unit of ``measured_energy`` is: "token", "prompt token" or "inference"."""
    phase = m.phase.value
    if phase == "prefill":
        return "prompt token"
    if phase == "run" or (phase == "sustained" and m.prompt_tokens == 0):
        return "inference"
    return "token"


def energy_dict(m: Any) -> dict[str, Any] | None:
    """``measured_energy`` for JSON output (base units, basis "measured"), or None without a reading."""
    e = measured_energy(m)
    if e is None:
        return None
    return {
        "unit": energy_unit(m),
        "sensor": e.sensor,
        "covers": e.covers,
        "mean_w": e.mean_w,
        "energy_j": e.energy_j,
        "energy_above_idle_j": e.energy_above_idle_j,
        "uncertainty_rel": e.uncertainty_rel,
        "basis": "measured",
    }
