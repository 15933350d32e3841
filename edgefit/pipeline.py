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
from pathlib import Path
from typing import Any

from edgefit.bench.measurement import Measurement, Phase
from edgefit.errors import EdgefitError, PredictError
from edgefit.kernels.table import KernelModel, KernelTable, fit_model
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
    run_id, raw = own[-1]
    host_model = fit_model(KernelTable.from_dict(raw, where=f"{db_path}: kernel table of run {run_id}"))
    others = _latest_per_host((rid, fp, t) for rid, fp, t in tables if fp != fingerprint)
    cal = build_calibration(host, fingerprint, host_model, measured, others, links, devices)
    earlier = [
        fit_model(KernelTable.from_dict(t, where=f"{db_path}: kernel table of run {rid}"))
        for rid, t in own[-HOST_DRIFT_TABLES:-1]
    ]
    drift = host_drift([*earlier, host_model])
    cal = dataclasses.replace(cal, host_drift_rel=drift, composition_rel=composition_errors(validation))
    return HostState(host, fingerprint, tuple(measured), cal, validation, run_id, ran)


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


def composition_errors(validation: Mapping[str, Any] | None) -> dict[str, float]:
    """Per figure (decode, prefill): the largest per-precision median |error| of held-out and random architectures
    in a stored validation: how far whole models landed from the sum of their kernels on this host. The models timed
    among the table's own chains (``interleaved/...``) are used when the validation has them: the benchmark's
    comparisons also carry the host's drift between table and benchmark, which ``host_drift_rel`` already adds."""
    summary = (validation or {}).get("summary")
    if not isinstance(summary, Mapping):
        return {}
    found: dict[bool, dict[str, float]] = {True: {}, False: {}}
    for key, e in summary.items():
        parts = str(key).split("/")
        interleaved = parts[0] == "interleaved"
        kind, figure = (parts[1:] if interleaved else parts)[:2] if len(parts) >= 2 + interleaved else ("", "")
        if kind in ("held_out", "random") and figure in ("decode", "prefill") and isinstance(e, Mapping):
            v = e.get("median_abs_error")
            if isinstance(v, (int, float)) and 0 <= v < 10:
                out = found[interleaved]
                out[figure] = max(out.get(figure, 0.0), float(v))
    return found[True] or found[False]


def host_drift(models: Sequence[KernelModel]) -> float:
    """max/min - 1 of the GEMV streaming rate over this host's latest tables (0 with fewer than two)."""
    rates = [m.stream_bytes_per_s for m in models if m.stream_bytes_per_s > 0]
    return max(rates) / min(rates) - 1.0 if len(rates) >= 2 else 0.0


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
