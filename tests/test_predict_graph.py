"""predict --model FILE.onnx: any graph, its nodes timed here one by one (edgefit.graphs) and priced on a device
(edgefit.predict.graph). Real small graphs built with onnx.helper; timings are compared as ratios only."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from test_report_fakes import seed_synthetic_db

from edgefit.cli import main
from edgefit.graphs.profile import GraphProfile, NodeCost
from edgefit.graphs.worker import arena_bytes, inline_taken_branches, node_macs
from edgefit.pipeline import calibration_from_table
from edgefit.predict import synthetic
from edgefit.predict.graph import predict_graph, split_node
from edgefit.predict.prediction import Basis

RNG = np.random.default_rng(0)


# --- small real graphs --------------------------------------------------------------------------------------


def _w(inits: list[TensorProto], name: str, *shape: int) -> str:
    arr = (RNG.standard_normal(shape) * (1.0 / np.sqrt(max(int(np.prod(shape[1:])), 1)))).astype(np.float32)
    inits.append(numpy_helper.from_array(arr, name))
    return name


def _save(path: Path, nodes: list[Any], inputs: list[Any], outputs: list[Any], inits: list[TensorProto]) -> Path:
    graph = helper.make_graph(nodes, path.stem, inputs, outputs, initializer=inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9), str(path))
    return path


def small_cnn(path: Path) -> Path:
    """Conv/Relu/MaxPool/Gemm on a 3 x 96 x 96 image (dynamic batch and size, as exporters write)."""
    i: list[TensorProto] = []
    nodes = [
        helper.make_node(
            "Conv", ["x", _w(i, "w1", 16, 3, 3, 3), _w(i, "b1", 16)], ["c1"], pads=[1] * 4, strides=[2, 2]
        ),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("Conv", ["r1", _w(i, "w2", 32, 16, 3, 3)], ["c2"], pads=[1] * 4),
        helper.make_node("Relu", ["c2"], ["r2"]),
        helper.make_node("MaxPool", ["r2"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("GlobalAveragePool", ["p"], ["g"]),
        helper.make_node("Flatten", ["g"], ["f"]),
        helper.make_node("Gemm", ["f", _w(i, "w3", 10, 32), _w(i, "b3", 10)], ["y"], transB=1),
    ]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, "H", "W"])
    return _save(path, nodes, [x], [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], i)


def depthwise_block(path: Path) -> Path:
    """MobileNet's depthwise-separable block: depthwise 3x3 (group = channels), pointwise 1x1, residual add."""
    i: list[TensorProto] = []
    nodes = [
        helper.make_node("Conv", ["x", _w(i, "dw", 32, 1, 3, 3)], ["d"], pads=[1] * 4, group=32),
        helper.make_node("Clip", ["d", "lo", "hi"], ["dc"]),
        helper.make_node("Conv", ["dc", _w(i, "pw", 32, 32, 1, 1)], ["p"]),
        helper.make_node("Add", ["p", "x"], ["y"]),
    ]
    i += [numpy_helper.from_array(np.array(v, dtype=np.float32), n) for n, v in (("lo", 0.0), ("hi", 6.0))]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 32, 56, 56])
    return _save(path, nodes, [x], [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 32, 56, 56])], i)


def mlp(path: Path) -> Path:
    """Three MatMul + Add + Relu layers on 8 token rows."""
    i: list[TensorProto] = []
    nodes, x = [], "x"
    for k in range(3):
        nodes += [
            helper.make_node("MatMul", [x, _w(i, f"w{k}", 256, 256)], [f"m{k}"]),
            helper.make_node("Add", [f"m{k}", _w(i, f"b{k}", 256)], [f"a{k}"]),
            helper.make_node("Relu", [f"a{k}"], [f"h{k}"]),
        ]
        x = f"h{k}"
    inp = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 8, 256])
    return _save(path, nodes, [inp], [helper.make_tensor_value_info(x, TensorProto.FLOAT, None)], i)


def unusual_ops(path: Path) -> Path:
    """Ops the kernel table has no class for: Einsum, TopK, CumSum, an LSTM."""
    i: list[TensorProto] = []
    nodes = [
        helper.make_node("Einsum", ["x", _w(i, "e", 64, 64)], ["ex"], equation="bij,jk->bik"),
        helper.make_node("CumSum", ["ex", "axis"], ["cs"]),
        helper.make_node("LSTM", ["cs", _w(i, "W", 1, 256, 64), _w(i, "R", 1, 256, 64)], ["", "h"], hidden_size=64),
        helper.make_node("Squeeze", ["h", "ax0"], ["hs"]),
        helper.make_node("TopK", ["hs", "k"], ["y", "idx"], axis=-1),
    ]
    i += [
        numpy_helper.from_array(np.array(1, dtype=np.int64), "axis"),
        numpy_helper.from_array(np.array([0], dtype=np.int64), "ax0"),
        numpy_helper.from_array(np.array([5], dtype=np.int64), "k"),
    ]
    inp = helper.make_tensor_value_info("x", TensorProto.FLOAT, [16, 1, 64])
    outs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)]
    return _save(path, nodes, [inp], outs, i)


def _whole_graph_min_s(path: Path, feeds: dict[str, np.ndarray], seconds: float = 1.5) -> float:
    """The file run whole, as `edgefit bench` runs it, fastest of its runs (the node times are minima too)."""
    import onnxruntime as ort

    from edgefit.bench.runner import session_options

    sess = ort.InferenceSession(str(path), session_options(2), providers=["CPUExecutionProvider"])
    for _ in range(5):
        sess.run(None, feeds)
    best, t0 = float("inf"), time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        a = time.perf_counter()
        sess.run(None, feeds)
        best = min(best, time.perf_counter() - a)
    return best


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "graph.sqlite"
    seed_synthetic_db(path, monkeypatch, ladder=False)
    return path


# --- the sum of single-node times against the whole graph run here ------------------------------------------


@pytest.mark.parametrize(
    ("builder", "shapes"),
    [(small_cnn, {}), (depthwise_block, {}), (mlp, {}), (unusual_ops, {})],
    ids=["cnn", "depthwise", "mlp", "unusual-ops"],
)
def test_predicted_host_latency_is_near_the_whole_graph_run(
    tmp_path: Path, builder: Any, shapes: dict[str, tuple[int, ...]]
) -> None:
    from edgefit.bench.feeds import FeedSpec, synthesize
    from edgefit.bench.modelfile import inspect_model_file
    from edgefit.graphs.measure import profile_graph

    path = builder(tmp_path / f"{builder.__name__}.onnx")
    prof = profile_graph(path, shapes=shapes, budget_s=1.0)
    assert prof.nodes and prof.rounds >= 5
    assert all(n.host_s >= 0 for n in prof.nodes)
    feeds = synthesize(inspect_model_file(path), FeedSpec(shapes=shapes))
    measured = _whole_graph_min_s(path, feeds)
    # generous: a shared 2-core machine; the back-test on real models is in the README
    assert 0.33 < prof.host_s / measured < 3.0, (prof.host_s, measured, [n.to_dict() for n in prof.nodes])


def test_profile_prices_what_onnxruntime_runs_not_the_file(tmp_path: Path) -> None:
    from edgefit.graphs.measure import profile_graph

    prof = profile_graph(small_cnn(tmp_path / "cnn.onnx"), budget_s=0.3)
    ops = {n.op for n in prof.nodes}
    # Conv + Relu are fused (FusedConv, or an NCHWc Conv with its activation) and weights are reordered
    assert "Relu" not in ops
    assert prof.node_count < prof.file_node_count
    conv = max((n for n in prof.nodes if n.op.endswith("Conv")), key=lambda n: n.macs)
    assert conv.macs == 32 * 112 * 112 * 16 * 3 * 3  # 3x3 conv 16 -> 32 channels on the 112 x 112 map
    assert prof.inputs == ("x[1, 3, 224, 224] (image, NCHW, default)",)
    assert prof.arena_bytes >= 32 * 112 * 112 * 4  # the largest activation is live at some point


def test_if_nodes_are_replaced_by_the_branch_taken(tmp_path: Path) -> None:
    """silero-vad picks its 16 kHz or 8 kHz branch with an If on the sample rate: only that branch runs."""
    from edgefit.graphs.measure import profile_graph

    i: list[TensorProto] = []

    def branch(name: str, width: int) -> Any:
        w = numpy_helper.from_array(RNG.standard_normal((64, width)).astype(np.float32), f"{name}_w")
        node = helper.make_node("MatMul", ["x", f"{name}_w"], [f"{name}_y"])
        return helper.make_graph(
            [node], name, [], [helper.make_tensor_value_info(f"{name}_y", TensorProto.FLOAT, None)], initializer=[w]
        )

    i.append(numpy_helper.from_array(np.array(16000, dtype=np.int64), "k16"))
    nodes = [
        helper.make_node("Equal", ["sr", "k16"], ["is16"]),
        helper.make_node("If", ["is16"], ["y"], then_branch=branch("then", 512), else_branch=branch("else", 8)),
    ]
    inputs = [
        helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 64]),
        helper.make_tensor_value_info("sr", TensorProto.INT64, []),
    ]
    path = _save(
        tmp_path / "vad_like.onnx", nodes, inputs, [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], i
    )
    prof = profile_graph(path, budget_s=0.3)
    assert any("If nodes replaced" in n for n in prof.notes)
    matmuls = [n for n in prof.nodes if n.op == "MatMul"]
    assert [m.shapes for m in matmuls] == ["1x64,64x512"]  # sr = 16000 by default: the then-branch


# --- pure pieces ---------------------------------------------------------------------------------------------


def test_macs_of_conv_variants_and_matmuls() -> None:
    conv = helper.make_node("Conv", ["x", "w"], ["y"], group=32)
    assert node_macs(conv, [(1, 32, 56, 56), (32, 1, 3, 3)], [(1, 32, 56, 56)]) == 32 * 56 * 56 * 9  # depthwise
    grouped = helper.make_node("Conv", ["x", "w"], ["y"], group=4)
    assert node_macs(grouped, [(1, 64, 8, 8), (64, 16, 3, 3)], [(1, 64, 8, 8)]) == 64 * 64 * 16 * 9
    convt = helper.make_node("ConvTranspose", ["x", "w"], ["y"])
    assert node_macs(convt, [(1, 8, 4, 4), (8, 16, 2, 2)], [(1, 16, 8, 8)]) == 8 * 16 * 16 * 4
    mm = helper.make_node("MatMul", ["a", "b"], ["y"])
    assert node_macs(mm, [(1, 8, 256), (256, 128)], [(1, 8, 128)]) == 8 * 128 * 256
    gemm = helper.make_node("Gemm", ["a", "b"], ["y"], transB=1)
    assert node_macs(gemm, [(4, 32), (10, 32)], [(4, 10)]) == 4 * 10 * 32
    assert node_macs(helper.make_node("Relu", ["x"], ["y"]), [(1, 100)], [(1, 100)]) == 0


def test_arena_is_the_peak_of_live_tensors_in_order() -> None:
    """a -> b -> c, with a also read by the last node: a, b and c are live together at the end."""
    nodes = [
        helper.make_node("Relu", ["x"], ["a"]),
        helper.make_node("Neg", ["a"], ["b"]),
        helper.make_node("Neg", ["b"], ["c"]),
        helper.make_node("Add", ["c", "a"], ["y"]),
    ]
    g = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [100])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [100])],
    )
    model = helper.make_model(g)
    values = {n: np.zeros(100, dtype=np.float32) for n in "xabcy"}
    # at node 2 (c made): a (to node 3), b (freed after node 2), c -> 3 x 400 bytes; at node 3: a, c, y
    assert arena_bytes(model, values) == 3 * 400


def test_inline_leaves_ifs_whose_condition_is_unknown() -> None:
    then = helper.make_graph(
        [helper.make_node("Neg", ["x"], ["t"])],
        "then",
        [],
        [helper.make_tensor_value_info("t", TensorProto.FLOAT, None)],
    )
    other = helper.make_graph(
        [helper.make_node("Abs", ["x"], ["e"])],
        "else",
        [],
        [helper.make_tensor_value_info("e", TensorProto.FLOAT, None)],
    )
    node = helper.make_node("If", ["c"], ["y"], then_branch=then, else_branch=other)
    g = helper.make_graph([node], "g", [helper.make_tensor_value_info("c", TensorProto.BOOL, [])], [])
    model = helper.make_model(g)
    assert inline_taken_branches(model, {}) == 0
    assert inline_taken_branches(model, {"c": np.array(False)}) == 1
    assert [n.op_type for n in model.graph.node] == ["Abs", "Identity"]


def _profile(*nodes: NodeCost, run_s: float = 5e-6, dispatch_s: float = 5e-7) -> GraphProfile:
    return GraphProfile(
        model_id="file:t.onnx",
        path="t.onnx",
        sha256_16="",
        inputs=("x[1, 8]",),
        nodes=nodes,
        node_count=len(nodes),
        file_node_count=len(nodes),
        run_s=run_s,
        weights_bytes=10 * 2**20,
        arena_bytes=2 * 2**20,
        rounds=10,
        threads=2,
        noise_rel=0.01,
        dispatch_s=dispatch_s,
    )


# the synthetic table's triad: 12 MB streamed at that rate (plus 5 %) is a memory-bound node
_STREAM = calibration_from_table(synthetic.kernel_table()).host.triad_bytes_per_s
MEMORY_NODE = NodeCost("Add", 3, "1x1000000", 0, 12_000_000, 0, 1_000_000, 5e-7 + 12e6 / _STREAM * 1.05)
COMPUTE_NODE = NodeCost("Conv", 2, "1x64x56x56", 150_000, 1_600_000, 115_000_000, 200_704, 2e-3)
INT_NODE = NodeCost("MatMulNBits", 1, "1x2048", 2_000_000, 16_384, 4_000_000, 2048, 1e-3, integer=True)


def test_host_prediction_is_the_sum_of_the_nodes_timed_here() -> None:
    cal = calibration_from_table(synthetic.kernel_table())
    prof = _profile(MEMORY_NODE, COMPUTE_NODE)
    p = predict_graph(prof, synthetic.device("host"), cal)
    assert p.latency_s.value == pytest.approx(prof.run_s + 3 * MEMORY_NODE.host_s + 2 * COMPUTE_NODE.host_s)
    assert p.latency_s.basis == Basis.EXTRAPOLATED
    assert p.latency_s.low < p.latency_s.value < p.latency_s.high
    assert p.throughput_per_s.value == pytest.approx(1 / p.latency_s.value)
    assert p.memory.total.value == prof.weights_bytes + prof.arena_bytes + cal.host.table.runtime_rss_bytes
    assert p.energy_per_inference_j.value == pytest.approx(p.power_w.value * p.latency_s.value)
    assert p.nodes[0].op == "Conv"  # slowest first (2 x 2 ms)


@pytest.mark.parametrize("ratio", [1.4, 0.9, 5.0])
def test_the_whole_file_is_the_host_figure_and_its_ratio_scales_the_devices(ratio: float) -> None:
    """The file timed whole in the nodes' rounds is the host's latency (measured); a device's node sum is scaled by
    whole / sum, with an interval at least half that ratio's size; an implausible ratio is said and not used."""
    import dataclasses

    cal = calibration_from_table(synthetic.kernel_table())
    base = _profile(MEMORY_NODE, COMPUTE_NODE)
    prof = dataclasses.replace(base, whole_s=(0.0, 0.0, base.host_s * ratio))
    host = predict_graph(prof, synthetic.device("host"), cal)
    assert host.latency_s.basis == Basis.MEASURED
    assert host.latency_s.value == pytest.approx(base.host_s * ratio)
    twin = synthetic.device("twin", measured_bandwidth_bytes_per_s=_STREAM / 2)
    plain, scaled = predict_graph(base, twin, cal), predict_graph(prof, twin, cal)
    assert plain.latency_s.basis == scaled.latency_s.basis == Basis.SPEC
    if ratio <= 3.0:
        assert scaled.latency_s.value == pytest.approx(plain.latency_s.value * ratio)
        assert scaled.calibration["composition_ratio"] == pytest.approx(ratio)
        rel_high = scaled.latency_s.high / scaled.latency_s.value - 1
        assert rel_high >= 0.5 * abs(math.log(ratio)) - 1e-9
    else:
        assert scaled.latency_s.value == pytest.approx(plain.latency_s.value)
        assert any("not used" in n for n in scaled.notes)


def test_nodes_translate_by_what_bounds_them() -> None:
    """Half the bandwidth doubles a memory-bound node and leaves a compute-bound one; half the GEMM rate does the
    opposite; integer nodes follow the int8 figure."""
    cal = calibration_from_table(synthetic.kernel_table())
    stream = cal.host.triad_bytes_per_s
    assert split_node(MEMORY_NODE, 5e-7, stream)[2] < split_node(MEMORY_NODE, 5e-7, stream)[1]
    host = synthetic.device(
        "twin", measured_bandwidth_bytes_per_s=stream, gemm_flops_per_s=2 * cal.host.fp32_gemm_macs_per_s
    )
    slow_mem = synthetic.device(
        "slowmem", measured_bandwidth_bytes_per_s=stream / 2, gemm_flops_per_s=2 * cal.host.fp32_gemm_macs_per_s
    )
    slow_cpu = synthetic.device(
        "slowcpu", measured_bandwidth_bytes_per_s=stream, gemm_flops_per_s=cal.host.fp32_gemm_macs_per_s
    )

    def node_s(device: Any, node: NodeCost) -> float:
        p = predict_graph(_profile(node), device, cal)
        assert p.latency_s.basis == Basis.SPEC
        (n,) = p.nodes
        return n.target_s

    for node, bound in ((MEMORY_NODE, "memory"), (COMPUTE_NODE, "compute")):
        base = node_s(host, node)
        assert base == pytest.approx(node.host_s, rel=0.05)  # the same figures as the host: the same time
        if bound == "memory":
            assert node_s(slow_mem, node) == pytest.approx(2 * base, rel=0.1)
            assert node_s(slow_cpu, node) < 1.3 * base
        else:
            assert node_s(slow_cpu, node) == pytest.approx(2 * base, rel=0.1)
            assert node_s(slow_mem, node) < 1.3 * base
    slow_int8 = synthetic.device(
        "noint8", measured_bandwidth_bytes_per_s=stream, gemm_flops_per_s=2 * cal.host.fp32_gemm_macs_per_s
    )
    # the synthetic device has no int8 figure: its int8 rate is its fp32 rate x the host's int8/fp32 ratio
    assert node_s(slow_int8, INT_NODE) == pytest.approx(node_s(host, INT_NODE), rel=0.05)


def test_a_device_too_small_does_not_fit() -> None:
    cal = calibration_from_table(synthetic.kernel_table())
    tiny = synthetic.device("tiny", ram_bytes=64 * 2**20, usable_ram_bytes=48 * 2**20)
    p = predict_graph(_profile(COMPUTE_NODE), tiny, cal)
    assert not p.memory.fits
    assert any("usable on tiny" in w for w in p.warnings)


# --- the command line ----------------------------------------------------------------------------------------


def test_predict_model_onnx_end_to_end(tmp_path: Path, db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = small_cnn(tmp_path / "cnn.onnx")
    argv = ["predict", "--model", str(path), "--device", "raspberry-pi-5-8gb", "--shape", "x=1x3x64x64"]
    assert main([*argv, "--json", "--db", str(db)]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["device_id"] == "raspberry-pi-5-8gb"
    assert doc["inputs"] == ["x[1, 3, 64, 64] (image, NCHW, --shape)"]
    lat = doc["latency_s_per_inference"]
    assert lat["basis"] == "spec" and 0 < lat["low"] < lat["value"] < lat["high"]
    assert doc["fits_in_memory"] is True
    assert doc["energy_per_inference_j"]["basis"] == "spec"
    assert doc["nodes"] and all(n["host_basis"] == "measured" for n in doc["nodes"])
    assert any(op.endswith("Conv") for op in doc["measured_on_the_fly"])
    assert main([*argv[:4], "host", "--db", str(db)]) == 0
    out = capsys.readouterr().out
    assert "latency [ms/inference]" in out and "extrapolated" in out and "timed here on the fly" in out


def _bad(argv: list[str], db: Path, capsys: pytest.CaptureFixture[str]) -> str:
    assert main([*argv, "--db", str(db)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    errors = [line for line in lines if "error" in line]  # progress notes may come before it, one line each
    assert len(errors) == 1 and errors == lines[-1:] and "Traceback" not in lines[-1], lines
    return lines[-1]


def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cnn = small_cnn(tmp_path / "cnn.onnx")
    base = ["predict", "--device", "host", "--model"]
    err = _bad([*base, str(cnn), "--shape", "x=1x3x64"], db, capsys)  # wrong rank
    assert "4 dims expected" in err and "x [N, 3, H, W]" in err
    err = _bad([*base, str(cnn), "--shape", "x=1x4x64x64"], db, capsys)  # a fixed dim
    assert "fixed at 3" in err
    err = _bad([*base, str(cnn), "--shape", "nope=1x3"], db, capsys)
    assert "no input 'nope'" in err
    assert "does not apply" in _bad([*base, str(cnn), "--precision", "int8"], db, capsys)
    assert "no such file" in _bad([*base, str(tmp_path / "missing.onnx")], db, capsys)
    # a graph onnxruntime cannot run: MatMul of [1, 8] by a [16, 4] weight
    i: list[TensorProto] = []
    node = helper.make_node("MatMul", ["x", _w(i, "w", 16, 4)], ["y"])
    broken = _save(
        tmp_path / "broken.onnx",
        [node],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        i,
    )
    err = _bad([*base, str(broken)], db, capsys)
    assert "broken.onnx" in err and ("cannot load" in err or "inference failed" in err)
    # runs only with the right image size: a 640 x 640 default fails and the message names the flag that fixes it
    i2: list[TensorProto] = []
    nodes = [
        helper.make_node("Flatten", ["x"], ["f"]),
        helper.make_node("MatMul", ["f", _w(i2, "w", 3 * 32 * 32, 4)], ["y"]),
    ]
    sized = _save(
        tmp_path / "sized.onnx",
        nodes,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, "h", "w"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        i2,
    )
    err = _bad([*base, str(sized)], db, capsys)
    assert "inference failed" in err and "--shape x=" in err
    assert main([*base, str(sized), "--shape", "x=1x3x32x32", "--json", "--db", str(db)]) == 0


def test_memory_counts_what_the_profiling_run_grew_when_more_than_the_graph_shows() -> None:
    """onnxruntime keeps kernel workspaces (im2col) and freed arena blocks that no tensor shows: the measured RSS
    growth of the first runs wins when larger. Loading grows RSS by session structures too: not counted as weights."""
    cal = calibration_from_table(synthetic.kernel_table())
    prof = _profile(COMPUTE_NODE)
    grown = GraphProfile.from_dict({**prof.to_dict(), "run_rss_bytes": 9 * 2**20, "load_rss_bytes": 12 * 2**20})
    p0, p1 = predict_graph(prof, synthetic.device("host"), cal), predict_graph(grown, synthetic.device("host"), cal)
    assert (p0.memory.arena_bytes, p0.memory.weights_bytes) == (2 * 2**20, 10 * 2**20)
    assert (p1.memory.arena_bytes, p1.memory.weights_bytes) == (9 * 2**20, 10 * 2**20)  # load growth: not weights
    assert p1.memory.total.value - p0.memory.total.value == (9 - 2) * 2**20


def test_fit_model_onnx_judges_every_device(tmp_path: Path, db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = depthwise_block(tmp_path / "block.onnx")
    devices = ["--device", "host", "--device", "raspberry-pi-5-8gb"]
    argv = ["fit", "--model", str(path), *devices, "--max-latency-ms", "1000", "--json", "--db", str(db)]
    assert main(argv) == 0
    doc = json.loads(capsys.readouterr().out)
    by = {r["device_id"]: r for r in doc["results"]}
    assert set(by) == {"host", "raspberry-pi-5-8gb"} or len(by) == 2
    assert all(r["verdict"] == "fits" for r in doc["results"]) and doc["ok"] is True
    # an impossible target: too slow everywhere, and --require turns it into exit 1
    argv[argv.index("1000")] = "0.000001"
    assert main([*argv, "--require"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert {r["verdict"] for r in doc["results"]} == {"too_slow"}
    assert all("ms >" in r["reason"] for r in doc["results"])
    assert _bad(["fit", "--model", str(path), "--model", "qwen2.5-0.5b"], db, capsys).endswith(
        "(run `edgefit fit` twice)"
    )
    assert "apply to --model MODEL.onnx" in _bad(["fit", "--model", "qwen2.5-0.5b", "--min-fps", "5"], db, capsys)
