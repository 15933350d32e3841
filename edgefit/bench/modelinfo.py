"""What benchmarking needs to know about an .onnx file, as plain data (no onnx import).

``edgefit.bench.modelfile`` fills it from the protobuf in the parent process; the worker receives it as JSON,
so it never imports ``onnx`` nor parses the model a second time: its peak RSS is onnxruntime's and the model's
alone (importing onnx adds ~15 MiB; parsing a model with embedded weights would add the whole file).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True, slots=True)
class TensorInfo:
    """A graph input or output. ``shape`` entries: an int (fixed), a str (symbolic dim name), None (dynamic and
    unnamed: no dim_param, an empty or ``?`` one, or a negative dim_value as some exporters write)."""

    name: str
    dtype: str  # numpy dtype name: float32, int64, bool, ...
    shape: tuple[int | str | None, ...] | None  # None: rank unknown

    @property
    def symbolic_dims(self) -> tuple[str, ...]:
        return tuple(d for d in (self.shape or ()) if isinstance(d, str))

    @property
    def shape_text(self) -> str:
        """``[?, 3, H, 640]`` style: what an error shows; ``[rank unknown]`` when the file does not say."""
        if self.shape is None:
            return "[rank unknown]"
        return "[" + ", ".join("?" if d is None else str(d) for d in self.shape) + "]"


@dataclass(frozen=True, slots=True)
class ModelFileInfo:
    path: Path
    sha256_16: str  # first 16 hex of the .onnx file's sha256 (external data not hashed: too slow for GBs)
    opset: int  # default-domain opset
    inputs: tuple[TensorInfo, ...]
    outputs: tuple[TensorInfo, ...]
    params: int  # weight elements (MatMulNBits: K x N, scales not counted)
    weight_file_bytes: int  # bytes of all initializers as stored, external data included
    weight_read_bytes_per_token: int  # bytes of initializers not only used as a Gather table
    largest_tensor_bytes: int
    float16_weight_bytes: int  # fp16 weights are upcast to fp32 by the CPU provider: they double in RAM
    external_data_bytes: int
    token_inputs: tuple[str, ...]  # int inputs that index an embedding Gather (directly or via casts)
    vocab_size: int | None  # rows of that Gather's table
    past_inputs: tuple[str, ...]  # past KV cache inputs, in graph order
    present_outputs: tuple[str, ...]  # matching present outputs, same order
    control_flow_ops: tuple[str, ...]  # If / Loop / Scan found (subgraphs included)
    node_count: int
    has_quantized_ops: bool = False  # MatMulNBits, QLinearMatMul, ...: weights are prepacked larger
    graph_name: str = ""
    # (height, width) an image input expects, from the file's metadata (e.g. ultralytics' ``imgsz``); None: unknown
    image_size_hint: tuple[int, int] | None = None

    @property
    def is_decoder(self) -> bool:
        return bool(self.past_inputs) and len(self.past_inputs) == len(self.present_outputs)

    @property
    def symbolic_dims(self) -> tuple[str, ...]:
        seen: dict[str, None] = {}
        for t in self.inputs:
            for d in t.symbolic_dims:
                seen.setdefault(d, None)
        return tuple(seen)

    def input(self, name: str) -> TensorInfo:
        for t in self.inputs:
            if t.name == name:
                return t
        raise KeyError(name)


def info_to_dict(info: ModelFileInfo) -> dict[str, Any]:
    d = asdict(info)
    d["path"] = str(info.path)
    return d


def info_from_dict(d: dict[str, Any]) -> ModelFileInfo:
    def tensors(items: list[dict[str, Any]]) -> tuple[TensorInfo, ...]:
        return tuple(
            TensorInfo(
                name=str(t["name"]),
                dtype=str(t["dtype"]),
                shape=None if t["shape"] is None else tuple(t["shape"]),
            )
            for t in items
        )

    return ModelFileInfo(
        path=Path(d["path"]),
        sha256_16=str(d["sha256_16"]),
        opset=int(d["opset"]),
        inputs=tensors(d["inputs"]),
        outputs=tensors(d["outputs"]),
        params=int(d["params"]),
        weight_file_bytes=int(d["weight_file_bytes"]),
        weight_read_bytes_per_token=int(d["weight_read_bytes_per_token"]),
        largest_tensor_bytes=int(d["largest_tensor_bytes"]),
        float16_weight_bytes=int(d["float16_weight_bytes"]),
        external_data_bytes=int(d["external_data_bytes"]),
        token_inputs=tuple(d["token_inputs"]),
        vocab_size=None if d["vocab_size"] is None else int(d["vocab_size"]),
        past_inputs=tuple(d["past_inputs"]),
        present_outputs=tuple(d["present_outputs"]),
        control_flow_ops=tuple(d["control_flow_ops"]),
        node_count=int(d["node_count"]),
        has_quantized_ops=bool(d.get("has_quantized_ops", False)),
        graph_name=str(d.get("graph_name", "")),
        image_size_hint=_hw(d.get("image_size_hint")),
    )


def _hw(v: Any) -> tuple[int, int] | None:
    if v is None:
        return None
    h, w = v
    return int(h), int(w)
