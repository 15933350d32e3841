"""Procurement: for one model and a workload, which device to buy, and how many.

```
 verdicts for one model (every device x precision)
        │  per device: the fastest precision that meets the workload (else the fastest at all)
        v
 DeviceOption(price, tok/s, J per 1k tokens, meets?)
        ├─> ranked by energy per 1k tokens (measured draw where the device has one), by price per tok/s
        ├─> cheapest device that meets the workload (within the price cap)
        ├─> Pareto front of (price low, speed high, energy low)
        └─> devices needed for an aggregate demand of N tok/s
```

Speeds are batch-1 decode per device (one stream per device): serving many users on one device with batching
would raise its throughput, so ``devices_needed`` is an upper bound for batched serving.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from edgefit.errors import UsageError
from edgefit.profiles import DeviceProfile
from edgefit.verdict import Verdict, VerdictKind, Workload


@dataclass(frozen=True, slots=True)
class DeviceOption:
    device_id: str
    device_name: str
    model_id: str
    precision: str
    kind: VerdictKind
    price_usd: float | None
    decode_tokens_per_s: float
    energy_per_1k_tokens_j: float
    power_w: float
    basis: str = "spec"  # of the speed figure: measured, extrapolated or spec
    # of the energy figure: "measured" (the device's measured draw x its measured decode time), "measured_power"
    # (its measured draw x predicted decode time), "spec" (the profile's load power x decode time)
    energy_basis: str = "spec"

    @property
    def meets(self) -> bool:
        return self.kind.ok

    @property
    def usd_per_token_per_s(self) -> float | None:
        """Purchase price per token/s of batch-1 decode (lower is better); None without a price or speed."""
        if self.price_usd is None or self.decode_tokens_per_s <= 0:
            return None
        return self.price_usd / self.decode_tokens_per_s

    def to_dict(self) -> dict[str, str | float | bool | None]:
        return {
            "device_id": self.device_id,
            "model_id": self.model_id,
            "precision": self.precision,
            "verdict": self.kind.value,
            "meets_workload": self.meets,
            "price_usd": self.price_usd,
            "decode_tokens_per_s": self.decode_tokens_per_s,
            "usd_per_token_per_s": self.usd_per_token_per_s,
            "energy_per_1k_tokens_j": self.energy_per_1k_tokens_j,
            "power_w": self.power_w,
            "basis": self.basis,
            "energy_basis": self.energy_basis,
        }


def device_options(
    verdicts: Iterable[Verdict], devices: Sequence[DeviceProfile], model_id: str
) -> tuple[DeviceOption, ...]:
    """One option per device for ``model_id``: the fastest precision meeting the workload, else the fastest
    precision at all (so a chart can still show what the device would do). Devices without a verdict for the
    model are left out. Sorted by device id."""
    by_device: dict[str, list[Verdict]] = {}
    for v in verdicts:
        if v.prediction.model_id == model_id:
            by_device.setdefault(v.prediction.device_id, []).append(v)
    options = []
    for device in sorted(devices, key=lambda d: d.id):
        candidates = by_device.get(device.id)
        if not candidates:
            continue
        meeting = [v for v in candidates if v.ok]
        pool = meeting or candidates
        best = max(pool, key=lambda v: v.prediction.decode_tokens_per_s.value)
        p = best.prediction
        options.append(
            DeviceOption(
                device_id=device.id,
                device_name=device.name,
                model_id=model_id,
                precision=p.precision,
                kind=best.kind,
                price_usd=device.price_usd,
                decode_tokens_per_s=p.decode_tokens_per_s.value,
                energy_per_1k_tokens_j=p.energy_per_token_j.value * 1000.0,
                power_w=p.power_w.value,
                basis=p.decode_tokens_per_s.basis.value,
                energy_basis=energy_basis(best),
            )
        )
    return tuple(options)


def energy_basis(v: Verdict) -> str:
    """Where a verdict's energy per token comes from: see ``DeviceOption.energy_basis``. A draw that covers only
    the package or SoC leaves the profile's figure in place (edgefit.verdict.with_measured_draw)."""
    draw = v.measured_draw
    if draw is None or not draw.whole_device:
        return "spec"
    return "measured" if v.prediction.decode_s_per_token.basis.value == "measured" else "measured_power"


def within_price_cap(options: Iterable[DeviceOption], workload: Workload) -> tuple[DeviceOption, ...]:
    """Options whose device price is at or under the workload's price cap (all when there is no cap).
    A device without a price is kept only when there is no cap."""
    cap = workload.price_cap_usd
    if cap is None:
        return tuple(options)
    return tuple(o for o in options if o.price_usd is not None and o.price_usd <= cap)


def rank_by_price_per_speed(options: Iterable[DeviceOption]) -> tuple[DeviceOption, ...]:
    """Devices meeting the workload, cheapest per token/s first; devices without a price last."""
    meeting = [o for o in options if o.meets]
    return tuple(sorted(meeting, key=lambda o: (o.usd_per_token_per_s is None, o.usd_per_token_per_s or 0.0)))


def rank_by_energy(options: Iterable[DeviceOption]) -> tuple[DeviceOption, ...]:
    """Devices meeting the workload, fewest joules per 1000 generated tokens first (ties: the cheaper)."""
    return tuple(
        sorted(
            (o for o in options if o.meets),
            key=lambda o: (o.energy_per_1k_tokens_j, o.price_usd is None, o.price_usd or 0.0, o.device_id),
        )
    )


def cheapest_meeting(options: Iterable[DeviceOption], workload: Workload) -> DeviceOption | None:
    """The lowest-priced device that meets the workload within its price cap (ties: the faster one)."""
    priced = [o for o in within_price_cap(options, workload) if o.meets and o.price_usd is not None]
    if not priced:
        return None
    return min(priced, key=lambda o: (o.price_usd, -o.decode_tokens_per_s))


def pareto_front(options: Iterable[DeviceOption]) -> tuple[DeviceOption, ...]:
    """Priced options meeting the workload that are not dominated on (price lower, speed higher, energy per
    token lower): no other such device is at least as good on all three and better on one. Sorted by price."""
    priced = [o for o in options if o.meets and o.price_usd is not None and o.decode_tokens_per_s > 0]

    def dominates(a: DeviceOption, b: DeviceOption) -> bool:
        assert a.price_usd is not None and b.price_usd is not None  # filtered above
        no_worse = (
            a.price_usd <= b.price_usd
            and a.decode_tokens_per_s >= b.decode_tokens_per_s
            and a.energy_per_1k_tokens_j <= b.energy_per_1k_tokens_j
        )
        better = (
            a.price_usd < b.price_usd
            or a.decode_tokens_per_s > b.decode_tokens_per_s
            or a.energy_per_1k_tokens_j < b.energy_per_1k_tokens_j
        )
        return no_worse and better

    front = [o for o in priced if not any(dominates(other, o) for other in priced if other is not o)]
    return tuple(sorted(front, key=lambda o: (o.price_usd or 0.0, -o.decode_tokens_per_s)))


@dataclass(frozen=True, slots=True)
class FleetPlan:
    option: DeviceOption
    demand_tokens_per_s: float
    devices: int
    total_price_usd: float | None
    total_power_w: float


def devices_needed(option: DeviceOption, demand_tokens_per_s: float) -> FleetPlan:
    """How many of ``option``'s device serve ``demand_tokens_per_s`` in aggregate (one batch-1 stream each)."""
    if not (demand_tokens_per_s > 0 and math.isfinite(demand_tokens_per_s)):
        raise UsageError(f"demand: expected a positive tokens/s figure, found {demand_tokens_per_s!r}")
    if option.decode_tokens_per_s <= 0:
        raise UsageError(f"device {option.device_id}: predicted speed is 0 tok/s, no number of devices is enough")
    # a tiny tolerance keeps 10 / (10/3) from becoming 4 through rounding
    n = max(1, math.ceil(demand_tokens_per_s / option.decode_tokens_per_s - 1e-9))
    total_price = None if option.price_usd is None else n * option.price_usd
    return FleetPlan(option, demand_tokens_per_s, n, total_price, n * option.power_w)


def cheapest_fleet(options: Iterable[DeviceOption], demand_tokens_per_s: float, workload: Workload) -> FleetPlan | None:
    """The device type whose fleet for ``demand_tokens_per_s`` costs least in purchase price."""
    plans = [
        devices_needed(o, demand_tokens_per_s)
        for o in within_price_cap(options, workload)
        if o.meets and o.price_usd is not None
    ]
    if not plans:
        return None
    return min(plans, key=lambda p: (p.total_price_usd or 0.0, p.devices))
