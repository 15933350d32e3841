"""What the graph worker found: a user graph's distinct nodes with their work and their host time (plain data).

A ``NodeCost`` stands for every node of the optimized graph with the same op, attributes and input shapes
(``count`` of them): they do the same work, so one single-node session times them all.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# ops whose arithmetic runs on integer dot products (the device's int8 figure translates them)
INTEGER_OPS = frozenset(
    {
        "MatMulInteger",
        "ConvInteger",
        "QLinearConv",
        "QLinearMatMul",
        "MatMulIntegerToFloat",
        "DynamicQuantizeMatMul",
        "QGemm",
        "MatMulNBits",
        "QAttention",
        "DynamicQuantizeLSTM",
    }
)


@dataclass(frozen=True, slots=True)
class NodeCost:
    """One distinct node of the optimized graph (``count`` identical ones) and its single-node time here."""

    op: str  # "domain:op_type" ("Conv", "com.microsoft:FusedConv", "com.microsoft.nchwc:Conv")
    count: int
    shapes: str  # input shapes as fed, e.g. "1x3x224x224,16x3x3x3"
    weight_bytes: int  # initializers it reads (per node)
    activation_bytes: int  # non-constant inputs read + outputs written (per node)
    macs: int  # multiply-accumulates (0 for ops that only move or map values)
    elements: int  # output values
    host_s: float  # per node: minimum over rounds of its single-node session, the empty session's run subtracted
    integer: bool = False  # arithmetic on integer dot products (MatMulNBits, QLinearConv, ...)
    cold_s: float = 0.0  # per node: minimum over rounds of its first run in a round, after the other nodes ran

    @property
    def bytes(self) -> int:
        return self.weight_bytes + self.activation_bytes

    def to_dict(self) -> dict[str, Any]:
        return {f: getattr(self, f) for f in self.__slots__}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> NodeCost:
        return cls(
            op=str(d["op"]),
            count=int(d["count"]),
            shapes=str(d["shapes"]),
            weight_bytes=int(d["weight_bytes"]),
            activation_bytes=int(d["activation_bytes"]),
            macs=int(d["macs"]),
            elements=int(d["elements"]),
            host_s=float(d["host_s"]),
            integer=bool(d.get("integer", False)),
            cold_s=float(d.get("cold_s", 0.0)),
        )


@dataclass(frozen=True, slots=True)
class GraphProfile:
    """A user graph as onnxruntime runs it on this host, its nodes timed one by one (all measured here)."""

    model_id: str  # "file:<name>"
    path: str
    sha256_16: str
    inputs: tuple[str, ...]  # "x[1, 3, 224, 224] (image, NCHW, default)"
    nodes: tuple[NodeCost, ...]
    node_count: int  # nodes of the optimized graph (top level)
    file_node_count: int  # nodes of the file as written
    run_s: float  # the empty session's run time, measured in the same rounds
    weights_bytes: int  # initializers of the optimized graph (as onnxruntime holds them, before prepacking)
    arena_bytes: int  # peak of live intermediate tensors in execution order
    rounds: int
    threads: int
    noise_rel: float  # median split-half noise of the node timings
    dispatch_s: float = 0.0  # one node that does no work (its dispatch), measured in the same rounds
    load_rss_bytes: int = 0  # RSS growth while onnxruntime loaded the file (weights as held, prepacked), measured
    run_rss_bytes: int = 0  # RSS growth over its first two runs (the arena and kernel workspaces), measured
    notes: tuple[str, ...] = ()
    # the whole file timed in the same rounds as its nodes, measured: (lower quartile, median) of its first run per
    # round, and the median of all its back-to-back runs (as `edgefit bench FILE` runs it and reports it); () for
    # profiles made before it was timed
    whole_s: tuple[float, ...] = ()

    @property
    def host_s(self) -> float:
        return self.run_s + sum(n.count * n.host_s for n in self.nodes)

    @property
    def whole_back_to_back_s(self) -> float | None:
        """The whole file run back to back here (measured in the same rounds as the nodes), when timed."""
        return self.whole_s[2] if len(self.whole_s) >= 3 and self.whole_s[2] > 0 else None

    def to_dict(self) -> dict[str, Any]:
        out = {f: getattr(self, f) for f in self.__slots__}
        out["nodes"] = [n.to_dict() for n in self.nodes]
        out["inputs"] = list(self.inputs)
        out["notes"] = list(self.notes)
        out["whole_s"] = list(self.whole_s)
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> GraphProfile:
        return cls(
            model_id=str(d["model_id"]),
            path=str(d["path"]),
            sha256_16=str(d["sha256_16"]),
            inputs=tuple(str(x) for x in d["inputs"]),
            nodes=tuple(NodeCost.from_dict(n) for n in d["nodes"]),
            node_count=int(d["node_count"]),
            file_node_count=int(d["file_node_count"]),
            run_s=float(d["run_s"]),
            weights_bytes=int(d["weights_bytes"]),
            arena_bytes=int(d["arena_bytes"]),
            rounds=int(d["rounds"]),
            threads=int(d["threads"]),
            noise_rel=float(d["noise_rel"]),
            dispatch_s=float(d.get("dispatch_s", 0.0)),
            load_rss_bytes=int(d.get("load_rss_bytes", 0)),
            run_rss_bytes=int(d.get("run_rss_bytes", 0)),
            notes=tuple(str(x) for x in d.get("notes", ())),
            whole_s=tuple(float(x) for x in d.get("whole_s", ())),
        )
