"""Kernel chains: the small ONNX graphs the kernel table times, one per (kernel class, shape).

Every chain feeds each node's output to the next node (``y = f_n(... f_1(x))``): a separate graph input per node
would add ~15 us of binding per node (ONNXRUNTIME-NOTES.md), which the real decoder does not pay. Weights are
distinct per node, so a chain reads each weight once per run, as a decoder does per token.

    linear   MatMul (fp32) or MatMulNBits (int8/int4, block 32, accuracy level 4, as edgefit's builder emits them)
             at M rows; nodes alternate (K, N) and (N, K) so the chain closes on its own input width
    gqa      GroupQueryAttention with its own past key/value inputs and present outputs per node (as each decoder
             layer has), query chained; S new tokens on a cache of L
    rotary   com.microsoft RotaryEmbedding on [1, S, heads * head_dim]
    norm     SkipSimplifiedLayerNormalization on [1, S, hidden] (the skip input shared)
    eltwise  QuickGelu (what onnxruntime fuses x * Sigmoid(x) into) on [1, S, width]
    mul      Mul of the chain by a shared input of the same shape ([1, S, width]: SwiGLU's gate * up)
    tiny     Neg on one float: what a node costs when it does no work (dispatch)
    empty    one Identity on one float: the cost of a session run itself

``KernelSpec`` is a plain JSON-able description; ``build_kernel`` turns it into an in-memory ModelProto plus the
feeds a run needs. Values are kept O(1) through the chain (weights scaled by 1/sqrt(K)) so no node meets
infinities or denormals.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from onnx import ModelProto, TensorProto, helper, numpy_helper

from edgefit.kernels.spec import ACCURACY_LEVEL, BLOCK_SIZE, PRECISION_BITS, KernelSpec

MS = "com.microsoft"
OPSET = 21


def _vi(name: str, dtype: int, shape: list[int]) -> Any:
    return helper.make_tensor_value_info(name, dtype, shape)


def _model(nodes: list[Any], inputs: list[Any], outputs: list[Any], inits: list[TensorProto]) -> ModelProto:
    graph = helper.make_graph(nodes, "edgefit_kernel", inputs, outputs, initializer=inits)
    return helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", OPSET), helper.make_opsetid(MS, 1)], ir_version=10
    )


def build_kernel(spec: KernelSpec, seed: int = 0) -> tuple[ModelProto, dict[str, np.ndarray]]:
    """The chain's ModelProto (weights inline) and the feeds of one run."""
    rng = np.random.default_rng(seed)
    builder = {
        "linear": _linear,
        "gqa": _gqa,
        "rotary": _rotary,
        "norm": _norm,
        "eltwise": _eltwise,
        "mul": _mul,
        "tiny": _tiny,
        "empty": _empty,
    }[spec.kind]
    return builder(spec, rng)


def _linear(s: KernelSpec, rng: np.random.Generator) -> tuple[ModelProto, dict[str, np.ndarray]]:
    nodes, inits = [], []
    x = "x"
    bits = PRECISION_BITS[s.precision]
    for i in range(s.nodes):
        k, n = (s.k, s.n) if i % 2 == 0 else (s.n, s.k)
        out = f"y{i}"
        if bits is None:
            a = math.sqrt(3.0 / k)
            w = rng.random((k, n), dtype=np.float32) * np.float32(2 * a) - np.float32(a)
            inits.append(numpy_helper.from_array(w, f"w{i}"))
            nodes.append(helper.make_node("MatMul", [x, f"w{i}"], [out], name=f"n{i}"))
        else:
            blocks = math.ceil(k / BLOCK_SIZE)
            packed = rng.integers(0, 256, size=(n, blocks, BLOCK_SIZE * bits // 8), dtype=np.uint8)
            levels = 2**bits
            # symmetric levels around 2^(bits-1): variance ~ levels^2/12; scale so each output stays O(1)
            scale = 1.0 / math.sqrt(k * levels * levels / 12.0)
            scales = np.full((n, blocks), scale, dtype=np.float32)
            inits += [numpy_helper.from_array(packed, f"b{i}"), numpy_helper.from_array(scales, f"s{i}")]
            nodes.append(
                helper.make_node(
                    "MatMulNBits",
                    [x, f"b{i}", f"s{i}"],
                    [out],
                    name=f"n{i}",
                    domain=MS,
                    K=k,
                    N=n,
                    bits=bits,
                    block_size=BLOCK_SIZE,
                    accuracy_level=ACCURACY_LEVEL,
                )
            )
        x = out
    width_out = s.n if s.nodes % 2 else s.k
    model = _model(
        nodes, [_vi("x", TensorProto.FLOAT, [s.m, s.k])], [_vi(x, TensorProto.FLOAT, [s.m, width_out])], inits
    )
    feeds = {"x": (rng.random((s.m, s.k), dtype=np.float32) - np.float32(0.5))}
    return model, feeds


def _gqa(s: KernelSpec, rng: np.random.Generator) -> tuple[ModelProto, dict[str, np.ndarray]]:
    q_width, kv_width = s.heads * s.head_dim, s.kv_heads * s.head_dim
    inputs = [
        _vi("q", TensorProto.FLOAT, [1, s.m, q_width]),
        _vi("k", TensorProto.FLOAT, [1, s.m, kv_width]),
        _vi("v", TensorProto.FLOAT, [1, s.m, kv_width]),
        _vi("seqlens_k", TensorProto.INT32, [1]),
        _vi("total_len", TensorProto.INT32, []),
    ]
    outputs, nodes = [], []
    feeds: dict[str, Any] = {
        "q": rng.standard_normal((1, s.m, q_width), dtype=np.float32),
        "k": rng.standard_normal((1, s.m, kv_width), dtype=np.float32),
        "v": rng.standard_normal((1, s.m, kv_width), dtype=np.float32),
        "seqlens_k": np.array([s.past + s.m - 1], dtype=np.int32),
        "total_len": np.array(s.past + s.m, dtype=np.int32),
    }
    past = rng.standard_normal((1, s.kv_heads, s.past, s.head_dim), dtype=np.float32)
    x = "q"
    for i in range(s.nodes):
        pk, pv = f"past.{i}.key", f"past.{i}.value"
        inputs += [_vi(pk, TensorProto.FLOAT, [1, s.kv_heads, s.past, s.head_dim])]
        inputs += [_vi(pv, TensorProto.FLOAT, [1, s.kv_heads, s.past, s.head_dim])]
        feeds[pk] = past
        feeds[pv] = past
        out = f"attn{i}"
        nodes.append(
            helper.make_node(
                "GroupQueryAttention",
                [x, "k", "v", pk, pv, "seqlens_k", "total_len"],
                [out, f"present.{i}.key", f"present.{i}.value"],
                name=f"n{i}",
                domain=MS,
                num_heads=s.heads,
                kv_num_heads=s.kv_heads,
                scale=float(1.0 / math.sqrt(s.head_dim)),
            )
        )
        shape = [1, s.kv_heads, s.past + s.m, s.head_dim]
        outputs += [
            _vi(f"present.{i}.key", TensorProto.FLOAT, shape),
            _vi(f"present.{i}.value", TensorProto.FLOAT, shape),
        ]
        x = out
    outputs.insert(0, _vi(x, TensorProto.FLOAT, [1, s.m, q_width]))
    return _model(nodes, inputs, outputs, []), feeds


def _rotary(s: KernelSpec, rng: np.random.Generator) -> tuple[ModelProto, dict[str, np.ndarray]]:
    width = s.heads * s.head_dim
    positions = max(s.m, 16)
    angles = np.outer(np.arange(positions), 1.0 / (10000.0 ** (np.arange(0, s.head_dim, 2) / s.head_dim)))
    inits = [
        numpy_helper.from_array(np.cos(angles).astype(np.float32), "cos"),
        numpy_helper.from_array(np.sin(angles).astype(np.float32), "sin"),
    ]
    nodes, x = [], "x"
    for i in range(s.nodes):
        nodes.append(
            helper.make_node(
                "RotaryEmbedding",
                [x, "pos", "cos", "sin"],
                [f"y{i}"],
                name=f"n{i}",
                domain=MS,
                interleaved=0,
                num_heads=s.heads,
            )
        )
        x = f"y{i}"
    inputs = [_vi("x", TensorProto.FLOAT, [1, s.m, width]), _vi("pos", TensorProto.INT64, [1, s.m])]
    model = _model(nodes, inputs, [_vi(x, TensorProto.FLOAT, [1, s.m, width])], inits)
    feeds: dict[str, np.ndarray] = {
        "x": rng.standard_normal((1, s.m, width), dtype=np.float32),
        "pos": np.arange(s.m, dtype=np.int64).reshape(1, s.m),
    }
    return model, feeds


def _norm(s: KernelSpec, rng: np.random.Generator) -> tuple[ModelProto, dict[str, np.ndarray]]:
    inits, nodes, x = [], [], "x"
    for i in range(s.nodes):
        inits.append(numpy_helper.from_array(np.ones(s.k, dtype=np.float32), f"g{i}"))
        nodes.append(
            helper.make_node(
                "SkipSimplifiedLayerNormalization",
                [x, "skip", f"g{i}"],
                [f"y{i}", "", "", f"r{i}"],
                name=f"n{i}",
                domain=MS,
                epsilon=1e-5,
            )
        )
        x = f"y{i}"
    inputs = [_vi("x", TensorProto.FLOAT, [1, s.m, s.k]), _vi("skip", TensorProto.FLOAT, [1, s.m, s.k])]
    model = _model(nodes, inputs, [_vi(x, TensorProto.FLOAT, [1, s.m, s.k])], inits)
    feeds = {n: rng.standard_normal((1, s.m, s.k), dtype=np.float32) for n in ("x", "skip")}
    return model, feeds


def _eltwise(s: KernelSpec, rng: np.random.Generator) -> tuple[ModelProto, dict[str, np.ndarray]]:
    nodes, x = [], "x"
    for i in range(s.nodes):
        nodes.append(helper.make_node("QuickGelu", [x], [f"y{i}"], name=f"n{i}", domain=MS, alpha=1.0))
        x = f"y{i}"
    model = _model(nodes, [_vi("x", TensorProto.FLOAT, [1, s.m, s.k])], [_vi(x, TensorProto.FLOAT, [1, s.m, s.k])], [])
    return model, {"x": rng.standard_normal((1, s.m, s.k), dtype=np.float32)}


def _mul(s: KernelSpec, rng: np.random.Generator) -> tuple[ModelProto, dict[str, np.ndarray]]:
    nodes, x = [], "x"
    for i in range(s.nodes):
        nodes.append(helper.make_node("Mul", [x, "u"], [f"y{i}"], name=f"n{i}"))
        x = f"y{i}"
    inputs = [_vi("x", TensorProto.FLOAT, [1, s.m, s.k]), _vi("u", TensorProto.FLOAT, [1, s.m, s.k])]
    model = _model(nodes, inputs, [_vi(x, TensorProto.FLOAT, [1, s.m, s.k])], [])
    feeds = {
        "x": rng.standard_normal((1, s.m, s.k), dtype=np.float32),
        "u": np.ones((1, s.m, s.k), dtype=np.float32),
    }
    return model, feeds


def _tiny(s: KernelSpec, rng: np.random.Generator) -> tuple[ModelProto, dict[str, np.ndarray]]:
    nodes, x = [], "x"
    for i in range(s.nodes):
        nodes.append(helper.make_node("Neg", [x], [f"y{i}"], name=f"n{i}"))
        x = f"y{i}"
    model = _model(nodes, [_vi("x", TensorProto.FLOAT, [1])], [_vi(x, TensorProto.FLOAT, [1])], [])
    return model, {"x": np.ones(1, dtype=np.float32)}


def _empty(s: KernelSpec, rng: np.random.Generator) -> tuple[ModelProto, dict[str, np.ndarray]]:
    node = helper.make_node("Identity", ["x"], ["y"], name="n0")
    model = _model([node], [_vi("x", TensorProto.FLOAT, [1])], [_vi("y", TensorProto.FLOAT, [1])], [])
    return model, {"x": np.ones(1, dtype=np.float32)}
