"""Bench campaigns: the quick/full ladder (``run_ladder``) and a user's .onnx files (``bench_file``).

    run_ladder:  for rung x precision:  estimate peak ─> check_fits ─(refused: skipped, said so)
                                        ─> build (cached) ─> worker ─> each result -> Measurement -> Store
    bench_file:  validate every file, --dim/--input names and the memory guard FIRST (bad input leaves the DB
                 untouched), then the same measuring path.

Every Measurement is stored the moment its worker line arrives (a kill keeps the finished ones). Ctrl-C
finishes the current measurement, stores it, marks the run ``interrupted`` and returns (``interrupted`` set).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import psutil

from edgefit import catalog, memory, stats
from edgefit.bench.estimate import file_peak_bytes
from edgefit.bench.executor import Executor, ModelJob, StopFlag, WorkerExecutor, ctrl_c_sets
from edgefit.bench.feeds import FeedSpec
from edgefit.bench.loop import MeasurePlan, MeasurePolicy, PhasePlan, PhaseResult
from edgefit.bench.measurement import Measurement, Phase
from edgefit.bench.modelfile import ModelFileInfo, file_sha256_16, inspect_model_file
from edgefit.bench.powerhook import OFF, PowerSetup, energy_dict, setup_power
from edgefit.bench.progress import BenchProgress, make_progress
from edgefit.bench.quality import QualityContext, assess
from edgefit.bench.runner import PROVIDER
from edgefit.bench.series import SustainedSeries
from edgefit.catalog import ModelSpec
from edgefit.errors import EdgefitError, MemoryGuardError, UsageError
from edgefit.ladder import Rung, load_ladder
from edgefit.paths import default_db_path
from edgefit.units import MIB

LADDER_PROMPTS = (16, 64, 128)
LADDER_DEPTHS = (0, 128, 512)  # KV depth before the timed token; 0 = empty cache (llama-bench -d 0)
# How the ladder fills the KV cache before timing a decode step. "prefill" runs a real 512-token prompt and
# keeps its present outputs (llama-bench -d); "synthetic" fills the same tensors with noise. The timed step does
# the same work either way (attention reads every cached position whatever its value; no op branches on data),
# but the real fill costs ~4x the 128-token prefill per model: 8-20 s for the largest quick rungs on this busy
# 2-core VM, which alone breaks the 120 s quick-ladder budget. User files keep "prefill" (their depths are small
# and their attention unknown); `edgefit bench --kv-fill prefill` restores it for the ladder.
LADDER_KV_FILL = "synthetic"
FILE_PROMPTS = (16, 64)
FILE_DEPTHS = (0, 64)
# Per-measurement budget (seconds of timed samples). With 3 prefill + 3 decode measurements per model and
# 12 quick-ladder models, 0.5 s keeps `edgefit bench --ladder quick` (builds included) under 120 s on 2 cores.
DEFAULT_BUDGET_S = 0.5
# A user's file gets as long as it needs to reach the ±2 % target, up to this cap per measurement (--budget-s):
# a median's 95 % interval of ±2 % takes ~40 samples at a CV of 5 % (half-width ~ 1.96 x 1.25 x CV / sqrt(n)),
# so 60 s reaches it for models up to ~1 s per inference on a quiet host, and a fast model stops in a fraction
# of that. (The ladder keeps DEFAULT_BUDGET_S: 12 models x 6 measurements must fit in two minutes.)
FILE_BUDGET_S = 60.0
# ... and the budget, not a sample count, is what stops a fast model on a noisy host (2000 samples of a 6 ms model
# on a busy 2-core VM left its median at ±8 %; 10^4 floats are nothing to keep).
FILE_MAX_SAMPLES = 10_000


def default_threads() -> int:
    """Physical cores (hyper-threads share the FPUs and memory port: more threads only add noise)."""
    return int(psutil.cpu_count(logical=False) or os.cpu_count() or 1)


@dataclass(frozen=True, slots=True)
class ModelOutcome:
    model_id: str
    precision: str
    status: str  # measured | skipped (memory guard) | failed | interrupted
    message: str = ""
    path: str | None = None
    estimated_peak_bytes: int | None = None
    measured_peak_rss_bytes: int | None = None
    build_s: float | None = None
    measurements: int = 0
    inputs: tuple[str, ...] = ()  # a user model's inputs as fed, e.g. "x[1, 3, 640, 640] (image, NCHW, default)"


@dataclass(frozen=True, slots=True)
class BenchSummary:
    run_id: str | None
    db_path: str
    kind: str  # "ladder:quick", "ladder:full", "file"
    threads: int
    outcomes: tuple[ModelOutcome, ...]
    measurements: tuple[Measurement, ...]
    interrupted: bool
    wall_s: float
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "db_path": self.db_path,
            "kind": self.kind,
            "threads": self.threads,
            "interrupted": self.interrupted,
            "wall_s": self.wall_s,
            "notes": list(self.notes),
            "models": [
                {
                    "model_id": o.model_id,
                    "precision": o.precision,
                    "status": o.status,
                    "message": o.message,
                    "path": o.path,
                    "estimated_peak_bytes": o.estimated_peak_bytes,
                    "measured_peak_rss_bytes": o.measured_peak_rss_bytes,
                    "build_s": o.build_s,
                    "measurements": o.measurements,
                    "inputs": list(o.inputs),
                }
                for o in self.outcomes
            ],
            "measurements": [measurement_summary(m) for m in self.measurements],
        }


def measurement_summary(m: Measurement) -> dict[str, Any]:
    """One measurement for JSON: identity, statistics of its raw samples (seconds), memory, warnings."""
    s = stats.summarize(m.samples_s)
    return {
        "model_id": m.model_id,
        "precision": m.precision,
        "phase": m.phase.value,
        "prompt_tokens": m.prompt_tokens,
        "context_tokens": m.context_tokens,
        "threads": m.threads,
        "samples": s.n,
        "median_s": s.median_s,
        "ci95_low_s": s.ci95_low_s,
        "ci95_high_s": s.ci95_high_s,
        "iqr_s": s.iqr_s,
        "cv": s.cv if s.n > 1 else None,
        "stop_reason": m.stop_reason,
        "load_s": m.load_s,
        "peak_rss_bytes": m.peak_rss_bytes,
        "steady_rss_bytes": m.steady_rss_bytes,
        "weight_file_bytes": m.weight_file_bytes,
        "weight_read_bytes_per_token": m.weight_read_bytes_per_token,
        "probe_bandwidth_bytes_per_s": m.probe_bandwidth_bytes_per_s,
        "warnings": [{"code": w.code.value, "value": w.value, "threshold": w.threshold, "message": w.message}
                     for w in m.warnings],
        "power": [r.to_dict() for r in m.power],  # measured here, one reading per sensor; [] = none readable
        "energy": energy_dict(m),
        "sustained": None if m.sustained is None else m.sustained.to_dict(),
    }  # fmt: skip


@dataclass(frozen=True, slots=True)
class _Target:
    """One model to measure, everything the Measurement rows need besides the samples."""

    model_id: str
    precision: str
    path: Path
    params: int
    weight_file_bytes: int
    weight_read_bytes_per_token: int
    plan: MeasurePlan
    layers: int | None = None
    hidden_size: int | None = None
    dims: dict[str, int] = field(default_factory=dict)
    scalars: dict[str, float] = field(default_factory=dict)
    kv_fill: str = "prefill"
    info: ModelFileInfo | None = None  # user files: inspected already (the ladder's are inspected by the executor)
    shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)  # --shape NAME=AxB


def decoder_plan(
    policy: MeasurePolicy, prompts: Sequence[int], depths: Sequence[int], max_context: int | None = None
) -> MeasurePlan:
    limit = max_context if max_context is not None else 1 << 30
    phases = [PhasePlan(Phase.PREFILL, p, 0) for p in prompts if p <= limit]
    phases += [PhasePlan(Phase.DECODE, 1, d) for d in depths if d + 1 <= limit]
    return MeasurePlan(phases=tuple(phases), policy=policy)


class _Session:
    """Shared by both campaigns: store each result as it arrives, progress, Ctrl-C, outcomes."""

    def __init__(self, store: Any, run_id: str, host: str, threads: int, executor: Executor, progress: BenchProgress,
                 policy: MeasurePolicy, power: PowerSetup = OFF) -> None:  # fmt: skip
        self.store, self.run_id, self.host, self.threads = store, run_id, host, threads
        self.power = power
        self.executor, self.progress, self.policy = executor, progress, policy
        self.stop = StopFlag()
        self.measurements: list[Measurement] = []
        self.outcomes: list[ModelOutcome] = []
        self.llc = _llc_bytes()
        self.ref_probe: float | None = None
        self.inputs_used: dict[str, tuple[str, ...]] = {}  # model id -> its inputs as fed (user models' runs)

    def measure(self, t: _Target, *, estimate: int | None, build_s: float | None) -> None:
        job = ModelJob(t.path, self.threads, t.plan, dict(t.dims), dict(t.scalars), t.kv_fill, t.info,
                       self.power.interval_s, shapes=dict(t.shapes))  # fmt: skip
        model_hash = t.info.sha256_16 if t.info is not None and t.info.sha256_16 else file_sha256_16(t.path)
        state: dict[str, Any] = {"load_s": None, "count": 0, "peak": None}
        self.progress.describe(f"{t.model_id} {t.precision}")

        def on_result(r: PhaseResult) -> None:
            if r.phase == Phase.LOAD.value:
                state["load_s"] = r.samples_s[0]
            if r.inputs:
                self.inputs_used[t.model_id] = r.inputs
            if self.ref_probe is None and r.probe_bandwidth_bytes_per_s:
                self.ref_probe = r.probe_bandwidth_bytes_per_s  # drift is judged against the run's first probe
            ctx = QualityContext(t.weight_read_bytes_per_token, self.llc, self.ref_probe, self.policy.target_rel_ci)
            m = Measurement(
                model_id=t.model_id,
                model_hash=model_hash,
                precision=t.precision,
                threads=self.threads,
                provider=PROVIDER,
                phase=Phase(r.phase),
                prompt_tokens=r.prompt_tokens,
                context_tokens=r.context_tokens,
                samples_s=r.samples_s,
                warmup_samples_s=r.warmup_samples_s,
                params=t.params,
                weight_file_bytes=t.weight_file_bytes,
                weight_read_bytes_per_token=t.weight_read_bytes_per_token,
                peak_rss_bytes=r.peak_rss_bytes,
                steady_rss_bytes=r.steady_rss_bytes,
                load_s=state["load_s"],
                stop_reason=r.stop_reason,
                host_fingerprint=self.host,
                warnings=assess(r, ctx),
                probe_bandwidth_bytes_per_s=r.probe_bandwidth_bytes_per_s,
                run_id=self.run_id,
                started_at=r.started_at,
                layers=t.layers,
                hidden_size=t.hidden_size,
                power=self.power.readings(r.power),
                sustained=None if r.sustained is None else SustainedSeries.from_dict(r.sustained),
            )
            self.store.add_measurement(m)
            self.measurements.append(m)
            state["count"] += 1
            state["peak"] = max(state["peak"] or 0, r.peak_rss_bytes or 0) or None
            self.progress.advance()

        planned = 1 + len(t.plan.phases)
        status, message = "measured", ""
        try:
            self.executor.run(job, on_result, self.stop)
        except EdgefitError as exc:
            status, message = "failed", str(exc)
        if status == "measured" and state["count"] < planned:
            status = "interrupted" if self.stop.requested else "failed"
            message = message or f"{state['count']} of {planned} measurements done"
        self.progress.grow(state["count"] - planned)  # what was planned but not measured leaves the ETA
        self.outcomes.append(
            ModelOutcome(t.model_id, t.precision, status, message, str(t.path), estimate, state["peak"], build_s,
                         state["count"], self.inputs_used.get(t.model_id, ()))
        )  # fmt: skip

    def skip(self, model_id: str, precision: str, message: str, estimate: int | None, planned: int) -> None:
        self.outcomes.append(ModelOutcome(model_id, precision, "skipped", message, None, estimate))
        self.progress.grow(-planned)


def _llc_bytes() -> int | None:
    from edgefit import probes

    return probes.last_level_cache_bytes()


def _probe(duration_s: float) -> float | None:
    from edgefit import probes

    try:
        return float(probes.quick_bandwidth(duration_s=duration_s))
    except MemoryError:  # the probe's arrays did not fit: the measurement goes on without a drift reference
        return None


def _release_probe() -> None:
    from edgefit import probes

    probes.release_buffers()


Guard = Callable[[int, str], object]


def _default_guard(estimate: int, what: str) -> object:
    return memory.check_fits(estimate, what)


def _open_run(db_path: Path, threads: int, kind: str) -> tuple[Any, str, str]:
    from edgefit.bench.env import capture_environment
    from edgefit.store import Store

    env = capture_environment(threads=threads)
    store = Store(db_path)
    try:
        run_id = store.start_run(env, kind)
    except BaseException:
        store.close()
        raise
    return store, run_id, env.host_fingerprint


@contextmanager
def _campaign(
    db_path: Path,
    threads: int,
    kind: str,
    executor: Executor | None,
    progress: bool | BenchProgress,
    policy: MeasurePolicy,
    steps: int,
    power: PowerSetup | None = None,
) -> Iterator[_Session]:
    """Open a run and its measuring session for ``run_ladder`` / ``bench_file``. Whatever the body raises
    (Ctrl-C included) marks the run interrupted, keeping every measurement already stored; the progress bar, the
    database and the bandwidth probe's buffers are released in every case."""
    bar = progress if not isinstance(progress, bool) else make_progress(progress)
    own_probe = executor is None
    ex = executor or WorkerExecutor(probe=_probe)
    store, run_id, host = _open_run(db_path, threads, kind)
    try:
        # Sensors and idle power just before the first model; an injected executor (tests) measures none
        # unless a PowerSetup is given.
        pw = power if power is not None else (setup_power() if own_probe else OFF)
        bar.start(steps)
        yield _Session(store, run_id, host, threads, ex, bar, policy, pw)
    except BaseException:
        store.finish_run(run_id, "interrupted")
        raise
    finally:
        bar.stop()
        store.close()
        if own_probe:
            _release_probe()


def _finish(session: _Session, kind: str, db_path: Path, t0: float, notes: list[str]) -> BenchSummary:
    interrupted = session.stop.requested
    status = "interrupted" if interrupted else "finished"
    if not interrupted and session.outcomes and all(o.status == "failed" for o in session.outcomes):
        status = "failed"
    session.store.finish_run(session.run_id, status)
    if session.power.note:
        notes = [*notes, session.power.note]
    return BenchSummary(
        run_id=session.run_id,
        db_path=str(db_path),
        kind=kind,
        threads=session.threads,
        outcomes=tuple(session.outcomes),
        measurements=tuple(session.measurements),
        interrupted=interrupted,
        wall_s=time.perf_counter() - t0,
        notes=tuple(notes),
    )


def run_ladder(
    ladder: str = "quick",
    precisions: Sequence[str] = ("fp32", "int8", "int4"),
    threads: int | None = None,
    db_path: Path | None = None,
    progress: bool | BenchProgress = True,
    *,
    budget_s: float = DEFAULT_BUDGET_S,
    kv_fill: str = LADDER_KV_FILL,
    rungs: Iterable[Any] | None = None,
    executor: Executor | None = None,
    guard: Guard = _default_guard,
    build: Callable[[ModelSpec, str], Any] | None = None,
    power: PowerSetup | None = None,
) -> BenchSummary:
    """Measure every rung x precision of ``ladder`` (``models/ladder.toml``), or of ``rungs`` (objects with
    ``spec`` and ``precisions``) when given. ``executor``/``guard``/``build`` are seams for tests (a
    ScriptedRunner, a tiny memory limit, a fake builder); ``power`` a PowerSetup (default: this machine's sensors
    and idle power when measuring in workers, none with an injected executor)."""
    t0 = time.perf_counter()
    threads = threads or default_threads()
    db = Path(db_path) if db_path is not None else default_db_path()
    for p in precisions:
        catalog.get_precision(p)  # unknown precision -> CatalogError listing the valid ones
    # Any object with ``spec`` and ``precisions`` is a rung (predict's held-out models are); the Rung wrapper
    # gives it the ladder's memory estimates.
    ladder_rungs = [
        r if isinstance(r, Rung) else Rung(r.spec, tuple(r.precisions))
        for r in (load_ladder(ladder) if rungs is None else rungs)
    ]
    if build is None:
        from edgefit.onnxbuild import build_model

        build = build_model
    policy = MeasurePolicy(budget_s=budget_s)
    work: list[tuple[Rung, str, MeasurePlan]] = []
    for rung in ladder_rungs:
        for prec in precisions:
            if prec in tuple(rung.precisions):
                plan = decoder_plan(policy, LADDER_PROMPTS, LADDER_DEPTHS, rung.spec.max_context)
                work.append((rung, prec, plan))
    if not work:
        raise UsageError(f"ladder {ladder!r} has no rung with precision {', '.join(precisions)}")
    notes: list[str] = []
    steps = sum(1 + len(plan.phases) for _, _, plan in work)
    with _campaign(db, threads, f"ladder:{ladder}", executor, progress, policy, steps, power) as session:
        with ctrl_c_sets(session.stop):
            for rung, prec, plan in work:
                spec = rung.spec
                if session.stop.requested:
                    break
                max_prompt = max((p.prompt_tokens for p in plan.phases if p.phase == Phase.PREFILL), default=0)
                max_ctx = max((p.context_tokens for p in plan.phases if p.phase == Phase.DECODE), default=0)
                # Building runs here, measuring in the worker: the guard takes the larger of the two peaks.
                estimate = max(
                    rung.estimated_build_bytes(prec),
                    rung.estimated_run_bytes(prec, context_tokens=max_ctx, prompt_tokens=max_prompt),
                )
                try:
                    guard(estimate, f"{spec.id} {prec}")
                except MemoryGuardError as exc:
                    session.skip(spec.id, prec, str(exc), estimate, 1 + len(plan.phases))
                    notes.append(f"skipped {spec.id} {prec}: {exc}")
                    continue
                built = build(spec, prec)
                if session.stop.requested:  # Ctrl-C during the build: stop before measuring
                    break
                target = _Target(
                    model_id=spec.id,
                    precision=prec,
                    path=Path(built.path),
                    params=int(built.params),
                    weight_file_bytes=int(built.weight_file_bytes),
                    weight_read_bytes_per_token=catalog.weight_read_bytes_per_token(spec, prec),
                    plan=plan,
                    layers=spec.num_layers,
                    hidden_size=spec.hidden_size,
                    kv_fill=kv_fill,
                )
                session.measure(target, estimate=estimate, build_s=float(getattr(built, "build_s", 0.0)))
        skipped = [o for o in session.outcomes if o.status == "skipped"]
        if skipped:
            notes.insert(0, f"the ladder shrank to what fits in memory: {len(skipped)} of {len(work)} models skipped")
        return _finish(session, f"ladder:{ladder}", db, t0, notes)


def bench_file(
    paths: Sequence[Path | str] | Path | str,
    dims: dict[str, int] | None = None,
    inputs: dict[str, float] | None = None,
    threads: int | None = None,
    db_path: Path | None = None,
    progress: bool | BenchProgress = False,
    *,
    shapes: dict[str, tuple[int, ...]] | None = None,
    budget_s: float | None = None,
    kv_fill: str = "prefill",
    executor: Executor | None = None,
    guard: Guard = _default_guard,
    power: PowerSetup | None = None,
) -> BenchSummary:
    """Measure user .onnx files. Every check that can refuse (file, --shape/--dim/--input names and shapes,
    memory) runs before the database is opened, so bad input leaves it unchanged. ``budget_s``: seconds of samples
    per measurement at most (default FILE_BUDGET_S: enough to reach the ±2 % target on a ~1 s model)."""
    t0 = time.perf_counter()
    dims, inputs, shapes = dict(dims or {}), dict(inputs or {}), dict(shapes or {})
    threads = threads or default_threads()
    db = Path(db_path) if db_path is not None else default_db_path()
    if isinstance(paths, (str, Path)):
        paths = [paths]
    if not paths:
        raise UsageError("no model files given; pass one or more paths to .onnx files")
    infos = [inspect_model_file(p) for p in paths]
    _check_names(infos, dims, inputs)
    check_shapes(infos, shapes)
    policy = MeasurePolicy(budget_s=FILE_BUDGET_S if budget_s is None else budget_s, max_samples=FILE_MAX_SAMPLES)
    targets: list[tuple[_Target, int]] = []
    for info in infos:
        my_inputs = {k: v for k, v in inputs.items() if k in {t.name for t in info.inputs}}
        my_shapes = {k: v for k, v in shapes.items() if k in {t.name for t in info.inputs}}
        # A --shape also sets the named dims it covers, so inputs sharing them (ids and mask) stay consistent
        my_dims = {**dims_from_shapes(info, my_shapes), **{k: v for k, v in dims.items() if k in info.symbolic_dims}}
        spec = FeedSpec(dims=my_dims, scalars=my_inputs, shapes=my_shapes)
        estimate = file_peak_bytes(info) + feed_bytes(info, spec)
        guard(estimate, str(info.path))
        if info.is_decoder:
            plan = decoder_plan(policy, FILE_PROMPTS, FILE_DEPTHS)
        else:
            plan = MeasurePlan(phases=(PhasePlan(Phase.RUN, 0, 0),), policy=policy)
        targets.append((_file_target(info, plan, my_dims, my_inputs, kv_fill, my_shapes), estimate))
    steps = sum(1 + len(t.plan.phases) for t, _ in targets)
    with _campaign(db, threads, "file", executor, progress, policy, steps, power) as session:
        with ctrl_c_sets(session.stop):
            for target, estimate in targets:
                if session.stop.requested:
                    break
                session.measure(target, estimate=estimate, build_s=None)
        return _finish(session, "file", db, t0, file_notes(session.measurements, session.inputs_used))


def file_notes(measurements: Sequence[Measurement], inputs_used: dict[str, tuple[str, ...]]) -> list[str]:
    """Per user model: the inputs it was fed, and its memory (measured here): RSS after load (weights as
    onnxruntime holds them + runtime), the growth during inference (activations: onnxruntime's arena and
    buffers, kept between runs), and the process's peak."""
    notes = [f"{model}: inputs {', '.join(used)}" for model, used in inputs_used.items() if used]
    by_model: dict[str, dict[Phase, Measurement]] = {}
    for m in measurements:
        by_model.setdefault(m.model_id, {})[m.phase] = m
    for model, rows in by_model.items():
        load, run = rows.get(Phase.LOAD), rows.get(Phase.RUN)
        if load is None or run is None or not load.steady_rss_bytes or not run.steady_rss_bytes:
            continue
        arena = max(0, run.steady_rss_bytes - load.steady_rss_bytes)
        peak = f", peak {run.peak_rss_bytes / MIB:.0f} MiB" if run.peak_rss_bytes else ""
        notes.append(
            f"{model}: memory measured here: {load.steady_rss_bytes / MIB:.0f} MiB after load (weights + runtime), "
            f"+{arena / MIB:.1f} MiB during inference (activations: onnxruntime's arena){peak}"
        )
    return notes


def _file_target(
    info: ModelFileInfo,
    plan: MeasurePlan,
    dims: dict[str, int],
    scalars: dict[str, float],
    kv_fill: str,
    shapes: dict[str, tuple[int, ...]] | None = None,
) -> _Target:
    return _Target(
        model_id=f"file:{info.path.name}",
        precision="file",
        path=info.path,
        params=info.params,
        weight_file_bytes=info.weight_file_bytes,
        weight_read_bytes_per_token=info.weight_read_bytes_per_token,
        plan=plan,
        dims=dims,
        scalars=scalars,
        kv_fill=kv_fill,
        info=info,
        shapes=dict(shapes or {}),
    )


def _check_names(infos: Sequence[ModelFileInfo], dims: dict[str, int], inputs: dict[str, float]) -> None:
    """A --dim / --input must name a symbolic dim / input of at least one given model."""
    all_dims = list(dict.fromkeys(d for i in infos for d in i.symbolic_dims))
    all_inputs = list(dict.fromkeys(t.name for i in infos for t in i.inputs))
    files = ", ".join(i.path.name for i in infos)
    for d, v in dims.items():
        if d not in all_dims:
            if all_dims:
                valid = f"symbolic dims: {', '.join(all_dims)}"
            elif any(x is None for i in infos for t in i.inputs for x in (t.shape or ())):
                valid = f"its dynamic dims are unnamed: set shapes with --shape NAME=AxB; inputs: {_listing(infos)}"
            else:
                valid = "none: every input shape is fixed"
            raise UsageError(f"--dim {d}={v}: {files} has no symbolic dim {d!r}; {valid}")
        if v < 1:
            raise UsageError(f"--dim {d}={v}: expected a positive integer")
    for name, value in inputs.items():
        if name not in all_inputs:
            raise UsageError(f"--input {name}={value}: {files} has no input {name!r}; inputs: {', '.join(all_inputs)}")


def _listing(infos: Sequence[ModelFileInfo]) -> str:
    """``x [?, 3, ?, ?], sr []``: every input with its declared dims (? = dynamic and unnamed)."""
    seen: dict[str, str] = {}
    for i in infos:
        for t in i.inputs:
            seen.setdefault(t.name, f"{t.name} {t.shape_text}")
    return ", ".join(seen.values())


# Synthesized inputs beyond this many bytes are refused: a typo such as 1x3x64000x64000 would otherwise ask for
# tens of GB before any check (the memory guard then sees the model's own estimate too).
MAX_FEED_BYTES = 1 << 32


def check_shapes(infos: Sequence[ModelFileInfo], shapes: dict[str, tuple[int, ...]]) -> None:
    """A --shape must name an input of at least one given model, with its rank and its fixed dims, and must not
    be an input a decoder sizes itself (tokens, mask, positions, KV cache). One line, listing the inputs."""
    from edgefit.bench.feeds import DECODER_ROLES, input_role

    files = ", ".join(i.path.name for i in infos)
    for name, shape in shapes.items():
        text = "x".join(str(d) for d in shape) or "(scalar)"
        found = [(i, i.input(name)) for i in infos if name in {t.name for t in i.inputs}]
        if not found:
            raise UsageError(f"--shape {name}={text}: {files} has no input {name!r}; inputs: {_listing(infos)}")
        if any(d < 1 for d in shape):
            raise UsageError(f"--shape {name}={text}: every dim must be a positive integer")
        for info, t in found:
            where = f"--shape {name}={text}: {info.path.name} input {name!r} is {t.shape_text}"
            if info.is_decoder and input_role(info, t) in DECODER_ROLES:
                raise UsageError(
                    f"{where}, which the decoder's prompt/depth plan sizes; --shape sets other inputs "
                    f"(inputs: {_listing([info])})"
                )
            if t.shape is None:
                continue
            if len(shape) != len(t.shape):
                raise UsageError(
                    f"{where}: {len(t.shape)} dims expected, found {len(shape)}; inputs: {_listing([info])}"
                )
            for axis, (want, got) in enumerate(zip(t.shape, shape, strict=True)):
                if isinstance(want, int) and want != got:
                    raise UsageError(f"{where}: dim {axis} is fixed at {want}, found {got}; inputs: {_listing([info])}")
            count = 1
            for d in shape:
                count *= d
            itemsize = 1 if t.dtype.startswith("onnx:") else np.dtype(t.dtype).itemsize
            if count * itemsize > MAX_FEED_BYTES:
                raise UsageError(
                    f"{where}: {count:,} elements ({count * itemsize / 2**30:.1f} GiB) is more than a model's input "
                    f"should need (at most {MAX_FEED_BYTES / 2**30:.0f} GiB); check the dims"
                )


def dims_from_shapes(info: ModelFileInfo, shapes: dict[str, tuple[int, ...]]) -> dict[str, int]:
    """Named dims a --shape fixes (input ``ids [batch, seq]`` with --shape ids=1x40 -> batch 1, seq 40)."""
    out: dict[str, int] = {}
    for t in info.inputs:
        if t.name in shapes and t.shape is not None and len(t.shape) == len(shapes[t.name]):
            for d, v in zip(t.shape, shapes[t.name], strict=True):
                if isinstance(d, str):
                    out.setdefault(d, int(v))
    return out


def feed_bytes(info: ModelFileInfo, spec: FeedSpec) -> int:
    """Bytes of the synthesized inputs of a plain run (decoders' are small next to their weights)."""
    from edgefit.bench.feeds import resolve_shape

    total = 0
    for t in info.inputs:
        count = 1
        for d in resolve_shape(info, t, spec):
            count *= d
        total += count * (4 if t.dtype.startswith("onnx:") else np.dtype(t.dtype).itemsize)
    return total
