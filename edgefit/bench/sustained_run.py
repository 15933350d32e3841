"""`edgefit bench --sustained SECONDS --model ID|FILE.onnx`: the campaign side of sustained mode.

    resolve the model (ladder rung id, catalog id or card, or a user .onnx) ─> memory guard ─> build (cached)
    ─> one worker: decode at SUSTAINED_DEPTH tokens of KV (a decoder) or one inference, back to back for
       SECONDS ─> one Measurement, phase "sustained", with the SustainedSeries and the power readings

The run is stored like any bench run (kind "sustained"); ``sustained_factor`` gives the latest sustained/burst
ratio of a host, the per-device factor a verdict can apply to a burst prediction.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from edgefit import catalog
from edgefit.bench.campaign import (
    LADDER_KV_FILL,
    BenchSummary,
    Guard,
    _campaign,
    _check_names,
    _default_guard,
    _file_target,
    _finish,
    _Target,
    check_shapes,
    default_threads,
    dims_from_shapes,
)
from edgefit.bench.executor import Executor, ctrl_c_sets
from edgefit.bench.loop import MeasurePlan, MeasurePolicy, PhasePlan
from edgefit.bench.measurement import Measurement, Phase
from edgefit.bench.modelfile import inspect_model_file
from edgefit.bench.powerhook import PowerSetup
from edgefit.catalog import ModelSpec
from edgefit.errors import UsageError
from edgefit.ladder import Rung, load_ladder
from edgefit.paths import default_db_path

SUSTAINED_DEPTH = 128  # KV tokens before each decoded token (a short chat turn; the ladder's middle depth)
FILE_DEPTH = 64
MAX_DURATION_S = 24 * 3600.0


def resolve_spec(model: str) -> ModelSpec:
    """A ladder rung id (any ladder set), else a catalog id or a card .toml (CatalogError lists the ids)."""
    for rung in load_ladder("full"):
        if rung.spec.id == model:
            return rung.spec
    return catalog.load_spec(model)


def sustained_plan(duration_s: float, decoder: bool, depth: int) -> MeasurePlan:
    phase = PhasePlan(Phase.SUSTAINED, 1 if decoder else 0, depth if decoder else 0)
    return MeasurePlan((phase,), MeasurePolicy(budget_s=duration_s, warmups=3))


def bench_sustained(
    model: str | Path,
    duration_s: float,
    precision: str = "fp32",
    threads: int | None = None,
    db_path: Path | None = None,
    progress: bool = False,
    *,
    executor: Executor | None = None,
    guard: Guard = _default_guard,
    build: Callable[[ModelSpec, str], Any] | None = None,
    power: PowerSetup | None = None,
    dims: dict[str, int] | None = None,
    inputs: dict[str, float] | None = None,
    shapes: dict[str, tuple[int, ...]] | None = None,
) -> BenchSummary:
    """Run one model for ``duration_s`` seconds of steps and store the time series. Bad input (unknown model or
    precision, a file that is not ONNX, too large for memory, a --shape/--dim/--input the file does not have) is
    refused before the database is opened. ``dims``/``inputs``/``shapes`` apply to a model file only."""
    t0 = time.perf_counter()
    if not 0 < duration_s <= MAX_DURATION_S:
        raise UsageError(f"--sustained {duration_s}: expected seconds in (0, {MAX_DURATION_S:.0f}]")
    threads = threads or default_threads()
    db = Path(db_path) if db_path is not None else default_db_path()
    text = str(model)
    if text.endswith(".onnx"):
        info = inspect_model_file(text)
        dims, inputs, shapes = dict(dims or {}), dict(inputs or {}), dict(shapes or {})
        _check_names([info], dims, inputs)
        check_shapes([info], shapes)
        plan = sustained_plan(duration_s, info.is_decoder, FILE_DEPTH)
        estimate = None
        target = _file_target(info, plan, {**dims_from_shapes(info, shapes), **dims}, inputs, "prefill", shapes)
    else:
        if dims or inputs or shapes:
            raise UsageError("--shape, --dim and --input apply to model files, not to a catalog or ladder --model")
        spec = resolve_spec(text)
        catalog.get_precision(precision)  # unknown -> CatalogError listing them
        rung = Rung(spec, (precision,))
        plan = sustained_plan(duration_s, True, min(SUSTAINED_DEPTH, spec.max_context - 1))
        estimate = max(
            rung.estimated_build_bytes(precision),
            rung.estimated_run_bytes(precision, context_tokens=SUSTAINED_DEPTH, prompt_tokens=0),
        )
        guard(estimate, f"{spec.id} {precision}")
        if build is None:
            from edgefit.onnxbuild import build_model

            build = build_model
        built = build(spec, precision)
        target = _Target(
            model_id=spec.id,
            precision=precision,
            path=Path(built.path),
            params=int(built.params),
            weight_file_bytes=int(built.weight_file_bytes),
            weight_read_bytes_per_token=catalog.weight_read_bytes_per_token(spec, precision),
            plan=plan,
            layers=spec.num_layers,
            hidden_size=spec.hidden_size,
            kv_fill=LADDER_KV_FILL,
        )
    with _campaign(db, threads, "sustained", executor, progress, plan.policy, 2, power) as session:
        with ctrl_c_sets(session.stop):
            session.measure(target, estimate=estimate, build_s=None)
        return _finish(session, "sustained", db, t0, [])


def sustained_factor(measurements: Sequence[Measurement]) -> float | None:
    """The latest sustained/burst ratio among ``measurements`` (one host's), or None without a sustained run."""
    runs = [m for m in measurements if m.phase == Phase.SUSTAINED and m.sustained is not None]
    if not runs:
        return None
    latest = max(runs, key=lambda m: m.started_at or "")
    assert latest.sustained is not None
    return latest.sustained.sustained_ratio
