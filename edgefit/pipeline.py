"""This host's state, in one place for predict, fit, report and validate: the host profile, its kernel table
(measured now when the database has none), its ladder measurements, imported tables and device links.

```
 detect.host_profile() ─┐
 Store: kernel tables ──┼──(none for this host? measure one: edgefit.kernels.calibrate, ~30-40 s)──┐
        ladder runs ────┤                                                                           v
        device links ───┘──> predict.Calibration (host table, memory model, measured, device tables) ──> HostState
```
The host profile is passed on, never fetched again by later stages.
"""

from __future__ import annotations

import dataclasses
import statistics
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from edgefit.bench.measurement import Measurement, Phase
from edgefit.errors import EdgefitError, PredictError
from edgefit.kernels.table import (
    DISTURBED_OTHERS_CORES,
    Curve,
    KernelModel,
    KernelTable,
    fit_model,
    median_table,
)
from edgefit.predict import accounting
from edgefit.predict.calibration import Calibration
from edgefit.predict.memfit import MemoryCalibration, fit_memory
from edgefit.profiles import DeviceProfile

MEASURED_PRECISIONS: tuple[str, ...] = ("fp32", "int8", "int4")


@dataclass(frozen=True, slots=True)
class HostState:
    host: DeviceProfile
    fingerprint: str
    measurements: tuple[Measurement, ...]  # this host's ladder / held-out measurements (may be empty)
    calibration: Calibration
    validation: dict[str, Any] | None
    kernel_run_id: str
    ran_calibration: bool  # this call measured the kernel table
    # the latest table alone (``calibration.host`` may pool it with earlier ones): what `edgefit validate` checks,
    # since its interleaved calls were timed in that table's rounds and its bracket merges that table
    latest_table: KernelModel | None = None


def host_state(
    db_path: Path,
    *,
    calibrate_if_missing: bool = True,
    devices: Sequence[DeviceProfile] = (),
    progress: Callable[[str], None] | None = None,
    say: Callable[[str], None] = lambda _msg: None,
) -> HostState:
    """Load (or measure) what predictions need. ``devices``: profiles whose linked hosts' tables to use."""
    from edgefit import detect
    from edgefit.store import Store

    fingerprint = detect.host_fingerprint()
    host = detect.host_profile()
    with Store(db_path) as store:
        tables = store.kernel_tables()
        links = store.device_links()
        measured = store.measurements(host_fingerprint=fingerprint)
        validation = store.latest_validation(host_fingerprint=fingerprint)
    own = [(rid, t) for rid, fp, t in tables if fp == fingerprint]
    ran = False
    if not own:
        if not calibrate_if_missing:
            raise PredictError(
                f"{db_path}: no kernel table for this host ({fingerprint}); run `edgefit calibrate` (about "
                "40 s), or pass --db with a database that has one"
            )
        from edgefit.kernels.calibrate import calibrate_and_store

        say(f"no kernel table for this host in {db_path}: measuring one first (`edgefit calibrate`, ~40 s)")
        run_id, table = calibrate_and_store(db_path, host, fingerprint, progress=progress)
        own = [(run_id, table.to_dict())]
        ran = True
    latest_id, raw = own[-1]
    latest = fit_model(KernelTable.from_dict(raw, where=f"{db_path}: kernel table of run {latest_id}"))
    fitted = dict([*_loadable(own[-HOST_DRIFT_TABLES:-1]), (latest_id, latest)])
    pool = recent_pool([(rid, m.table) for rid, m in fitted.items()])
    recent = [fitted[rid] for rid, _ in pool]
    pooled, choice_note = pooled_table(pool)
    host_model = fit_model(pooled) if choice_note else latest
    others = _latest_per_host((rid, fp, t) for rid, fp, t in tables if fp != fingerprint)
    cal = build_calibration(host, fingerprint, host_model, measured, others, links, devices)
    cal = dataclasses.replace(
        cal,
        host_drift_rel=host_drift(recent),
        composition_rel=composition_errors(validation),
        host_bench_rel=bench_errors(validation),
        host_table_note=choice_note,
    )
    return HostState(host, fingerprint, tuple(measured), cal, validation, latest_id, ran, latest)


def _loadable(rows: Iterable[tuple[str, dict[str, Any]]]) -> list[tuple[str, KernelModel]]:
    """(run id, fitted model) of the tables that load; an earlier table that does not is skipped."""
    out = []
    for rid, t in rows:
        try:
            out.append((rid, fit_model(KernelTable.from_dict(t, where=f"kernel table of run {rid}"))))
        except EdgefitError:
            continue
    return out


def _latest_per_host(rows: Iterable[tuple[str, str, dict[str, Any]]]) -> dict[str, KernelModel]:
    """Fingerprint -> fitted model of its latest table; tables that fail to load are skipped (not ours to fix)."""
    latest: dict[str, tuple[str, dict[str, Any]]] = {}
    for rid, fp, t in rows:
        latest[fp] = (rid, t)
    out = {}
    for fp, (rid, t) in latest.items():
        try:
            out[fp] = fit_model(KernelTable.from_dict(t, where=f"kernel table of run {rid}"))
        except EdgefitError:
            continue
    return out


def measured_figures(ms: Sequence[Measurement]) -> dict[tuple[str, str], dict[str, float]]:
    """(model id, precision) -> {"decode@<context>": s, "prefill@<prompt>": s}: median of the raw samples."""
    out: dict[tuple[str, str], dict[str, float]] = {}
    for m in ms:
        if not m.samples_s or m.precision == "file":
            continue
        entry = out.setdefault((m.model_id, m.precision), {})
        med = float(statistics.median(m.samples_s))
        if m.phase == Phase.DECODE:
            entry[f"decode@{m.context_tokens}"] = med
        elif m.phase == Phase.PREFILL:
            entry[f"prefill@{m.prompt_tokens}"] = med
    return out


def memory_models(
    ms: Sequence[Measurement], runtime_bytes: float, granules: tuple[int, int] = (0, 0)
) -> dict[str, MemoryCalibration]:
    ladder = [m for m in ms if m.precision in MEASURED_PRECISIONS and m.samples_s]
    specs = accounting.resolve_specs({m.model_id for m in ladder})
    out = {}
    for p in MEASURED_PRECISIONS:
        pts = [m for m in ladder if m.precision == p and m.model_id in specs]
        if pts:
            out[p] = fit_memory(p, pts, specs, runtime_bytes, granules)
    return out


HOST_DRIFT_TABLES = 5


def bench_errors(validation: Mapping[str, Any] | None) -> dict[str, float]:
    """Per figure (decode, prefill): the largest per-precision median |error| of held-out and random architectures
    against `edgefit bench` in a stored validation (not the interleaved rows): what a user comparing `bench FILE`
    with this host's answer meets, the gap between the benchmark's process and the kernel worker's included (on
    this project's VM 15-20 % in some spells, within 10 % in others). Empty when none is stored."""
    return _validation_errors(validation)[False]


def composition_errors(validation: Mapping[str, Any] | None) -> dict[str, float]:
    """Per figure (decode, prefill): the largest per-precision median |error| of held-out and random architectures
    in a stored validation: how far whole models landed from the sum of their kernels on this host. The models timed
    among the table's own chains (``interleaved/...``) are used when the validation has them: the benchmark's
    comparisons also carry the host's drift between table and benchmark, which ``host_drift_rel`` already adds."""
    found = _validation_errors(validation)
    return found[True] or found[False]


def _validation_errors(validation: Mapping[str, Any] | None) -> dict[bool, dict[str, float]]:
    """interleaved? -> figure -> the largest per-precision median |error| of held-out and random rows."""
    found: dict[bool, dict[str, float]] = {True: {}, False: {}}
    summary = (validation or {}).get("summary")
    if not isinstance(summary, Mapping):
        return found
    for key, e in summary.items():
        parts = str(key).split("/")
        interleaved = parts[0] == "interleaved"
        kind, figure = (parts[1:] if interleaved else parts)[:2] if len(parts) >= 2 + interleaved else ("", "")
        if kind in ("held_out", "random") and figure in ("decode", "prefill") and isinstance(e, Mapping):
            v = e.get("median_abs_error")
            if isinstance(v, (int, float)) and 0 <= v < 10:
                out = found[interleaved]
                out[figure] = max(out.get(figure, 0.0), float(v))
    return found


def host_drift(models: Sequence[KernelModel]) -> dict[str, float]:
    """How far this host's latest tables disagree, per figure and kernel precision (``"decode/int4"``,
    ``"prefill/fp32"``): max/min - 1 of what that figure rests on, the per-node time of the precision's cold GEMV
    chain (decode) or its GEMM chain at the most rows (prefill), at the largest size every table measured. Per
    class, because the classes move apart: this VM's fp32 and int8 GEMM rates fell 14-16 % between two tables
    minutes apart while its GEMV streaming rose 9 %. Empty with fewer than two tables."""
    if len(models) < 2:
        return {}
    out: dict[str, float] = {}
    for p in sorted({p for m in models for p, _ in m.gemv}):
        decode = [m.gemv.get((p, "cold")) for m in models]
        rows = [max((r for q, r in m.gemm if q == p), default=0) for m in models]
        prefill = [m.gemm.get((p, r)) for m, r in zip(models, rows, strict=True)] if len(set(rows)) == 1 else []
        for figure, curves in (("decode", decode), ("prefill", prefill)):
            spread = _curve_spread(curves)
            if spread is not None:
                out[f"{figure}/{p}"] = spread
    return out


def _curve_spread(curves: Sequence[Curve | None]) -> float | None:
    if not curves or any(c is None or not c.sizes for c in curves):
        return None
    size = min(max(c.sizes) for c in curves if c is not None)
    times = [c(size) for c in curves if c is not None]
    return max(times) / min(times) - 1.0 if min(times) > 0 else None


HOST_POOL_TABLES = 3
HOST_POOL_WINDOW_S = 24 * 3600.0


def pooled_with(earlier: KernelTable, latest: KernelTable) -> bool:
    """Whether an earlier table of this host joins the latest in its answers: same threads, onnxruntime, chains
    (their node counts too) and lead, measured within ``HOST_POOL_WINDOW_S`` of it, and on a quiet machine (a table
    measured while other processes used the CPU is warned about and does not pull later answers)."""
    a, b = earlier, latest
    try:
        apart = abs((_utc(a.measured_at) - _utc(b.measured_at)).total_seconds())
    except ValueError:
        return False
    return (
        a.others_cores <= DISTURBED_OTHERS_CORES
        and a.threads == b.threads
        and a.host.onnxruntime_version == b.host.onnxruntime_version
        and (a.lead_bytes > 0) == (b.lead_bytes > 0)
        and {k.spec for k in a.kernels} == {k.spec for k in b.kernels}
        and apart <= HOST_POOL_WINDOW_S
    )


def _utc(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ")


def recent_pool(tables: Sequence[tuple[str, KernelTable]]) -> list[tuple[str, KernelTable]]:
    """This host's tables that join its latest (the last of ``tables``, oldest first): those of the
    ``HOST_DRIFT_TABLES`` - 1 before it that pool with it (``pooled_with``), then the latest."""
    latest = tables[-1]
    return [(rid, t) for rid, t in tables[-HOST_DRIFT_TABLES:-1] if pooled_with(t, latest[1])] + [latest]


def pooled_table(pool: Sequence[tuple[str, KernelTable]]) -> tuple[KernelTable, str]:
    """What this host's answers are priced with, from its latest tables that pool with each other
    (``pooled_with``, oldest first): the median of the last ``HOST_POOL_TABLES`` of them, chain by chain
    (``median_table``), or the latest alone while fewer exist. Returns the table and a note saying so ("" for the
    latest alone). A machine that drifts between calibrations then answers from its typical state, not from
    whichever spell the last calibration caught (``benchmarks/bench_repeatability.py --as-answered``)."""
    if len(pool) < HOST_POOL_TABLES:
        return pool[-1][1], ""
    pool = pool[-HOST_POOL_TABLES:]
    runs = ", ".join(rid[:8] for rid, _ in pool)
    note = (
        f"this host's answers take each kernel's median over its last {len(pool)} kernel tables (runs {runs}, "
        f"measured {pool[0][1].measured_at} to {pool[-1][1].measured_at}), so one calibration in an unusual spell "
        "does not move them alone"
    )
    return median_table([t for _, t in pool]), note


def build_calibration(
    host: DeviceProfile,
    fingerprint: str,
    host_model: KernelModel,
    measured: Sequence[Measurement],
    other_tables: Mapping[str, KernelModel],
    links: Mapping[str, tuple[str, ...]],
    devices: Sequence[DeviceProfile],
) -> Calibration:
    device_tables: dict[str, KernelModel] = {}
    linked: set[str] = set()
    for d in devices:
        fps = tuple(links.get(d.id, ())) + tuple(getattr(d, "host_fingerprints", ()) or ())
        for fp in reversed(fps):  # the latest link wins
            if fp in other_tables:
                device_tables[d.id] = other_tables[fp]
                linked.add(fp)
                break
    notes = []
    if host_model.table.dropped:
        notes.append(f"kernel table: {len(host_model.table.dropped)} chains left out for memory")
    return Calibration(
        host_fingerprint=fingerprint,
        host_id=host.id,
        host=host_model,
        memory=memory_models(
            measured, float(host_model.table.runtime_rss_bytes), host_model.table.host.mapped_granules
        ),
        measured=measured_figures(measured),
        device_tables=device_tables,
        other_tables=tuple(m for fp, m in other_tables.items() if fp not in linked),
        warnings=(),
        notes=tuple(notes),
    )


def calibration_from_table(table: KernelTable, measured: Sequence[Measurement] = ()) -> Calibration:
    """A Calibration from one kernel table alone (a recorded fixture, a test): no database, no device links."""
    from edgefit.predict import synthetic

    host = synthetic.device(table.host.host_id)
    return build_calibration(host, table.host.host_fingerprint, fit_model(table), measured, {}, {}, ())


def resolve_device(ref: str, host: DeviceProfile) -> DeviceProfile:
    from edgefit import profiles

    return host if ref == "host" else profiles.get_profile(ref)
