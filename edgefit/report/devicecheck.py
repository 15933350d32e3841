"""Measured vs predicted on the devices themselves: for every device whose own kernel table is linked (imported
by `edgefit fleet bench`, or `edgefit profiles link`), how far the datasheet prediction was from the device.

```
 device d, linked to host fingerprint(s) with a kernel table (Calibration.table_for(d).role == "device")
   rungs d ran itself (decode measurements of its fingerprints)  ── median of raw samples          (M, ran there)
   report models x precisions, priced with d's own kernel table   ── predict(.., calibration)       (M, its table)
        vs the same, predicted from this host's table translated by d's datasheet figures           (S)
   error = datasheet / device - 1 (decode seconds per token)
```

The datasheet prediction is the one edgefit would give without the device's own table: this host's table
translated by the profile's figures (device tables and other imported tables set aside).
"""

from __future__ import annotations

import dataclasses
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgefit.bench.measurement import Measurement, Phase
from edgefit.catalog import ModelSpec
from edgefit.errors import EdgefitError
from edgefit.pipeline import HostState
from edgefit.predict.calibration import Calibration
from edgefit.profiles import DeviceProfile
from edgefit.verdict import model_params

RAN_THERE = "ran there"  # a decode measurement made on the device (`edgefit bench` there)
OWN_TABLE = "its kernel table"  # priced with the kernel table measured on the device (`edgefit calibrate` there)
MAX_RUNGS = 8  # per device: the deepest-context decode of each (model, precision), smallest first


@dataclass(frozen=True, slots=True)
class DeviceCheck:
    """One (model, precision) on a linked device: its decode time per token on the device (``source``: ran
    there, or priced with its own kernel table; basis measured) against the datasheet prediction (basis spec)."""

    device_id: str
    model_id: str
    precision: str
    context_tokens: int
    source: str  # RAN_THERE | OWN_TABLE
    device_decode_s_per_token: float
    predicted_decode_s_per_token: float
    predicted_low_s: float
    predicted_high_s: float
    table_host_fingerprint: str  # the device's kernel table's host

    @property
    def error_rel(self) -> float:
        """Datasheet prediction / device - 1 (positive: the datasheet said slower than the device is)."""
        return self.predicted_decode_s_per_token / self.device_decode_s_per_token - 1.0

    @property
    def inside_interval(self) -> bool:
        return self.predicted_low_s <= self.device_decode_s_per_token <= self.predicted_high_s

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["device_basis"] = "measured"
        d["predicted_basis"] = "spec"
        d["error_rel"] = self.error_rel
        d["inside_interval"] = self.inside_interval
        return d


def datasheet_calibration(cal: Calibration) -> Calibration:
    """``cal`` without any imported table: every other device is this host's table, translated."""
    return dataclasses.replace(cal, device_tables={}, other_tables=())


def linked_devices(state: HostState, devices: Sequence[DeviceProfile]) -> tuple[DeviceProfile, ...]:
    return tuple(
        d for d in devices if not state.calibration.is_host(d) and state.calibration.table_for(d).role == "device"
    )


def device_checks(
    db_path: Path,
    state: HostState,
    devices: Sequence[DeviceProfile],
    specs: Sequence[ModelSpec],
    precisions: Sequence[str],
    *,
    context_tokens: int,
    prompt_tokens: int,
) -> tuple[DeviceCheck, ...]:
    """Every linked device's rows: the rungs it ran (from ``db_path``), then ``specs`` x ``precisions`` priced
    with its own table. Combinations either side cannot predict are left out."""
    linked = linked_devices(state, devices)
    if not linked:
        return ()
    from edgefit.store import Store

    links: dict[str, tuple[str, ...]] = {}
    runs: dict[str, list[Measurement]] = {}
    with Store(db_path) as store:
        links = store.device_links()
        for d in linked:
            runs[d.id] = [m for fp in links.get(d.id, ()) for m in store.measurements(host_fingerprint=fp)]
    sheet = datasheet_calibration(state.calibration)
    out: list[DeviceCheck] = []
    for d in linked:
        fp = state.calibration.table_for(d).model.table.host.host_fingerprint
        out += _ran_there(d, runs.get(d.id, []), sheet, fp, prompt_tokens)
        for spec in specs:
            for precision in precisions:
                row = _priced(d, spec, precision, state.calibration, sheet, fp, context_tokens, prompt_tokens)
                if row is not None:
                    out.append(row)
    return tuple(out)


def _ran_there(
    device: DeviceProfile, ms: Sequence[Measurement], sheet: Calibration, fp: str, prompt_tokens: int
) -> list[DeviceCheck]:
    from edgefit.predict import accounting
    from edgefit.predict.translate import predict

    decode = [m for m in ms if m.phase == Phase.DECODE and m.samples_s and m.precision != "file"]
    specs = accounting.resolve_specs({m.model_id for m in decode})
    deepest: dict[tuple[str, str], Measurement] = {}
    for m in decode:
        key = (m.model_id, m.precision)
        if m.model_id in specs and (key not in deepest or m.context_tokens > deepest[key].context_tokens):
            deepest[key] = m
    rows = []
    order = sorted(deepest, key=lambda k: (k[1], model_params(specs[k[0]]), k[0]))
    for model_id, precision in order:
        m = deepest[(model_id, precision)]
        try:
            p = predict(specs[model_id], precision, device, sheet, context_tokens=m.context_tokens,
                        prompt_tokens=prompt_tokens, threads=m.threads)  # fmt: skip
        except EdgefitError:
            continue
        est = p.decode_s_per_token
        rows.append(
            DeviceCheck(
                device.id,
                model_id,
                precision,
                m.context_tokens,
                RAN_THERE,
                float(statistics.median(m.samples_s)),
                est.value,
                est.low,
                est.high,
                fp,
            )
        )
    return rows[:MAX_RUNGS]


def _priced(
    device: DeviceProfile,
    spec: ModelSpec,
    precision: str,
    cal: Calibration,
    sheet: Calibration,
    fp: str,
    context_tokens: int,
    prompt_tokens: int,
) -> DeviceCheck | None:
    from edgefit.predict.translate import predict

    context = min(context_tokens, spec.max_context)
    try:
        own = predict(spec, precision, device, cal, context_tokens=context, prompt_tokens=prompt_tokens)
        other = predict(spec, precision, device, sheet, context_tokens=context, prompt_tokens=prompt_tokens)
    except EdgefitError:  # a precision the device's table has no kernels for, a GGUF format
        return None
    if own.calibration.get("table_role") != "device" or own.decode_s_per_token.basis.value != "measured":
        return None
    est = other.decode_s_per_token
    return DeviceCheck(device.id, spec.id, precision, context, OWN_TABLE, own.decode_s_per_token.value, est.value,
                       est.low, est.high, fp)  # fmt: skip


# --- rendering: one table per device (renderers stay pure: these read ReportData's rows only) -----------------


def check_tables(checks: Sequence[DeviceCheck]) -> tuple[Any, ...]:
    from edgefit.report import fmt
    from edgefit.report.tables import Cell, Table

    out = []
    for device_id in dict.fromkeys(c.device_id for c in checks):
        rows = [c for c in checks if c.device_id == device_id]
        body = tuple(
            (
                Cell(c.model_id),
                Cell(c.precision),
                Cell("ran" if c.source == RAN_THERE else "table"),
                Cell(f"{fmt.tps(1 / c.device_decode_s_per_token)} M"),
                Cell(f"{fmt.tps(1 / c.predicted_decode_s_per_token)} S"),
                Cell(f"{c.error_rel * 100:+.0f}"),
                Cell("yes" if c.inside_interval else "no"),
            )
            for c in rows
        )
        out.append(
            Table(
                f"{device_id}: on the device vs predicted from its datasheet",
                ("model", "precision", "source", "device [tok/s]", "datasheet [tok/s]", "error [%]", "in interval"),
                body,
                note=_note(rows),
            )
        )
    return tuple(out)


def _note(rows: Sequence[DeviceCheck]) -> str:
    parts = []
    for source, words in ((RAN_THERE, "decodes it ran"), (OWN_TABLE, "models priced with its kernel table")):
        errs = [abs(c.error_rel) for c in rows if c.source == source]
        if errs:
            parts.append(f"{words}: median |error| {statistics.median(errs) * 100:.0f} % over {len(errs)}")
    fp = rows[0].table_host_fingerprint if rows else "?"
    return (
        "source: ran = a decode measured on the device (`edgefit bench` there), table = priced with the kernel "
        f"table measured on the device (host {fp}); datasheet = this host's table translated by the device's "
        "profile; error = datasheet / device - 1 on time per token; " + "; ".join(parts)
    )


def device_check_section(checks: Sequence[DeviceCheck]) -> Any:
    """The report's "measured vs predicted" section, or None when no device has its own table."""
    if not checks:
        return None
    from edgefit.report.sections import Section

    return Section(
        "Measured on the devices vs predicted from datasheets",
        paragraphs=(
            "These devices carry their own kernel table, measured on the device itself (`edgefit fleet bench`, "
            "or `edgefit calibrate` there and `edgefit profiles link`): their answers in this report are "
            "basis M. Each row sets the device's own figure against what edgefit predicts for it from this "
            "host's table and the device's datasheet figures (S), as it does for every device without a "
            "table of its own: the error says how far to trust the S answers for devices of that kind.",
        ),
        tables=check_tables(checks),
    )
