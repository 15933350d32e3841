"""A call's ops priced with a kernel table, on the table's own host or translated to another device.

    op (kind, shape) ──> host per-node time from the KernelModel ──> split into three parts:
        fixed      the node's dispatch cost (smallest chain of its class)           x overhead ratio (clock)
        memory     weights (or KV cache) read once, at the host's streaming rate    x memory ratio (bandwidth)
        compute    the rest of the node's time                                      x compute ratio of its class
    target time = fixed' + max(memory', compute')      (the host's own time when the target is the host)

Physics first: a GEMV reads each weight once, so its memory part is bytes / the host's streaming rate, never a
fitted number. Its compute part (MatMulNBits unpacking and int8 dot products, or FMAs) is the larger of MACs /
the class's GEMM rate (the least arithmetic the MACs need; ``KernelModel.gemv_macs_per_s``) and whatever the node
took beyond its memory time, never more than the node's time: a memory-bound host cannot show its compute, so the
measured arithmetic rate stands in for it. GEMMs (M > 1) are compute: their whole time beyond the fixed cost.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from edgefit.kernels.ops import Op
from edgefit.kernels.spec import linear_weight_bytes
from edgefit.kernels.table import KernelModel, gqa_features

UNOBSERVED_COMPUTE_SHARE = 0.5  # decoders: only for a class without GEMM chains; graph nodes (predict/graph.py)
MEMORY_BOUND_MARGIN = 1.15  # graph pricing (predict/graph.py): a node within 15 % of its memory time


@dataclass(frozen=True, slots=True)
class Translation:
    """Multipliers from the source host's kernel times to the target's, per part of a kernel's time."""

    memory: float  # source streaming bandwidth / target's
    fp32: float  # source fp32 compute / target's
    int8: float  # source int8 dot-product compute / target's
    overhead: float  # per-node fixed costs: source clock / target clock
    identity: bool = False
    # attention's cache traffic (a fitted time per KV byte, the cache fed as plain arrays like the triad's): source
    # triad / target bandwidth. The weights' GEMV streaming rate drifted 27 % between two calibrations here while
    # the triad and the attention kernels did not, so the weights' ratio would move attention answers with it
    kv_memory: float = 1.0

    def compute(self, precision: str) -> float:
        return self.fp32 if precision == "fp32" else self.int8


IDENTITY = Translation(1.0, 1.0, 1.0, 1.0, identity=True)


@dataclass(frozen=True, slots=True)
class PricedCall:
    total_s: float
    fixed_s: float
    memory_s: float
    compute_s: float
    by_kind: Mapping[str, float]  # linear | gqa | rotary | norm | eltwise | mul | tiny | run -> seconds
    memory_bound_share: float  # share of linear time set by the memory part on the target


def _linear(model: KernelModel, op: Op, regime: str) -> tuple[float, float, float]:
    """(fixed, memory, compute) seconds of one linear node on the source host. Both parts are continuous in the
    measured times (a threshold between "memory-bound" and "compute-bound" made answers jump between two
    calibrations when a node sat near it)."""
    p = op.precision
    t = model.linear_s(p, op.m, op.k, op.n, regime)
    fixed = min(model.gemv_overhead_s.get(p, 0.0), t)
    rest = t - fixed
    weight_bytes = linear_weight_bytes(p, op.k, op.n)
    # the memory part is the weights read once at the host's streaming rate, even when this chain ran faster
    # (partly cache-resident): translated, it must become bytes / the device's DRAM bandwidth exactly
    mem = weight_bytes / model.stream_bytes_per_s if model.stream_bytes_per_s > 0 else rest
    if op.m == 1:
        rate = model.gemv_macs_per_s.get(p, 0.0)
        floor = op.k * op.n / rate if rate > 0 else rest * UNOBSERVED_COMPUTE_SHARE
        comp = min(rest, max(floor, rest - mem))
        return fixed, mem, comp
    return fixed, min(mem, rest), rest


def price_call(model: KernelModel, ops: tuple[Op, ...], *, regime: str, tr: Translation) -> PricedCall:
    """Seconds of one session run made of ``ops`` (see module docstring)."""
    by_kind: dict[str, float] = {"run": model.run_s * tr.overhead}
    fixed_s, memory_s, compute_s = model.run_s * tr.overhead, 0.0, 0.0
    lin_total = lin_memory = 0.0
    for op in ops:
        if op.kind == "linear":
            f, m, c = _linear(model, op, regime)
            if tr.identity:
                t = model.linear_s(op.precision, op.m, op.k, op.n, regime)
                m2, c2 = m, c
            else:
                f, m2, c2 = f * tr.overhead, m * tr.memory, c * tr.compute(op.precision)
                t = f + max(m2, c2)
            lin_total += op.count * t
            lin_memory += op.count * t if m2 >= c2 else 0.0
        elif op.kind == "gqa":
            fit = model.gqa_decode[regime] if op.m == 1 else model.gqa_prefill
            x = gqa_features(s=op.m, past=op.past, heads=op.heads, kv_heads=op.kv_heads, head_dim=op.head_dim)
            f, m2, c2 = fit.term("c", x), fit.term("kv_bytes", x), fit.term("macs", x)
            if not tr.identity:
                f, m2, c2 = f * tr.overhead, m2 * tr.kv_memory, c2 * tr.fp32
            t = f + m2 + c2  # the cache is streamed and multiplied in separate passes (scores, then values)
        elif op.kind == "tiny":
            f, m2, c2 = model.tiny_s * tr.overhead, 0.0, 0.0
            t = f
        else:  # rotary | norm | eltwise | mul: a fixed cost + a cost per value touched (in cache)
            fit = model.small[op.kind]
            x = {"elements": float(op.elements)}
            f, c2 = fit.term("c", x) * tr.overhead, fit.term("elements", x) * tr.fp32
            m2 = 0.0
            t = f + c2
        by_kind[op.kind] = by_kind.get(op.kind, 0.0) + op.count * t
        fixed_s += op.count * f
        memory_s += op.count * m2
        compute_s += op.count * c2
    total = sum(by_kind.values())
    share = lin_memory / lin_total if lin_total > 0 else 0.0
    return PricedCall(total, fixed_s, memory_s, compute_s, by_kind, share)
