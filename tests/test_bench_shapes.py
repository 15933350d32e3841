"""Users' own .onnx files: shapes they can state (--shape), defaults that run common models without flags, errors
that name each input with the flag that fixes it, and a sampling budget that reaches ±2 % on slow models.

The graphs are small stand-ins built here with onnx.helper that keep what made the real files fail: silero-vad's
unnamed dims and reflect Pad (needs more than one sample), PP-OCR's ``p2o.DynamicDimension.N`` names, a text
recognizer that only runs on a 32-64 pixel high strip. Real files from PyPI packages are tried when installed."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgefit.bench import bench_file
from edgefit.bench.executor import InProcessExecutor, ModelJob
from edgefit.bench.feeds import FeedSpec, image_size_alternatives, plan_inputs, synthesize
from edgefit.bench.measurement import Phase
from edgefit.bench.modelfile import inspect_model_file
from edgefit.bench.runner import ScriptedRunner
from edgefit.cli import main

sys.path.insert(0, str(Path(__file__).parent / "data" / "onnx_models"))
import make_models as mm

FAST = ["--budget-s", "0.05", "--threads", "1"]


def _save(graph: onnx.GraphProto, path: Path, metadata: dict[str, str] | None = None) -> Path:
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="edgefit-tests")
    m.ir_version = 8
    for k, v in (metadata or {}).items():
        helper.set_model_props(m, {**{p.key: p.value for p in m.metadata_props}, k: v})
    onnx.save(m, str(path))
    return path


def _unnamed(elem: int, name: str, dims: list[int | None]) -> onnx.ValueInfoProto:
    """An input whose dynamic dims carry no dim_param at all (as silero-vad's)."""
    vi = helper.make_tensor_value_info(name, elem, [d if d is not None else "tmp" for d in dims])
    for d, proto in zip(dims, vi.type.tensor_type.shape.dim, strict=True):
        if d is None:
            proto.ClearField("dim_param")
    return vi


def make_vad_like(folder: Path) -> Path:
    """silero-vad's interface: input [?, ?] float, state [2, ?, 128], sr [] int64 (all dims unnamed). The audio
    goes through a reflect Pad of 64 samples (needs more than 64 per row) and the state through a 128x128
    MatMul; outputs a probability and the new state."""
    x = _unnamed(TensorProto.FLOAT, "input", [None, None])
    state = _unnamed(TensorProto.FLOAT, "state", [2, None, 128])
    sr = helper.make_tensor_value_info("sr", TensorProto.INT64, [])
    prob = helper.make_tensor_value_info("output", TensorProto.FLOAT, None)
    new_state = helper.make_tensor_value_info("stateN", TensorProto.FLOAT, None)
    inits = [
        numpy_helper.from_array(np.array([0, 64, 0, 64], dtype=np.int64), "pads"),
        numpy_helper.from_array(np.array([1], dtype=np.int64), "axes"),
        numpy_helper.from_array(np.eye(128, dtype=np.float32) * 0.5, "w"),
        numpy_helper.from_array(np.array(16000.0, dtype=np.float32), "sr_ref"),
    ]
    nodes = [
        helper.make_node("Pad", ["input", "pads"], ["padded"], mode="reflect"),
        helper.make_node("ReduceMean", ["padded"], ["m"], axes=[1], keepdims=1),
        helper.make_node("Cast", ["sr"], ["srf"], to=TensorProto.FLOAT),
        helper.make_node("Div", ["srf", "sr_ref"], ["scale"]),
        helper.make_node("Mul", ["m", "scale"], ["ms"]),
        helper.make_node("Sigmoid", ["ms"], ["output"]),
        helper.make_node("MatMul", ["state", "w"], ["stateN"]),
    ]
    return _save(helper.make_graph(nodes, "vad_like", [x, state, sr], [prob, new_state], inits), folder / "vad.onnx")


def make_image_model(
    folder: Path, name: str, dims: list[int | str | None], metadata: dict[str, str] | None = None
) -> Path:
    """A 3-channel NCHW convolution (stride 2) and a sigmoid: PP-OCR det's interface when dims are p2o names."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [d if d is not None else "tmp" for d in dims])
    for d, proto in zip(dims, x.type.tensor_type.shape.dim, strict=True):
        if d is None:
            proto.ClearField("dim_param")
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    channels = dims[1] if isinstance(dims[1], int) else 3
    w = numpy_helper.from_array(np.random.default_rng(0).standard_normal((4, channels, 3, 3)).astype(np.float32), "w")
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], strides=[2, 2], pads=[1, 1, 1, 1]),
        helper.make_node("Sigmoid", ["c"], ["y"]),
    ]
    return _save(helper.make_graph(nodes, "img", [x], [y], [w]), folder / name, metadata)


def make_recognizer_like(folder: Path) -> Path:
    """x [?, 3, ?, W]: a conv, then each image column flattened over channels x height into a 96-wide feature
    (2 channels x 48 rows): runs only on 48 pixel high strips, as a CRNN/SVTR text recognizer."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["p2o.DynamicDimension.0", 3, "tmp", "width"])
    x.type.tensor_type.shape.dim[2].ClearField("dim_param")
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    rng = np.random.default_rng(1)
    inits = [
        numpy_helper.from_array(rng.standard_normal((2, 3, 3, 3)).astype(np.float32), "w"),
        numpy_helper.from_array(np.array([0, 0, -1], dtype=np.int64), "shape"),
        numpy_helper.from_array(rng.standard_normal((96, 8)).astype(np.float32), "proj"),
    ]
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("Transpose", ["c"], ["t"], perm=[0, 3, 1, 2]),
        helper.make_node("Reshape", ["t", "shape"], ["r"]),
        helper.make_node("MatMul", ["r", "proj"], ["y"]),
    ]
    return _save(helper.make_graph(nodes, "rec", [x], [y], inits), folder / "text_rec.onnx")


def _run(path: Path, spec: FeedSpec) -> list[np.ndarray]:
    info = inspect_model_file(path, hash_file=False)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return list(sess.run(None, synthesize(info, spec)))


@pytest.fixture(autouse=True)
def _small_probe(monkeypatch: pytest.MonkeyPatch) -> None:
    from edgefit import probes
    from edgefit.bench import campaign

    monkeypatch.setattr(campaign, "_probe", lambda d: probes.quick_bandwidth(duration_s=d, total_bytes=32 << 20))


# --- defaults ------------------------------------------------------------------------------------------------


def test_unnamed_dims_are_read_as_unnamed(tmp_path: Path) -> None:
    info = inspect_model_file(make_vad_like(tmp_path))
    assert [t.shape for t in info.inputs] == [(None, None), (2, None, 128), ()]
    assert info.symbolic_dims == ()
    # "?" dim_params and negative dim_values (paddle exports) are unnamed too
    p = make_image_model(tmp_path, "cls.onnx", [1, 3, 48, 192])
    m = onnx.load(str(p))
    dims = m.graph.input[0].type.tensor_type.shape.dim
    dims[0].dim_value = -1
    dims[2].dim_param = "?"
    onnx.save(m, str(p))
    assert inspect_model_file(p).inputs[0].shape == (None, 3, None, 192)


def test_vad_like_model_runs_with_defaults(tmp_path: Path) -> None:
    path = make_vad_like(tmp_path)
    info = inspect_model_file(path)
    plans = {p.name: p for p in plan_inputs(info, FeedSpec())}
    assert plans["input"].shape == (1, 512) and plans["input"].role == "audio"
    assert plans["state"].shape == (2, 1, 128) and plans["state"].role == "state"
    assert plans["sr"].shape == () and plans["sr"].value == 16000
    prob, state = _run(path, FeedSpec())
    assert prob.shape == (1, 1) and state.shape == (2, 1, 128)
    # 8 kHz: a 32 ms chunk is 256 samples
    assert {p.name: p.shape for p in plan_inputs(info, FeedSpec(scalars={"sr": 8000}))}["input"] == (1, 256)


@pytest.mark.parametrize(
    ("name", "dims", "metadata", "expected"),
    [
        ("ch_PP-OCRv4_det_infer.onnx", ["p2o.DynamicDimension.0", 3, "p2o.DynamicDimension.1",
                                         "p2o.DynamicDimension.2"], None, (1, 3, 640, 640)),
        ("classifier.onnx", [None, 3, None, None], None, (1, 3, 224, 224)),
        ("classifier.onnx", ["batch", 3, "h", "w"], {"imgsz": "[320, 480]"}, (1, 3, 320, 480)),
        ("classifier.onnx", [None, 3, None, 640], None, (1, 3, 640, 640)),
        ("gray.onnx", ["N", 1, "H", "W"], None, (1, 1, 224, 224)),
    ],
)  # fmt: skip
def test_image_inputs_get_batch_1_and_a_real_size(
    tmp_path: Path, name: str, dims: list[int | str | None], metadata: dict[str, str] | None, expected: tuple
) -> None:
    path = make_image_model(tmp_path, name, dims, metadata)
    info = inspect_model_file(path)
    (plan,) = plan_inputs(info, FeedSpec())
    assert plan.shape == expected and plan.role == "image_nchw"
    (y,) = _run(path, FeedSpec())
    assert y.shape == (1, 4, expected[2] // 2, expected[3] // 2)


def test_a_recognizer_that_fails_at_the_default_size_runs_at_a_text_line_height(tmp_path: Path) -> None:
    path = make_recognizer_like(tmp_path)
    info = inspect_model_file(path)
    with pytest.raises(Exception, match=r"MatMul|dimension|shape"):
        _run(path, FeedSpec())  # 224 high: 2 x 224 features, not 96
    (first, *_) = image_size_alternatives(info, FeedSpec())
    assert first.shapes["x"] == (1, 3, 48, 224)
    (y,) = _run(path, first)
    assert y.shape == (1, 224, 8)
    # a user's shape is never second-guessed
    assert image_size_alternatives(info, FeedSpec(shapes={"x": (1, 3, 48, 320)})) == ()


# --- the CLI, with the real worker ------------------------------------------------------------------------


def test_bench_runs_vad_and_detector_without_flags_and_says_what_it_fed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    vad = make_vad_like(tmp_path)
    det = make_image_model(tmp_path, "ppocr_det.onnx", ["p2o.DynamicDimension.0", 3, "p2o.DynamicDimension.1",
                                                         "p2o.DynamicDimension.2"])  # fmt: skip
    rec = make_recognizer_like(tmp_path)
    rc = main(["bench", str(vad), str(det), str(rec), *FAST, "--json", "--db", str(tmp_path / "r.sqlite")])
    out = capsys.readouterr()
    assert rc == 0, out
    doc = json.loads(out.out)
    assert [m["status"] for m in doc["models"]] == ["measured"] * 3
    assert doc["models"][0]["inputs"][0] == "input[1, 512] (audio chunk, default)"
    notes = "\n".join(doc["notes"])
    assert "file:vad.onnx: inputs input[1, 512] (audio chunk, default), state[2, 1, 128]" in notes
    assert "sr = 16000 (sample rate)" in notes
    assert "file:ppocr_det.onnx: inputs x[1, 3, 640, 640] (image, NCHW, default)" in notes
    assert "file:text_rec.onnx: inputs x[1, 3, 48, 224] (image, NCHW, tried: the default size failed)" in notes
    # memory: after load, the growth during inference (the arena), the peak, all measured here
    assert "file:vad.onnx: memory measured here:" in notes and "during inference" in notes
    runs = [m for m in doc["measurements"] if m["phase"] == "run"]
    assert len(runs) == 3 and all(m["samples"] >= 1 and m["peak_rss_bytes"] > 0 for m in runs)


def test_shape_flag_sets_unnamed_dims(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    vad = make_vad_like(tmp_path)
    argv = ["bench", str(vad), "--shape", "input=1x1024", "--shape", "state=2x1x128", "--input", "sr=16000"]
    rc = main([*argv, *FAST, "--json", "--db", str(tmp_path / "r.sqlite")])
    out = capsys.readouterr()
    assert rc == 0, out.err
    assert "input[1, 1024] (audio chunk, --shape)" in "\n".join(json.loads(out.out)["notes"])


def test_shape_too_small_for_the_model_fails_naming_every_input_and_its_flag(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    vad = make_vad_like(tmp_path)
    rc = main(["bench", str(vad), "--shape", "input=1x16", *FAST, "--json", "--db", str(tmp_path / "r.sqlite")])
    assert rc == 2
    (model,) = json.loads(capsys.readouterr().out)["models"]
    msg = model["message"]
    assert model["status"] == "failed" and "\n" not in msg
    for needle in ("input[1, 16] (--shape input=1x16)", "state[2, 1, 128] (--shape state=2x1x128)",
                   "sr[] (--input sr=VALUE)"):  # fmt: skip
        assert needle in msg, msg


def _bad(kind: str, tmp: Path) -> list[str]:
    vad = str(make_vad_like(tmp))
    det = str(make_image_model(tmp, "det.onnx", ["p2o.DynamicDimension.0", 3, "p2o.DynamicDimension.1", None]))
    return {
        "rank": [det, "--shape", "x=3x640x640"],
        "fixed": [det, "--shape", "x=1x4x640x640"],
        "unknown": [det, "--shape", "image=1x3x640x640"],
        "syntax": [det, "--shape", "x=1x3xbig"],
        "zero": [det, "--shape", "x=1x3x0x640"],
        "huge": [det, "--shape", "x=1x3x100000x100000"],
        "dim_on_unnamed": [vad, "--dim", "batch=1"],
        "decoder_tokens": [str(mm.make_tiny_decoder(tmp)), "--shape", "input_ids=1x8"],
    }[kind]


@pytest.mark.parametrize(
    ("kind", "words"),
    [
        ("rank", "input 'x' is [p2o.DynamicDimension.0, 3, p2o.DynamicDimension.1, ?]: 4 dims expected, found 3"),
        ("fixed", "dim 1 is fixed at 3, found 4"),
        ("unknown", "has no input 'image'; inputs: x [p2o.DynamicDimension.0, 3, p2o.DynamicDimension.1, ?]"),
        ("syntax", "expected dims as positive integers"),
        ("zero", "expected dims as positive integers"),
        ("huge", "more than a model's input should need"),
        ("dim_on_unnamed", "dynamic dims are unnamed: set shapes with --shape NAME=AxB; inputs: input [?, ?], "
                           "state [2, ?, 128], sr []"),
        ("decoder_tokens", "prompt/depth plan sizes"),
    ],
)  # fmt: skip
def test_bad_shape_is_one_line_exit_2_db_untouched(
    kind: str, words: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "r.sqlite"
    rc = main(["bench", *_bad(kind, tmp_path), *FAST, "--db", str(db)])
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert rc == 2 and len(lines) == 1 and words in lines[0], err
    assert "Traceback" not in err and not db.exists()


# --- sampling budget ------------------------------------------------------------------------------------------


def _slow_noisy(job: ModelJob) -> ScriptedRunner:
    """A ~1 s model with 4 % noise (deterministic): the default budget must reach the ±2 % target."""
    rng = np.random.default_rng(7)
    return ScriptedRunner(lambda ph, p, c: float(1.0 + 0.04 * rng.standard_normal()), is_decoder=False)


def test_user_files_sample_until_2_percent_for_a_1_s_model(tmp_path: Path) -> None:
    from edgefit import stats

    path = make_image_model(tmp_path, "m.onnx", [1, 3, 32, 32])
    ex = InProcessExecutor(_slow_noisy)
    s = bench_file(path, db_path=tmp_path / "a.sqlite", executor=ex, guard=lambda e, w: None)
    (run,) = [m for m in s.measurements if m.phase == Phase.RUN]
    assert run.stop_reason == "target_precision"
    assert stats.summarize(run.samples_s).ci95_rel <= 0.02 and len(run.samples_s) < 60
    # the cap the user sets wins: 5 s of samples, target not reached, said so
    s = bench_file(path, db_path=tmp_path / "b.sqlite", executor=ex, guard=lambda e, w: None, budget_s=5.0)
    (run,) = [m for m in s.measurements if m.phase == Phase.RUN]
    assert run.stop_reason == "time_budget" and 5 <= len(run.samples_s) <= 6
    assert any(w.code.value == "time_budget_exhausted" for w in run.warnings)


# --- real files from PyPI packages, when installed -------------------------------------------------------------


def _package_models(package: str, pattern: str) -> list[Path]:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return []
    return sorted(p for loc in spec.submodule_search_locations for p in Path(loc).rglob(pattern))


@pytest.mark.parametrize(
    ("package", "pattern"), [("silero_vad", "silero_vad.onnx"), ("rapidocr_onnxruntime", "*.onnx")]
)
def test_real_packaged_models_run_with_defaults(
    package: str, pattern: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    models = _package_models(package, pattern)
    if not models:
        pytest.skip(f"{package} not installed (pip install {package.replace('_', '-')} to run this)")
    rc = main(["bench", *map(str, models), *FAST, "--json", "--db", str(tmp_path / "r.sqlite")])
    out = capsys.readouterr()
    assert rc == 0, out.out[-2000:]
    assert all(m["status"] == "measured" for m in json.loads(out.out)["models"])


def test_sustained_mode_takes_the_same_shapes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    vad = str(make_vad_like(tmp_path))
    db = tmp_path / "r.sqlite"
    argv = ["bench", "--sustained", "0.5", "--model", vad, "--threads", "1", "--json", "--db", str(db)]
    assert main([*argv, "--shape", "input=2x1024", "--shape", "state=2x2x128"]) == 0
    (m,) = [m for m in json.loads(capsys.readouterr().out)["measurements"] if m["phase"] == "sustained"]
    assert m["samples"] >= 1
    bad = tmp_path / "bad.sqlite"
    assert main([*argv[:-1], str(bad), "--shape", "state=2x128"]) == 2
    err = capsys.readouterr().err
    assert "3 dims expected, found 2" in err and len(err.strip().splitlines()) == 1 and not bad.exists()
    assert main(["bench", "--sustained", "1", "--model", "ladder-7m", "--dim", "n=1", "--db", str(bad)]) == 2
    assert "apply to model files" in capsys.readouterr().err


def test_nhwc_images_and_token_inputs_get_their_defaults(tmp_path: Path) -> None:
    x = _unnamed(TensorProto.FLOAT, "images", [None, None, None, 3])
    ids = _unnamed(TensorProto.INT64, "input_ids", [None, None])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    n = helper.make_tensor_value_info("n", TensorProto.INT64, None)
    w = numpy_helper.from_array(np.ones((2, 3, 3, 3), dtype=np.float32), "w")
    nodes = [
        helper.make_node("Transpose", ["images"], ["t"], perm=[0, 3, 1, 2]),
        helper.make_node("Conv", ["t", "w"], ["y"]),
        helper.make_node("Shape", ["input_ids"], ["n"]),
    ]
    path = _save(helper.make_graph(nodes, "nhwc", [x, ids], [y, n], [w]), tmp_path / "nhwc.onnx")
    plans = {p.name: p for p in plan_inputs(inspect_model_file(path), FeedSpec())}
    assert plans["images"].shape == (1, 224, 224, 3) and plans["images"].role == "image_nhwc"
    assert plans["input_ids"].shape == (1, 16) and plans["input_ids"].role == "ids"
    y_out, n_out = _run(path, FeedSpec())
    assert y_out.shape == (1, 2, 222, 222) and list(n_out) == [1, 16]
