"""From the results database to a ``ReportData``: the stages in order, shared by ``edgefit fit`` and ``report``.

```
 edgefit.pipeline.host_state (kernel table, measured now when missing; ladder runs; imported tables)
     ──> predict.predict(...) per (model, precision, device) ──> verdict.judge
     ──> ReportData (+ scaling points, validation, provenance)
```
"""

from __future__ import annotations

import platform
import statistics
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from edgefit import __version__, catalog
from edgefit.bench.measurement import Measurement, Phase
from edgefit.catalog import ModelSpec
from edgefit.devicepower import DeviceFacts
from edgefit.errors import PredictError
from edgefit.pipeline import MEASURED_PRECISIONS, HostState
from edgefit.predict.prediction import Prediction
from edgefit.profiles import DeviceProfile
from edgefit.report.data import MeasuredEnergy, ReportData, ScalingPoint, SustainedRun, collect_verdicts
from edgefit.report.usermodels import user_model_runs
from edgefit.verdict import Workload, model_params

# Precisions a report predicts: what edgefit measures, plus two common GGUF formats (memory, nearest speed).
REPORT_PRECISIONS: tuple[str, ...] = ("fp32", "int8", "int4", "q8_0", "q4_k_m")


def host_state(
    db_path: Path,
    *,
    devices: Sequence[DeviceProfile] = (),
    calibrate_if_missing: bool = True,
    progress: bool = True,
    say: Callable[[str], None] = lambda _msg: None,
) -> HostState:
    """This host's state (``edgefit.pipeline``): measures the kernel table first when the database has none."""
    from edgefit import pipeline

    return pipeline.host_state(
        db_path, devices=devices, calibrate_if_missing=calibrate_if_missing,
        progress=_progress_line(say) if progress else None, say=say,
    )  # fmt: skip


def _progress_line(say: Callable[[str], None]) -> Callable[[str], None]:
    """Every tenth step of the calibration as a line (the worker reports each chain built and each round)."""
    count = [0]

    def show(msg: str) -> None:
        count[0] += 1
        if count[0] % 10 == 1:
            say(msg)

    return show


def predictor(state: HostState, workload: Workload) -> Callable[[ModelSpec, str, DeviceProfile], Prediction]:
    from edgefit import predict

    def predict_fn(spec: ModelSpec, precision: str, device: DeviceProfile) -> Prediction:
        return predict.predict(
            spec,
            precision,
            device,
            state.calibration,
            context_tokens=min(workload.context_tokens, spec.max_context),
            prompt_tokens=workload.prompt_tokens,
        )

    return predict_fn


def build_report_data(
    state: HostState,
    specs: Sequence[ModelSpec],
    devices: Sequence[DeviceProfile],
    precisions: Sequence[str],
    workload: Workload,
    *,
    include_scaling: bool = True,
    demand_tokens_per_s: float = 100.0,
    facts: Mapping[str, DeviceFacts] | None = None,
) -> ReportData:
    """``facts``: each device's own measured draw and sustained factor (``device_facts``), by device id."""
    verdicts, skipped = collect_verdicts(specs, devices, precisions, workload, predictor(state, workload), facts)
    scaling = scaling_points(state, specs) if include_scaling else ()
    energy, sustained, power_note = measured_power(state.measurements)
    return ReportData(
        workload=workload,
        devices=tuple(devices),
        specs=tuple(specs),
        precisions=tuple(precisions),
        verdicts=verdicts,
        scaling=scaling,
        validation=state.validation,
        provenance={**provenance(state), "calibration_by_device": calibration_by_device(verdicts)},
        skipped=skipped,
        host_device_id=state.host.id if any(d.id == state.host.id for d in devices) else None,
        demand_tokens_per_s=demand_tokens_per_s,
        measured_energy=energy,
        sustained=sustained,
        power_note=power_note,
        facts=tuple(facts[d.id] for d in devices if facts and d.id in facts),
        user_models=user_model_runs(state.measurements),
    )


def device_facts(db_path: Path, state: HostState, devices: Sequence[DeviceProfile]) -> dict[str, DeviceFacts]:
    """Each device's measured draw and sustained factor: this host's own measurements, and those imported for host
    fingerprints linked to a device (``Store.device_links``)."""
    from edgefit.devicepower import load_facts

    return load_facts(db_path, state.fingerprint, state.host.id, [d.id for d in devices])


def measured_power(
    measurements: Sequence[Measurement],
) -> tuple[tuple[MeasuredEnergy, ...], tuple[SustainedRun, ...], str]:
    """This host's measured energy per unit (decode, run and sustained rows with a power reading), its sustained
    runs, and a note when no measurement carries a power reading (the energy figures are then estimates)."""
    from edgefit.bench.powerhook import energy_unit, measured_energy

    energy = []
    for m in measurements:
        if m.phase not in (Phase.DECODE, Phase.RUN, Phase.SUSTAINED):
            continue
        e = measured_energy(m)
        if e is not None:
            energy.append(MeasuredEnergy(m.model_id, m.precision, m.phase.value, m.context_tokens, energy_unit(m),
                                         e.sensor, e.covers, e.mean_w, e.energy_j, e.energy_above_idle_j,
                                         e.uncertainty_rel))  # fmt: skip
    sustained = [
        SustainedRun(m.model_id, m.precision, m.started_at or "", m.sustained)
        for m in measurements
        if m.phase == Phase.SUSTAINED and m.sustained is not None
    ]
    note = ""
    if measurements and not energy:
        note = (
            "no power sensor found on this host (none of its measurements carries a power reading): every energy "
            "figure in this report is an estimate from the device profiles' load power x predicted time, except "
            "devices whose imported measurements carry a power reading (MP/M in the procurement tables)"
        )
    return tuple(energy), tuple(sorted(sustained, key=lambda s: s.started_at)), note


ROLE_WORDS = {
    "host": "this host's kernel table",
    "device": "its own kernel table, measured on the device",
    "same_isa": "a kernel table of a host of its ISA, translated",
    "translated": "this host's kernel table, translated by its datasheet figures",
}


def calibration_by_device(verdicts: Sequence[Any]) -> dict[str, str]:
    """Device id -> which kernel table its predictions used (from the predictions themselves)."""
    out: dict[str, str] = {}
    for v in verdicts:
        cal = v.prediction.calibration
        if v.prediction.device_id in out or "table_role" not in cal:
            continue
        role = str(cal["table_role"])
        out[v.prediction.device_id] = f"{ROLE_WORDS.get(role, role)} (host {cal.get('table_host_id', '?')!s})"
    return out


def scaling_points(state: HostState, specs: Sequence[ModelSpec]) -> tuple[ScalingPoint, ...]:
    """Measured decode rungs (median of raw samples, shallowest KV depth) and the catalog models predicted for
    this host at that depth, so both sit on the same axes."""
    from edgefit import predict

    points: list[ScalingPoint] = []
    decode = [m for m in state.measurements if m.phase == Phase.DECODE and m.precision in MEASURED_PRECISIONS]
    depth = min((m.context_tokens for m in decode), default=128)
    shallow: dict[tuple[str, str], Measurement] = {}
    for m in decode:
        key = (m.model_id, m.precision)
        if key not in shallow or m.context_tokens < shallow[key].context_tokens:
            shallow[key] = m
    for m in shallow.values():
        med = statistics.median(m.samples_s)
        points.append(
            ScalingPoint(
                m.model_id,
                m.precision,
                m.params,
                m.weight_read_bytes_per_token,
                med,
                min(m.samples_s),
                max(m.samples_s),
                "measured",
            )
        )
    measured_precisions = sorted({m.precision for m in decode})
    for spec in specs:
        for precision in measured_precisions:
            try:
                p = predict.predict(spec, precision, state.host, state.calibration, context_tokens=depth)
            except PredictError:
                continue
            points.append(
                ScalingPoint(
                    spec.name,
                    precision,
                    model_params(spec),
                    catalog.weight_read_bytes_per_token(spec, precision),
                    p.decode_s_per_token.value,
                    p.decode_s_per_token.low,
                    p.decode_s_per_token.high,
                    p.decode_s_per_token.basis.value,
                )
            )
    return tuple(sorted(points, key=lambda p: (p.basis, p.precision, p.weight_read_bytes_per_token, p.label)))


def provenance(state: HostState) -> dict[str, Any]:
    import onnxruntime

    cal = state.calibration
    model = cal.host
    table = model.table
    sources = sorted({m.run_id for m in state.measurements if m.run_id})
    device_tables = {d: m.table.host.host_fingerprint for d, m in cal.device_tables.items()}
    return {
        "generated_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "edgefit_version": __version__,
        "onnxruntime_version": onnxruntime.__version__,
        "python_version": platform.python_version(),
        "host_fingerprint": state.fingerprint,
        "host_cpu": state.host.cpu_model,
        "measurements": len(state.measurements),
        "run_ids": sources,
        "kernel_run_id": state.kernel_run_id,
        "kernel_table_choice": cal.host_table_note or "this host's latest kernel table",
        "calibration": {
            "kernel_table": {
                "measured_at": table.measured_at,
                "threads": table.threads,
                "rounds": table.rounds,
                "chains": len(table.kernels),
                "noise_rel": model.noise_rel,
                "stream_bytes_per_s": model.stream_bytes_per_s,
                "triad_bytes_per_s": model.triad_bytes_per_s,
                "fp32_gemm_flops_per_s": 2 * model.fp32_gemm_macs_per_s,
                "int8_gemm_ops_per_s": 2 * model.int8_gemm_macs_per_s,
            },
            "memory": {p: {"source": m.source, "weight_factor": m.rss_weight_factor} for p, m in cal.memory.items()},
            "device_tables": device_tables,
        },
        "calibration_warnings": [*cal.warnings, *model.warnings],
        "ran_calibration": state.ran_calibration,
    }
