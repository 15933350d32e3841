"""``build_model``: one ModelSpec + precision -> ``<name>.onnx`` (graph, small) + ``<name>.onnx.data`` (weights,
streamed) + ``<name>.onnx.json`` (sidecar: what was built, so a later call can reuse it).

Files are written under temporary names and renamed at the end, sidecar last: a killed build is never reused.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper

from edgefit.catalog import ModelSpec, get_precision, truncated, weight_bytes
from edgefit.errors import BuildError
from edgefit.ids import id_problem
from edgefit.onnxbuild.graph import MAX_ROPE_POSITIONS, MS, OPSET, PLANS, DecoderGraph, PrecisionPlan
from edgefit.onnxbuild.weights import ExternalDataWriter, data_path_for, dequantize
from edgefit.paths import cache_dir

# Bump when the graph or the weights change for the same (spec, precision, seed): cached files are rebuilt.
BUILDER_VERSION = 5
MAX_SEED = 2**32 - 1  # numpy.random.default_rng accepts any int >= 0; a 32-bit seed names every build we need
MAX_BLOCK_SIZE = 4096
_BASE_PROCESS_BYTES = 64 * 2**20  # python + numpy + onnx imported (edgefit.ladder.BASE_PROCESS_BYTES)
BUILD_PRECISIONS: tuple[str, ...] = tuple(PLANS)
# What onnxruntime's CPU provider really does with each precision (ONNXRUNTIME-NOTES.md, measured here).
RUNTIME_NOTES: dict[str, str] = {
    "fp32": "MatMul weights prepacked by MLAS: RAM ~1.0x the file's weight bytes",
    "fp16": "no fp16 MatMul on the CPU provider: weights are cast to fp32 at load (fp32 RAM and speed)",
    "int8": "MatMulNBits bits=8, accuracy_level=4 (int8 compute): RAM ~1.05x the file's weight bytes",
    "int4": "MatMulNBits bits=4, accuracy_level=4 (int8 compute): prepacked to ~1.27x the file's weight bytes",
}


@dataclass(frozen=True, slots=True)
class BuiltModel:
    path: Path  # the .onnx graph; weights in ``path`` + ".data"
    spec: ModelSpec  # as built: a ``layers=`` truncation is ``catalog.truncated(spec, layers)`` (id suffixed -l<n>)
    precision: str
    params: int  # logical parameters (a tied LM head counted once, as param_counts does)
    weight_file_bytes: int  # bytes of weight initializers as stored (alignment padding excluded)
    build_s: float  # 0.0 when reused from the cache
    seed: int = 0
    block_size: int = 32
    reused: bool = False
    data_file_bytes: int = 0  # size of the .onnx.data file (weights + 64-byte alignment padding)
    runtime_note: str = ""

    @property
    def data_path(self) -> Path:
        return data_path_for(self.path)


def build_model(
    spec: ModelSpec,
    precision: str,
    *,
    out: Path | None = None,
    layers: int | None = None,
    seed: int = 0,
    block_size: int = 32,
    accuracy_level: int = 4,
) -> BuiltModel:
    """Build (or reuse) a runnable ONNX decoder for ``spec`` with seeded random weights. Raises BuildError.

    ``accuracy_level`` (MatMulNBits only): 4 = int8 compute, as deployed on CPU (default); 0 = fp32 compute,
    slower, used by the tests to check the quantized weights exactly."""
    plan = PLANS.get(precision)
    if plan is None:
        get_precision(precision)  # an unknown name: CatalogError listing every precision
        raise BuildError(
            f"precision {precision!r} cannot be built as ONNX (it is accounted for, not built); "
            f"buildable precisions: {', '.join(BUILD_PRECISIONS)}"
        )
    if accuracy_level not in (0, 1, 2, 3, 4):
        raise BuildError(f"accuracy_level: expected 0-4 (MatMulNBits), found {accuracy_level}")
    if plan.quantized:
        plan = dataclasses.replace(plan, accuracy_level=accuracy_level)
    if (
        isinstance(block_size, bool)
        or not isinstance(block_size, int)
        or not 16 <= block_size <= MAX_BLOCK_SIZE
        or block_size & (block_size - 1)
    ):
        raise BuildError(
            f"block_size: expected a power of two from 16 to {MAX_BLOCK_SIZE} (MatMulNBits' rule), found {block_size!r}"
        )
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise BuildError(f"seed: expected an integer from 0 to {MAX_SEED} (numpy's seed range), found {seed!r}")
    built_spec = spec if layers is None else truncated(spec, layers)
    check_buildable(built_spec)
    if out is not None:
        path = Path(out)
        if path.is_dir():
            raise BuildError(f"{path}: is a directory; --out expects an .onnx file path such as {path / 'model.onnx'}")
    else:
        path = default_path(spec, precision, layers=layers, seed=seed, block_size=block_size)
        if plan.quantized and accuracy_level != 4:
            path = path.with_name(path.name.replace(f"-s{seed}.onnx", f"-a{accuracy_level}-s{seed}.onnx"))
    meta = _metadata(built_spec, precision, seed=seed, block_size=block_size)
    meta["accuracy_level"] = plan.accuracy_level if plan.quantized else None
    reused = _reuse(path, meta, built_spec)
    if reused is not None:
        return reused
    _check_resources(path, built_spec, precision)
    return _build(path, built_spec, plan, meta, seed=seed, block_size=block_size)


def _check_resources(path: Path, spec: ModelSpec, precision: str) -> None:
    """Refuse, before writing a byte, a model this machine cannot build: the builder holds about two copies of
    the largest float32 tensor (plus the interpreter), and the data file needs its weight bytes on disk."""
    from edgefit.memory import check_fits  # here: the builder is also imported by tools that never build

    largest = 4 * max(
        spec.vocab_size * spec.hidden_size,
        spec.hidden_size * spec.intermediate_size,
        spec.hidden_size * spec.num_heads * spec.head_dim,
    )
    check_fits(_BASE_PROCESS_BYTES + 2 * largest, f"building {spec.id} ({precision})")
    folder = next((p for p in (path.parent, *path.parent.parents) if p.exists()), Path("."))
    need = weight_bytes(spec, precision)
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return  # cannot tell: the write itself will say if the disk fills
    if need > free:
        raise BuildError(
            f"building {spec.id} ({precision}) writes ~{need / 2**30:.2f} GiB of weights, {folder} has "
            f"{free / 2**30:.2f} GiB free; free space, choose another --out, or build fewer --layers"
        )


_TEMP_NAME = re.compile(r"\.onnx(?:\.data|\.json)?\.tmp(\d+)$")


def remove_stale_temp_files(folder: Path) -> tuple[Path, ...]:
    """Delete ``*.onnx[.data|.json].tmp<pid>`` files of builds whose process is gone (a SIGKILL runs no cleanup);
    files of a live pid are left alone: that build may still be writing them."""
    removed = []
    try:
        entries = list(folder.iterdir())
    except OSError:
        return ()
    for entry in entries:
        m = _TEMP_NAME.search(entry.name)
        if m is None or int(m.group(1)) == os.getpid() or _pid_alive(int(m.group(1))):
            continue
        with contextlib.suppress(OSError):
            entry.unlink()
            removed.append(entry)
    return tuple(removed)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists, another user's
    return True


def default_path(spec: ModelSpec, precision: str, *, layers: int | None, seed: int, block_size: int = 32) -> Path:
    name = f"{spec.id}-{precision}"
    if layers is not None:
        name += f"-L{layers}"
    if block_size != 32 and PLANS[precision].quantized:
        name += f"-b{block_size}"
    folder = cache_dir() / "models"
    path = folder / f"{name}-s{seed}.onnx"
    # spec ids are checked where they enter (edgefit.ids); this is the last line before files are replaced
    if id_problem(spec.id) is not None or path.parent != folder or not path.resolve().is_relative_to(folder.resolve()):
        raise BuildError(f"model id {spec.id!r}: the built file would land outside {folder}; refused")
    return path


def check_buildable(spec: ModelSpec) -> None:
    """Refuse shapes the graph cannot express, naming the card and field."""
    where = f"{spec.path}: model {spec.id!r}" if spec.path else f"model {spec.id!r}"
    positive = ("hidden_size", "num_layers", "num_heads", "num_kv_heads", "head_dim", "intermediate_size", "vocab_size")
    for field in positive:
        value = getattr(spec, field)
        if not isinstance(value, int) or value < 1:
            raise BuildError(f"{where}: {field} must be a positive integer, found {value!r}")
    if spec.num_heads % spec.num_kv_heads:
        raise BuildError(
            f"{where}: num_kv_heads ({spec.num_kv_heads}) must divide num_heads ({spec.num_heads}) for grouped-query "
            "attention"
        )
    if spec.head_dim % 2:
        raise BuildError(f"{where}: head_dim must be even for rotary embeddings, found {spec.head_dim}")
    if spec.norms_per_layer not in (2, 4):
        raise BuildError(f"{where}: norms_per_layer must be 2 (Llama) or 4 (Gemma 2), found {spec.norms_per_layer}")
    if spec.max_context < 1:
        raise BuildError(f"{where}: max_context must be positive, found {spec.max_context}")


def spec_hash(spec: ModelSpec) -> str:
    """Hash of every field that changes the built graph or weights (not names, sources or notes)."""
    fields = (
        "hidden_size", "num_layers", "num_heads", "num_kv_heads", "head_dim", "intermediate_size", "vocab_size",
        "tied_embeddings", "attention_bias", "mlp_bias", "norms_per_layer", "max_context", "rope_theta", "norm_eps",
    )  # fmt: skip
    blob = json.dumps({f: getattr(spec, f) for f in fields}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _metadata(spec: ModelSpec, precision: str, *, seed: int, block_size: int) -> dict[str, Any]:
    return {
        "builder_version": BUILDER_VERSION,
        "spec_id": spec.id,
        "spec_hash": spec_hash(spec),
        "precision": precision,
        "num_layers": spec.num_layers,
        "seed": seed,
        "block_size": block_size,
    }


def _sidecar_path(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def _reuse(path: Path, meta: dict[str, Any], spec: ModelSpec) -> BuiltModel | None:
    sidecar = _sidecar_path(path)
    data = data_path_for(path)
    if not (path.is_file() and data.is_file() and sidecar.is_file()):
        return None
    try:
        stored = json.loads(sidecar.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    if not isinstance(stored, dict) or any(stored.get(k) != v for k, v in meta.items()):
        return None
    if stored.get("data_file_bytes") != data.stat().st_size:
        return None
    return BuiltModel(
        path=path,
        spec=spec,
        precision=meta["precision"],
        params=int(stored["params"]),
        weight_file_bytes=int(stored["weight_file_bytes"]),
        build_s=0.0,
        seed=meta["seed"],
        block_size=meta["block_size"],
        reused=True,
        data_file_bytes=int(stored["data_file_bytes"]),
        runtime_note=RUNTIME_NOTES[meta["precision"]],
    )


def _build(
    path: Path, spec: ModelSpec, plan: PrecisionPlan, meta: dict[str, Any], *, seed: int, block_size: int
) -> BuiltModel:
    t0 = time.perf_counter()
    precision = plan.name
    data = data_path_for(path)
    sidecar = _sidecar_path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BuildError(f"cannot create output folder {path.parent}: {exc.strerror}; choose another --out") from exc
    remove_stale_temp_files(path.parent)  # left by a build that was killed (SIGKILL runs no finally)
    tag = f".tmp{os.getpid()}"  # two processes building the same file do not write into each other's
    tmp_onnx, tmp_data = path.with_name(path.name + tag), data.with_name(data.name + tag)
    tmp_sidecar = sidecar.with_name(sidecar.name + tag)
    try:
        for stale in (sidecar, path, data):  # the sidecar first: a half-replaced build must not look reusable
            stale.unlink(missing_ok=True)
        with open(tmp_data, "wb") as f:
            writer = ExternalDataWriter(f, data.name)
            graph = DecoderGraph(spec, plan, writer, seed=seed, block_size=block_size).build(spec.num_layers)
        model = helper.make_model(
            graph,
            opset_imports=[helper.make_opsetid("", OPSET), helper.make_opsetid(MS, 1)],
            producer_name="edgefit",
            producer_version=str(BUILDER_VERSION),
        )
        model.ir_version = 10
        for key, value in (("edgefit.spec_id", spec.id), ("edgefit.precision", precision), ("edgefit.seed", str(seed))):
            entry = model.metadata_props.add()
            entry.key, entry.value = key, value
        tmp_onnx.write_bytes(model.SerializeToString())
        os.replace(tmp_data, data)
        os.replace(tmp_onnx, path)
    except BaseException as exc:  # interrupted or failed: leave no half-written files behind
        tmp_data.unlink(missing_ok=True)
        tmp_onnx.unlink(missing_ok=True)
        if isinstance(exc, MemoryError):
            raise BuildError(
                f"building {spec.id}: out of memory; build fewer --layers or a smaller model on this machine"
            ) from None
        if not isinstance(exc, OSError):
            raise
        raise BuildError(
            f"writing {path}: {exc.strerror or exc}; check free disk space or choose another --out"
        ) from exc
    data_file_bytes = data.stat().st_size
    build_s = time.perf_counter() - t0
    record = dict(meta)
    record.update(
        params=writer.weight_elements,
        weight_file_bytes=writer.weight_bytes,
        data_file_bytes=data_file_bytes,
        rope_positions=min(spec.max_context, MAX_ROPE_POSITIONS),
        build_s=round(build_s, 4),
        runtime_note=RUNTIME_NOTES[precision],
    )
    try:
        tmp_sidecar.write_text(json.dumps(record, indent=2) + "\n")
        os.replace(tmp_sidecar, sidecar)
    except OSError as exc:
        raise BuildError(f"writing {sidecar}: {exc.strerror or exc}; check free disk space") from None
    finally:
        tmp_sidecar.unlink(missing_ok=True)  # gone after a successful replace; never left after a failure
    return BuiltModel(
        path=path,
        spec=spec,
        precision=precision,
        params=writer.weight_elements,
        weight_file_bytes=writer.weight_bytes,
        build_s=build_s,
        seed=seed,
        block_size=block_size,
        data_file_bytes=data_file_bytes,
        runtime_note=RUNTIME_NOTES[precision],
    )


def read_weights(path: Path) -> dict[str, np.ndarray]:
    """The logical float32 weights of a built model, by name (``layers.0.attn.q_proj.weight`` as [in, out]),
    MatMulNBits weights dequantized: what the numpy reference forward pass runs on. Loads the whole model."""
    model = onnx.load(str(path), load_external_data=True)
    tensors = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    shapes = {
        n.input[1]: (dict((a.name, a.i) for a in n.attribute), n.input[2])
        for n in model.graph.node
        if n.op_type == "MatMulNBits"
    }
    out: dict[str, np.ndarray] = {}
    for name, arr in tensors.items():
        if name.startswith("rope.") or name.endswith(".scales"):
            continue
        if name in shapes:
            attrs, scales_name = shapes[name]
            w = dequantize(arr, tensors[scales_name], attrs["K"], attrs["bits"], attrs["block_size"])
            out[name.removesuffix(".qweight") + ".weight"] = w
        else:
            out[name] = arr.astype(np.float32)
    return out
