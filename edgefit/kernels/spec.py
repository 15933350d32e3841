"""What one timed chain is: a plain, JSON-able description (no onnx import; the table and bundles use it)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

BLOCK_SIZE = 32
ACCURACY_LEVEL = 4
KINDS = ("linear", "gqa", "rotary", "norm", "eltwise", "mul", "tiny", "empty")
PRECISION_BITS = {"fp32": None, "int8": 8, "int4": 4}


@dataclass(frozen=True, slots=True)
class KernelSpec:
    """One timed chain. ``nodes`` is the chain length; the other fields are the kernel's shape (unused ones 0)."""

    kind: str
    nodes: int
    precision: str = "fp32"  # linear only
    m: int = 1  # rows (tokens) for linear; S (new tokens) for gqa/rotary/norm/eltwise/mul
    k: int = 0  # linear: input width; norm/eltwise/mul: width
    n: int = 0  # linear: output width
    heads: int = 0  # gqa, rotary
    kv_heads: int = 0  # gqa
    head_dim: int = 0  # gqa, rotary
    past: int = 0  # gqa: tokens already in the cache

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kernel kind {self.kind!r}: expected one of {', '.join(KINDS)}")
        if self.nodes < 1 or self.m < 1:
            raise ValueError(f"kernel {self.kind}: nodes and m must be >= 1")
        if self.kind == "linear" and (self.precision not in PRECISION_BITS or self.k < 1 or self.n < 1):
            raise ValueError(f"linear kernel: precision in {tuple(PRECISION_BITS)} and k, n >= 1 required")

    @property
    def id(self) -> str:
        if self.kind == "linear":
            return f"linear/{self.precision}/m{self.m}/{self.k}x{self.n}"
        if self.kind == "gqa":
            return f"gqa/s{self.m}/h{self.heads}kv{self.kv_heads}d{self.head_dim}/past{self.past}"
        if self.kind == "rotary":
            return f"rotary/s{self.m}/h{self.heads}d{self.head_dim}"
        if self.kind in ("norm", "eltwise", "mul"):
            return f"{self.kind}/s{self.m}/w{self.k}"
        return self.kind

    def to_dict(self) -> dict[str, Any]:
        return {f: getattr(self, f) for f in self.__slots__}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> KernelSpec:
        return cls(**{f: d[f] for f in cls.__slots__ if f in d})

    def weight_bytes_per_node(self) -> int:
        """Bytes of weights one node reads (linear only): what the table's memory term counts."""
        if self.kind != "linear":
            return 0
        return linear_weight_bytes(self.precision, self.k, self.n)

    def resident_bytes(self) -> int:
        """RAM the built session holds (weights as prepacked, cache inputs), for the memory guard."""
        if self.kind == "linear":
            factor = {"fp32": 1.0, "int8": 1.05, "int4": 1.27}[self.precision]  # prepack (ONNXRUNTIME-NOTES)
            return int(self.weight_bytes_per_node() * self.nodes * factor)
        if self.kind == "gqa":
            return 4 * 2 * self.kv_heads * self.head_dim * (self.past + self.m) * self.nodes * 2
        return 0


def linear_weight_bytes(precision: str, k: int, n: int) -> int:
    """Bytes of one linear's weights as stored: fp32 K*N*4; MatMulNBits packed blocks + fp32 scales."""
    bits = PRECISION_BITS[precision]
    if bits is None:
        return 4 * k * n
    blocks = math.ceil(k / BLOCK_SIZE)
    return n * blocks * (BLOCK_SIZE * bits // 8) + n * blocks * 4
