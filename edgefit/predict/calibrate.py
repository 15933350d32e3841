"""Host calibration: the measured ladder reduced to efficiencies and overheads, per precision.

    measurements ──> drift factors: each time to the run's median conditions (the CPU share other processes
                     left during it, when the bench recorded that; else the bandwidth probe beside it)
                 ──> per precision: decode fit (knee-aware), prefill fit, memory fit, load fit
                 ──> efficiencies vs this host's probes *at the same conditions* (the bandwidth probe median
                     during the ladder; detect's GEMM x the CPU share the ladder had)

Decode is modelled as ``max(memory term, compute term) + overheads`` so the bound can switch on another device.
The memory capability of the host is the fastest per-byte DRAM slope of any precision (fp32 here: it streams
weights at ~85-90 % of the probe). A precision whose per-byte slope is clearly slower than that is
compute-bound on this host (int4 MatMulNBits unpacking on two cores): its slope is turned into a weight rate
(weights/s), expressed as a compute efficiency against the GEMM probe (2 FLOP-equivalents per weight).

``Calibration`` is a plain value: ``to_dict``/``from_dict`` round-trip through JSON so a recorded calibration
(tests/data/calibration_fixture.json) predicts exactly what the live one did.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from edgefit.bench.measurement import Measurement, Phase, WarningCode
from edgefit.catalog import ModelSpec, get_precision
from edgefit.errors import PredictError
from edgefit.predict import accounting
from edgefit.predict.fit import DecodePoint, drift_factors, fit_decode, nnls_fit
from edgefit.profiles import DeviceProfile

SCHEMA_VERSION = 1
# A precision is compute-bound on this host when its DRAM per-byte time exceeds the best precision's by this.
COMPUTE_BOUND_MARGIN = 1.10
# Not observable on a memory-bound precision: we only know compute is at least as fast as the measured
# rate; assume it could go this much faster before it binds (prior, stated in notes).
UNOBSERVED_COMPUTE_HEADROOM = 2.0
PLAUSIBLE_EFFICIENCY = (0.05, 1.2)
# Decode streams weights read-only; the triad probe moves 3 arrays and does not count write-allocate traffic,
# so reading can run faster than the probe (tinyllama-1.1b fp32 decode read 30 GB/s beside a 20 GB/s probe here).
PLAUSIBLE_BANDWIDTH_EFFICIENCY = (0.05, 1.6)
# RAM held per byte of (non-embedding) weights in the file. Prepacking copies weights (fp32 ~1.0, int8 ~1.05,
# int4 acc4 ~1.27, ONNXRUNTIME-NOTES.md): no runtime holds much less than the file once it has run, and more than
# twice it would be a leak. A fit outside this range (too few rungs, a busy run) is replaced by the prior.
PLAUSIBLE_RSS_WEIGHT_FACTOR = (0.8, 2.0)
MIN_CPU_SHARE = 0.15  # never assume a measurement got less than this share of the cores


@dataclass(frozen=True, slots=True)
class PrecisionCalibration:
    precision: str
    threads: int
    rungs: tuple[str, ...]
    # decode: t = call_s + layer_s*layers + bytes * s_per_byte (DRAM regime; cache regime below knee_bytes)
    decode_call_s: float
    decode_layer_s: float
    decode_s_per_byte_dram: float
    decode_s_per_byte_cache: float | None
    decode_s_per_kv_byte: float  # attention streaming the KV cache (adds to the weights' time)
    knee_bytes: float | None
    dram_rungs: tuple[str, ...]
    cache_rungs: tuple[str, ...]
    decode_rms_rel: float
    decode_r2: float
    bytes_per_weight: float
    bound_on_host: str  # "memory" | "compute"
    bandwidth_efficiency: float  # weight streaming / STREAM probe (own slope; best precision's if compute-bound)
    kv_bandwidth_efficiency: float  # KV streaming / STREAM probe
    compute_efficiency: float  # 2 * weights/s / GEMM probe (for decode's compute term)
    compute_observed: bool  # False: a prior (UNOBSERVED_COMPUTE_HEADROOM x the lower bound)
    # prefill: t = call_s + layer_s*layers + flops * s_per_flop, at prompt_tokens
    prefill_call_s: float
    prefill_layer_s: float
    prefill_s_per_flop: float  # at a long prompt; shorter ones cost (1 + half_tokens / prompt) x more
    prefill_half_tokens: float  # prompt length at which GEMM efficiency is half its long-prompt value
    prefill_prompts: tuple[int, ...]
    prefill_efficiency: float  # (1/s_per_flop) / GEMM probe
    prefill_rms_rel: float
    # memory: peak rss = base + k * non-embedding weights + known terms (embedding, activations, KV: _fit_memory)
    rss_base_bytes: float
    rss_weight_factor: float
    rss_rms_rel: float
    # load: t = load_base_s + bytes / load_bytes_per_s
    load_base_s: float
    load_bytes_per_s: float
    # extent of the ladder (extrapolation distance is measured from these)
    max_read_bytes: float  # weights read per token by the largest rung
    max_weight_bytes: float
    max_prompt_flops: float
    measured: Mapping[str, Mapping[str, float]] = field(default_factory=dict)  # model id -> figures
    rss_dropped: tuple[str, ...] = ()  # peak-RSS points left out (an inherited high-water mark, not the model's)
    rss_weight_factor_source: str = "fit"  # "fit", or "prior" (catalog prepack factor) when the fit was implausible


@dataclass(frozen=True, slots=True)
class Calibration:
    host_fingerprint: str
    host_id: str
    host_stream_bytes_per_s: float  # the reference: median bandwidth probe during the ladder (detect's if none)
    host_gemm_flops_per_s: float  # detect's GEMM x contention_ratio
    host_cores: int
    host_clock_hz: float
    reference_probe_bytes_per_s: float
    drift_ratio: float  # max/min of the drift quantity (CPU share or bandwidth probe) over the measurements used
    precisions: Mapping[str, PrecisionCalibration]
    warnings: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    host_detect_stream_bytes_per_s: float = 0.0  # `edgefit detect`'s figures, for the record
    host_detect_gemm_flops_per_s: float = 0.0
    contention_ratio: float = 1.0  # probe median during the ladder / detect's STREAM (clipped 0.05..1.2)
    host_isa: str = "x86_64"
    drift_source: str = "probe"  # what normalised the times: "cpu" (share left by others) or "probe"
    reference_condition: float = 0.0  # median of that quantity over the run (the reference conditions)
    schema_version: int = SCHEMA_VERSION

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["precisions"] = {k: asdict(v) for k, v in self.precisions.items()}
        return d

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Calibration:
        if data.get("schema_version") != SCHEMA_VERSION:
            raise PredictError(
                f"calibration schema_version: expected {SCHEMA_VERSION}, found {data.get('schema_version')!r}; "
                "regenerate it (see tests/data/README.md)"
            )
        precs = {}
        for name, raw in data["precisions"].items():
            vals = dict(raw)
            for key in ("rungs", "dram_rungs", "cache_rungs", "prefill_prompts", "rss_dropped"):
                vals[key] = tuple(vals[key])
            precs[name] = PrecisionCalibration(**vals)
        top = {k: v for k, v in data.items() if k != "precisions"}
        top["warnings"] = tuple(top.get("warnings", ()))
        top["notes"] = tuple(top.get("notes", ()))
        return cls(precisions=precs, **top)


def _probes_beside(ms: Sequence[Measurement]) -> list[float | None]:
    """Each measurement's bandwidth probe; prefill (and load) measurements have none of their own, so they take
    the median probe of the same model's decode measurements in the same run (the same worker, seconds apart)."""
    by_model: dict[tuple[str | None, str, str], list[float]] = {}
    for m in ms:
        if m.probe_bandwidth_bytes_per_s:
            by_model.setdefault((m.run_id, m.model_id, m.precision), []).append(m.probe_bandwidth_bytes_per_s)
    out: list[float | None] = []
    for m in ms:
        near = by_model.get((m.run_id, m.model_id, m.precision))
        out.append(m.probe_bandwidth_bytes_per_s or (float(statistics.median(near)) if near else None))
    return out


def _others_cores(m: Measurement) -> float | None:
    """CPU cores other processes used *during* this measurement's samples (the bench's busy-machine warning)."""
    for w in m.warnings:
        if w.code == WarningCode.BUSY_MACHINE:
            return float(w.value)
    return None


def conditions(ms: Sequence[Measurement], source: str, cores: int) -> list[float | None]:
    """How fast the host could run each measurement, in relative units (higher = less disturbed).

    ``cpu``: the share of the cores left by other processes during the samples, (cores - others) / cores (a
    measurement without a busy-machine warning had the host to itself). Measured *during* the samples, it
    tracks CPU time-slicing better than a bandwidth probe taken before them, and covers prefill directly.
    ``probe``: the bandwidth probe beside the measurement (prefill borrows its model's)."""
    if source == "cpu":
        n = max(cores, 1)
        return [max(n - (_others_cores(m) or 0.0), MIN_CPU_SHARE * n) / n for m in ms]
    return _probes_beside(ms)


def drift_source(ms: Sequence[Measurement]) -> str:
    """``cpu`` when the run recorded other processes' CPU use (a shared machine), else ``probe``."""
    return "cpu" if any(_others_cores(m) is not None for m in ms) else "probe"


def normalisation(ms: Sequence[Measurement], calibration: Calibration) -> list[float]:
    """Factors that bring measured times to the calibration's reference conditions (t_ref = t * factor)."""
    vals = conditions(ms, calibration.drift_source, calibration.host_cores)
    ref = calibration.reference_condition
    return [v / ref if (v and ref) else 1.0 for v in vals]


def _median(samples: Iterable[float]) -> float:
    return float(statistics.median(samples))


def time_statistic(samples: Iterable[float]) -> float:
    """The time a measurement stands for: the median of its raw samples (lower quantiles were tried against
    CPU contention on the shared VM and did not make held-out predictions better)."""
    return _median(samples)


def _host_figures(host: DeviceProfile, ref_probe: float) -> tuple[float, float, float, list[str]]:
    notes: list[str] = []
    stream = host.measured_bandwidth_bytes_per_s
    if not stream:
        stream = ref_probe or host.bandwidth_bytes_per_s
        notes.append("host profile has no measured bandwidth; efficiencies are against the median quick probe")
    cpu = host.cpu
    gemm_fig = cpu.measured_fp32_flops_per_s or cpu.peak_fp32_flops_per_s
    if gemm_fig is None:
        raise PredictError(
            f"host profile {host.id!r}: no measured or peak fp32 GEMM figure; run `edgefit detect` to measure one"
        )
    if cpu.measured_fp32_flops_per_s is None:
        notes.append("host profile has no measured GEMM; compute efficiencies are against its peak fp32 figure")
    clock = max((c.max_clock_hz.value for c in host.clusters), default=0.0)
    return float(stream), float(gemm_fig.value), float(clock), notes


def calibrate(
    measurements: Iterable[Measurement],
    host: DeviceProfile,
    *,
    specs: Mapping[str, ModelSpec] | None = None,
) -> Calibration:
    """Fit every precision present in ``measurements`` (user ``file`` models are skipped).

    ``specs`` maps model id -> ModelSpec for KV bytes and FLOPs; ids not given are resolved through the
    ladder and the catalog. Raises PredictError when there is nothing to fit."""
    ms = [m for m in measurements if m.precision != "file" and m.samples_s]
    if not ms:
        raise PredictError("no ladder measurements in the database; run `edgefit bench --ladder quick` first")
    spec_map = accounting.resolve_specs({m.model_id for m in ms}, given=specs)
    # Drift: each time is brought to the run's median conditions (see ``conditions``); the probe median is the
    # bandwidth reference for the efficiencies either way.
    source = drift_source(ms)
    factors, ref_condition, drift = drift_factors(conditions(ms, source, host.cpu_cores))
    factor_of = {id(m): f for m, f in zip(ms, factors, strict=True)}
    _, ref_probe, probe_drift = drift_factors(_probes_beside(ms))
    detect_stream, detect_gemm, clock, notes = _host_figures(host, ref_probe)
    # Drift-proofing of the efficiencies: the reference is the probe median *during the ladder* (the quick probe
    # is the same triad on the same working set as detect's STREAM), not a STREAM figure measured at another
    # time. No GEMM probe runs beside the ladder, so the GEMM figure is scaled by the same busy-ness ratio
    # (contention from other processes slows compute and memory alike, to first order).
    contention = ref_probe / detect_stream if ref_probe > 0 and detect_stream > 0 else 1.0
    if source == "cpu":
        # the run says how much of the cores it had at its reference conditions: a GEMM (and the per-token
        # overheads) scale with exactly that share, whatever the bandwidth probe read
        contention = ref_condition
    contention = min(max(contention, 0.05), 1.2)
    stream = ref_probe if ref_probe > 0 else detect_stream
    gemm = detect_gemm * contention
    warnings: list[str] = []
    if contention < 0.8:
        warnings.append(
            f"the host was busy while the ladder ran (other processes left {contention:.0%} of it at the median; "
            f"bandwidth probe median {ref_probe / 1e9:.1f} GB/s vs {detect_stream / 1e9:.1f} GB/s at "
            "`edgefit detect`): efficiencies are taken against the conditions during the ladder"
        )
    if drift > 1.15:
        how = "the CPU share other processes left" if source == "cpu" else "the bandwidth probe"
        warnings.append(
            f"conditions drifted {drift:.2f}x (max/min; bandwidth probe {probe_drift:.2f}x) while measuring; times "
            f"were normalised by {how} during each measurement"
        )
    fingerprints = Counter(m.host_fingerprint for m in ms)
    if len(fingerprints) > 1:
        warnings.append(f"measurements from {len(fingerprints)} hosts mixed; using them all")
    by_prec: dict[str, list[Measurement]] = {}
    for m in ms:
        if m.model_id in spec_map:
            by_prec.setdefault(m.precision, []).append(m)
    missing = sorted({m.model_id for m in ms} - set(spec_map))
    if missing:
        notes.append(f"skipped measurements of unknown models: {', '.join(missing)}")

    raw: dict[str, dict[str, Any]] = {}
    for p, lst in sorted(by_prec.items()):
        fitted = _fit_precision(p, lst, spec_map, factor_of)
        if fitted is not None:
            raw[p] = fitted
    if not raw:
        raise PredictError("no decode measurements to fit; run `edgefit bench --ladder quick` first")
    # memory capability of the host: the best per-byte DRAM slope of any precision. A precision within
    # COMPUTE_BOUND_MARGIN of it is memory-bound and keeps its own slope as its streaming efficiency (so the
    # host is reproduced exactly); a slower one is compute-bound: it could stream at the best rate, and its own
    # slope becomes the compute term.
    best_s_per_byte = min(r["decode_s_per_byte_dram"] for r in raw.values())
    # The KV cache is fp32 and read by the same attention kernel whatever the weights' precision: one shared
    # slope (the median of the per-precision fits, within 0.25-1.5x of the best weight streaming) resists noise.
    kv_slope = statistics.median(r["decode_s_per_kv_byte"] for r in raw.values())
    kv_slope = min(max(kv_slope, best_s_per_byte / 1.5), best_s_per_byte / 0.25)
    for r in raw.values():
        r["decode_s_per_kv_byte"] = kv_slope
    precs: dict[str, PrecisionCalibration] = {}
    observed_rate = {p: 1.0 / (r["decode_s_per_byte_dram"] * r["bytes_per_weight"]) for p, r in raw.items()}
    bound = {p: r["decode_s_per_byte_dram"] > COMPUTE_BOUND_MARGIN * best_s_per_byte for p, r in raw.items()}
    for p, r in raw.items():
        a = r["decode_s_per_byte_dram"]
        compute_bound = bound[p]
        weights_per_s = observed_rate[p]
        if not compute_bound:
            # unobserved compute rate: at least what was seen, assumed UNOBSERVED_COMPUTE_HEADROOM x more, but no
            # faster than a narrower kernel seen compute-bound (wider weights never make a token cheaper)
            narrower = [
                observed_rate[q] for q in raw if bound[q] and raw[q]["bytes_per_weight"] < r["bytes_per_weight"]
            ]
            weights_per_s = max(weights_per_s, min([weights_per_s * UNOBSERVED_COMPUTE_HEADROOM, *narrower]))
        bandwidth_eff = (1.0 / (best_s_per_byte if compute_bound else a)) / stream
        r["bound_on_host"] = "compute" if compute_bound else "memory"
        r["bandwidth_efficiency"] = bandwidth_eff
        r["kv_bandwidth_efficiency"] = (1.0 / r["decode_s_per_kv_byte"]) / stream
        r["compute_efficiency"] = 2.0 * weights_per_s / gemm
        r["compute_observed"] = compute_bound
        r["prefill_efficiency"] = (1.0 / r["prefill_s_per_flop"]) / gemm if r["prefill_s_per_flop"] > 0 else 0.0
        precs[p] = PrecisionCalibration(**r)
        checks = [("bandwidth", bandwidth_eff, False, PLAUSIBLE_BANDWIDTH_EFFICIENCY)]
        if compute_bound:  # a memory-bound precision's compute efficiency is a prior, not a measurement
            checks.append(("decode compute", r["compute_efficiency"], False, PLAUSIBLE_EFFICIENCY))
        checks.append(("prefill compute", r["prefill_efficiency"], p in ("int8", "int4"), PLAUSIBLE_EFFICIENCY))
        if r.get("rss_weight_factor_source") == "prior":
            warnings.append(
                f"{p}: the peak-RSS fit was implausible or had a single model; memory uses the catalog's prepack "
                f"factor {r['rss_weight_factor']:.2f} x the weights instead"
            )
        for what, eff, quantized, (lo, hi) in checks:
            # int8/int4 prefill runs on VNNI/AMX integer units: above the fp32 GEMM probe is expected there
            if eff < lo or (eff > hi and not quantized):
                warnings.append(
                    f"{p}: {what} efficiency {eff:.2f} of the host probe is implausible (expected {lo}-{hi}); "
                    "re-run `edgefit detect` and `edgefit bench --ladder quick` on a quiet machine"
                )
    return Calibration(
        host_fingerprint=fingerprints.most_common(1)[0][0],
        host_id=host.id,
        host_stream_bytes_per_s=stream,
        host_gemm_flops_per_s=gemm,
        host_detect_stream_bytes_per_s=detect_stream,
        host_detect_gemm_flops_per_s=detect_gemm,
        contention_ratio=contention,
        drift_source=source,
        reference_condition=ref_condition,
        host_isa=host.isa,
        host_cores=host.cpu_cores,
        host_clock_hz=clock,
        reference_probe_bytes_per_s=ref_probe,
        drift_ratio=drift,
        precisions=precs,
        warnings=tuple(warnings),
        notes=tuple(notes),
    )


def _fit_precision(
    precision: str,
    ms: list[Measurement],
    specs: Mapping[str, ModelSpec],
    factor_of: Mapping[int, float],
) -> dict[str, Any] | None:
    threads = Counter(m.threads for m in ms).most_common(1)[0][0]
    ms = [m for m in ms if m.threads == threads]
    dec = [m for m in ms if m.phase == Phase.DECODE]
    pre = [m for m in ms if m.phase == Phase.PREFILL]
    if not dec:
        return None
    points = []
    for m in dec:
        spec = specs[m.model_id]
        kv = accounting.kv_bytes(spec, m.context_tokens)
        points.append(
            DecodePoint(
                label=m.model_id,
                weight_bytes=float(m.weight_read_bytes_per_token),
                kv_bytes=float(kv),
                layers=spec.num_layers,
                seconds=time_statistic(m.samples_s) * factor_of[id(m)],
            )
        )
    in_cache = {m.model_id for m in dec if any(w.code == WarningCode.FITS_IN_CACHE for w in m.warnings)}
    dfit = fit_decode(points, in_cache=in_cache)
    # prefill: normalised like decode, by the probe of the same model's decode measurements (see calibrate)
    pf = _fit_prefill(pre, specs, factor_of)
    mem = _fit_memory(precision, ms, specs)
    load_pts = [m for m in ms if m.load_s is not None]
    if len(load_pts) >= 2:
        lfit = nnls_fit(
            [[1.0, float(m.weight_file_bytes)] for m in load_pts], [m.load_s or 0.0 for m in load_pts], ("c", "k")
        )
        load_base, k = lfit.coef("c"), lfit.coef("k")
        load_rate = 1.0 / k if k > 0 else 0.0
    else:
        load_base, load_rate = 0.0, 0.0
    measured: dict[str, dict[str, float]] = {}
    for m in dec:
        entry = measured.setdefault(m.model_id, {})
        entry[f"decode@{m.context_tokens}"] = time_statistic(m.samples_s) * factor_of[id(m)]
        if m.peak_rss_bytes:
            entry["peak_rss_bytes"] = max(entry.get("peak_rss_bytes", 0.0), float(m.peak_rss_bytes))
    for m in pre:
        measured.setdefault(m.model_id, {})[f"prefill@{m.prompt_tokens}"] = (
            time_statistic(m.samples_s) * factor_of[id(m)]
        )
    return {
        "precision": precision,
        "threads": threads,
        "rungs": tuple(sorted({m.model_id for m in dec})),
        "decode_call_s": dfit.call_s,
        "decode_layer_s": dfit.layer_s,
        "decode_s_per_byte_dram": dfit.a_dram_s_per_byte,
        "decode_s_per_byte_cache": dfit.a_cache_s_per_byte,
        "decode_s_per_kv_byte": dfit.a_kv_s_per_byte,
        "knee_bytes": dfit.knee_bytes,
        "dram_rungs": dfit.dram_labels,
        "cache_rungs": dfit.cache_labels,
        "decode_rms_rel": _dram_rms(dfit.fit.residuals_rel, dfit.fit.labels, dfit.dram_labels),
        "decode_r2": dfit.fit.r2,
        "bytes_per_weight": accounting.bytes_per_weight(precision),
        **pf,
        **mem,
        "load_base_s": load_base,
        "load_bytes_per_s": load_rate,
        "max_read_bytes": max(p.weight_bytes for p in points),
        "max_weight_bytes": float(max(m.weight_file_bytes for m in dec)),
        "measured": measured,
    }


# candidate half-efficiency prompt lengths; the one with the smallest residual wins (ONNXRUNTIME-NOTES: ~80 %
# of sgemm at >= 128 tokens, 50-65 % at 32, i.e. a half-point of roughly 10-30 tokens)
_HALF_TOKENS = (0.0, 4.0, 8.0, 12.0, 16.0, 24.0, 32.0, 48.0, 64.0)


def _fit_prefill(
    pre: list[Measurement], specs: Mapping[str, ModelSpec], factor_of: Mapping[int, float]
) -> dict[str, Any]:
    """t = call + layer*L + flops * s_per_flop * (1 + half/P), scanning ``half`` (a one-parameter nonlinearity)."""
    empty = {"prefill_call_s": 0.0, "prefill_layer_s": 0.0, "prefill_s_per_flop": 0.0, "prefill_half_tokens": 0.0,
             "prefill_prompts": (), "prefill_rms_rel": 0.0, "max_prompt_flops": 0.0}  # fmt: skip
    pre = [m for m in pre if m.prompt_tokens > 0]
    if not pre:
        return empty
    y = [time_statistic(m.samples_s) * factor_of[id(m)] for m in pre]
    labels = [f"{m.model_id}@{m.prompt_tokens}" for m in pre]
    flops = [float(accounting.prompt_flops(specs[m.model_id], m.prompt_tokens)) for m in pre]
    use_layer = len({specs[m.model_id].num_layers for m in pre}) > 1 and len(pre) >= 4
    best = None
    # one prompt length cannot separate the half-point from the slope: use the prior (16 tokens)
    for half in _HALF_TOKENS if len({m.prompt_tokens for m in pre}) > 1 else (16.0,):
        rows = [
            [1.0, float(specs[m.model_id].num_layers) if use_layer else 0.0, f * (1.0 + half / m.prompt_tokens)]
            for m, f in zip(pre, flops, strict=True)
        ]
        fit = nnls_fit(rows, y, ("call_s", "layer_s", "s_per_flop"), labels, robust=True)
        if fit.coef("s_per_flop") > 0 and (best is None or fit.rms_rel < best[1].rms_rel * (1 - 1e-6)):
            best = (half, fit)
    if best is None:
        return empty
    half, fit = best
    return {
        "prefill_call_s": fit.coef("call_s"),
        "prefill_layer_s": fit.coef("layer_s"),
        "prefill_s_per_flop": fit.coef("s_per_flop"),
        "prefill_half_tokens": half,
        "prefill_prompts": tuple(sorted({m.prompt_tokens for m in pre})),
        "prefill_rms_rel": fit.rms_rel,
        "max_prompt_flops": max(flops),
    }


def _dram_rms(res: tuple[float, ...], labels: tuple[str, ...], keep: tuple[str, ...]) -> float:
    sel = [r for r, lab in zip(res, labels, strict=True) if lab in keep]
    return float((sum(r * r for r in sel) / len(sel)) ** 0.5) if sel else 0.0


def _fit_memory(precision: str, ms: list[Measurement], specs: Mapping[str, ModelSpec]) -> dict[str, Any]:
    """peak RSS = base + k * (weights other than the embedding) + what physics already knows (accounting):
    the tied-float embedding and its packed copy, and the larger of the load transient (largest weight) and the
    activations of the longest prefill measured + the KV cache. Only ``base`` (Python + onnxruntime) and ``k``
    (prepacking: ~1.0 fp32, ~1.4 int4 MatMulNBits here) are fitted: the ladder shares one vocabulary, so a logits
    coefficient could not be separated from ``base`` there."""
    by_model: dict[str, list[Measurement]] = {}
    for m in ms:
        if m.peak_rss_bytes:
            by_model.setdefault(m.model_id, []).append(m)
    peak_pts = {mid: max(lst, key=lambda m: m.peak_rss_bytes or 0) for mid, lst in by_model.items()}
    empty = {
        "rss_dropped": (),
        "rss_base_bytes": 0.0,
        "rss_weight_factor": get_precision(precision).prepack_factor,
        "rss_weight_factor_source": "prior",
        "rss_rms_rel": 0.0,
    }
    if not peak_pts:
        return empty
    dropped = _inherited_peaks(peak_pts)
    rows, y, labels = [], [], []
    for mid, lst in by_model.items():
        if mid in dropped:
            continue
        spec = specs[mid]
        m = peak_pts[mid]
        # the longest prefill the worker ran (the KV cache of deeper decodes is filled with noise by default)
        prompt = max((x.prompt_tokens for x in lst if x.phase == Phase.PREFILL), default=1)
        depth = max(x.context_tokens for x in lst)
        run = accounting.activation_bytes(spec, precision, prompt_tokens=prompt, context_tokens=0)
        run += accounting.kv_bytes(spec, depth)
        known = accounting.known_resident_bytes(spec, precision)
        known += max(run, accounting.load_transient_bytes(spec, precision))
        rest = max(m.weight_file_bytes - accounting.embedding_bytes(spec), 0)
        rows.append([1.0, float(rest)])
        y.append(float(m.peak_rss_bytes or 0) - known)
        labels.append(mid)
    if not rows:
        return empty | {"rss_dropped": tuple(sorted(dropped))}
    fit = nnls_fit(rows, y, ("base", "k"), labels)
    base, k, source = fit.coef("base"), fit.coef("k"), "fit"
    lo, hi = PLAUSIBLE_RSS_WEIGHT_FACTOR
    if len(rows) < 2 or not lo <= k <= hi:
        # one point cannot separate base from k, and an implausible k would shrink (or inflate) every large
        # model's memory: keep the measured base, take k from the catalog's measured prepack factor
        k, source = get_precision(precision).prepack_factor, "prior"
        base = max(statistics.median(yi - k * r[1] for r, yi in zip(rows, y, strict=True)), 0.0)
    return {
        "rss_base_bytes": base,
        "rss_weight_factor": k,
        "rss_weight_factor_source": source,
        "rss_rms_rel": _rss_rms(rows, y, base, k, peak_pts, labels),
        "rss_dropped": tuple(sorted(dropped)),
    }


def _rss_rms(
    rows: list[list[float]], y: list[float], base: float, k: float, peaks: Mapping[str, Measurement], labels: list[str]
) -> float:
    """RMS of the residuals relative to the whole peak (not to the fitted remainder, which can be small)."""
    rel = [
        (yi - (base + k * r[1])) / float(peaks[lab].peak_rss_bytes or 1)
        for r, yi, lab in zip(rows, y, labels, strict=True)
    ]
    return float((sum(e * e for e in rel) / len(rel)) ** 0.5)


def _inherited_peaks(points: Mapping[str, Measurement]) -> set[str]:
    """A guard for results measured before the worker read VmHWM: ``ru_maxrss`` keeps the high-water mark a
    worker inherits from its parent at fork (Linux saves it across exec), so every model smaller than the parent
    showed the *same* peak. A peak shared (within 2 %) by models whose steady RSS differs by more than 15 %
    belongs to no model: leave it out."""
    items = [(mid, float(m.peak_rss_bytes or 0), float(m.steady_rss_bytes or 0)) for mid, m in points.items()]
    out: set[str] = set()
    for mid, peak, steady in items:
        for other, peak2, steady2 in items:
            if other == mid or not steady or not steady2:
                continue
            if abs(peak - peak2) <= 0.02 * peak and abs(steady - steady2) > 0.15 * max(steady, steady2):
                out.add(mid)
    return out
