"""Procurement: ranking, cheapest device within a price cap, Pareto front, fleet sizing."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_report_fakes import device, prediction, spec

from edgefit.errors import UsageError
from edgefit.procurement import (
    DeviceOption,
    cheapest_fleet,
    cheapest_meeting,
    device_options,
    devices_needed,
    pareto_front,
    rank_by_energy,
    rank_by_price_per_speed,
)
from edgefit.verdict import VerdictKind, Workload, judge


def option(device_id: str, price: float | None, tps: float, energy_j: float, ok: bool = True) -> DeviceOption:
    return DeviceOption(
        device_id=device_id,
        device_name=device_id,
        model_id="m",
        precision="int4",
        kind=VerdictKind.FITS if ok else VerdictKind.DOES_NOT_FIT,
        price_usd=price,
        decode_tokens_per_s=tps,
        energy_per_1k_tokens_j=energy_j,
        power_w=5.0,
    )


OPTIONS = (
    option("pi", 80.0, 8.0, 900.0),  # $10 per tok/s
    option("nuc", 400.0, 25.0, 1500.0),  # $16 per tok/s
    option("jetson", 500.0, 20.0, 1200.0),  # dominated by nuc on price and speed? no: jetson uses less energy
    option("overpriced", 900.0, 10.0, 2000.0),  # dominated by nuc
    option("nofit", 30.0, 50.0, 100.0, ok=False),  # would win everything but cannot run the model
    option("unpriced", None, 30.0, 500.0),
)


def test_rank_by_price_per_speed_and_energy() -> None:
    assert [o.device_id for o in rank_by_price_per_speed(OPTIONS)] == [
        "pi",
        "nuc",
        "jetson",
        "overpriced",
        "unpriced",
    ]
    assert [o.device_id for o in rank_by_energy(OPTIONS)][:2] == ["unpriced", "pi"]
    assert "nofit" not in {o.device_id for o in rank_by_energy(OPTIONS)}


def test_cheapest_meeting_respects_price_cap() -> None:
    cheapest = cheapest_meeting(OPTIONS, Workload())
    assert cheapest is not None and cheapest.device_id == "pi"
    assert cheapest_meeting(OPTIONS, Workload(price_cap_usd=50.0)) is None
    capped = cheapest_meeting([o for o in OPTIONS if o.device_id != "pi"], Workload(price_cap_usd=450.0))
    assert capped is not None and capped.device_id == "nuc"


def test_pareto_front_drops_dominated_and_non_meeting() -> None:
    front = {o.device_id for o in pareto_front(OPTIONS)}
    assert front == {"pi", "nuc", "jetson"}


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(st.floats(10, 2000), st.floats(0.5, 200), st.floats(10, 5000)),
        min_size=1,
        max_size=8,
    )
)
def test_pareto_front_is_non_dominated(raw: list[tuple[float, float, float]]) -> None:
    opts = [option(f"d{i}", p, s, e) for i, (p, s, e) in enumerate(raw)]
    front = pareto_front(opts)
    assert front, "a non-empty set always has a non-dominated member"
    for f in front:
        assert f.price_usd is not None
        for o in opts:
            assert o.price_usd is not None
            strictly_better = (
                o.price_usd <= f.price_usd
                and o.decode_tokens_per_s >= f.decode_tokens_per_s
                and o.energy_per_1k_tokens_j <= f.energy_per_1k_tokens_j
                and (o.price_usd, o.decode_tokens_per_s, o.energy_per_1k_tokens_j)
                != (f.price_usd, f.decode_tokens_per_s, f.energy_per_1k_tokens_j)
            )
            assert not strictly_better


def test_devices_needed() -> None:
    plan = devices_needed(OPTIONS[0], 100.0)  # 8 tok/s each
    assert plan.devices == 13
    assert plan.total_price_usd == pytest.approx(13 * 80.0)
    assert devices_needed(OPTIONS[0], 8.0).devices == 1
    assert devices_needed(option("x", 10.0, 10.0 / 3.0, 1.0), 10.0).devices == 3
    with pytest.raises(UsageError):
        devices_needed(OPTIONS[0], 0.0)


def test_cheapest_fleet_can_differ_from_cheapest_device() -> None:
    # 200 tok/s: 25 Pis cost $2000, 8 NUCs cost $3200, 10 jetsons $5000 -> Pi fleet
    fleet = cheapest_fleet(OPTIONS, 200.0, Workload())
    assert fleet is not None and fleet.option.device_id == "pi" and fleet.devices == 25
    cheap_slow = option("slow", 60.0, 1.0, 900.0)
    fleet = cheapest_fleet([cheap_slow, OPTIONS[1]], 200.0, Workload())
    assert fleet is not None and fleet.option.device_id == "nuc"
    assert math.isclose(fleet.total_price_usd or 0.0, 8 * 400.0)


def test_device_options_pick_fastest_meeting_precision() -> None:
    d = device("board")
    s = spec("m")
    vs = [
        judge(prediction("m", "fp32", "board", total_gib=9.0, tps=20.0), s, d, Workload()),  # fastest, no fit
        judge(prediction("m", "int8", "board", tps=9.0, power_w=6.0), s, d, Workload()),
        judge(prediction("m", "int4", "board", tps=7.0), s, d, Workload()),
    ]
    (opt,) = device_options(vs, [d], "m")
    assert opt.precision == "int8"
    assert opt.meets
    assert opt.energy_per_1k_tokens_j == pytest.approx(6.0 / 9.0 * 1000)
    assert opt.usd_per_token_per_s == pytest.approx(80.0 / 9.0)
