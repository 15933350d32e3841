"""What the prediction needs from a ModelSpec: bytes, FLOPs, KV, the largest tensor, and which calibration a
precision borrows. Thin wrappers over ``edgefit.catalog``'s accounting plus the few figures it does not give
(the embedding as an fp32 Gather table, the largest single tensor at load time)."""

from __future__ import annotations

import importlib
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from edgefit import catalog
from edgefit.catalog import ModelSpec
from edgefit.errors import EdgefitError, PredictError

FLOAT_UPCAST = ("fp16", "bf16")  # no fp16 MatMul kernel on the CPU provider: weights are upcast at load


def kv_bytes(spec: ModelSpec, context_tokens: int, precision: str = "fp32") -> int:
    """KV cache bytes at a depth: fp32 as edgefit's onnxruntime decoders keep it; fp16 for GGUF precisions
    (llama.cpp's default cache type)."""
    dtype = 2 if is_gguf(precision) else 4
    return int(catalog.kv_cache_bytes_per_token(spec, dtype_bytes=dtype)) * max(int(context_tokens), 0)


def is_gguf(precision: str) -> bool:
    return catalog.get_precision(precision).kind == "gguf"


def prompt_flops(spec: ModelSpec, prompt_tokens: int) -> int:
    return int(catalog.flops_prompt(spec, prompt_tokens))


def bytes_per_weight(precision: str) -> float:
    return float(catalog.get_precision(precision).bits_per_weight) / 8.0


def embedding_bytes(spec: ModelSpec) -> int:
    """The input embedding: an fp32 Gather table for every precision (never quantized)."""
    return spec.vocab_size * spec.hidden_size * 4


# Logits are the largest activation of a prefill (every position, fp32): onnxruntime holds about one copy behind
# a MatMul/MatMulNBits LM head and about two behind the tied float Gemm(transB) + Reshape (measured: 1.09x and
# 2.16x of P x vocab x 4 bytes for a 512-token prefill, vocab 150k, onnxruntime 1.32).
LOGITS_COPIES_MATMUL = 1.1
LOGITS_COPIES_TIED_GEMM = 2.15


def is_tied_float(spec: ModelSpec, precision: str) -> bool:
    return spec.tied_embeddings and (precision in ("fp32", *FLOAT_UPCAST))


def known_resident_bytes(spec: ModelSpec, precision: str) -> int:
    """Weights resident for reasons physics knows (not fitted). The embedding is an fp32 Gather table read from
    memory-mapped external data: only the rows of the tokens seen are ever touched, so it costs nothing, unless a
    tied float LM head reads it through Gemm(transB=1): then it is all resident plus onnxruntime's packed copy.
    (Measured with the worker: tinyllama-1.1b int4, 866 MiB file of which 250 MiB embedding, holds 1011 MiB;
    qwen2.5-0.5b int4, 814 MiB file of which 519 MiB embedding, holds 661 MiB.)"""
    return 2 * embedding_bytes(spec) if is_tied_float(spec, precision) else 0


def mapped_embedding_bytes(spec: ModelSpec, precision: str, *, tokens: int, granule_bytes: int) -> int:
    """RSS of the embedding rows a run reads from the memory-mapped fp32 Gather table: each of ``tokens`` (random)
    ids maps at least a ``granule_bytes`` block (probes.mapped_granules: 2 MiB here when the file's pages are cached,
    so 64 ids held ~100 MiB of a 250 MiB table), blocks shared between ids counted once:
    E * (1 - exp(-tokens * block / E)). 0 when the granule is unknown, when the whole table is resident anyway (tied
    float LM head) and for GGUF."""
    if granule_bytes <= 0 or is_tied_float(spec, precision) or is_gguf(precision):
        return 0
    table = float(embedding_bytes(spec))
    block = max(float(granule_bytes), spec.hidden_size * 4.0)
    n = min(max(int(tokens), 0), spec.vocab_size)
    return int(table * -math.expm1(-n * block / table)) if table > 0 else 0


def load_transient_bytes(spec: ModelSpec, precision: str) -> int:
    """Extra RSS while the session loads: about the largest weight being copied/prepacked (the LM head, usually;
    measured 249 MiB for tinyllama-1.1b fp32's 250 MiB LM head). None seen for a tied float LM head."""
    if is_tied_float(spec, precision):
        return 0
    bpw = 4.0 if precision in ("fp32", *FLOAT_UPCAST) else bytes_per_weight(precision)
    h = spec.hidden_size
    shapes = [h * spec.intermediate_size, h * spec.num_heads * spec.head_dim, h * spec.vocab_size]
    return int(bpw * max(shapes))


def activation_bytes(spec: ModelSpec, precision: str, *, prompt_tokens: int, context_tokens: int) -> int:
    """Peak activations of a prefill of ``prompt_tokens`` on a cache of ``context_tokens``: logits for every
    position, hidden and MLP buffers, one layer's attention scores (fp32)."""
    p = max(int(prompt_tokens), 1)
    copies = LOGITS_COPIES_TIED_GEMM if is_tied_float(spec, precision) else LOGITS_COPIES_MATMUL
    logits = copies * p * spec.vocab_size * 4
    hidden = 4 * p * (spec.hidden_size * 4 + spec.intermediate_size * 3)
    scores = 4 * spec.num_heads * p * (p + max(int(context_tokens), 0))
    return int(logits + hidden + scores)


def weight_bytes(spec: ModelSpec, precision: str) -> int:
    return int(catalog.weight_bytes(spec, catalog.get_precision(precision)))


def read_bytes_per_token(spec: ModelSpec, precision: str) -> int:
    return int(catalog.weight_read_bytes_per_token(spec, catalog.get_precision(precision)))


@dataclass(frozen=True, slots=True)
class PrecisionChoice:
    """``calibration``: whose fitted efficiencies to use; ``bytes_precision``: whose byte counts the weights
    have on the device (fp16 upcasts to fp32 on the CPU provider, GGUF keeps its own bits)."""

    requested: str
    calibration: str
    bytes_precision: str
    note: str | None


def choose_precision(requested: str, available: Iterable[str]) -> PrecisionChoice:
    avail = sorted(set(available))
    prec = catalog.get_precision(requested)  # CatalogError for an unknown name, with the valid ones
    if requested in avail:
        return PrecisionChoice(requested, requested, requested, None)
    if requested in FLOAT_UPCAST or prec.runs_as == "fp32":
        if "fp32" not in avail:
            raise _missing(requested, "fp32", avail)
        note = f"{requested} on the CPU provider runs as fp32 (weights upcast at load): fp32 memory and speed"
        return PrecisionChoice(requested, "fp32", "fp32", note)
    if prec.kind == "gguf":
        ints = [p for p in avail if p in ("int8", "int4")]
        if not ints:
            raise _missing(requested, "int8 or int4", avail)
        nearest = min(ints, key=lambda p: abs(bytes_per_weight(p) * 8 - prec.bits_per_weight))
        note = (
            f"{requested} ({prec.bits_per_weight:g} bits/weight) is not an onnxruntime format: bytes are its own, "
            f"speed uses the {nearest} (MatMulNBits) calibration, the nearest in bits; memory as llama.cpp holds it "
            "(file memory-mapped, fp16 KV cache)"
        )
        return PrecisionChoice(requested, nearest, requested, note)
    raise _missing(requested, requested, avail)


def _missing(requested: str, needed: str, avail: list[str]) -> PredictError:
    have = ", ".join(avail) if avail else "none"
    return PredictError(
        f"the kernel table has no {needed} kernels for a {requested} prediction (calibrated: {have}); "
        f"run `edgefit calibrate --precision {needed.split(' ')[0]}`"
    )


def resolve_specs(ids: Iterable[str], *, given: Mapping[str, ModelSpec] | None = None) -> dict[str, ModelSpec]:
    """Model id -> spec, from ``given``, then the benchmark ladders, then the catalog. Unknown ids are left out."""
    want = set(ids)
    out: dict[str, ModelSpec] = {k: v for k, v in (given or {}).items() if k in want}
    if want - set(out):
        try:
            # the ladder module sits beside the catalog (its own owner); imported late so this stage works without it
            ladder = importlib.import_module("edgefit.ladder")

            for name in ("quick", "full"):
                for rung in ladder.load_ladder(name):
                    if rung.spec.id in want and rung.spec.id not in out:
                        out[rung.spec.id] = rung.spec
        except (EdgefitError, ImportError, AttributeError, OSError):
            pass
    for mid in sorted(want - set(out)):
        try:
            out[mid] = catalog.load_spec(mid)
        except (EdgefitError, OSError):
            continue
    return out
