"""Measurement: what one benchmark phase of one model measured, raw samples included.

Statistics (median, IQR, percentiles, CV) are pure functions of ``samples_s`` in ``edgefit.stats``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from edgefit.bench.series import SustainedSeries
from edgefit.power.reading import PowerReading


class Phase(str, Enum):
    LOAD = "load"  # samples_s: session-creation times (one per worker process)
    PREFILL = "prefill"  # samples_s: full prompt pass, prompt_tokens tokens, empty KV cache
    DECODE = "decode"  # samples_s: one token, KV cache pre-filled to context_tokens
    RUN = "run"  # samples_s: one inference of a non-decoder user model with synthesized inputs
    SUSTAINED = "sustained"  # samples_s: every decode step (or inference) of `bench --sustained`, in order


class WarningCode(str, Enum):
    HIGH_VARIANCE = "high_variance"
    TOO_FEW_SAMPLES = "too_few_samples"
    BUSY_MACHINE = "busy_machine"
    THROTTLED = "throttled"
    FITS_IN_CACHE = "fits_in_cache"
    TIME_BUDGET_EXHAUSTED = "time_budget_exhausted"
    DRIFT = "drift"


@dataclass(frozen=True, slots=True)
class QualityWarning:
    code: WarningCode
    value: float  # the figure that triggered it (e.g. CV = 0.08)
    threshold: float
    message: str  # what it means and what to do about it


@dataclass(frozen=True, slots=True)
class Measurement:
    model_id: str  # ladder/catalog id, or "file:<name>" for a user .onnx
    model_hash: str  # sha256 of the .onnx (first 16 hex) so re-built models are recognised
    precision: str  # fp32, int8, int4, or "file" for a user model
    threads: int
    provider: str
    phase: Phase
    prompt_tokens: int  # prefill: prompt length; decode: 1
    context_tokens: int  # decode: KV depth before the measured token; prefill/load: 0
    samples_s: tuple[float, ...]
    warmup_samples_s: tuple[float, ...]
    params: int
    weight_file_bytes: int  # bytes of initializers as stored (external data included)
    weight_read_bytes_per_token: int  # bytes one decoded token reads (MatMul weights + LM head)
    peak_rss_bytes: int | None  # high-water RSS of the worker process
    steady_rss_bytes: int | None  # RSS after a warm run
    load_s: float | None
    stop_reason: str  # "target_precision" | "time_budget" | "max_samples"
    host_fingerprint: str
    warnings: tuple[QualityWarning, ...] = ()
    probe_bandwidth_bytes_per_s: float | None = None  # bandwidth probe taken beside this measurement
    timer: str = "time.perf_counter"
    run_id: str | None = None
    started_at: str | None = None  # ISO 8601 UTC
    layers: int | None = None
    hidden_size: int | None = None
    # Power sensors sampled during the timed samples (edgefit.power), one reading per sensor; () = none readable
    power: tuple[PowerReading, ...] = ()
    sustained: SustainedSeries | None = None  # phase "sustained": the time series (rate, heat, clocks, power)
