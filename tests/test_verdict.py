"""Verdicts: kinds, their order, the numbers quoted in reasons, and the memory-surprise note."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_report_fakes import GIB, device, prediction, spec, verdict

from edgefit.catalog import load_spec
from edgefit.errors import UsageError
from edgefit.verdict import (
    VerdictKind,
    Workload,
    best_fitting_precision,
    judge,
    largest_model_meeting,
    naive_weight_bytes,
)


def test_fits_quotes_memory_and_speed() -> None:
    v = verdict(total_gib=2.0, usable_gib=7.0, tps=12.0)
    assert v.kind is VerdictKind.FITS
    assert v.ok
    assert "2.0 GiB of 7.0 GiB usable" in v.reasons[0]
    assert "12.0 tok/s >= 5.0 tok/s floor" in v.reasons[0]


def test_does_not_fit_quotes_need_and_usable() -> None:
    v = verdict(total_gib=5.1, usable_gib=3.4, tps=12.0)
    assert v.kind is VerdictKind.DOES_NOT_FIT
    assert not v.ok
    assert any("needs 5.1 GiB, 3.4 GiB usable" in r for r in v.reasons)


def test_too_slow_quotes_floor() -> None:
    v = verdict(tps=2.1)
    assert v.kind is VerdictKind.TOO_SLOW
    assert "2.1 tok/s < 5.0 tok/s floor" in v.reasons


def test_ttft_over_maximum_is_too_slow() -> None:
    p = prediction(ttft_s=3.0)
    v = judge(p, spec(), device(), Workload(max_ttft_s=2.0))
    assert v.kind is VerdictKind.TOO_SLOW
    assert any("3.00 s > 2.00 s" in r for r in v.reasons)


def test_tight_on_memory_headroom_and_on_speed() -> None:
    # 6.2 of 7.0 GiB is 11 % headroom (< 15 %)
    v = verdict(total_gib=6.2, usable_gib=7.0, tps=20.0)
    assert v.kind is VerdictKind.TIGHT and v.ok
    assert "headroom" in v.reasons[0]
    # 5.5 tok/s is within 20 % of a 5 tok/s floor
    v = verdict(total_gib=1.0, usable_gib=7.0, tps=5.5)
    assert v.kind is VerdictKind.TIGHT
    assert "within 20%" in v.reasons[0]
    # just outside both margins: fits
    assert verdict(total_gib=5.9, usable_gib=7.0, tps=6.1).kind is VerdictKind.FITS


def test_power_budget_of_device_and_of_workload() -> None:
    p = prediction(power_w=12.0)
    assert judge(p, spec(), device(budget_w=10.0), Workload()).kind is VerdictKind.OVER_POWER_BUDGET
    v = judge(p, spec(), device(), Workload(power_cap_w=11.0))
    assert v.kind is VerdictKind.OVER_POWER_BUDGET
    assert "draws 12.0 W > 11.0 W budget" in v.reasons
    # the stricter of the two caps applies
    assert judge(p, spec(), device(budget_w=20.0), Workload(power_cap_w=11.0)).kind is VerdictKind.OVER_POWER_BUDGET
    assert judge(p, spec(), device(budget_w=20.0), Workload()).kind is VerdictKind.FITS


def test_closed_weights_first_but_numbers_still_shown() -> None:
    p = prediction(total_gib=9.0, usable_gib=7.0)
    v = judge(p, spec(open_weights=False), device(), Workload())
    assert v.kind is VerdictKind.WEIGHTS_NOT_PUBLIC
    assert not v.ok
    assert any("needs 9.0 GiB, 7.0 GiB usable" in r for r in v.reasons)


def test_memory_beats_speed_in_the_kind_but_every_reason_is_listed() -> None:
    v = verdict(total_gib=9.0, usable_gib=7.0, tps=1.0)
    assert v.kind is VerdictKind.DOES_NOT_FIT
    assert len(v.reasons) == 2
    assert any("tok/s floor" in r for r in v.reasons)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"context_tokens": 0},
        {"prompt_tokens": 8192, "context_tokens": 4096},
        {"min_decode_tokens_per_s": -1.0},
        {"max_ttft_s": 0.0},
        {"power_cap_w": float("nan")},
    ],
)
def test_bad_workload_is_usage_error(kwargs: dict[str, float]) -> None:
    with pytest.raises(UsageError):
        Workload(**kwargs)  # type: ignore[arg-type]


def test_int4_8b_note_explains_memory_above_half_a_byte_per_param() -> None:
    s = load_spec("llama-3.1-8b")
    naive = naive_weight_bytes(s, "int4")
    assert 3.9e9 < naive < 4.1e9  # 8.03e9 params x 0.5 B
    p = prediction(s.id, "int4", total_gib=6.9, usable_gib=16.0)
    v = judge(p, s, device(usable_gib=16.0), Workload())
    assert v.notes, "an 8B int4 model held in 6.9 GiB must carry a note"
    assert "4 bits would be 4.0 GB" in v.notes[0]
    assert "fp32 embedding table" in v.notes[0]
    # fp32 held at about params x 4 bytes: nothing to explain
    p32 = prediction(s.id, "fp32", total_gib=naive * 8 / GIB * 1.2, usable_gib=64.0)
    assert judge(p32, s, device(usable_gib=64.0), Workload()).notes == ()


def test_best_precision_is_least_quantized_that_meets() -> None:
    vs = [
        verdict(precision="fp32", total_gib=9.0, usable_gib=7.0),  # does not fit
        verdict(precision="int8", total_gib=3.0, usable_gib=7.0, tps=6.5),
        verdict(precision="int4", total_gib=2.0, usable_gib=7.0, tps=8.0),
    ]
    best = best_fitting_precision(vs)
    assert best is not None and best.prediction.precision == "int8"
    assert best_fitting_precision(vs[:1]) is None


def test_largest_model_meeting_per_device() -> None:
    small, big = spec("small", hidden=1024, layers=8), spec("big", hidden=4096, layers=32)
    d = device()
    vs = [
        judge(prediction("small", "int8", tps=40.0), small, d, Workload()),
        judge(prediction("big", "int8", total_gib=8.0), big, d, Workload()),  # does not fit
        judge(prediction("big", "int4", total_gib=5.0, tps=6.0), big, d, Workload()),
    ]
    best = largest_model_meeting(vs, [small, big])
    assert best is not None
    assert (best.prediction.model_id, best.prediction.precision) == ("big", "int4")


@settings(max_examples=200, deadline=None)
@given(
    total_gib=st.floats(0.05, 50.0),
    usable_gib=st.floats(0.5, 40.0),
    tps=st.floats(0.01, 500.0),
    power_w=st.floats(1.0, 60.0),
    floor=st.floats(0.0, 50.0),
    cap=st.one_of(st.none(), st.floats(1.0, 60.0)),
)
def test_ok_verdicts_respect_memory_speed_and_power(
    total_gib: float, usable_gib: float, tps: float, power_w: float, floor: float, cap: float | None
) -> None:
    p = prediction(total_gib=total_gib, usable_gib=usable_gib, tps=tps, power_w=power_w)
    v = judge(p, spec(), device(usable_gib=usable_gib), Workload(min_decode_tokens_per_s=floor, power_cap_w=cap))
    if v.ok:
        assert p.memory.total.value <= p.memory.usable_ram_bytes
        assert p.decode_tokens_per_s.value >= floor
        assert cap is None or power_w <= cap
    if v.kind is VerdictKind.FITS:
        assert p.memory.total.value <= 0.85 * p.memory.usable_ram_bytes + 1
        assert p.decode_tokens_per_s.value >= 1.2 * floor
    if p.memory.total.value > p.memory.usable_ram_bytes:
        assert v.kind is VerdictKind.DOES_NOT_FIT


def test_memory_never_judged_below_the_stored_weights() -> None:
    """A calibration that under-reads RSS (weights still memory-mapped) must not make 405B fit a 64 GiB box."""
    s = load_spec("llama-3.1-405b")
    p = prediction(s.id, "int8", total_gib=34.0, usable_gib=61.5, tps=10.0)
    v = judge(p, s, device(usable_gib=61.5), Workload())
    assert v.kind is VerdictKind.DOES_NOT_FIT
    assert v.memory_bytes > 1.05 * 400e9  # 406e9 params x 9 bits / 8, prepacked x1.05
    assert any("below what onnxruntime holds" in n for n in v.notes)


def test_context_beyond_the_model_is_noted() -> None:
    s = load_spec("phi-3-mini-4k")
    p = prediction(s.id, "int4", total_gib=3.0, usable_gib=7.0, context_tokens=s.max_context)
    v = judge(p, s, device(), Workload(context_tokens=2 * s.max_context))
    assert any(f"supports {s.max_context} tokens" in n for n in v.notes)
