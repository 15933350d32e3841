"""User .onnx files: validation (one-line ModelFileError for every broken case), description (inputs, symbolic
dims, token inputs, vocab, decoders, control flow, params and bytes with external data), input synthesis."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import numpy_helper

from edgefit.bench.feeds import FeedSpec, dims_used, resolve_shape, synthesize
from edgefit.bench.modelfile import ModelFileInfo, inspect_model_file
from edgefit.errors import ModelFileError

sys.path.insert(0, str(Path(__file__).parent / "data" / "onnx_models"))
import make_models as mm


@pytest.fixture(scope="module")
def fx(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return mm.make_all(tmp_path_factory.mktemp("onnx_models"))


def _independent_counts(path: Path) -> tuple[int, int]:
    """Params and bytes from onnx's own loader with external data pulled in (numpy arrays)."""
    m = onnx.load(str(path), load_external_data=True)
    arrays = [numpy_helper.to_array(t) for t in m.graph.initializer]
    return sum(a.size for a in arrays), sum(a.nbytes for a in arrays)


@pytest.mark.parametrize("name", ["multi_io_op11", "multi_io_op18", "recurrent", "tiny_decoder", "external"])
def test_params_and_bytes_match_onnx_loader(fx: dict[str, Path], name: str) -> None:
    info = inspect_model_file(fx[name])
    params, nbytes = _independent_counts(fx[name])
    assert info.params == params
    assert info.weight_file_bytes == nbytes
    assert info.largest_tensor_bytes <= nbytes


def test_external_data_is_counted(fx: dict[str, Path]) -> None:
    info = inspect_model_file(fx["external"])
    assert info.external_data_bytes == 64 * 32 * 4
    assert info.weight_file_bytes == info.external_data_bytes
    assert fx["external"].stat().st_size < info.external_data_bytes  # the graph file alone holds no weights


def test_multi_io_description(fx: dict[str, Path]) -> None:
    info = inspect_model_file(fx["multi_io_op11"])
    assert info.opset == 11
    assert [t.name for t in info.inputs] == ["ids", "feats"]
    assert [t.name for t in info.outputs] == ["pooled", "scores"]
    assert info.symbolic_dims == ("batch", "seq")
    assert info.token_inputs == ("ids",)
    assert info.vocab_size == mm.VOCAB
    assert not info.is_decoder
    # The embedding table is only indexed by the Gather: a forward pass does not stream it.
    assert info.weight_read_bytes_per_token == info.weight_file_bytes - mm.VOCAB * mm.HIDDEN * 4


def test_control_flow_and_opsets(fx: dict[str, Path]) -> None:
    for name, opset in (("control_flow_op11", 11), ("control_flow_op17", 17)):
        info = inspect_model_file(fx[name])
        assert info.opset == opset
        assert info.control_flow_ops == ("If", "Loop")
        assert {t.name: t.shape for t in info.inputs}["M"] == ()


def test_decoder_detection_pairs_past_and_present(fx: dict[str, Path]) -> None:
    info = inspect_model_file(fx["tiny_decoder"])
    assert info.is_decoder
    assert info.past_inputs == tuple(f"past_key_values.{i}.{kv}" for i in range(2) for kv in ("key", "value"))
    assert info.present_outputs == tuple(p.replace("past_key_values", "present") for p in info.past_inputs)
    assert not inspect_model_file(fx["recurrent"]).is_decoder  # a state input is not a KV cache


def test_builder_decoder_is_recognised(tmp_path: Path) -> None:
    from edgefit.catalog import ModelSpec
    from edgefit.onnxbuild import build_model

    spec = ModelSpec(id="t", name="t", family="ladder", hidden_size=32, num_layers=2, num_heads=4,
                     num_kv_heads=2, head_dim=8, intermediate_size=64, vocab_size=300, tied_embeddings=False,
                     max_context=256)  # fmt: skip
    for prec in ("fp32", "int4"):
        built = build_model(spec, prec, out=tmp_path / f"t-{prec}.onnx")
        info = inspect_model_file(built.path)
        assert info.is_decoder and len(info.past_inputs) == 2 * spec.num_layers
        assert info.token_inputs == ("input_ids",)
        assert info.vocab_size == spec.vocab_size
        assert info.has_quantized_ops == (prec == "int4")
        # Everything the builder counts as weights is in the file; the file also holds the rotary tables.
        assert info.weight_file_bytes >= built.weight_file_bytes
        assert info.params >= built.params


# --- broken files: one line, names the file, says what to do ------------------------------------------------


def _one_line_error(path: Path) -> str:
    with pytest.raises(ModelFileError) as e:
        inspect_model_file(path)
    msg = str(e.value)
    assert "\n" not in msg and str(path.name) in msg
    return msg


def test_not_onnx(tmp_path: Path) -> None:
    p = tmp_path / "notes.onnx"
    p.write_text("this is not a protobuf, just some text\n" * 4)
    assert "not a readable ONNX model" in _one_line_error(p)


def test_empty_and_missing(tmp_path: Path) -> None:
    (tmp_path / "empty.onnx").write_bytes(b"")
    assert "empty" in _one_line_error(tmp_path / "empty.onnx")
    assert "no such file" in _one_line_error(tmp_path / "absent.onnx")


@pytest.mark.parametrize("fraction", [0.3, 0.6, 0.9])
def test_truncated(fx: dict[str, Path], tmp_path: Path, fraction: float) -> None:
    data = fx["tiny_decoder"].read_bytes()
    p = tmp_path / "cut.onnx"
    p.write_bytes(data[: int(len(data) * fraction)])
    _one_line_error(p)


def _copy_external(fx: dict[str, Path], folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    src = fx["external"]
    dst = folder / src.name
    dst.write_bytes(src.read_bytes())
    (folder / (src.name + ".data")).write_bytes((src.parent / (src.name + ".data")).read_bytes())
    return dst


def test_missing_external_data(fx: dict[str, Path], tmp_path: Path) -> None:
    p = _copy_external(fx, tmp_path / "m")
    (tmp_path / "m" / "ext.onnx.data").unlink()
    assert "missing" in _one_line_error(p)


def test_external_data_escaping_folder(fx: dict[str, Path], tmp_path: Path) -> None:
    p = _copy_external(fx, tmp_path / "inner")
    (tmp_path / "secret.bin").write_bytes(b"\0" * 64 * 32 * 4)  # exists and is big enough: still refused
    mm.set_external_location(p, "../secret.bin")
    assert "escapes" in _one_line_error(p)
    mm.set_external_location(p, str(tmp_path / "secret.bin"))
    assert "absolute" in _one_line_error(p)


def test_external_data_too_short(fx: dict[str, Path], tmp_path: Path) -> None:
    p = _copy_external(fx, tmp_path / "short")
    data = tmp_path / "short" / "ext.onnx.data"
    data.write_bytes(data.read_bytes()[:100])
    assert "truncated" in _one_line_error(p)


def test_sparse_huge_model_is_valid_but_big(tmp_path: Path) -> None:
    info = inspect_model_file(mm.make_huge_sparse(tmp_path, gib=64))
    assert info.weight_file_bytes == 64 * (1 << 30)


# --- synthesized inputs --------------------------------------------------------------------------------------


def test_token_ids_stay_in_vocab_and_defaults(fx: dict[str, Path]) -> None:
    info = inspect_model_file(fx["multi_io_op18"])
    feeds = synthesize(info, FeedSpec(dims={"seq": 40}))
    assert feeds["ids"].shape == (1, 40) and feeds["ids"].dtype == np.int64
    assert feeds["ids"].min() >= 0 and feeds["ids"].max() < mm.VOCAB
    assert feeds["feats"].shape == (1, mm.HIDDEN) and feeds["feats"].dtype == np.float32
    assert dims_used(info, FeedSpec(dims={"seq": 40})) == {"batch": 1, "seq": 40}


def test_scalars_and_control_flow_run(fx: dict[str, Path]) -> None:
    info = inspect_model_file(fx["control_flow_op11"])
    feeds = synthesize(info, FeedSpec(scalars={"M": 3}, dims={"n": 5}))
    assert feeds["M"].shape == () and int(feeds["M"]) == 3
    assert feeds["use_double"].dtype == np.bool_
    sess = ort.InferenceSession(str(fx["control_flow_op11"]), providers=["CPUExecutionProvider"])
    (y,) = sess.run(None, feeds)
    # Reference: the If doubles x, the Loop applies tanh(acc @ w) M times.
    w = numpy_helper.to_array(next(t for t in onnx.load(str(fx["control_flow_op11"])).graph.initializer))
    acc = feeds["x"] * 2
    for _ in range(3):
        acc = np.tanh(acc @ w)
    np.testing.assert_allclose(y, acc, rtol=1e-5, atol=1e-6)


def test_decoder_shapes_follow_seq_and_past(fx: dict[str, Path]) -> None:
    info: ModelFileInfo = inspect_model_file(fx["tiny_decoder"])
    feeds = synthesize(info, FeedSpec(), seq=1, past=37)
    assert feeds["input_ids"].shape == (1, 1)
    assert feeds["attention_mask"].shape == (1, 38) and feeds["attention_mask"].min() == 1
    assert feeds["past_key_values.1.value"].shape == (1, 2, 37, 8)
    t = info.input("past_key_values.0.key")
    assert resolve_shape(info, t, FeedSpec(), seq=4, past=0) == (1, 2, 0, 8)


def test_user_dim_overrides_default(fx: dict[str, Path]) -> None:
    info = inspect_model_file(fx["recurrent"])
    feeds = synthesize(info, FeedSpec(dims={"time": 7, "batch": 3}))
    assert feeds["x"].shape == (7, 3, 8)
    assert feeds["h0"].shape == (1, 3, mm.HIDDEN)
