"""Synthesize valid inputs for any ONNX model from its input descriptions.

Roles decide values, the rest is generic:

    token ids (index an embedding Gather)  random ints in [0, vocab)          shape [batch, seq]
    attention mask                          ones                               shape [batch, past + seq]
    position ids                            past .. past + seq - 1             shape [batch, seq]
    past KV (decoders)                      from a real prefill's present, or zeros of length ``past``
    seqlens_k / total_sequence_length       GroupQueryAttention's int32 bookkeeping (past + seq - 1, past + seq)
    scalars                                 --input NAME=VALUE, else 1 (bool: True)
    other ints / floats                     zeros / standard-normal noise

Symbolic dims: ``--dim NAME=VALUE`` wins; then a decoder's past/total/sequence dims; names with "batch" are 1;
any other symbolic dim gets ``default_dim`` and unnamed dynamic dims get 1. The dims used are reported.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from edgefit.bench.modelinfo import ModelFileInfo, TensorInfo

DEFAULT_DIM = 16


@dataclass(frozen=True, slots=True)
class FeedSpec:
    """How to fill inputs: user dims and scalar values, plus a default for other symbolic dims."""

    dims: dict[str, int] = field(default_factory=dict)
    scalars: dict[str, float] = field(default_factory=dict)
    default_dim: int = DEFAULT_DIM
    seed: int = 0


def _is_batch(name: str) -> bool:
    return "batch" in name.lower()


def past_dim_index(t: TensorInfo) -> int:
    """Which axis of a past-KV input is the sequence: its one non-batch symbolic dim, else the convention
    ([batch, heads, seq, head_dim] -> 2; GPT-2's [2, batch, heads, seq, head_dim] -> 3)."""
    shape = t.shape or ()
    sym = [i for i, d in enumerate(shape) if isinstance(d, str) and not _is_batch(d)]
    if len(sym) == 1:
        return sym[0]
    return 3 if len(shape) == 5 else 2


def _role(info: ModelFileInfo, t: TensorInfo) -> str:
    low = t.name.lower()
    if t.name in info.past_inputs:
        return "past"
    if t.name in info.token_inputs:
        return "tokens"
    if "mask" in low:
        return "mask"
    if "position" in low:
        return "positions"
    if low.startswith("seqlens_k"):
        return "seqlens_k"
    if low.startswith("total_sequence_length") or low == "total_seq_len":
        return "total_len"
    return "generic"


def resolve_shape(
    info: ModelFileInfo, t: TensorInfo, spec: FeedSpec, *, seq: int | None = None, past: int | None = None
) -> tuple[int, ...]:
    """Concrete shape of input ``t``; ``seq``/``past`` are set when measuring a decoder."""
    role = _role(info, t)
    shape = list(t.shape or ())
    out: list[int] = []
    p_idx = past_dim_index(t) if role == "past" else -1
    for i, d in enumerate(shape):
        if isinstance(d, int):
            out.append(d)
            continue
        if isinstance(d, str) and d in spec.dims:
            out.append(spec.dims[d])
            continue
        if isinstance(d, str) and _is_batch(d):
            out.append(1)
            continue
        if seq is not None and past is not None:
            if role == "past" and i == p_idx:
                out.append(past)
                continue
            if role == "mask" and i == len(shape) - 1:
                out.append(past + seq)
                continue
            if role in ("tokens", "positions") and i == len(shape) - 1:
                out.append(seq)
                continue
            if i == 0 and role in ("tokens", "positions", "mask", "seqlens_k"):
                out.append(1)
                continue
        if isinstance(d, str):
            out.append(seq if seq is not None and role in ("tokens", "positions", "mask") else spec.default_dim)
        else:
            out.append(1)
    return tuple(out)


def synthesize(
    info: ModelFileInfo,
    spec: FeedSpec,
    *,
    seq: int | None = None,
    past: int | None = None,
    skip: frozenset[str] = frozenset(),
) -> dict[str, np.ndarray]:
    """Feeds for every input of ``info`` except ``skip``; decoders pass ``seq`` and ``past``."""
    rng = np.random.default_rng(spec.seed)
    feeds: dict[str, np.ndarray] = {}
    for t in info.inputs:
        if t.name in skip:
            continue
        feeds[t.name] = _value(info, t, spec, rng, seq=seq, past=past)
    return feeds


def _value(
    info: ModelFileInfo,
    t: TensorInfo,
    spec: FeedSpec,
    rng: np.random.Generator,
    *,
    seq: int | None,
    past: int | None,
) -> np.ndarray:
    dtype = np.dtype(t.dtype) if not t.dtype.startswith("onnx:") else np.dtype("float32")
    shape = resolve_shape(info, t, spec, seq=seq, past=past)
    role = _role(info, t)
    p = past or 0
    s = seq if seq is not None else (shape[-1] if shape else 1)
    if t.name in spec.scalars:
        return np.full(shape, spec.scalars[t.name], dtype=dtype)
    if role == "tokens":
        high = max(1, info.vocab_size or 1)
        return rng.integers(0, high, size=shape).astype(dtype)
    if role == "mask":
        return np.ones(shape, dtype=dtype)
    if role == "positions" and dtype.kind in "iu":
        last = shape[-1] if shape else 1
        row = np.arange(p, p + last, dtype=dtype)
        return np.broadcast_to(row, shape).copy() if shape else np.array(p, dtype=dtype)
    if role == "seqlens_k":
        return np.full(shape, p + s - 1, dtype=dtype)
    if role == "total_len":
        return np.full(shape, p + s, dtype=dtype)
    if dtype == np.bool_:
        return np.ones(shape, dtype=np.bool_)
    if dtype.kind in "iu":
        if not shape:
            return np.array(1, dtype=dtype)
        return np.zeros(shape, dtype=dtype)
    if role == "past":
        return np.zeros(shape, dtype=dtype)
    if not shape:
        return np.array(1.0, dtype=dtype)
    return rng.standard_normal(size=shape).astype(dtype)


def dims_used(info: ModelFileInfo, spec: FeedSpec) -> dict[str, int]:
    """The value each symbolic dim got for a plain (non-decoder) run: what the report shows."""
    used: dict[str, int] = {}
    for t in info.inputs:
        shape = resolve_shape(info, t, spec)
        for d, v in zip(t.shape or (), shape, strict=False):
            if isinstance(d, str):
                used.setdefault(d, v)
    return used
