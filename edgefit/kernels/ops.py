"""A decoder's ops as onnxruntime runs them (after its graph optimizations), from a ModelSpec alone.

edgefit's builder (``edgefit.onnxbuild.graph``) emits x * Sigmoid(x) as two nodes, which onnxruntime fuses into
QuickGelu, and an Identity on the logits, which it removes; everything else runs as built. The op list here is what
the optimized graph holds (tests compare it with onnxruntime's own optimized-model dump of built models), so that
pricing it with the kernel table prices what runs, for models far too large to build.

    per call     12 small mask/position ops (ReduceSum, Sub x2, Cast x2, Shape x2, Gather, CumSum, Neg, Slice, Max)
                 + the embedding Gather
    per layer    norms (Skip)SimplifiedLayerNormalization; q, k, v, o, gate, up, down MatMul / MatMulNBits
                 (+ bias Adds for fp32; MatMulNBits takes its bias in); RotaryEmbedding x2;
                 GroupQueryAttention; QuickGelu; Mul
    once         final norm; LM head (MatMul / MatMulNBits, or Gemm(transB) + Reshape/Shape/Concat when tied fp32)
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from edgefit.catalog import ModelSpec

MASK_OPS = ("ReduceSum", "Sub", "Sub", "Cast", "Cast", "Shape", "Shape", "Gather", "CumSum", "Neg", "Slice", "Max")


@dataclass(frozen=True, slots=True)
class Op:
    """One kind of node and how many of it run per call. ``kind`` is the kernel-table class that prices it."""

    kind: str  # linear | gqa | rotary | norm | eltwise | mul | tiny
    ort_op: str
    count: int
    precision: str = "fp32"
    m: int = 1  # rows: tokens in this call
    k: int = 0
    n: int = 0
    heads: int = 0
    kv_heads: int = 0
    head_dim: int = 0
    past: int = 0
    elements: int = 0  # rotary / norm / eltwise / mul / bias add: values touched per node


def decoder_ops(spec: ModelSpec, precision: str, *, tokens: int, past: int) -> tuple[Op, ...]:
    """Ops of one call on ``tokens`` new tokens with ``past`` already cached. ``precision`` is what the weights
    run as (fp32, int8, int4)."""
    s = max(int(tokens), 1)
    h, nh, kvh, hd, inter = spec.hidden_size, spec.num_heads, spec.num_kv_heads, spec.head_dim, spec.intermediate_size
    layers = spec.num_layers
    quant = precision in ("int8", "int4")
    lin = "MatMulNBits" if quant else "MatMul"
    ops: list[Op] = [Op("tiny", name, n) for name, n in Counter(MASK_OPS).items()]
    ops.append(Op("tiny", "Gather", 1))  # embedding rows
    if layers:
        # (Skip)SimplifiedLayerNormalization: the first layer's input norm has nothing to add yet, so it is plain;
        # every later input norm, each post-attention (or pre-feedforward) norm and the final norm add a residual.
        # Gemma-2 style cards (4 norms) add a plain norm after attention and after the MLP.
        skip = 2 * layers
        plain = 1 + (2 * layers if spec.norms_per_layer == 4 else 0)
        ops.append(Op("norm", "SkipSimplifiedLayerNormalization", skip, m=s, elements=s * h))
        ops.append(Op("norm", "SimplifiedLayerNormalization", plain, m=s, elements=s * h))
        shapes = [(h, nh * hd), (h, kvh * hd), (h, kvh * hd), (nh * hd, h), (h, inter), (h, inter), (inter, h)]
        for k, n in sorted(Counter(shapes).items()):
            ops.append(Op("linear", lin, n * layers, precision=precision, m=s, k=k[0], n=k[1]))
        # onnxruntime folds a bias Add into MatMulNBits (its optional bias input); fp32 MatMul keeps the Add
        if spec.attention_bias and not quant:
            for width in (nh * hd, kvh * hd, kvh * hd):
                ops.append(Op("mul", "Add", layers, m=s, elements=s * width))
        if spec.mlp_bias and not quant:
            for width in (inter, inter, h):
                ops.append(Op("mul", "Add", layers, m=s, elements=s * width))
        ops.append(Op("rotary", "RotaryEmbedding", layers, m=s, heads=nh, head_dim=hd, elements=s * nh * hd))
        ops.append(Op("rotary", "RotaryEmbedding", layers, m=s, heads=kvh, head_dim=hd, elements=s * kvh * hd))
        ops.append(
            Op("gqa", "GroupQueryAttention", layers, m=s, heads=nh, kv_heads=kvh, head_dim=hd, past=max(past, 0))
        )
        ops.append(Op("eltwise", "QuickGelu", layers, m=s, elements=s * inter))
        ops.append(Op("mul", "Mul", layers, m=s, elements=s * inter))
    else:
        ops.append(Op("norm", "SimplifiedLayerNormalization", 1, m=s, elements=s * h))
    v = spec.vocab_size
    if spec.tied_embeddings and not quant:
        ops.append(Op("linear", "Gemm", 1, precision="fp32", m=s, k=h, n=v))
        ops += [Op("tiny", "Reshape", 2), Op("tiny", "Shape", 1), Op("tiny", "Concat", 1)]
    else:
        ops.append(Op("linear", lin, 1, precision=precision, m=s, k=h, n=v))
    return tuple(_merge(ops))


def _merge(ops: list[Op]) -> list[Op]:
    """Same node kind and shape counted once with the summed count."""
    out: dict[tuple[object, ...], Op] = {}
    for op in ops:
        key = (op.kind, op.ort_op, op.precision, op.m, op.k, op.n, op.heads, op.kv_heads, op.head_dim, op.past,
               op.elements)  # fmt: skip
        if key in out:
            prev = out[key]
            out[key] = Op(**{**{f: getattr(prev, f) for f in Op.__slots__}, "count": prev.count + op.count})
        else:
            out[key] = op
    return [op for op in out.values() if op.count > 0]


def ort_op_counts(ops: tuple[Op, ...]) -> dict[str, int]:
    """Node count per onnxruntime op type (what an optimized-model dump shows)."""
    c: Counter[str] = Counter()
    for op in ops:
        c[op.ort_op] += op.count
    return dict(c)
