"""Profile a user .onnx on this host: every check that can refuse runs here first, then the graph worker
(``python -I -m edgefit.graphs.worker`` in an empty temp folder) optimizes, traces and times it.

    file ──inspect (one-line ModelFileError)──> --shape/--dim/--input checked against its inputs (UsageError)
         ──memory guard (weights twice: the whole session, then the single-node ones)──> worker ──> GraphProfile
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgefit import memory
from edgefit.errors import BenchError, EdgefitError, MemoryGuardError, ModelFileError, UsageError
from edgefit.graphs.profile import GraphProfile

if TYPE_CHECKING:
    from edgefit.bench.modelinfo import ModelFileInfo

DEFAULT_BUDGET_S = 8.0  # seconds of interleaved timing rounds (after building the sessions)
ROUNDS_MIN = 5
ROUNDS_MAX = 60
TIMEOUT_S = 600.0

_KINDS: dict[str, type[EdgefitError]] = {
    "usage": UsageError,
    "ModelFileError": ModelFileError,
    "MemoryGuardError": MemoryGuardError,
    "UsageError": UsageError,
}


def profile_graph(
    path: Path | str,
    *,
    shapes: dict[str, tuple[int, ...]] | None = None,
    dims: dict[str, int] | None = None,
    scalars: dict[str, float] | None = None,
    threads: int | None = None,
    budget_s: float = DEFAULT_BUDGET_S,
    progress: Callable[[str], None] | None = None,
) -> GraphProfile:
    """The graph as onnxruntime runs it here, its distinct nodes timed one by one (see ``edgefit.graphs.worker``).
    One-line EdgefitError for a file that is not a model, a bad --shape/--dim, a graph that cannot run, or too
    little memory."""
    from edgefit.bench.campaign import default_threads, dims_from_shapes, feed_bytes
    from edgefit.bench.estimate import file_peak_bytes
    from edgefit.bench.feeds import FeedSpec
    from edgefit.bench.modelfile import inspect_model_file

    shapes, dims, scalars = dict(shapes or {}), dict(dims or {}), dict(scalars or {})
    info = inspect_model_file(path)
    check_graph_flags(info, shapes, dims, scalars)
    dims = {**dims_from_shapes(info, shapes), **dims}
    spec = FeedSpec(dims=dims, scalars=scalars, shapes=shapes)
    memory.check_fits(2 * file_peak_bytes(info) + feed_bytes(info, spec), f"{info.path.name} (graph profiling)")
    job = {
        "path": str(info.path.resolve()),
        "dims": dims,
        "scalars": scalars,
        "shapes": {k: list(v) for k, v in shapes.items()},
        "threads": int(threads or default_threads()),
        "budget_s": float(budget_s),
        "rounds_min": ROUNDS_MIN,
        "rounds_max": ROUNDS_MAX,
    }
    raw = _run_worker(job, info.path.name, progress)
    prof = GraphProfile.from_dict(raw)
    return GraphProfile.from_dict({**prof.to_dict(), "sha256_16": info.sha256_16, "path": str(info.path)})


def check_graph_flags(
    info: ModelFileInfo, shapes: dict[str, tuple[int, ...]], dims: dict[str, int], scalars: dict[str, float]
) -> None:
    """--shape, --dim and --input against one file's inputs (one-line UsageError); nothing is run. ``fit`` and
    ``report`` call it for every file before they measure anything."""
    from edgefit.bench.campaign import check_shapes

    check_shapes([info], shapes)
    names = {t.name for t in info.inputs}
    for d, v in dims.items():
        if d not in info.symbolic_dims:
            valid = ", ".join(info.symbolic_dims) or "none (set unnamed dims with --shape NAME=AxB)"
            raise UsageError(f"--dim {d}={v}: {info.path.name} has no symbolic dim {d!r}; symbolic dims: {valid}")
    for name in scalars:
        if name not in names:
            raise UsageError(f"--input {name}: {info.path.name} has no input {name!r}; inputs: {', '.join(names)}")


def _run_worker(job: dict[str, Any], name: str, progress: Callable[[str], None] | None) -> dict[str, Any]:
    from edgefit.bench.executor import run_json_worker, worker_failure

    got: dict[str, Any] = {}

    def on_event(event: dict[str, Any]) -> None:
        kind = event.get("event")
        if kind == "progress" and progress:
            progress(f"{name}: {event.get('message', '')}")
        elif kind == "result":
            got["result"] = event["profile"]
        elif kind == "error":
            got["error"] = event

    with tempfile.TemporaryDirectory(prefix="edgefit-graph-") as cwd:
        # -I: isolated, nothing from the user's folder is imported (see edgefit.bench.executor.worker_command)
        rc, stderr = run_json_worker("edgefit.graphs.worker", {**job, "tmp_dir": cwd}, on_event, cwd=cwd,
                                     timeout_s=TIMEOUT_S)  # fmt: skip
    if "error" in got:
        error = got["error"]
        cls = _KINDS.get(str(error.get("kind")), BenchError)
        msg = str(error.get("message", "unknown error")).replace("\n", " ")
        if cls is BenchError:
            msg = f"{name}: profiling its graph failed: {msg}; re-run, or report it with the file if it repeats"
        elif not msg.startswith(name):
            msg = f"{name}: {msg}"
        raise cls(msg)
    if "result" not in got:
        raise BenchError(f"{name}: profiling its graph failed: {worker_failure(rc, stderr)}")
    return got["result"]
