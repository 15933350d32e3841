"""The ONNX builder: logits against an independent numpy forward pass, KV-cache decode against full recompute,
quantized models against the reference on their dequantized weights, exact accounting of the file."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from edgefit import catalog
from edgefit.catalog import ModelSpec
from edgefit.errors import BuildError, CatalogError
from edgefit.onnxbuild import BuiltModel, build_model, read_weights

sys.path.insert(0, str(Path(__file__).parent))
import reference


def _spec(**kw: object) -> ModelSpec:
    base: dict[str, object] = dict(
        id="tiny",
        name="tiny",
        family="test",
        hidden_size=128,
        num_layers=2,
        num_heads=4,
        num_kv_heads=2,
        head_dim=32,
        intermediate_size=344,  # not a multiple of 32: exercises MatMulNBits' K padding on down_proj
        vocab_size=500,
        tied_embeddings=False,
        max_context=256,
    )
    base.update(kw)
    return ModelSpec(**base)  # type: ignore[arg-type]


# Small cards covering every layout switch: GQA ratios, biases, tied LM head, Gemma-2 style 4 norms, a head_dim
# that is not hidden/heads (Gemma 2 2B has 8 x 256 on hidden 2304), MHA (kv_heads == heads), MQA (kv_heads 1).
CARDS = {
    "llama-gqa": _spec(),
    "qwen-bias-tied": _spec(
        hidden_size=64,
        num_heads=4,
        num_kv_heads=1,
        head_dim=16,
        intermediate_size=176,
        attention_bias=True,
        tied_embeddings=True,
    ),
    "gemma-4norms": _spec(
        hidden_size=96, num_heads=4, num_kv_heads=2, head_dim=40, norms_per_layer=4, tied_embeddings=True, mlp_bias=True
    ),
    "wide-mha": _spec(hidden_size=256, num_heads=4, num_kv_heads=4, head_dim=64, intermediate_size=688),
}


def _session(path: Path) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def _run(
    sess: ort.InferenceSession, spec: ModelSpec, ids: np.ndarray, past: list[tuple[np.ndarray, np.ndarray]] | None
) -> tuple[np.ndarray, list[tuple[np.ndarray, np.ndarray]]]:
    past_len = 0 if past is None else past[0][0].shape[2]
    feeds: dict[str, np.ndarray] = {
        "input_ids": ids.astype(np.int64),
        "attention_mask": np.ones((ids.shape[0], past_len + ids.shape[1]), dtype=np.int64),
    }
    for i in range(spec.num_layers):
        for j, kind in enumerate(("key", "value")):
            empty = np.zeros((ids.shape[0], spec.num_kv_heads, 0, spec.head_dim), dtype=np.float32)
            feeds[f"past_key_values.{i}.{kind}"] = empty if past is None else past[i][j]
    outs = sess.run(None, feeds)
    presents = [(outs[1 + 2 * i], outs[2 + 2 * i]) for i in range(spec.num_layers)]
    return outs[0], presents


def _ids(spec: ModelSpec, n: int, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, spec.vocab_size, size=(1, n))


@pytest.mark.parametrize("card", sorted(CARDS))
def test_fp32_logits_match_numpy_reference(card: str, tmp_path: Path) -> None:
    spec = CARDS[card]
    built = build_model(spec, "fp32", out=tmp_path / "m.onnx")
    ids = _ids(spec, 9)
    logits, presents = _run(_session(built.path), spec, ids, None)
    ref_logits, ref_presents = reference.forward(read_weights(built.path), spec, ids)
    assert logits.shape == (1, 9, spec.vocab_size)
    assert np.abs(ref_logits).max() > 0.05  # the comparison below is not between two near-zero arrays
    assert np.abs(logits - ref_logits).max() <= 1e-4
    for (k, v), (rk, rv) in zip(presents, ref_presents, strict=True):
        assert np.abs(k - rk).max() <= 1e-4 and np.abs(v - rv).max() <= 1e-4


@pytest.mark.parametrize("card", ["llama-gqa", "gemma-4norms"])
def test_kv_cache_decode_equals_full_sequence(card: str, tmp_path: Path) -> None:
    spec = CARDS[card]
    sess = _session(build_model(spec, "fp32", out=tmp_path / "m.onnx").path)
    ids = _ids(spec, 8, seed=3)
    full, _ = _run(sess, spec, ids, None)
    # prompt of 3, then one token at a time through the cache
    step_logits, past = _run(sess, spec, ids[:, :3], None)
    rows = [step_logits]
    for t in range(3, ids.shape[1]):
        step_logits, past = _run(sess, spec, ids[:, t : t + 1], past)
        rows.append(step_logits)
    assert past[0][0].shape[2] == ids.shape[1]
    assert np.abs(np.concatenate(rows, axis=1) - full).max() <= 1e-4


def test_decode_agrees_with_reference_cache(tmp_path: Path) -> None:
    """One decode step from a reference-built cache: the ONNX graph's positions come from attention_mask."""
    spec = CARDS["qwen-bias-tied"]
    built = build_model(spec, "fp32", out=tmp_path / "m.onnx")
    w = read_weights(built.path)
    ids = _ids(spec, 6, seed=5)
    _, ref_past = reference.forward(w, spec, ids[:, :5])
    ref_step, _ = reference.forward(w, spec, ids[:, 5:], ref_past)
    past32 = [(k.astype(np.float32), v.astype(np.float32)) for k, v in ref_past]
    step, _ = _run(_session(built.path), spec, ids[:, 5:], past32)
    assert np.abs(step - ref_step).max() <= 1e-4


@pytest.mark.parametrize("precision", ["int8", "int4"])
@pytest.mark.parametrize("card", ["llama-gqa", "qwen-bias-tied"])
def test_quantized_weights_exact_with_fp32_compute(card: str, precision: str, tmp_path: Path) -> None:
    """accuracy_level=0 computes in fp32 from the dequantized weights: the only difference left from the
    reference on those same weights is float rounding, so the fp32 tolerance applies."""
    spec = CARDS[card]
    built = build_model(spec, precision, out=tmp_path / "m.onnx", accuracy_level=0)
    ids = _ids(spec, 7)
    logits, _ = _run(_session(built.path), spec, ids, None)
    ref_logits, _ = reference.forward(read_weights(built.path), spec, ids)
    assert np.abs(logits - ref_logits).max() <= 1e-4


@pytest.mark.parametrize("precision", ["int8", "int4"])
def test_quantized_deployed_accuracy_level_4(precision: str, tmp_path: Path) -> None:
    """accuracy_level=4 (the CPU deployment setting) also quantizes activations to int8 per block of 32:
    a relative error up to 1/254 per activation (half a step of amax/127), accumulating over ~10 MatMuls in two
    layers. Measured here: 0.8-1.2 % of max|logit|. Tolerance 3 %; a wrong packing or scale is off by ~100 %."""
    spec = CARDS["llama-gqa"]
    built = build_model(spec, precision, out=tmp_path / "m.onnx")
    ids = _ids(spec, 7)
    logits, _ = _run(_session(built.path), spec, ids, None)
    ref_logits, _ = reference.forward(read_weights(built.path), spec, ids)
    scale = np.abs(ref_logits).max()
    assert np.abs(logits - ref_logits).max() <= 0.03 * scale


def test_quantized_weights_are_close_to_the_fp32_ones(tmp_path: Path) -> None:
    """Quantization starts from the same seeded fp32 weights: dequantized int8 is within half a step of them."""
    spec = CARDS["llama-gqa"]
    w32 = read_weights(build_model(spec, "fp32", out=tmp_path / "a.onnx").path)
    w8 = read_weights(build_model(spec, "int8", out=tmp_path / "b.onnx").path)
    w4 = read_weights(build_model(spec, "int4", out=tmp_path / "c.onnx").path)
    # down_proj: K = 344, the row-major path; q_proj: K = 128, the granule fast path; lm_head: a large one
    for name in ("layers.1.mlp.down_proj.weight", "layers.0.attn.q_proj.weight", "lm_head.weight"):
        assert w8[name].shape == w32[name].shape == w4[name].shape
        err8, err4 = np.abs(w8[name] - w32[name]).max(), np.abs(w4[name] - w32[name]).max()
        amax = np.abs(w32[name]).max()
        assert err8 <= amax / 127 / 2 * 1.001, name
        assert err4 <= amax / 7 / 2 * 1.001, name
        assert err4 > err8 > 0, name


def test_fp16_stores_half_weights_and_matches_reference(tmp_path: Path) -> None:
    spec = CARDS["gemma-4norms"]
    built = build_model(spec, "fp16", out=tmp_path / "m.onnx")
    model = onnx.load(str(built.path), load_external_data=False)
    dtypes = {t.name: t.data_type for t in model.graph.initializer}
    assert dtypes["layers.0.attn.q_proj.weight"] == onnx.TensorProto.FLOAT16
    assert dtypes["embed_tokens.weight"] == onnx.TensorProto.FLOAT16
    assert dtypes["layers.0.input_layernorm.weight"] == onnx.TensorProto.FLOAT
    ids = _ids(spec, 5)
    logits, _ = _run(_session(built.path), spec, ids, None)
    ref_logits, _ = reference.forward(read_weights(built.path), spec, ids)
    assert np.abs(logits - ref_logits).max() <= 1e-4
    assert "fp32" in built.runtime_note


def _weight_initializers(path: Path) -> list[onnx.TensorProto]:
    model = onnx.load(str(path), load_external_data=False)
    return [t for t in model.graph.initializer if not t.name.startswith("rope.")]


@pytest.mark.parametrize("card", sorted(CARDS))
def test_fp32_initializer_elements_equal_param_counts(card: str, tmp_path: Path) -> None:
    spec = CARDS[card]
    built = build_model(spec, "fp32", out=tmp_path / "m.onnx")
    elements = sum(int(np.prod(t.dims)) for t in _weight_initializers(built.path))
    assert elements == catalog.param_counts(spec).total == built.params


@pytest.mark.parametrize("precision", ["fp32", "fp16", "int8", "int4"])
@pytest.mark.parametrize("card", sorted(CARDS))
def test_file_weight_bytes_equal_catalog_accounting(card: str, precision: str, tmp_path: Path) -> None:
    spec = CARDS[card]
    built = build_model(spec, precision, out=tmp_path / "m.onnx")
    external = 0
    for t in _weight_initializers(built.path):
        assert t.data_location == onnx.TensorProto.EXTERNAL, t.name
        external += int({e.key: e.value for e in t.external_data}["length"])
    assert external == built.weight_file_bytes == catalog.weight_bytes(spec, precision)
    assert built.params == catalog.param_counts(spec).total
    assert built.data_path.stat().st_size == built.data_file_bytes >= built.weight_file_bytes


@pytest.mark.parametrize("block_size", [16, 64, 128])
def test_block_size_changes_bytes_as_accounted(block_size: int, tmp_path: Path) -> None:
    spec = CARDS["llama-gqa"]
    built = build_model(spec, "int4", out=tmp_path / "m.onnx", block_size=block_size)
    assert built.weight_file_bytes == catalog.weight_bytes(spec, "int4", block_size=block_size)
    logits, _ = _run(_session(built.path), spec, _ids(spec, 3), None)
    assert np.isfinite(logits).all()


def test_graph_uses_the_genai_cpu_ops(tmp_path: Path) -> None:
    spec = CARDS["llama-gqa"]
    ops32 = {n.op_type for n in onnx.load(str(build_model(spec, "fp32", out=tmp_path / "a.onnx").path)).graph.node}
    ops4 = {n.op_type for n in onnx.load(str(build_model(spec, "int4", out=tmp_path / "b.onnx").path)).graph.node}
    expected = {"Gather", "SimplifiedLayerNormalization", "SkipSimplifiedLayerNormalization", "RotaryEmbedding",
                "GroupQueryAttention", "Sigmoid"}  # fmt: skip
    assert expected <= ops32 and "MatMul" in ops32 and "MatMulNBits" not in ops32
    assert expected <= ops4 and "MatMulNBits" in ops4 and "MatMul" not in ops4
    model = onnx.load(str(tmp_path / "b.onnx"), load_external_data=False)
    nbits = [n for n in model.graph.node if n.op_type == "MatMulNBits"]
    attrs = {a.name: a.i for a in nbits[0].attribute}
    assert attrs["bits"] == 4 and attrs["block_size"] == 32 and attrs["accuracy_level"] == 4
    assert len(nbits) == 7 * spec.num_layers + 1  # q k v o gate up down per layer + LM head


def test_layers_truncates_to_a_prefix_of_the_full_model(tmp_path: Path) -> None:
    spec = _spec(num_layers=4)
    full = build_model(spec, "fp32", out=tmp_path / "full.onnx")
    part = build_model(spec, "fp32", out=tmp_path / "part.onnx", layers=2)
    assert part.spec.num_layers == 2 and part.spec.hidden_size == spec.hidden_size
    assert part.params == catalog.param_counts(catalog.truncated(spec, 2)).total < full.params
    wf, wp = read_weights(full.path), read_weights(part.path)
    assert "layers.2.attn.q_proj.weight" not in wp
    for name, arr in wp.items():
        assert np.array_equal(arr, wf[name]), name


def test_default_path_in_cache_and_reuse(tmp_path: Path) -> None:
    spec = CARDS["llama-gqa"]
    first = build_model(spec, "int8")
    assert first.path.parent == tmp_path / "cache" / "models"  # conftest's EDGEFIT_CACHE_DIR
    assert first.path.name == "tiny-int8-s0.onnx" and not first.reused
    again = build_model(spec, "int8")
    assert again.reused and again.path == first.path and again.build_s == 0.0
    assert again.weight_file_bytes == first.weight_file_bytes
    other_seed = build_model(spec, "int8", seed=1)
    assert other_seed.path != first.path and not other_seed.reused
    assert first.data_path.read_bytes() != other_seed.data_path.read_bytes()
    # same id, changed shape: the sidecar's spec hash no longer matches, so it is rebuilt in place
    wider = dataclasses.replace(spec, intermediate_size=384)
    rebuilt = build_model(wider, "int8")
    assert rebuilt.path == first.path and not rebuilt.reused
    assert rebuilt.weight_file_bytes == catalog.weight_bytes(wider, "int8")


def test_damaged_build_is_not_reused(tmp_path: Path) -> None:
    spec = CARDS["llama-gqa"]
    first = build_model(spec, "fp32")
    with open(first.data_path, "ab") as f:
        f.write(b"x")  # a data file that is not what the sidecar recorded
    assert not build_model(spec, "fp32").reused
    sidecar = first.path.with_name(first.path.name + ".json")
    meta = json.loads(sidecar.read_text())
    assert meta["spec_hash"] and meta["builder_version"] >= 1 and meta["params"] == first.params
    sidecar.write_text("{not json")
    again = build_model(spec, "fp32")
    assert not again.reused and _session(again.path) is not None


def test_same_seed_same_bytes(tmp_path: Path) -> None:
    spec = CARDS["qwen-bias-tied"]
    a = build_model(spec, "int4", out=tmp_path / "a.onnx")
    b = build_model(spec, "int4", out=tmp_path / "b.onnx")
    assert a.data_path.read_bytes() == b.data_path.read_bytes()


def test_model_loads_from_another_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """External data is referenced by a relative file name next to the .onnx, as onnxruntime expects."""
    built = build_model(CARDS["llama-gqa"], "fp32", out=tmp_path / "sub" / "m.onnx")
    monkeypatch.chdir(tmp_path)
    assert _session(built.path.resolve()) is not None
    assert built.path.stat().st_size < 200_000  # the graph proto holds no weights


def test_bad_inputs_are_refused(tmp_path: Path) -> None:
    spec = CARDS["llama-gqa"]
    with pytest.raises(CatalogError, match="unknown precision"):
        build_model(spec, "int3", out=tmp_path / "m.onnx")
    with pytest.raises(BuildError, match="q4_k_m"):
        build_model(spec, "q4_k_m", out=tmp_path / "m.onnx")
    with pytest.raises(BuildError, match="block_size"):
        build_model(spec, "int4", out=tmp_path / "m.onnx", block_size=24)
    with pytest.raises(CatalogError, match="layers"):
        build_model(spec, "fp32", out=tmp_path / "m.onnx", layers=0)
    with pytest.raises(CatalogError, match="layers"):
        build_model(spec, "fp32", out=tmp_path / "m.onnx", layers=3)
    with pytest.raises(BuildError, match="head_dim"):
        build_model(_spec(head_dim=33), "fp32", out=tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()


def test_built_model_fields(tmp_path: Path) -> None:
    built = build_model(CARDS["llama-gqa"], "int4", out=tmp_path / "m.onnx")
    assert isinstance(built, BuiltModel)
    assert built.precision == "int4" and built.spec == CARDS["llama-gqa"] and built.build_s > 0
    with pytest.raises(dataclasses.FrozenInstanceError):
        built.params = 1  # type: ignore[misc]


def test_interrupted_build_leaves_nothing_and_rebuilds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from edgefit.onnxbuild import graph

    def boom(self: object, x: str, p: str) -> str:
        raise KeyboardInterrupt

    spec = CARDS["llama-gqa"]
    with monkeypatch.context() as m:
        m.setattr(graph.DecoderGraph, "_mlp", boom)
        with pytest.raises(KeyboardInterrupt):
            build_model(spec, "int4", out=tmp_path / "m.onnx")
    assert list(tmp_path.iterdir()) == []
    built = build_model(spec, "int4", out=tmp_path / "m.onnx")
    assert not built.reused and sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx", "m.onnx.data", "m.onnx.json"]


def test_positions_beyond_max_context_fail_loudly(tmp_path: Path) -> None:
    """The RoPE cache holds max_context positions; onnxruntime refuses more rather than reading past it."""
    spec = _spec(max_context=16, num_layers=1)
    sess = _session(build_model(spec, "fp32", out=tmp_path / "m.onnx").path)
    assert _run(sess, spec, _ids(spec, 16), None)[0].shape[1] == 16
    with pytest.raises(Exception, match="RotaryEmbedding"):
        _run(sess, spec, _ids(spec, 17), None)
