"""Property tests (Hypothesis): predictions never fall as parameters, context or precision bits grow; a model
whose memory exceeds usable RAM is never called fitting; every interval contains its point."""

from __future__ import annotations

import dataclasses
import itertools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgefit.catalog import ModelSpec
from edgefit.predict import fits_in_memory, max_context_that_fits, predict
from edgefit.predict import synthetic as sy
from edgefit.predict.calibrate import Calibration, calibrate
from edgefit.predict.prediction import Estimate, Prediction
from edgefit.profiles import load_profiles

MIB = 2**20


def _calibration() -> Calibration:
    # kernel speeds per weight grow as bits shrink (int4 22 Gweights/s, int8 18, fp32 5.5): the monotone-in-bits
    # property holds for this host's *model*; a real host whose int8 kernel is slower than fp32 would rightly not
    specs = sy.ladder_specs(6)
    truth = {
        "fp32": sy.Physics(22e9, cache_speedup=1.4, knee_bytes=150 * MIB, prefill_flops_per_s=1.2e11),
        "int8": sy.Physics(20e9, rss_k=1.05, prefill_flops_per_s=3e11),
        "int4": sy.Physics(14e9, rss_k=1.27, prefill_flops_per_s=1e11),
    }
    # noise-free, so the fitted per-token overheads are the same for every precision (they are, in truth): with
    # noisy fits a tiny model's ordering by bits would be decided by fit noise in the overheads, not by physics
    ms = sy.measurements(specs, truth, noise_rel=0.0)
    return calibrate(ms, sy.device(), specs={s.id: s for s in specs})


CAL = _calibration()
HOST = sy.device()
DEVICES = (HOST, *load_profiles())


@st.composite
def specs(draw: st.DrawFn) -> ModelSpec:
    head_dim = draw(st.sampled_from([64, 128]))
    kv = draw(st.integers(1, 8))
    group = draw(st.integers(1, 8))
    heads = kv * group
    return ModelSpec(
        id="prop",
        name="prop",
        family="llama",
        hidden_size=heads * head_dim,
        num_layers=draw(st.integers(1, 64)),
        num_heads=heads,
        num_kv_heads=kv,
        head_dim=head_dim,
        intermediate_size=draw(st.integers(1, 64)) * 256,
        vocab_size=draw(st.integers(1000, 160_000)),
        tied_embeddings=draw(st.booleans()),
        max_context=32768,
    )


def _all_estimates(p: Prediction) -> list[Estimate]:
    return [
        p.decode_s_per_token,
        p.decode_tokens_per_s,
        p.prefill_s,
        p.time_to_first_token_s,
        p.memory.total,
        p.power_w,
        p.energy_per_token_j,
    ]


SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
DEVICE_IDX = st.integers(0, len(DEVICES) - 1)
PRECISION = st.sampled_from(["fp32", "int8", "int4", "q4_0", "fp16"])


@SETTINGS
@given(specs(), st.integers(1, 16), st.sampled_from(["layers", "intermediate", "vocab"]), PRECISION, DEVICE_IDX)
def test_latency_and_memory_never_fall_as_parameters_grow(
    spec: ModelSpec, more: int, part: str, precision: str, dev: int
) -> None:
    bigger = {
        "layers": dataclasses.replace(spec, num_layers=spec.num_layers + more),
        "intermediate": dataclasses.replace(spec, intermediate_size=spec.intermediate_size + 256 * more),
        "vocab": dataclasses.replace(spec, vocab_size=spec.vocab_size + 1000 * more),
    }[part]
    a = predict(spec, precision, DEVICES[dev], CAL, context_tokens=512, prompt_tokens=64)
    b = predict(bigger, precision, DEVICES[dev], CAL, context_tokens=512, prompt_tokens=64)
    assert b.decode_s_per_token.value >= a.decode_s_per_token.value
    assert b.prefill_s.value >= a.prefill_s.value
    assert b.memory.total.value >= a.memory.total.value


@SETTINGS
@given(specs(), st.integers(0, 8000), st.integers(1, 8000), PRECISION, DEVICE_IDX)
def test_latency_and_memory_never_fall_as_context_grows(
    spec: ModelSpec, ctx: int, more: int, precision: str, dev: int
) -> None:
    a = predict(spec, precision, DEVICES[dev], CAL, context_tokens=ctx, prompt_tokens=64)
    b = predict(spec, precision, DEVICES[dev], CAL, context_tokens=ctx + more, prompt_tokens=64)
    assert b.decode_s_per_token.value >= a.decode_s_per_token.value
    assert b.memory.total.value >= a.memory.total.value


@SETTINGS
@given(specs(), st.integers(0, 4096), DEVICE_IDX)
def test_latency_and_memory_never_fall_as_precision_bits_grow(spec: ModelSpec, ctx: int, dev: int) -> None:
    # Untied only: a tied int8/int4 build keeps a quantized LM-head copy beside the fp32 embedding (the Gather
    # table), so a tiny tied model whose embedding dominates really is larger at int8 than at fp32.
    spec = dataclasses.replace(spec, tied_embeddings=False)
    by_bits = [predict(spec, p, DEVICES[dev], CAL, context_tokens=ctx) for p in ("int4", "int8", "fp32")]
    for lo, hi in itertools.pairwise(by_bits):
        assert hi.decode_s_per_token.value >= lo.decode_s_per_token.value * (1 - 1e-9)
        assert hi.memory.total.value >= lo.memory.total.value


@SETTINGS
@given(specs(), PRECISION, DEVICE_IDX, st.integers(0, 32768), st.integers(1, 16))
def test_intervals_contain_the_point_and_are_positive(
    spec: ModelSpec, precision: str, dev: int, ctx: int, threads: int
) -> None:
    p = predict(spec, precision, DEVICES[dev], CAL, context_tokens=ctx, prompt_tokens=128, threads=threads)
    for e in _all_estimates(p):
        assert 0 < e.low <= e.value <= e.high


@SETTINGS
@given(specs(), PRECISION, DEVICE_IDX, st.integers(0, 32768))
def test_memory_over_usable_ram_is_never_fitting(spec: ModelSpec, precision: str, dev: int, ctx: int) -> None:
    device = DEVICES[dev]
    p = predict(spec, precision, device, CAL, context_tokens=ctx, prompt_tokens=128)
    over = p.memory.total.value > device.usable_ram_bytes
    assert fits_in_memory(p.memory.total.value, device.usable_ram_bytes) is (not over)
    assert any("usable" in w for w in p.warnings) is over
    best = max_context_that_fits(spec, precision, device, CAL, prompt_tokens=128)
    if over:
        assert best < ctx or best == 0
    if best > 0:  # the answer itself fits, one token more (within the card's limit) does not
        at = predict(spec, precision, device, CAL, context_tokens=best, prompt_tokens=min(128, best))
        assert fits_in_memory(at.memory.total.value, device.usable_ram_bytes)
        if best < spec.max_context:
            nxt = predict(spec, precision, device, CAL, context_tokens=best + 1, prompt_tokens=min(128, best + 1))
            assert not fits_in_memory(nxt.memory.total.value, device.usable_ram_bytes)


def test_a_huge_model_does_not_fit_a_small_board() -> None:
    spec = ModelSpec("big", "big", "llama", 8192, 80, 64, 8, 128, 28672, 128256, False)
    pi = next(d for d in DEVICES if d.usable_ram_bytes < 3 * 2**30)
    p = predict(spec, "int4", pi, CAL)
    assert not fits_in_memory(p.memory.total.value, pi.usable_ram_bytes)
    assert max_context_that_fits(spec, "int4", pi, CAL) == 0


@pytest.mark.parametrize("precision", ["fp32", "int4"])
def test_more_threads_never_slower(precision: str) -> None:
    spec = ModelSpec("m", "m", "llama", 2048, 22, 32, 4, 64, 5632, 32000, False)
    dev = next(d for d in DEVICES if d.cpu_cores >= 4)
    times = [predict(spec, precision, dev, CAL, threads=t).decode_s_per_token.value for t in (1, 2, 4)]
    assert times[0] >= times[1] >= times[2]
