"""Small ONNX fixtures for the bench tests, generated at test time (nothing binary in git).

Each ``make_*`` writes one model into ``folder`` and returns its path. Shapes are tiny: every model runs in
well under a millisecond. Run as a script to write them all into a folder for manual poking:
``python tests/data/onnx_models/make_models.py /tmp/fixtures``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

VOCAB = 50
HIDDEN = 16


def _model(graph: onnx.GraphProto, opset: int) -> onnx.ModelProto:
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="edgefit-tests")
    m.ir_version = 7 if opset <= 15 else 8
    return m


def _w(name: str, *shape: int, seed: int = 0) -> TensorProto:
    rng = np.random.default_rng(seed)
    return numpy_helper.from_array(rng.standard_normal(shape).astype(np.float32) * 0.1, name)


def make_multi_io(folder: Path, opset: int = 17) -> Path:
    """Token ids through an embedding Gather plus a float feature input; two outputs; dynamic batch/seq."""
    ids = helper.make_tensor_value_info("ids", TensorProto.INT64, ["batch", "seq"])
    feats = helper.make_tensor_value_info("feats", TensorProto.FLOAT, ["batch", HIDDEN])
    pooled = helper.make_tensor_value_info("pooled", TensorProto.FLOAT, None)
    scores = helper.make_tensor_value_info("scores", TensorProto.FLOAT, None)
    nodes = [
        helper.make_node("Gather", ["emb", "ids"], ["e"]),
        helper.make_node("ReduceMean", ["e"], ["m"], axes=[1], keepdims=0)
        if opset < 18
        else helper.make_node("ReduceMean", ["e", "axes1"], ["m"], keepdims=0),
        helper.make_node("Add", ["m", "feats"], ["pooled"]),
        helper.make_node("MatMul", ["pooled", "proj"], ["scores"]),
    ]
    inits = [_w("emb", VOCAB, HIDDEN), _w("proj", HIDDEN, 4, seed=1)]
    if opset >= 18:
        inits.append(numpy_helper.from_array(np.array([1], dtype=np.int64), "axes1"))
    g = helper.make_graph(nodes, "multi_io", [ids, feats], [pooled, scores], inits)
    path = folder / f"multi_io_op{opset}.onnx"
    onnx.save(_model(g, opset), str(path))
    return path


def make_control_flow(folder: Path, opset: int = 11) -> Path:
    """An If on a bool scalar input and a Loop whose trip count is an int64 scalar input (``--input M=...``)."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", HIDDEN])
    cond = helper.make_tensor_value_info("use_double", TensorProto.BOOL, [])
    trips = helper.make_tensor_value_info("M", TensorProto.INT64, [])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)

    then_out = helper.make_tensor_value_info("t_out", TensorProto.FLOAT, None)
    else_out = helper.make_tensor_value_info("e_out", TensorProto.FLOAT, None)
    then_g = helper.make_graph([helper.make_node("Add", ["x", "x"], ["t_out"])], "then", [], [then_out])
    else_g = helper.make_graph([helper.make_node("Identity", ["x"], ["e_out"])], "else", [], [else_out])

    # Loop body: (iter, cond, acc) -> (cond, acc @ w)
    b_iter = helper.make_tensor_value_info("i", TensorProto.INT64, [])
    b_cond = helper.make_tensor_value_info("c", TensorProto.BOOL, [])
    b_acc = helper.make_tensor_value_info("acc", TensorProto.FLOAT, None)
    b_cond_out = helper.make_tensor_value_info("c_out", TensorProto.BOOL, [])
    b_acc_out = helper.make_tensor_value_info("acc_out", TensorProto.FLOAT, None)
    body = helper.make_graph(
        [
            helper.make_node("Identity", ["c"], ["c_out"]),
            helper.make_node("MatMul", ["acc", "w"], ["mm"]),
            helper.make_node("Tanh", ["mm"], ["acc_out"]),
        ],
        "body",
        [b_iter, b_cond, b_acc],
        [b_cond_out, b_acc_out],
    )
    nodes = [
        helper.make_node("If", ["use_double"], ["branched"], then_branch=then_g, else_branch=else_g),
        helper.make_node("Constant", [], ["true"], value=helper.make_tensor("tv", TensorProto.BOOL, [], [True])),
        helper.make_node("Loop", ["M", "true", "branched"], ["y"], body=body),
    ]
    g = helper.make_graph(nodes, "control_flow", [x, cond, trips], [y], [_w("w", HIDDEN, HIDDEN)])
    path = folder / f"control_flow_op{opset}.onnx"
    onnx.save(_model(g, opset), str(path))
    return path


def make_recurrent(folder: Path, opset: int = 17) -> Path:
    """A GRU with an initial-state input ``h0`` and a state output, like streaming speech models."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["time", "batch", 8])
    h0 = helper.make_tensor_value_info("h0", TensorProto.FLOAT, [1, "batch", HIDDEN])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    hn = helper.make_tensor_value_info("hn", TensorProto.FLOAT, None)
    node = helper.make_node("GRU", ["x", "W", "R", "", "", "h0"], ["y", "hn"], hidden_size=HIDDEN)
    g = helper.make_graph(
        [node], "recurrent", [x, h0], [y, hn], [_w("W", 1, 3 * HIDDEN, 8), _w("R", 1, 3 * HIDDEN, HIDDEN, seed=2)]
    )
    path = folder / f"recurrent_op{opset}.onnx"
    onnx.save(_model(g, opset), str(path))
    return path


def make_tiny_decoder(folder: Path, opset: int = 17, layers: int = 2, heads: int = 2, head_dim: int = 8) -> Path:
    """A standard-op decoder with a KV cache: input_ids, attention_mask, past_key_values.N.key/value in,
    logits and present.N.key/value out (present = Concat(past, new)). Attention is plain softmax(QK^T)V over
    the whole cache (no causal mask: timing fixture, not a language model)."""
    hidden = heads * head_dim
    inputs = [
        helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch_size", "sequence_length"]),
        helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch_size", "total_sequence_length"]),
    ]
    outputs = [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch_size", "sequence_length", VOCAB])]
    inits = [_w("embed", VOCAB, hidden), _w("lm_head", hidden, VOCAB, seed=9)]
    inits.append(numpy_helper.from_array(np.array([0, 0, heads, head_dim], dtype=np.int64), "split_heads"))
    inits.append(numpy_helper.from_array(np.array([0, 0, hidden], dtype=np.int64), "merge_heads"))
    inits.append(numpy_helper.from_array(np.array(1.0 / np.sqrt(head_dim), dtype=np.float32), "scale"))
    nodes = [helper.make_node("Gather", ["embed", "input_ids"], ["h0"])]
    h = "h0"
    for i in range(layers):
        for kv in ("key", "value"):
            inputs.append(
                helper.make_tensor_value_info(
                    f"past_key_values.{i}.{kv}",
                    TensorProto.FLOAT,
                    ["batch_size", heads, "past_sequence_length", head_dim],
                )
            )
            outputs.append(
                helper.make_tensor_value_info(
                    f"present.{i}.{kv}", TensorProto.FLOAT, ["batch_size", heads, "total_sequence_length", head_dim]
                )
            )
        for proj, seed in (("q", 10), ("k", 11), ("v", 12), ("o", 13)):
            inits.append(_w(f"l{i}.{proj}", hidden, hidden, seed=seed + 10 * i))
        p = f"l{i}."
        nodes += [
            helper.make_node("MatMul", [h, p + "q"], [p + "qm"]),
            helper.make_node("MatMul", [h, p + "k"], [p + "km"]),
            helper.make_node("MatMul", [h, p + "v"], [p + "vm"]),
        ]
        for t in ("q", "k", "v"):
            nodes += [
                helper.make_node("Reshape", [p + t + "m", "split_heads"], [p + t + "r"]),
                helper.make_node("Transpose", [p + t + "r"], [p + t + "h"], perm=[0, 2, 1, 3]),
            ]
        nodes += [
            helper.make_node("Concat", [f"past_key_values.{i}.key", p + "kh"], [f"present.{i}.key"], axis=2),
            helper.make_node("Concat", [f"past_key_values.{i}.value", p + "vh"], [f"present.{i}.value"], axis=2),
            helper.make_node("Transpose", [f"present.{i}.key"], [p + "kt"], perm=[0, 1, 3, 2]),
            helper.make_node("MatMul", [p + "qh", p + "kt"], [p + "s"]),
            helper.make_node("Mul", [p + "s", "scale"], [p + "ss"]),
            helper.make_node("Softmax", [p + "ss"], [p + "a"], axis=-1),
            helper.make_node("MatMul", [p + "a", f"present.{i}.value"], [p + "ctx"]),
            helper.make_node("Transpose", [p + "ctx"], [p + "ct"], perm=[0, 2, 1, 3]),
            helper.make_node("Reshape", [p + "ct", "merge_heads"], [p + "cm"]),
            helper.make_node("MatMul", [p + "cm", p + "o"], [p + "out"]),
            helper.make_node("Add", [h, p + "out"], [p + "res"]),
        ]
        h = p + "res"
    # The mask is an input every exporter has; use it (shape only) so onnxruntime does not drop it.
    nodes += [
        helper.make_node("MatMul", [h, "lm_head"], ["lm"]),
        helper.make_node("ReduceMax", ["attention_mask"], ["mask_max"], keepdims=0),  # all axes, any opset
        helper.make_node("Cast", ["mask_max"], ["mask_f"], to=TensorProto.FLOAT),
        helper.make_node("Mul", ["lm", "mask_f"], ["logits"]),
    ]
    g = helper.make_graph(nodes, "tiny_decoder", inputs, outputs, inits)
    path = folder / f"tiny_decoder_op{opset}.onnx"
    onnx.save(_model(g, opset), str(path))
    return path


def make_external(folder: Path, name: str = "ext") -> Path:
    """A MatMul whose weight lives in ``<name>.onnx.data`` next to the model (external data)."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 64])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    g = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "ext", [x], [y], [_w("w", 64, 32)])
    m = _model(g, 17)
    path = folder / f"{name}.onnx"
    onnx.save_model(m, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                    location=f"{name}.onnx.data", size_threshold=0)  # fmt: skip
    return path


def set_external_location(path: Path, location: str, length: int | None = None) -> None:
    """Rewrite every external tensor's location (and optionally length) in place: broken-file fixtures."""
    m = onnx.load(str(path), load_external_data=False)
    for t in m.graph.initializer:
        if t.data_location == TensorProto.EXTERNAL:
            for e in t.external_data:
                if e.key == "location":
                    e.value = location
                if e.key == "length" and length is not None:
                    e.value = str(length)
    onnx.save(m, str(path))


def make_huge_sparse(folder: Path, gib: int = 64) -> Path:
    """A model whose external weight is ``gib`` GiB in a *sparse* file (no disk used): valid on every check
    but far larger than any test machine's RAM, for the memory guard."""
    elems = gib * (1 << 30) // 4
    rows = elems // 1024
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1024])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    w = TensorProto()
    w.name = "w"
    w.data_type = TensorProto.FLOAT
    w.dims.extend([1024, rows])
    w.data_location = TensorProto.EXTERNAL
    data = folder / "huge.onnx.data"
    with data.open("wb") as f:
        f.truncate(rows * 1024 * 4)
    for k, v in (("location", data.name), ("offset", "0"), ("length", str(rows * 1024 * 4))):
        e = w.external_data.add()
        e.key, e.value = k, v
    g = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "huge", [x], [y], [w])
    path = folder / "huge.onnx"
    onnx.save(_model(g, 17), str(path))
    return path


def make_needs_dim(folder: Path) -> Path:
    """A Reshape to [3, 5] of an input with symbolic length ``n``: runs only with ``--dim n=15``."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n"])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    shape = numpy_helper.from_array(np.array([3, 5], dtype=np.int64), "shape")
    g = helper.make_graph([helper.make_node("Reshape", ["x", "shape"], ["y"])], "needs_dim", [x], [y], [shape])
    path = folder / "needs_dim.onnx"
    onnx.save(_model(g, 17), str(path))
    return path


def make_all(folder: Path) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    return {
        "multi_io_op11": make_multi_io(folder, 11),
        "multi_io_op18": make_multi_io(folder, 18),
        "control_flow_op11": make_control_flow(folder, 11),
        "control_flow_op17": make_control_flow(folder, 17),
        "recurrent": make_recurrent(folder),
        "tiny_decoder": make_tiny_decoder(folder),
        "external": make_external(folder),
        "needs_dim": make_needs_dim(folder),
    }


if __name__ == "__main__":
    for name, p in make_all(Path(sys.argv[1] if len(sys.argv) > 1 else ".")).items():
        print(name, p)
