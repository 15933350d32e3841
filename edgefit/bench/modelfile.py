"""A user's .onnx file: validate it before anything loads it, and read what benchmarking needs from it.

Validation reads the protobuf with ``load_external_data=False`` (cheap: external weights stay on disk) and then
checks every external tensor's ``location``/``offset``/``length`` against the files next to the model, so a
broken or hostile file is refused with one line before onnxruntime ever maps it:

    file ──parse──> ModelProto ──structure──> every node input produced? opset present?
                        │
                        └──external tensors──> location relative, inside the model's folder, file exists,
                                               offset + length <= file size, length == dims x dtype size

The result, ``ModelFileInfo``, carries inputs/outputs (with symbolic dims), parameter and byte counts
(external data included), the token inputs and vocabulary inferred from the Gather they index, and the
past-KV inputs / present outputs that make a model a decoder.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper

from edgefit.bench.modelinfo import ModelFileInfo, TensorInfo
from edgefit.errors import ModelFileError

__all__ = ["ModelFileInfo", "TensorInfo", "file_sha256_16", "inspect_model_file"]

# Ops whose only purpose is to reshape/cast a token id on its way to the embedding Gather.
_PASS_THROUGH_OPS = frozenset({"Cast", "Reshape", "Unsqueeze", "Squeeze", "Flatten", "Identity"})
_CONTROL_FLOW_OPS = frozenset({"If", "Loop", "Scan"})
_QUANTIZED_OPS = frozenset(
    {"MatMulNBits", "MatMulInteger", "QLinearMatMul", "DynamicQuantizeMatMul", "QGemm", "DequantizeLinear"}
)
_PAST_PREFIXES = ("past_key_values", "past")


def inspect_model_file(path: Path | str, *, hash_file: bool = True) -> ModelFileInfo:
    """Validate ``path`` and describe it. Raises ModelFileError (one line: file, what, expected, found, fix)."""
    p = Path(path)
    model = _parse(p)
    _check_structure(model, p)
    _check_tensor_types(model, p)
    ext_bytes = _check_external_data(model, p)
    return _describe(model, p, ext_bytes, file_sha256_16(p) if hash_file else "")


# --- parsing and checks ----------------------------------------------------------------------------------


def _parse(p: Path) -> onnx.ModelProto:
    if not p.is_file():
        raise ModelFileError(f"{p}: no such file; expected a path to an .onnx model")
    size = p.stat().st_size
    if size == 0:
        raise ModelFileError(f"{p}: empty file (0 bytes); expected an ONNX model, re-export or re-download it")
    try:
        model = onnx.load(str(p), load_external_data=False)
    except Exception as exc:  # protobuf DecodeError and friends: the message is what matters
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ModelFileError(
            f"{p}: not a readable ONNX model ({size} bytes; protobuf parse failed: {first}); "
            "the file is truncated or not ONNX: re-export or re-download it"
        ) from None
    return model


def _check_structure(model: onnx.ModelProto, p: Path) -> None:
    g = model.graph
    if not model.opset_import or len(g.node) == 0 or len(g.output) == 0:
        raise ModelFileError(
            f"{p}: incomplete ONNX model (opset imports: {len(model.opset_import)}, nodes: {len(g.node)}, "
            f"outputs: {len(g.output)}; expected all > 0); the file is probably truncated: re-export it"
        )
    known = {i.name for i in g.input} | {t.name for t in g.initializer} | {""}
    for node in g.node:
        for name in node.input:
            if name not in known:
                raise ModelFileError(
                    f"{p}: node {node.name or node.op_type!r} reads {name!r}, which no input, initializer or "
                    "earlier node produces; the file is truncated or corrupt: re-export it"
                )
        known.update(node.output)


def _all_tensors(model: onnx.ModelProto) -> Iterator[TensorProto]:
    """Every TensorProto that holds weights: initializers and Constant/attribute tensors, subgraphs included."""

    def in_graph(g: onnx.GraphProto) -> Iterator[TensorProto]:
        yield from g.initializer
        for node in g.node:
            for a in node.attribute:
                if a.type == onnx.AttributeProto.TENSOR:
                    yield a.t
                elif a.type == onnx.AttributeProto.TENSORS:
                    yield from a.tensors
                elif a.type == onnx.AttributeProto.GRAPH:
                    yield from in_graph(a.g)
                elif a.type == onnx.AttributeProto.GRAPHS:
                    for sg in a.graphs:
                        yield from in_graph(sg)

    yield from in_graph(model.graph)


def _all_nodes(g: onnx.GraphProto) -> Iterator[onnx.NodeProto]:
    for node in g.node:
        yield node
        for a in node.attribute:
            if a.type == onnx.AttributeProto.GRAPH:
                yield from _all_nodes(a.g)
            elif a.type == onnx.AttributeProto.GRAPHS:
                for sg in a.graphs:
                    yield from _all_nodes(sg)


_VALID_DATA_TYPES = frozenset(v for v in TensorProto.DataType.values() if v != TensorProto.UNDEFINED)


def _check_tensor_types(model: onnx.ModelProto, p: Path) -> None:
    """Every stored tensor has a data type this onnx knows (a crafted 999 would fail deep inside numpy)."""
    for t in _all_tensors(model):
        if t.data_type not in _VALID_DATA_TYPES:
            raise ModelFileError(
                f"{p}: tensor {t.name!r} has data_type {t.data_type}, not a valid ONNX tensor type; the file is "
                "corrupt or from a newer ONNX: re-export it"
            )
        if any(d < 0 for d in t.dims):
            raise ModelFileError(f"{p}: tensor {t.name!r} has negative dims {list(t.dims)}; the file is corrupt")


def _int_attr(node: onnx.NodeProto, name: str, default: int) -> int:
    """An integer attribute of ``node``; ``default`` when absent or not an integer (a hostile file may put a
    string or a graph there)."""
    for a in node.attribute:
        if a.name == name:
            return int(a.i) if a.type == onnx.AttributeProto.INT else default
    return default


def _is_external(t: TensorProto) -> bool:
    return t.HasField("data_location") and t.data_location == TensorProto.EXTERNAL


def _elem_size(data_type: int) -> int:
    if data_type in (TensorProto.INT4, TensorProto.UINT4):
        return 1  # packed two per byte; sizes of these are checked loosely below
    return int(np.dtype(helper.tensor_dtype_to_np_dtype(data_type)).itemsize)


def _numel(t: TensorProto) -> int:
    n = 1
    for d in t.dims:
        n *= int(d)
    return n


def _check_external_data(model: onnx.ModelProto, p: Path) -> int:
    """Each external tensor must point inside the model's folder, at bytes that exist. Returns their total."""
    folder = p.resolve().parent
    total = 0
    sizes: dict[Path, int] = {}
    for t in _all_tensors(model):
        if not _is_external(t):
            continue
        entry = {e.key: e.value for e in t.external_data}
        loc = entry.get("location", "")
        where = f"{p}: tensor {t.name!r} external data"
        if not loc:
            raise ModelFileError(f"{where} has no 'location'; expected a file name next to the model")
        if "\x00" in loc:
            raise ModelFileError(f"{where} location {loc!r} holds a NUL byte; refused (expected a file name)")
        if os.path.isabs(loc) or loc.startswith(("/", "\\")) or (len(loc) > 1 and loc[1] == ":"):
            raise ModelFileError(
                f"{where} location {loc!r} is absolute; expected a path relative to {folder} (re-save the model "
                "with a relative location)"
            )
        target = (folder / loc).resolve()
        if not target.is_relative_to(folder):
            raise ModelFileError(
                f"{where} location {loc!r} escapes the model's folder {folder}; refused (expected a file inside it)"
            )
        if target not in sizes:
            if not target.is_file():
                raise ModelFileError(f"{where} file {loc!r} is missing (expected {target}); copy it next to the model")
            sizes[target] = target.stat().st_size
        fsize = sizes[target]
        try:
            offset = int(entry.get("offset", "0"))
            expected = _numel(t) * _elem_size(t.data_type)
            length = int(entry["length"]) if "length" in entry else fsize - offset
        except ValueError:
            raise ModelFileError(f"{where} has a non-integer offset/length: {entry}") from None
        if t.data_type in (TensorProto.INT4, TensorProto.UINT4):
            expected = (_numel(t) + 1) // 2
        if offset < 0 or offset + length > fsize:
            raise ModelFileError(
                f"{where} wants bytes {offset}..{offset + length} of {loc!r}, which has {fsize} bytes; "
                "the data file is truncated or belongs to another model"
            )
        if length != expected:
            raise ModelFileError(
                f"{where} length {length} bytes, expected {expected} for dims {list(t.dims)}; the data file "
                "belongs to another export"
            )
        total += length
    return total


# --- description ------------------------------------------------------------------------------------------


def _tensor_bytes(t: TensorProto) -> int:
    if _is_external(t):
        entry = {e.key: e.value for e in t.external_data}
        if "length" in entry:
            return int(entry["length"])
    if t.raw_data:
        return len(t.raw_data)
    if t.data_type in (TensorProto.INT4, TensorProto.UINT4):
        return (_numel(t) + 1) // 2
    return _numel(t) * _elem_size(t.data_type)


def _value_info(v: onnx.ValueInfoProto) -> TensorInfo:
    tt = v.type.tensor_type
    try:
        dtype = np.dtype(helper.tensor_dtype_to_np_dtype(tt.elem_type)).name
    except Exception:
        dtype = f"onnx:{tt.elem_type}"
    shape: tuple[int | str | None, ...] | None = None
    if tt.HasField("shape"):
        dims: list[int | str | None] = []
        for d in tt.shape.dim:
            # Dynamic dims come in several spellings: no field, an empty or "?" dim_param (paddle2onnx, torch's
            # dynamo), a dim_value of -1 (old paddle exports). All are "unnamed": --shape reaches them, --dim not.
            if d.HasField("dim_value") and d.dim_value >= 0:
                dims.append(int(d.dim_value))
            elif d.HasField("dim_param") and d.dim_param.strip() not in ("", "?"):
                dims.append(d.dim_param)
            else:
                dims.append(None)
        shape = tuple(dims)
    return TensorInfo(name=v.name, dtype=dtype, shape=shape)


def _describe(model: onnx.ModelProto, p: Path, ext_bytes: int, sha: str) -> ModelFileInfo:
    g = model.graph
    init_names = {t.name for t in g.initializer}
    inputs = tuple(_value_info(v) for v in g.input if v.name not in init_names)
    outputs = tuple(_value_info(v) for v in g.output)
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)

    nodes = list(_all_nodes(g))
    consumers: dict[str, list[tuple[onnx.NodeProto, int]]] = {}
    for node in nodes:
        for i, name in enumerate(node.input):
            consumers.setdefault(name, []).append((node, i))

    # Weights: everything stored, and what a forward pass reads (a Gather table is only indexed, not streamed).
    tensors = list(_all_tensors(model))
    nbits_k_n: dict[str, int] = {}
    for node in nodes:
        if node.op_type == "MatMulNBits" and len(node.input) > 1:
            nbits_k_n[node.input[1]] = max(0, _int_attr(node, "K", 0)) * max(0, _int_attr(node, "N", 0))
    quant_aux = {n.input[i] for n in nodes if n.op_type == "MatMulNBits" for i in (2, 3) if len(n.input) > i}
    params = weight_bytes = read_bytes = largest = fp16_bytes = 0
    for t in tensors:
        nbytes = _tensor_bytes(t)
        weight_bytes += nbytes
        largest = max(largest, nbytes)
        if t.data_type in (TensorProto.FLOAT16, TensorProto.BFLOAT16):
            fp16_bytes += nbytes
        if t.name in nbits_k_n:
            params += nbits_k_n[t.name]
        elif t.name not in quant_aux:
            params += _numel(t)
        uses = consumers.get(t.name, [])
        only_gathered = bool(uses) and all(n.op_type == "Gather" and i == 0 for n, i in uses)
        if not only_gathered:
            read_bytes += nbytes

    token_inputs, vocab = _token_inputs(inputs, consumers, {t.name: t for t in g.initializer})
    past, present = _kv_pairs(inputs, outputs)
    control = sorted({n.op_type for n in nodes if n.op_type in _CONTROL_FLOW_OPS})
    return ModelFileInfo(
        path=p,
        sha256_16=sha,
        opset=int(opset),
        inputs=inputs,
        outputs=outputs,
        params=params,
        weight_file_bytes=weight_bytes,
        weight_read_bytes_per_token=read_bytes,
        largest_tensor_bytes=largest,
        float16_weight_bytes=fp16_bytes,
        external_data_bytes=ext_bytes,
        token_inputs=token_inputs,
        vocab_size=vocab,
        past_inputs=past,
        present_outputs=present,
        control_flow_ops=tuple(control),
        node_count=len(nodes),
        has_quantized_ops=any(n.op_type in _QUANTIZED_OPS for n in nodes),
        graph_name=g.name,
        image_size_hint=_image_size_hint(model),
    )


# Metadata keys exporters use for the image size a model was trained at: ultralytics writes imgsz "[640, 640]",
# others image_size / input_size / img_size, as one number or a pair (height, width).
_IMAGE_SIZE_KEYS = ("imgsz", "image_size", "input_size", "img_size", "imagesize")


def _image_size_hint(model: onnx.ModelProto) -> tuple[int, int] | None:
    for prop in model.metadata_props:
        if prop.key.lower() not in _IMAGE_SIZE_KEYS:
            continue
        nums = [int(n) for n in re.findall(r"\d+", prop.value[:200])]
        sizes = [n for n in nums if 8 <= n <= 8192][:2]
        if len(sizes) == 1:
            return sizes[0], sizes[0]
        if len(sizes) == 2:
            return sizes[0], sizes[1]
    return None


def _token_inputs(
    inputs: tuple[TensorInfo, ...],
    consumers: dict[str, list[tuple[onnx.NodeProto, int]]],
    inits: dict[str, TensorProto],
) -> tuple[tuple[str, ...], int | None]:
    """Integer inputs that reach a Gather's indices through casts/reshapes; vocab = that Gather's table rows."""
    found: list[str] = []
    vocab: int | None = None
    for t in inputs:
        if not t.dtype.startswith(("int", "uint")):
            continue
        frontier, seen = [t.name], set()
        while frontier:
            name = frontier.pop()
            if name in seen:
                continue
            seen.add(name)
            for node, idx in consumers.get(name, []):
                if node.op_type == "Gather" and idx == 1:
                    table = inits.get(node.input[0])
                    axis = _int_attr(node, "axis", 0)
                    if table is not None and len(table.dims) >= 2 and axis == 0:
                        rows = int(table.dims[0])
                        vocab = rows if vocab is None else min(vocab, rows)
                        if t.name not in found:
                            found.append(t.name)
                elif node.op_type in _PASS_THROUGH_OPS and idx == 0:
                    frontier.extend(node.output)
    return tuple(found), vocab


def _kv_pairs(
    inputs: tuple[TensorInfo, ...], outputs: tuple[TensorInfo, ...]
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """past_key_values.N.key -> present.N.key, past.N -> present.N, past_N -> present_N; else by order."""
    past = [t.name for t in inputs if t.name.startswith(_PAST_PREFIXES) and t.dtype.startswith("float")]
    if not past:
        return (), ()
    out_names = [t.name for t in outputs]
    presents: list[str] = []
    for name in past:
        for prefix in _PAST_PREFIXES:
            if name.startswith(prefix):
                candidate = "present" + name[len(prefix) :]
                break
        if candidate not in out_names:
            break
        presents.append(candidate)
    if len(presents) != len(past):
        by_order = [n for n in out_names if n.startswith("present")]
        presents = by_order if len(by_order) == len(past) else []
    return tuple(past), tuple(presents)


def file_sha256_16(p: Path) -> str:
    h = hashlib.sha256()
    with p.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:16]
