"""What a device's own measurements say beyond its kernel table: its sustained/burst factor and its measured draw.

```
 Store: this host's measurements ──────────────┐
        device links -> imported measurements ─┴─> device_facts(device id, [(Measurement, where)]) -> DeviceFacts
                                                     ├ sustained: the longest plausible `bench --sustained` run's
                                                     │   sustained/burst ratio (decode runs before user-model runs),
                                                     │   else factor 1.0 with a note saying none exists
                                                     └ draws: the primary power reading of every decode, run and
                                                         sustained measurement (MeasuredDraw)
 verdict.judge(..., facts) scales decode by the factor when the workload asks (`--sustained`) and judges the
 power budget on the measured draw.
```

"This host" is the machine edgefit runs on (its fingerprint); another device's figures come from bundles imported
for a host fingerprint linked to it (``edgefit profiles link``, ``edgefit fleet``). Device profiles carry no
sustained figure today (no datasheet publishes one), so without a measurement the factor is 1.0 and says so.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from edgefit.bench.measurement import Measurement, Phase
from edgefit.errors import UsageError
from edgefit.power.reading import primary

# A sustained/burst ratio outside this range is a broken series (a burst of 0.1 s, a clock jump), not a board:
# the worst throttling reported for passively cooled SBCs roughly halves the clock, and a board does not get
# twice as fast once warm.
PLAUSIBLE_RATIO = (0.05, 2.0)
# A sustained run shorter than this may end before a board heats up; its factor is used but said to be short.
SHORT_RUN_S = 120.0
# Power readings that cover the whole device: a figure a device budget can be judged on directly. Package and SoC
# readings leave out DRAM, regulators and peripherals, so the profile's whole-board estimate still counts next to them.
WHOLE_DEVICE_COVERS = ("board", "battery", "platform")

THIS_HOST = "this host"


@dataclass(frozen=True, slots=True)
class SustainedFactor:
    """The factor a `--sustained` workload multiplies predicted decode tokens/s by, and where it came from.

    ``basis``: ``measured`` (a sustained run on this host), ``measured_on_device`` (imported from the device),
    ``given`` (``--sustained RATIO``), ``none`` (no sustained figure exists: factor 1.0)."""

    factor: float  # applied: min(ratio, 1.0); 1.0 when there is no figure
    basis: str
    detail: str  # where the figure came from, quoted in every output that uses it
    ratio: float | None = None  # as measured (may be > 1: noise), None without a measurement

    def __post_init__(self) -> None:
        if not (0 < self.factor <= 1.0 and math.isfinite(self.factor)):
            raise ValueError(f"sustained factor: expected a number in (0, 1], found {self.factor!r}")

    def to_dict(self) -> dict[str, float | str | None]:
        return {"factor": self.factor, "basis": self.basis, "detail": self.detail, "measured_ratio": self.ratio}


NO_SUSTAINED = SustainedFactor(
    1.0,
    "none",
    "no sustained figure for this device: factor 1.0 (burst speed); measure one with "
    "`edgefit bench --sustained 600 --model ID` on the device (here, or there and import its bundle)",
)


@dataclass(frozen=True, slots=True)
class MeasuredDraw:
    """The mean draw of one measurement's primary power reading (basis measured)."""

    power_w: float
    uncertainty_rel: float
    sensor: str
    covers: str  # board | battery | platform | soc | package
    model_id: str
    precision: str
    phase: str
    where: str  # "this host", or "the device (imported from host <fingerprint>)"

    @property
    def whole_device(self) -> bool:
        return self.covers in WHOLE_DEVICE_COVERS

    def describe(self) -> str:
        return (
            f"{self.power_w:.1f} W measured on {self.where} by {self.sensor} ({self.covers}) during "
            f"{self.phase} of {self.model_id} {self.precision}"
        )

    def to_dict(self) -> dict[str, float | str | bool]:
        return {
            "power_w": self.power_w,
            "uncertainty_rel": self.uncertainty_rel,
            "sensor": self.sensor,
            "covers": self.covers,
            "whole_device": self.whole_device,
            "model_id": self.model_id,
            "precision": self.precision,
            "phase": self.phase,
            "where": self.where,
            "basis": "measured",
        }


@dataclass(frozen=True, slots=True)
class DeviceFacts:
    device_id: str
    sustained: SustainedFactor = NO_SUSTAINED
    draws: tuple[MeasuredDraw, ...] = ()
    notes: tuple[str, ...] = ()  # sustained runs left out, and why

    def draw_for(self, model_id: str, precision: str) -> MeasuredDraw | None:
        """The draw measured for this model and precision (the highest when several), else the highest draw the
        device showed under any decode or run load: decode keeps every core busy whatever the model, so that is
        the device's draw for a model not measured on it. None when nothing was read."""
        exact = [d for d in self.draws if d.model_id == model_id and d.precision == precision]
        pool = exact or list(self.draws)
        return max(pool, key=lambda d: d.power_w) if pool else None


def given_factor(ratio: float) -> SustainedFactor:
    """``--sustained RATIO``: the same factor for every device."""
    if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not (0 < ratio <= 1.0):
        raise UsageError(
            f"--sustained {ratio!r}: expected a sustained/burst ratio in (0, 1] such as 0.8, or --sustained "
            "alone to use each device's measured ratio"
        )
    return SustainedFactor(float(ratio), "given", f"--sustained {ratio:g} given on the command line", float(ratio))


def device_facts(device_id: str, measurements: Iterable[tuple[Measurement, str]]) -> DeviceFacts:
    """Facts of one device from its measurements, each with where it was measured (``THIS_HOST`` or a text
    naming the imported host)."""
    draws: list[MeasuredDraw] = []
    runs: list[tuple[Measurement, str]] = []
    for m, where in measurements:
        if m.phase in (Phase.DECODE, Phase.RUN, Phase.SUSTAINED):
            r = primary(m.power)
            if r is not None and r.mean_w > 0 and math.isfinite(r.mean_w):
                draws.append(
                    MeasuredDraw(r.mean_w, r.uncertainty_rel, r.sensor, r.covers, m.model_id, m.precision,
                                 m.phase.value, where)
                )  # fmt: skip
        if m.phase == Phase.SUSTAINED and m.sustained is not None:
            runs.append((m, where))
    factor, notes = _sustained_factor(runs)
    return DeviceFacts(device_id, factor, tuple(draws), notes)


def _sustained_factor(runs: Sequence[tuple[Measurement, str]]) -> tuple[SustainedFactor, tuple[str, ...]]:
    """The longest plausible sustained run's ratio; decode runs (tokens) before user-model runs (inferences),
    this host's before an imported one at equal length, the latest at equal everything."""
    notes: list[str] = []
    usable: list[tuple[Measurement, str, float]] = []
    for m, where in runs:
        s = m.sustained
        assert s is not None  # filtered by the caller
        ratio = s.sustained_ratio
        label = f"sustained run of {m.model_id} {m.precision} on {where}"
        if ratio is None or not (PLAUSIBLE_RATIO[0] <= ratio <= PLAUSIBLE_RATIO[1]) or s.sustained_rate_per_s <= 0:
            shown = "none" if ratio is None else f"{ratio:.3g}"
            notes.append(
                f"{label} left out: sustained/burst ratio {shown} is outside {PLAUSIBLE_RATIO[0]:g}..."
                f"{PLAUSIBLE_RATIO[1]:g} (burst {s.burst_rate_per_s:.3g}/s, sustained {s.sustained_rate_per_s:.3g}/s)"
            )
            continue
        usable.append((m, where, ratio))
    if not usable:
        return NO_SUSTAINED, tuple(notes)
    ordered = sorted(
        enumerate(usable),
        key=lambda iu: (
            iu[1][0].sustained.unit == "tokens",  # type: ignore[union-attr]
            _span_s(iu[1][0]),
            iu[1][1] == THIS_HOST,
            iu[0],
        ),
    )
    m, where, ratio = ordered[-1][1]
    s = m.sustained
    assert s is not None
    unit = "tok/s" if s.unit == "tokens" else "inferences/s"
    span = _span_s(m)
    detail = (
        f"sustained/burst {ratio:.3f} from a {span:.0f} s `bench --sustained` run of {m.model_id} {m.precision} "
        f"on {where}{f' ({m.started_at})' if m.started_at else ''}: burst {s.burst_rate_per_s:.3g} {unit}, "
        f"sustained {s.sustained_rate_per_s:.3g} {unit}"
    )
    if s.unit != "tokens":
        detail += "; a user model's inference rate, as no decode run exists"
    if span < SHORT_RUN_S:
        detail += f"; shorter than {SHORT_RUN_S:.0f} s, a board may slow down later"
    if ratio > 1.0:
        detail += "; above 1 (noise), so no slowdown is applied"
    basis = "measured" if where == THIS_HOST else "measured_on_device"
    return SustainedFactor(min(ratio, 1.0), basis, detail, ratio), tuple(notes)


def _span_s(m: Measurement) -> float:
    s = m.sustained
    if s is None:
        return 0.0
    return s.t_s[-1] if s.t_s else s.duration_s


def load_facts(db_path: Path, host_fingerprint: str, host_id: str, device_ids: Sequence[str]) -> dict[str, DeviceFacts]:
    """Facts for every device in ``device_ids``: this host's measurements for ``host_id``, and for any device the
    measurements of host fingerprints linked to it (imported bundles; this host too if it is linked)."""
    from edgefit.store import Store

    out: dict[str, DeviceFacts] = {}
    with Store(db_path) as store:
        links = store.device_links()
        cache: dict[str, tuple[Measurement, ...]] = {}
        for device_id in dict.fromkeys(device_ids):
            fps = ([host_fingerprint] if device_id == host_id else []) + list(links.get(device_id, ()))
            rows: list[tuple[Measurement, str]] = []
            for fp in dict.fromkeys(fps):
                if fp not in cache:
                    cache[fp] = tuple(
                        m
                        for phase in (Phase.DECODE, Phase.RUN, Phase.SUSTAINED)
                        for m in store.measurements(host_fingerprint=fp, phase=phase)
                    )
                where = THIS_HOST if fp == host_fingerprint else f"the device (imported from host {fp[:12]})"
                rows.extend((m, where) for m in cache[fp])
            out[device_id] = device_facts(device_id, rows)
    return out


def facts_for(facts: Mapping[str, DeviceFacts] | None, device_id: str) -> DeviceFacts | None:
    return None if facts is None else facts.get(device_id)
