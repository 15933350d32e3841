"""What a report is made of: one frozen value that every renderer (terminal, md, html, json, csv, plots) reads.

Renderers are pure functions of ``ReportData``; building it (bench, calibrate, predict, judge) lives in
``edgefit.report.pipeline``. A test builds a ``ReportData`` from constructed predictions in a few lines, and the
golden files are renderings of such a fixed value.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

from edgefit import catalog
from edgefit.bench.series import SustainedSeries
from edgefit.catalog import ModelSpec
from edgefit.devicepower import DeviceFacts
from edgefit.errors import CatalogError, PredictError
from edgefit.predict.prediction import Prediction
from edgefit.procurement import DeviceOption, device_options
from edgefit.profiles import DeviceProfile, Figure
from edgefit.verdict import Verdict, Workload, best_fitting_precision, judge, largest_model_meeting, model_params

if TYPE_CHECKING:
    from edgefit.report.devicecheck import DeviceCheck
    from edgefit.report.usergraphs import UserGraph
    from edgefit.report.usermodels import UserModelRun

SCHEMA_VERSION = 1

# (spec, precision, device) -> Prediction; raises PredictError when the predictor cannot do that combination.
PredictFn = Callable[[ModelSpec, str, DeviceProfile], Prediction]


@dataclass(frozen=True, slots=True)
class ScalingPoint:
    """One point of the scaling plot: decode time per token against the bytes one token reads, on this host.
    ``basis`` is ``measured`` (a ladder rung run here) or ``extrapolated`` (a catalog model from the fit)."""

    label: str
    precision: str
    params: int
    weight_read_bytes_per_token: int
    decode_s_per_token: float
    low_s: float
    high_s: float
    basis: str


@dataclass(frozen=True, slots=True)
class MeasuredEnergy:
    """Energy of one unit measured on this host by its own power sensor (edgefit.power), basis measured."""

    model_id: str
    precision: str
    phase: str  # decode | prefill | run | sustained
    context_tokens: int
    unit: str  # token | prompt token | inference
    sensor: str
    covers: str  # board | battery | platform | soc | package
    mean_w: float
    energy_j: float  # per unit, total
    energy_above_idle_j: float | None  # per unit, above the idle draw measured before the run
    uncertainty_rel: float


@dataclass(frozen=True, slots=True)
class SustainedRun:
    """One `edgefit bench --sustained` run on this host (the series is plotted)."""

    model_id: str
    precision: str
    started_at: str
    series: SustainedSeries


@dataclass(frozen=True, slots=True)
class Skipped:
    """A (model, precision, device) the predictor could not do, with its reason."""

    model_id: str
    precision: str
    device_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class ReportData:
    workload: Workload
    devices: tuple[DeviceProfile, ...]
    specs: tuple[ModelSpec, ...]
    precisions: tuple[str, ...]
    verdicts: tuple[Verdict, ...]
    scaling: tuple[ScalingPoint, ...] = ()
    validation: Mapping[str, Any] | None = None  # Store.latest_validation(), None when never run
    provenance: Mapping[str, Any] = field(default_factory=dict)  # versions, host, time, calibration
    skipped: tuple[Skipped, ...] = ()
    host_device_id: str | None = None  # "host" when this host's own predictions are included
    demand_tokens_per_s: float = 100.0  # aggregate demand the procurement tables size a fleet for (~20 readers)
    measured_energy: tuple[MeasuredEnergy, ...] = ()  # this host's own power sensors, per measurement
    sustained: tuple[SustainedRun, ...] = ()  # this host's sustained runs
    power_note: str = ""  # "no power sensor found ..." when this host's measurements carry no power reading
    facts: tuple[DeviceFacts, ...] = ()  # per device: its own measured draw and sustained factor (devicepower)
    device_checks: tuple[DeviceCheck, ...] = ()  # linked devices: their own figures vs the datasheet prediction
    user_models: tuple[UserModelRun, ...] = ()  # the user's own .onnx files measured on this host (bench FILE)
    user_graphs: tuple[UserGraph, ...] = ()  # the user's .onnx files predicted on every device (report --model)

    # --- lookups ---
    def verdict(self, model_id: str, precision: str, device_id: str) -> Verdict | None:
        return _index(self.verdicts).get((model_id, precision, device_id))

    def verdicts_for(self, *, model_id: str | None = None, device_id: str | None = None) -> tuple[Verdict, ...]:
        return tuple(
            v
            for v in self.verdicts
            if (model_id is None or v.prediction.model_id == model_id)
            and (device_id is None or v.prediction.device_id == device_id)
        )

    def spec(self, model_id: str) -> ModelSpec:
        return {s.id: s for s in self.specs}[model_id]

    def device(self, device_id: str) -> DeviceProfile:
        return {d.id: d for d in self.devices}[device_id]

    # --- answers: only precisions onnxruntime runs (GGUF rows are there for their memory figures) ---
    def runnable_verdicts(self, *, model_id: str | None = None, device_id: str | None = None) -> tuple[Verdict, ...]:
        return tuple(v for v in self.verdicts_for(model_id=model_id, device_id=device_id) if runs_here(v))

    def best_precision(self, model_id: str, device_id: str) -> Verdict | None:
        return best_fitting_precision(self.runnable_verdicts(model_id=model_id, device_id=device_id))

    def largest_model(self, device_id: str) -> Verdict | None:
        return largest_model_meeting(self.runnable_verdicts(device_id=device_id), self.specs)

    def options(self, model_id: str) -> tuple[DeviceOption, ...]:
        return device_options(self.runnable_verdicts(model_id=model_id), self.devices, model_id)

    @property
    def runnable_precisions(self) -> tuple[str, ...]:
        return tuple(p for p in self.precisions if precision_runs_here(p))

    def specs_by_size(self) -> tuple[ModelSpec, ...]:
        return tuple(sorted(self.specs, key=lambda s: (model_params(s), s.id)))


def precision_runs_here(precision: str) -> bool:
    """False for GGUF precisions: llama.cpp formats whose speed edgefit only borrows from int8/int4."""
    try:
        return catalog.get_precision(precision).kind != "gguf"
    except CatalogError:
        return True


def runs_here(v: Verdict) -> bool:
    return precision_runs_here(v.prediction.precision)


_INDEX_CACHE: dict[int, tuple[tuple[Verdict, ...], dict[tuple[str, str, str], Verdict]]] = {}


def _index(verdicts: tuple[Verdict, ...]) -> dict[tuple[str, str, str], Verdict]:
    cached = _INDEX_CACHE.get(id(verdicts))
    if cached is not None and cached[0] is verdicts:
        return cached[1]
    table = {(v.prediction.model_id, v.prediction.precision, v.prediction.device_id): v for v in verdicts}
    _INDEX_CACHE.clear()  # one report at a time; keeps the cache from growing
    _INDEX_CACHE[id(verdicts)] = (verdicts, table)
    return table


def collect_verdicts(
    specs: Sequence[ModelSpec],
    devices: Sequence[DeviceProfile],
    precisions: Sequence[str],
    workload: Workload,
    predict_fn: PredictFn,
    facts: Mapping[str, DeviceFacts] | None = None,
) -> tuple[tuple[Verdict, ...], tuple[Skipped, ...]]:
    """Predict and judge every (model, precision, device), with each device's own measured facts (``facts``, by
    device id) where there are any. Combinations the predictor refuses (PredictError, e.g. a GGUF precision it
    has no calibration for) are returned as ``Skipped`` with the reason."""
    verdicts: list[Verdict] = []
    skipped: list[Skipped] = []
    for spec in specs:
        for precision in precisions:
            for device in devices:
                try:
                    prediction = predict_fn(spec, precision, device)
                except PredictError as exc:
                    skipped.append(Skipped(spec.id, precision, device.id, str(exc)))
                    continue
                verdicts.append(judge(prediction, spec, device, workload, (facts or {}).get(device.id)))
    return tuple(verdicts), tuple(skipped)


def figure_sources(device: DeviceProfile) -> dict[str, str]:
    """Every figure of a profile with where it came from ("estimated: <note>" when it has no source)."""
    out: dict[str, str] = {}
    for f in fields(device):
        value = getattr(device, f.name)
        if isinstance(value, Figure):
            out[f.name] = value.source if value.source else f"estimated: {value.note or 'no note'}"
    return out


def measured_points(points: Iterable[ScalingPoint]) -> tuple[ScalingPoint, ...]:
    return tuple(p for p in points if p.basis == "measured")
