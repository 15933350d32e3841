"""Accounting identities: bytes per precision, MatMulNBits layout, GGUF sizes, KV cache and FLOPs."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edgefit import catalog
from edgefit.catalog import (
    ModelSpec,
    flops_decode_per_token,
    flops_prompt,
    kv_cache_bytes_per_token,
    load_spec,
    param_counts,
    weight_bytes,
    weight_read_bytes_per_token,
)
from edgefit.errors import CatalogError


def tiny(**overrides: object) -> ModelSpec:
    fields: dict[str, object] = dict(
        id="tiny",
        name="tiny",
        family="ladder",
        hidden_size=64,
        num_layers=2,
        num_heads=4,
        num_kv_heads=2,
        head_dim=16,
        intermediate_size=96,
        vocab_size=100,
        tied_embeddings=False,
    )
    fields.update(overrides)
    return ModelSpec(**fields)  # type: ignore[arg-type]


ALL = catalog.list_specs()


@pytest.mark.parametrize("spec", ALL, ids=lambda s: s.id)
def test_fp32_is_four_bytes_per_param(spec: ModelSpec) -> None:
    assert weight_bytes(spec, "fp32") == 4 * param_counts(spec).total
    assert weight_bytes(spec, "bf16") == 2 * param_counts(spec).total


def test_int4_and_int8_bytes_by_hand() -> None:
    # tiny: h=64, q=64, kv=32, i=96, vocab=100, 2 layers, untied. MatMulNBits [K, N]: N * ceil(K/32) blocks,
    # each block 32*bits/8 bytes + one float32 scale.
    spec = tiny()
    mats = [(64, 64), (64, 32), (64, 32), (64, 64), (64, 96), (64, 96), (96, 64)]
    for bits, name in ((4, "int4"), (8, "int8")):
        per_layer = sum(n * (k // 32) * (32 * bits // 8 + 4) for k, n in mats) + 2 * 64 * 4  # + 2 norms fp32
        lm_head = 100 * (64 // 32) * (32 * bits // 8 + 4)
        embedding = 100 * 64 * 4  # float32 Gather table, never quantized
        expected = embedding + 2 * per_layer + 64 * 4 + lm_head
        assert weight_bytes(spec, name) == expected
    # Effective bits on the quantized matrices alone: 4 + 32/32 = 5.0 and 8 + 32/32 = 9.0.
    assert catalog.get_precision("int4").bits_per_weight == 5.0
    assert catalog.get_precision("int8").bits_per_weight == 9.0


def test_block_size_pads_and_changes_bits() -> None:
    spec = tiny(hidden_size=80, head_dim=20)  # K = 80 is not a multiple of 32: 3 blocks of 32, zero-padded
    parts = catalog.weight_bytes_by_part(spec, "int4", block_size=32)
    q_bytes = 80 * 3 * (16 + 4)
    assert parts.layers > 0 and q_bytes <= parts.layers
    assert weight_bytes(spec, "int4", block_size=16) != weight_bytes(spec, "int4", block_size=64)
    assert catalog.get_precision("int4", block_size=128).bits_per_weight == 4 + 32 / 128
    for bad in (0, 24, 8, 33):
        with pytest.raises(CatalogError, match="power of two"):
            weight_bytes(spec, "int4", block_size=bad)


def test_tied_vs_untied() -> None:
    untied, tied = tiny(), tiny(tied_embeddings=True)
    emb = 100 * 64
    assert param_counts(untied).total - param_counts(tied).total == emb
    # fp32/fp16: the tied LM head is the embedding itself, no copy.
    assert weight_bytes(untied, "fp32") - weight_bytes(tied, "fp32") == 4 * emb
    assert weight_bytes(untied, "fp16") - weight_bytes(tied, "fp16") == 2 * emb
    # int8/int4: a tied model still stores a quantized LM-head copy, so its file is as large as the untied one.
    for name in ("int8", "int4"):
        assert weight_bytes(tied, name) == weight_bytes(untied, name)
    # Reading per token: the LM head is read either way, the embedding table never (it is a Gather).
    assert weight_read_bytes_per_token(tied, "fp32") == weight_read_bytes_per_token(untied, "fp32")
    assert weight_read_bytes_per_token(untied, "fp32") == weight_bytes(untied, "fp32") - 4 * emb


def test_fp16_layout_keeps_norms_fp32() -> None:
    spec = tiny()
    pc = param_counts(spec)
    assert weight_bytes(spec, "fp16") == 2 * pc.total + 2 * pc.norms


def test_biases_are_counted() -> None:
    plain, biased = tiny(), tiny(attention_bias=True, mlp_bias=True)
    extra = 2 * ((4 + 2 * 2) * 16 + 2 * 96 + 64)
    assert param_counts(biased).total - param_counts(plain).total == extra
    assert weight_bytes(biased, "int4") - weight_bytes(plain, "int4") == 4 * extra  # biases stay float32


@pytest.mark.parametrize("spec", ALL, ids=lambda s: s.id)
def test_precisions_order_by_size(spec: ModelSpec) -> None:
    fp32, fp16, int8, int4 = (weight_bytes(spec, p) for p in ("fp32", "fp16", "int8", "int4"))
    assert fp32 > fp16 and fp32 > int8 > int4
    # Not always fp16 > int8: a tied model's int8 file holds the float32 embedding *and* a quantized LM-head
    # copy, which outweighs the int8 saving when the vocabulary is large (Qwen2.5-0.5B, Gemma 2 2B).
    if not spec.tied_embeddings:
        assert fp16 > int8
    gguf = [weight_bytes(spec, p) for p in ("q8_0", "q6_k", "q5_k_m", "q4_k_m", "q3_k_m", "q2_k")]
    assert gguf == sorted(gguf, reverse=True)
    assert weight_bytes(spec, "q8_0") < weight_bytes(spec, "fp16")
    for p in catalog.PRECISIONS:
        assert 0 < weight_read_bytes_per_token(spec, p.name) <= weight_bytes(spec, p.name)


# Sizes llama.cpp reports for public GGUF files (llama_model_size, tensor bytes). Sources: the llama.cpp quantize
# README table for Llama-3.1-8B (GiB, 2 decimals), and llama.cpp's model size as printed by apps that load
# bartowski/gemma-2-2b-it-GGUF Q4_K_M (1,683,459,840 B), TinyLlama-1.1B-Chat-v1.0 Q4_0 (635,990,016 B),
# Mistral-7B-Instruct-v0.3 Q4_K_M (4,372,054,016 B) and SmolLM2-360M-Instruct Q8_0 (384,618,240 B).
GGUF_FILES = [
    ("llama-3.1-8b", "q4_k_m", 4.58 * 2**30, 0.005),
    ("llama-3.1-8b", "q8_0", 7.95 * 2**30, 0.005),
    ("llama-3.1-8b", "q2_k", 2.95 * 2**30, 0.005),
    ("gemma-2-2b", "q4_k_m", 1_683_459_840, 0.015),
    ("tinyllama-1.1b", "q4_0", 635_990_016, 0.01),
    ("mistral-7b-v0.3", "q4_k_m", 4_372_054_016, 0.01),
    ("smollm2-360m", "q8_0", 384_618_240, 0.01),
    # Hidden 896 is not a multiple of 256: most tensors fall back from Q2_K to IQ4_NL. A flat bpw would say
    # 195 MB; llama.cpp reported 332,659,200 B for Qwen2.5-0.5B-Instruct Q2_K.
    ("qwen2.5-0.5b", "q2_k", 332_659_200, 0.03),
]


@pytest.mark.parametrize(("model_id", "precision", "file_bytes", "tolerance"), GGUF_FILES)
def test_gguf_sizes_match_llama_cpp_files(model_id: str, precision: str, file_bytes: float, tolerance: float) -> None:
    assert abs(weight_bytes(load_spec(model_id), precision) / file_bytes - 1) <= tolerance


def test_gguf_tied_embedding_counts_once_and_is_read() -> None:
    tied, untied = load_spec("llama-3.2-1b"), dataclasses.replace(load_spec("llama-3.2-1b"), tied_embeddings=False)
    g_tied, g_untied = catalog.gguf_bytes_by_part(tied, "q4_k_m"), catalog.gguf_bytes_by_part(untied, "q4_k_m")
    assert g_tied.lm_head == 0 and g_untied.lm_head > 0
    assert g_tied.total < g_untied.total
    # Tied: the one embedding/output tensor is read as the LM head every token.
    read = weight_read_bytes_per_token(tied, "q4_k_m")
    assert read == g_tied.total
    assert weight_read_bytes_per_token(untied, "q4_k_m") == g_untied.total - g_untied.embeddings


def test_unknown_precision_lists_valid_ones() -> None:
    with pytest.raises(CatalogError, match="valid precisions: fp32, fp16, bf16, int8, int4, q8_0"):
        catalog.get_precision("int3")
    assert catalog.get_precision("Q4_K_M").name == "q4_k_m"


def test_runtime_facts_are_recorded() -> None:
    fp16, bf16, int4 = (catalog.get_precision(n) for n in ("fp16", "bf16", "int4"))
    assert fp16.runs_as == "fp32" and fp16.runtime_note and "fp32" in fp16.runtime_note
    assert not bf16.cpu_runnable
    assert int4.prepack_factor == pytest.approx(1.27) and "accuracy_level 4" in (int4.runtime_note or "")
    assert {p.name for p in catalog.PRECISIONS if p.onnx_buildable} == {"fp32", "fp16", "int8", "int4"}


def test_kv_cache_per_token() -> None:
    spec = load_spec("llama-3.1-8b")
    # K and V x 32 layers x 8 KV heads x 128 dims: 131,072 B/token at fp16, the figure usually quoted (128 KiB).
    assert kv_cache_bytes_per_token(spec, dtype_bytes=2) == 2 * 32 * 8 * 128 * 2 == 128 * 1024
    assert kv_cache_bytes_per_token(spec) == 2 * kv_cache_bytes_per_token(spec, dtype_bytes=2)
    gqa, mha = tiny(), tiny(num_kv_heads=4)
    assert kv_cache_bytes_per_token(mha) == 2 * kv_cache_bytes_per_token(gqa)


def test_flops_decode_formula() -> None:
    spec = tiny()
    matmul = 2 * (64 * 64 * 2 + 64 * 32 * 2 + 3 * 64 * 96) + 64 * 100
    assert catalog.matmul_params(spec) == matmul
    assert flops_decode_per_token(spec, 0) == 2 * matmul
    assert flops_decode_per_token(spec, 10) - flops_decode_per_token(spec, 0) == 4 * 2 * 4 * 16 * 10
    with pytest.raises(CatalogError):
        flops_decode_per_token(spec, -1)


@given(st.integers(min_value=0, max_value=5000))
def test_prompt_flops_are_the_sum_of_positions(n: int) -> None:
    spec = load_spec("qwen2.5-0.5b")
    assert flops_prompt(spec, n + 1) - flops_prompt(spec, n) == flops_decode_per_token(spec, n + 1)
    assert flops_decode_per_token(spec, n + 1) > flops_decode_per_token(spec, n)


@given(st.integers(min_value=1, max_value=4096), st.integers(min_value=2, max_value=8))
def test_prompt_flops_superlinear(n: int, factor: int) -> None:
    spec = load_spec("smollm2-135m")
    assert flops_prompt(spec, factor * n) > factor * flops_prompt(spec, n)


def test_flops_grow_with_model_size() -> None:
    flops = [flops_decode_per_token(s, 1024) for s in ALL if s.open_weights]
    params = [param_counts(s).total for s in ALL if s.open_weights]
    # Bigger models cost more per token, except where a model's vocabulary is a big share (checked pairwise
    # within one family, where widths and vocabularies scale together).
    llama = [flops_decode_per_token(load_spec(i), 1024) for i in ("llama-3.2-1b", "llama-3.2-3b", "llama-3.1-8b")]
    assert llama == sorted(llama)
    assert max(flops) == flops[params.index(max(params))]


@given(
    st.integers(min_value=1, max_value=8),
    st.sampled_from([1, 2, 4]),
    st.integers(min_value=1, max_value=4),
    st.integers(min_value=16, max_value=512),
)
def test_more_layers_never_cost_less(layers: int, kv: int, extra: int, vocab: int) -> None:
    small = tiny(num_layers=layers, num_kv_heads=kv, vocab_size=vocab)
    big = dataclasses.replace(small, num_layers=layers + extra)
    for p in ("fp32", "int8", "int4", "q4_k_m"):
        assert weight_bytes(big, p) > weight_bytes(small, p)
        assert weight_read_bytes_per_token(big, p) > weight_read_bytes_per_token(small, p)
    assert flops_prompt(big, 64) > flops_prompt(small, 64)
    assert kv_cache_bytes_per_token(big) > kv_cache_bytes_per_token(small)


def test_truncated_keeps_width() -> None:
    spec = load_spec("llama-3.2-1b")
    cut = catalog.truncated(spec, 4)
    assert (cut.num_layers, cut.hidden_size, cut.vocab_size) == (4, spec.hidden_size, spec.vocab_size)
    assert cut.published_params is None and cut.id != spec.id
    per_layer = (param_counts(spec).total - param_counts(cut).total) // 12
    assert param_counts(spec).total - param_counts(cut).total == 12 * per_layer
    assert catalog.truncated(spec, spec.num_layers) == spec
    for bad in (0, -1, 17):
        with pytest.raises(CatalogError, match=r"--layers: expected 1\.\.16"):
            catalog.truncated(spec, bad)
