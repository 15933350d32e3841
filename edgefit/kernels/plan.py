"""Which chains the kernel table times: a grid over the shapes decoders are made of, sized to the RAM at hand.

    linear  M = 1 (decode GEMV) over a (K, N) grid from 256 x 256 to 4096 x 4096 and 2048 x 8192 / 8192 x 2048,
            M = 16 and 128 (prefill GEMM) on four shapes; fp32, int8, int4
    gqa     decode (S = 1) on three head layouts x caches of 0, 256, 1024 tokens; prefill (S = 16, 128, empty cache)
    rotary, norm, eltwise, mul at S = 1 and 128; tiny (dispatch); empty (a session run)

GEMV chains hold ~16 MiB of weights (at least 2 nodes, at most 48): all chains together exceed the last-level cache,
so the first run of a chain in a round reads from DRAM. When RAM is short the largest shapes are left out first and
the plan says so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from edgefit.kernels.spec import KernelSpec
from edgefit.units import MIB

# Chains alternate (K, N) and (N, K), so one entry stands for both orientations.
GEMV_SHAPES = ((256, 256), (256, 1024), (512, 2048), (1024, 1024), (1024, 4096), (2048, 2048), (2048, 8192),
               (4096, 4096))  # fmt: skip
# fp32 weights of the largest shapes (64 MiB a node) are kept: such nodes (an lm_head is 100-600 MB) streamed 3-18 %
# faster than the 16 MiB ones in the same rounds, in eight calibrations here; 16 MiB chains built last, in five of
# them, were no faster than those built first, so it is the node size, not the build order. Priced from the 16 MiB
# nodes in proportion, large nodes came out slow
FP32_MAX_GEMV_BYTES = 64 * MIB
GEMM_ROWS = (16, 128)
GEMM_SHAPES = ((256, 1024), (512, 2048), (1024, 1024), (2048, 2048))
# per node: 128 x 2048 x 2048 fp32 (~10 ms here) would dominate every round; the rate is flat beyond ~2^27 MACs,
# so larger GEMMs are priced in proportion
GEMM_MAX_MACS = 2**28
GQA_LAYOUTS = ((8, 2, 64), (16, 16, 64), (32, 8, 128))  # heads, kv heads, head_dim: GQA 4:1 and MHA (kv bytes vs MACs)
GQA_PASTS = (0, 256, 1024)
GQA_PREFILL = ((16, 4, 64), (32, 8, 128))
SMALL_ROWS = (1, 128)
CHAIN_BYTES = 16 * MIB
MAX_CHAIN_NODES = 48
PRECISIONS = ("fp32", "int8", "int4")


@dataclass(frozen=True, slots=True)
class KernelPlan:
    kernels: tuple[KernelSpec, ...]
    resident_bytes: int
    dropped: tuple[str, ...]  # kernel ids left out for memory


def _nodes_for(bytes_per_node: int) -> int:
    return max(2, min(MAX_CHAIN_NODES, math.ceil(CHAIN_BYTES / max(bytes_per_node, 1))))


def gqa_decode_chain(heads: int, kv_heads: int, head_dim: int, past: int) -> KernelSpec:
    """An attention decode chain (one new token on a cache of ``past``): enough nodes for ~2 MiB of cache, 2-16."""
    kv = 2 * 4 * kv_heads * head_dim * max(past, 1)
    nodes = max(2, min(16, math.ceil(2 * MIB / kv)))
    return KernelSpec("gqa", nodes, m=1, heads=heads, kv_heads=kv_heads, head_dim=head_dim, past=past)


def default_plan(available_bytes: int, precisions: tuple[str, ...] = PRECISIONS) -> KernelPlan:
    """The grid, keeping resident weights within a quarter of ``available_bytes`` (largest chains dropped first)."""
    ks: list[KernelSpec] = []
    for p in precisions:
        for k, n in GEMV_SHAPES:
            probe = KernelSpec("linear", 2, precision=p, m=1, k=k, n=n)
            if p == "fp32" and probe.weight_bytes_per_node() > FP32_MAX_GEMV_BYTES:
                continue
            ks.append(KernelSpec("linear", _nodes_for(probe.weight_bytes_per_node()), precision=p, m=1, k=k, n=n))
        for m in GEMM_ROWS:
            for k, n in GEMM_SHAPES:
                if m * k * n <= GEMM_MAX_MACS:
                    ks.append(KernelSpec("linear", 2, precision=p, m=m, k=k, n=n))
    for heads, kvh, hd in GQA_LAYOUTS:
        for past in GQA_PASTS:
            ks.append(gqa_decode_chain(heads, kvh, hd, past))
    for heads, kvh, hd in GQA_PREFILL:
        for s in GEMM_ROWS:
            ks.append(KernelSpec("gqa", 4, m=s, heads=heads, kv_heads=kvh, head_dim=hd, past=0))
    for s in SMALL_ROWS:
        ks.append(KernelSpec("rotary", 16, m=s, heads=32, head_dim=64))
        ks.append(KernelSpec("norm", 16 if s == 1 else 4, m=s, k=2048))
        ks.append(KernelSpec("eltwise", 16 if s == 1 else 4, m=s, k=8192))
        ks.append(KernelSpec("mul", 16 if s == 1 else 4, m=s, k=8192))
    ks.append(KernelSpec("rotary", 16, m=1, heads=8, head_dim=128))
    ks.append(KernelSpec("norm", 16, m=1, k=8192))
    ks.append(KernelSpec("tiny", 64))
    ks.append(KernelSpec("empty", 1))
    budget = available_bytes // 4
    dropped: list[str] = []
    kept = list(ks)
    while sum(k.resident_bytes() for k in kept) > budget:
        largest = max(kept, key=lambda k: k.resident_bytes())
        if largest.resident_bytes() == 0:
            break
        kept.remove(largest)
        dropped.append(largest.id)
    return KernelPlan(tuple(kept), sum(k.resident_bytes() for k in kept), tuple(dropped))
