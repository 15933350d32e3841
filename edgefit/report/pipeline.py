"""From the results database to a ``ReportData``: the stages in order, shared by ``edgefit fit`` and ``report``.

```
 Store (this host's measurements) ──(none? run the quick ladder, with its progress bar)──┐
                                                                                         v
 detect.host_profile() ──> predict.calibrate(measurements, host) ──> predict.predict(...) per
 (model, precision, device) ──> verdict.judge ──> ReportData (+ scaling points, validation, provenance)
```
"""

from __future__ import annotations

import platform
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from edgefit import __version__, catalog
from edgefit.bench.measurement import Measurement, Phase
from edgefit.catalog import ModelSpec
from edgefit.errors import PredictError
from edgefit.predict.prediction import Prediction
from edgefit.profiles import DeviceProfile
from edgefit.report.data import ReportData, ScalingPoint, collect_verdicts
from edgefit.verdict import Workload, model_params

# Precisions a report predicts: what edgefit measures, plus two common GGUF formats (memory, nearest speed).
REPORT_PRECISIONS: tuple[str, ...] = ("fp32", "int8", "int4", "q8_0", "q4_k_m")
MEASURED_PRECISIONS: tuple[str, ...] = ("fp32", "int8", "int4")


@dataclass(frozen=True, slots=True)
class HostState:
    """What this host has measured and how it calibrates; ``ran_ladder`` when this call measured it."""

    host: DeviceProfile
    fingerprint: str
    measurements: tuple[Measurement, ...]
    calibration: Any  # edgefit.predict.Calibration
    validation: dict[str, Any] | None
    ran_ladder: bool


def host_state(
    db_path: Path,
    *,
    ladder: str = "quick",
    run_ladder_if_empty: bool = True,
    progress: bool = True,
    say: Callable[[str], None] = lambda _msg: None,
) -> HostState:
    """Load this host's measurements (measuring the ladder first when there are none and allowed), calibrate."""
    from edgefit import detect, predict
    from edgefit.store import Store

    fingerprint = detect.host_fingerprint()
    with Store(db_path) as store:
        measured = store.measurements(host_fingerprint=fingerprint)
    ran = False
    if not measured:
        if not run_ladder_if_empty:
            raise PredictError(
                f"{db_path}: no measurements for this host ({fingerprint}); run `edgefit bench --ladder quick` "
                "or `edgefit report` first, or pass --db with a database that has them"
            )
        from edgefit import bench

        say(f"no measurements for this host in {db_path}: measuring the {ladder} ladder first")
        bench.run_ladder(ladder, precisions=MEASURED_PRECISIONS, db_path=db_path, progress=progress)
        ran = True
        with Store(db_path) as store:
            measured = store.measurements(host_fingerprint=fingerprint)
    with Store(db_path) as store:
        validation = store.latest_validation(host_fingerprint=fingerprint)  # this host's only, never another's
    host = detect.host_profile()
    calibration = predict.calibrate(measured, host)
    return HostState(host, fingerprint, measured, calibration, validation, ran)


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
) -> ReportData:
    verdicts, skipped = collect_verdicts(specs, devices, precisions, workload, predictor(state, workload))
    scaling = scaling_points(state, specs) if include_scaling else ()
    return ReportData(
        workload=workload,
        devices=tuple(devices),
        specs=tuple(specs),
        precisions=tuple(precisions),
        verdicts=verdicts,
        scaling=scaling,
        validation=state.validation,
        provenance=provenance(state),
        skipped=skipped,
        host_device_id=state.host.id if any(d.id == state.host.id for d in devices) else None,
        demand_tokens_per_s=demand_tokens_per_s,
    )


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
    calib: dict[str, Any] = {}
    for name, pc in getattr(cal, "precisions", {}).items():
        calib[name] = {
            "bandwidth_efficiency": pc.bandwidth_efficiency,
            "compute_efficiency": pc.compute_efficiency,
            "prefill_efficiency": pc.prefill_efficiency,
            "bound_on_host": pc.bound_on_host,
            "decode_rms_rel": pc.decode_rms_rel,
            "rungs": len(pc.rungs),
        }
    sources = sorted({m.run_id for m in state.measurements if m.run_id})
    return {
        "generated_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "edgefit_version": __version__,
        "onnxruntime_version": onnxruntime.__version__,
        "python_version": platform.python_version(),
        "host_fingerprint": state.fingerprint,
        "host_cpu": state.host.cpu_model,
        "measurements": len(state.measurements),
        "run_ids": sources,
        "calibration": calib,
        "calibration_full": cal.to_dict() if hasattr(cal, "to_dict") else None,
        "calibration_warnings": list(getattr(cal, "warnings", ())),
        "ran_ladder": state.ran_ladder,
    }
