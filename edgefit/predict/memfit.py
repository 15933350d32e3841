"""Peak memory: what onnxruntime holds for a model, calibrated on this host's ladder when it has one.

    peak RSS = runtime base + k * (weights other than the embedding) + what physics already knows (accounting):
               the tied-float embedding and its packed copy, and the larger of the load transient (the largest
               weight being prepacked) and the activations of the longest prefill + the KV cache + the embedding
               rows the run reads through the file mapping (on this host: ``mapped_rows``, measured granules)

Only ``base`` (Python + onnxruntime) and ``k`` (prepacking: ~1.0 fp32, ~1.05 int8, ~1.27 int4 MatMulNBits) are
fitted, from the ladder's peak RSS. Without ladder measurements (or with an implausible fit) ``k`` is the catalog's
measured prepack factor and ``base`` the kernel worker's runtime RSS. One memory model for the guard, predict,
fit and report; one fits rule (``fits_in_memory``).
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from edgefit.bench.measurement import Measurement, Phase
from edgefit.catalog import ModelSpec, get_precision
from edgefit.fitting import nnls_fit
from edgefit.predict import accounting

# RAM held per byte of (non-embedding) weights in the file. Prepacking copies weights (fp32 ~1.0, int8 ~1.05,
# int4 acc4 ~1.27, ONNXRUNTIME-NOTES.md): no runtime holds much less than the file once it has run, and more than
# twice it would be a leak. A fit outside this range (too few rungs, a busy run) is replaced by the prior.
PLAUSIBLE_RSS_WEIGHT_FACTOR = (0.8, 2.0)
DEFAULT_RUNTIME_BYTES = 60 * 2**20  # Python + numpy + onnxruntime, when nothing was measured (a 2-core VM: 55-65 MiB)


@dataclass(frozen=True, slots=True)
class MemoryCalibration:
    precision: str
    rss_base_bytes: float
    rss_weight_factor: float
    source: str  # "fit" (this host's ladder) | "prior" (catalog prepack factor)
    rss_rms_rel: float
    models: tuple[str, ...]  # ladder models the fit used
    dropped: tuple[str, ...] = ()  # peak-RSS points left out (an inherited high-water mark, not the model's)
    # this host's cost of one read through a mapped file, pages cached / evicted (probes.mapped_granules; 0 unknown):
    # kept with the fit because the fit subtracted the mapped rows with these, so predictions must add the same
    mapped_granules_bytes: tuple[int, int] = (0, 0)


def prior_memory(precision: str, runtime_bytes: float, granules: tuple[int, int] = (0, 0)) -> MemoryCalibration:
    return MemoryCalibration(precision, runtime_bytes, get_precision(precision).prepack_factor, "prior", 0.0, (),
                             mapped_granules_bytes=granules)  # fmt: skip


def fit_memory(precision: str, ms: Sequence[Measurement], specs: Mapping[str, ModelSpec],
               runtime_bytes: float, granules: tuple[int, int] = (0, 0)) -> MemoryCalibration:  # fmt: skip
    """The peak-RSS fit of one precision (see module docstring)."""
    fields = _fit_memory(precision, list(ms), specs, granules)
    if not fields["models"]:
        return prior_memory(precision, runtime_bytes, granules)
    return MemoryCalibration(
        precision=precision,
        rss_base_bytes=fields["rss_base_bytes"],
        rss_weight_factor=fields["rss_weight_factor"],
        source=fields["rss_weight_factor_source"],
        rss_rms_rel=fields["rss_rms_rel"],
        models=tuple(fields["models"]),
        dropped=tuple(fields["rss_dropped"]),
        mapped_granules_bytes=granules,
    )


@dataclass(frozen=True, slots=True)
class MemoryTerms:
    weights_bytes: int
    kv_cache_bytes: int
    activations_bytes: int
    runtime_bytes: int
    load_transient_bytes: int  # while loading: the largest weight being prepacked
    mapped_embedding_bytes: int = 0  # embedding rows the runs read through the file mapping, its pages cached
    mapped_cold_bytes: int = 0  # the same when its pages were dropped (less where files are cached in large folios)

    @property
    def total_bytes(self) -> int:
        # peak = resident weights + runtime + the larger of the load transient and the run's activations + KV
        # (embedding rows read through the file mapping come with the runs, after the load transient is freed)
        run = self.activations_bytes + self.kv_cache_bytes + self.mapped_embedding_bytes
        return self.weights_bytes + self.runtime_bytes + max(run, self.load_transient_bytes)


def memory_terms(
    spec: ModelSpec,
    mc: MemoryCalibration,
    bytes_precision: str,
    *,
    context_tokens: int,
    prompt_tokens: int,
    on_host: bool = True,
    embedded_tokens: int | None = None,
) -> MemoryTerms:
    """``on_host``: the run is on the host whose mapped-file granule ``mc`` carries (other devices: 0, unknown).
    ``embedded_tokens``: token ids the runs pass through the embedding; default the whole context (a KV cache filled
    with noise, as the ladder's benchmark does, passed only its prompts)."""
    total = accounting.weight_bytes(spec, bytes_precision)
    tokens = max(context_tokens, prompt_tokens) if embedded_tokens is None else embedded_tokens
    mapped, mapped_cold = mapped_rows(spec, bytes_precision, tokens, mc.mapped_granules_bytes if on_host else (0, 0))
    if accounting.is_gguf(bytes_precision):
        # llama.cpp memory-maps the GGUF file as is (embedding quantized too, no prepacked copy)
        weights = float(total)
    else:
        rest = max(total - accounting.embedding_bytes(spec), 0)
        weights = accounting.known_resident_bytes(spec, bytes_precision) + mc.rss_weight_factor * rest
    act = accounting.activation_bytes(spec, bytes_precision, prompt_tokens=prompt_tokens, context_tokens=context_tokens)
    return MemoryTerms(
        weights_bytes=int(weights),
        kv_cache_bytes=accounting.kv_bytes(spec, context_tokens, bytes_precision),
        activations_bytes=int(act),
        runtime_bytes=int(mc.rss_base_bytes),
        load_transient_bytes=0
        if accounting.is_gguf(bytes_precision)
        else accounting.load_transient_bytes(spec, bytes_precision),
        mapped_embedding_bytes=mapped,
        mapped_cold_bytes=mapped_cold,
    )


def mapped_rows(spec: ModelSpec, precision: str, tokens: int, granules: tuple[int, int]) -> tuple[int, int]:
    """(cached, dropped): the embedding rows' RSS in the two states of the model file's pages. Cached (just written
    or read: right after a download or a build, the first runs): each id maps a whole granule, up to a 2 MiB large
    folio. Dropped (a reboot, memory pressure): each id faults in fault-around's 64 KiB. Which one a run meets
    depends on the page cache, not on the model: measured here, a 250 MiB table held 100 MiB after 64 ids when
    cached, 14 MiB after its pages were dropped. Predictions count the cached state (the larger: a model must fit
    on its first run) and their interval reaches down to the dropped one."""
    hot, cold = (accounting.mapped_embedding_bytes(spec, precision, tokens=tokens, granule_bytes=g) for g in granules)
    return hot, min(cold, hot)


def fits_in_memory(total_bytes: float, usable_ram_bytes: float) -> bool:
    """The one rule: the predicted peak (point estimate) must not exceed usable RAM."""
    return total_bytes <= usable_ram_bytes


def _fit_memory(
    precision: str, ms: list[Measurement], specs: Mapping[str, ModelSpec], granules: tuple[int, int] = (0, 0)
) -> dict[str, Any]:
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
        "models": (),
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
        # the state predictions count (cached): the ladder's files are measured right after they are built
        run += mapped_rows(spec, precision, prompt, granules)[0]
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
        "models": tuple(labels),
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
