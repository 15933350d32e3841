"""Scaling fits on the measured ladder: weighted non-negative least squares and the cache knee.

Everything here is pure numpy on plain numbers (bytes, FLOPs, seconds); no I/O, no onnxruntime. The fits
minimise *relative* residuals (each row weighted by 1/y) because the ladder spans two orders of magnitude in
time and a 1 % error on a 200 MiB rung matters as much as a 1 % error on a 4 GiB model.

Cache knee (why it exists, ONNXRUNTIME-NOTES.md "Cache"): rungs whose weights stay resident in the caches
this VM really gets (~100-150 MiB) run 1.35-1.45x faster per byte than DRAM-resident ones. A single slope
through all rungs would then under-predict every large model. ``fit_decode`` tries every split point of the
rungs sorted by bytes, gives the small side its own per-byte slope, and keeps the split only when it clearly
improves the fit (BIC) *and* the small side really is faster per byte.

    t_decode = c_call + c_layer * layers + a_cache * weights + a_kv * kv   (rungs below the knee)
    t_decode = c_call + c_layer * layers + a_dram  * weights + a_kv * kv   (rungs at/above the knee: the
                                                                            regime that extrapolates)

The KV cache has its own slope: attention streams it with its own kernel after the MatMuls, so for a
compute-bound precision (int4 here) its cost adds to the weights' time instead of hiding under it. The ladder
measures every rung at several KV depths, which separates the two.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from edgefit.errors import PredictError


@dataclass(frozen=True, slots=True)
class LinearFit:
    """``y ~= sum(coefficients[j] * x[j])``; coefficients are non-negative (physical costs)."""

    names: tuple[str, ...]
    coefficients: tuple[float, ...]
    r2: float  # on y itself (unweighted), 1.0 = perfect
    rms_rel: float  # root-mean-square of the relative residuals
    residuals_rel: tuple[float, ...]  # (measured - fitted) / fitted, in input order
    labels: tuple[str, ...]  # which points were used (model ids), in input order

    def coef(self, name: str) -> float:
        return self.coefficients[self.names.index(name)] if name in self.names else 0.0

    def to_dict(self) -> dict[str, object]:
        return {
            "coefficients": dict(zip(self.names, self.coefficients, strict=True)),
            "r2": self.r2,
            "rms_rel": self.rms_rel,
            "residuals_rel": dict(zip(self.labels, self.residuals_rel, strict=True)),
        }


HUBER_K = 1.5
ROBUST_ITERATIONS = 6
MIN_ROBUST_SCALE = 0.02  # repeat-to-repeat noise on a quiet host: never downweight below it


def _nnls(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> np.ndarray:
    active = [j for j in range(x.shape[1]) if np.any(x[:, j] != 0.0)]
    coef = np.zeros(x.shape[1])
    while active:
        sol, *_ = np.linalg.lstsq(x[:, active] * w[:, None], y * w, rcond=None)
        if np.all(sol >= 0.0):
            coef[active] = sol
            break
        active.pop(int(np.argmin(sol)))
    return coef


def nnls_fit(
    rows: Sequence[Sequence[float]],
    y: Sequence[float],
    names: Sequence[str],
    labels: Sequence[str] | None = None,
    *,
    relative: bool = True,
    robust: bool = False,
) -> LinearFit:
    """Least squares with non-negative coefficients (a small active-set loop: drop the most negative
    coefficient and refit). ``relative`` weights each row by 1/y. ``robust``: Huber reweighting (a few
    iterations), so one measurement slowed by another process cannot drag the slope; points within
    ``HUBER_K`` robust standard deviations keep full weight."""
    x = np.asarray(rows, dtype=float)
    yv = np.asarray(y, dtype=float)
    if x.ndim != 2 or x.shape[0] != yv.shape[0] or x.shape[1] != len(names):
        raise ValueError("nnls_fit: shape mismatch")  # programming error
    if x.shape[0] == 0:
        raise PredictError("no measurements to fit; run `edgefit bench --ladder quick` first")
    w0 = 1.0 / np.maximum(np.abs(yv), 1e-300) if relative else np.ones_like(yv)
    coef = _nnls(x, yv, w0)
    for _ in range(ROBUST_ITERATIONS if robust and x.shape[0] > x.shape[1] + 1 else 0):
        fitted = x @ coef
        r = (yv - fitted) * w0
        scale = max(1.4826 * float(np.median(np.abs(r))), MIN_ROBUST_SCALE)
        hub = np.minimum(1.0, HUBER_K * scale / np.maximum(np.abs(r), 1e-300))
        coef = _nnls(x, yv, w0 * np.sqrt(hub))
    fitted = x @ coef
    res_rel = np.where(fitted > 0, (yv - fitted) / np.where(fitted > 0, fitted, 1.0), 0.0)
    ss_tot = float(np.sum((yv - yv.mean()) ** 2))
    ss_res = float(np.sum((yv - fitted) ** 2))
    r2 = 1.0 - ss_res / ss_tot if ss_tot > 0 else (1.0 if ss_res == 0 else 0.0)
    lab = tuple(labels) if labels is not None else tuple(str(i) for i in range(len(yv)))
    return LinearFit(
        names=tuple(names),
        coefficients=tuple(float(c) for c in coef),
        r2=r2,
        rms_rel=float(np.sqrt(np.mean(res_rel**2))),
        residuals_rel=tuple(float(r) for r in res_rel),
        labels=lab,
    )


@dataclass(frozen=True, slots=True)
class DecodePoint:
    """One decode measurement reduced to what the fit needs. ``seconds`` already drift-normalised."""

    label: str
    weight_bytes: float  # weights read per token (MatMuls + LM head): also what decides cache residency
    kv_bytes: float  # KV cache bytes read at the measured depth
    layers: int
    seconds: float


@dataclass(frozen=True, slots=True)
class DecodeFit:
    """Decode time per token vs bytes read. ``a_dram_s_per_byte`` extrapolates; ``knee_bytes`` is the
    smallest weight size treated as DRAM-resident (None: no knee detected, one regime)."""

    call_s: float
    layer_s: float
    a_dram_s_per_byte: float
    a_cache_s_per_byte: float | None
    a_kv_s_per_byte: float
    knee_bytes: float | None
    dram_labels: tuple[str, ...]
    cache_labels: tuple[str, ...]
    fit: LinearFit

    def seconds(self, weight_bytes: float, layers: int, kv_bytes: float = 0.0) -> float:
        in_cache = self.knee_bytes is not None and weight_bytes < self.knee_bytes
        a = self.a_cache_s_per_byte if in_cache and self.a_cache_s_per_byte is not None else self.a_dram_s_per_byte
        return self.call_s + self.layer_s * layers + a * weight_bytes + self.a_kv_s_per_byte * kv_bytes

    def to_dict(self) -> dict[str, object]:
        return {
            "call_s": self.call_s,
            "layer_s": self.layer_s,
            "a_dram_s_per_byte": self.a_dram_s_per_byte,
            "a_cache_s_per_byte": self.a_cache_s_per_byte,
            "a_kv_s_per_byte": self.a_kv_s_per_byte,
            "knee_bytes": self.knee_bytes,
            "dram_rungs": list(self.dram_labels),
            "cache_rungs": list(self.cache_labels),
            "fit": self.fit.to_dict(),
        }


_NAMES = ("call_s", "layer_s", "a_cache", "a_dram", "a_kv")


def _decode_rows(points: Sequence[DecodePoint], n_cache: int, use_layer: bool) -> list[list[float]]:
    rows = []
    for i, p in enumerate(points):
        cache = i < n_cache
        w = p.weight_bytes
        rows.append([1.0, float(p.layers) if use_layer else 0.0, w if cache else 0.0, 0.0 if cache else w, p.kv_bytes])
    return rows


def _bic(fit: LinearFit, n_params: int) -> float:
    n = len(fit.residuals_rel)
    ss = max(sum(r * r for r in fit.residuals_rel), 1e-12 * n)
    return n * math.log(ss / n) + n_params * math.log(max(n, 2))


def fit_decode(
    points: Sequence[DecodePoint],
    *,
    min_dram_points: int = 2,
    knee_gain: float = 1.1,
    in_cache: Iterable[str] = (),
) -> DecodeFit:
    """Fit decode time per token, detecting the cache knee.

    ``in_cache``: models known to be cache-resident (the benchmark compares their weights with the host's
    last-level cache and says so): they never set the DRAM slope, whatever the noise. Beyond them, a split is
    accepted when (1) at least ``min_dram_points`` models remain above it, (2) the cache slope is at least
    ``knee_gain`` times faster per byte than the DRAM slope, and (3) its BIC beats the fit without it. The
    per-layer overhead is dropped when the rungs cannot separate it (NNLS sets it to zero) or when there are
    fewer than four points."""
    if not points:
        raise PredictError("no decode measurements to fit; run `edgefit bench --ladder quick` first")
    pts = sorted(points, key=lambda p: p.weight_bytes)
    y = [p.seconds for p in pts]
    labels = [p.label for p in pts]
    use_layer = len(pts) >= 4 and len({p.layers for p in pts}) > 1
    n_kv = int(any(p.kv_bytes > 0 for p in pts))
    known = set(in_cache)
    forced = max((i + 1 for i, p in enumerate(pts) if p.label in known), default=0)
    # keep at least ``min_dram_points`` models for the DRAM slope: the largest flagged ones go back to DRAM
    # (a last-level-cache figure read from a VM can be larger than what the VM really gets)
    while forced > 0 and len({p.weight_bytes for p in pts[forced:]}) < min_dram_points:
        forced = max(i for i in range(forced) if i == 0 or pts[i].weight_bytes > pts[i - 1].weight_bytes)
    best_n_cache = forced
    best = nnls_fit(_decode_rows(pts, forced, use_layer), y, _NAMES, labels, robust=True)
    best_bic = _bic(best, 2 + int(use_layer) + n_kv + int(forced > 0))
    # split only between models (a model measured at several KV depths stays on one side)
    splits = [i for i in range(forced + 1, len(pts)) if pts[i].weight_bytes > pts[i - 1].weight_bytes]
    for n_cache in splits:
        if len({p.weight_bytes for p in pts[n_cache:]}) < min_dram_points:
            continue
        cand = nnls_fit(_decode_rows(pts, n_cache, use_layer), y, _NAMES, labels, robust=True)
        a_c, a_d = cand.coef("a_cache"), cand.coef("a_dram")
        if a_d <= 0 or a_c <= 0 or a_d < knee_gain * a_c:
            continue
        bic = _bic(cand, 3 + int(use_layer) + n_kv)
        if bic < best_bic - 2.0:  # 2 BIC units: "positive" evidence for the extra slope
            best, best_bic, best_n_cache = cand, bic, n_cache
    a_dram = best.coef("a_dram")
    if a_dram <= 0:
        raise PredictError(
            "decode fit failed: time does not grow with bytes read across the ladder "
            f"({len(pts)} rungs); re-run `edgefit bench --ladder quick` on a quieter machine"
        )
    knee = pts[best_n_cache].weight_bytes if best_n_cache else None
    # no KV variation (or noise drove it to zero): attention streams the cache like fp32 weights, at least
    a_kv = best.coef("a_kv") or a_dram
    return DecodeFit(
        call_s=best.coef("call_s"),
        layer_s=best.coef("layer_s"),
        a_dram_s_per_byte=a_dram,
        a_cache_s_per_byte=(best.coef("a_cache") or None) if best_n_cache else None,
        a_kv_s_per_byte=a_kv,
        knee_bytes=knee,
        dram_labels=tuple(dict.fromkeys(p.label for p in pts[best_n_cache:])),
        cache_labels=tuple(dict.fromkeys(p.label for p in pts[:best_n_cache])),
        fit=best,
    )


def drift_factors(probes: Sequence[float | None]) -> tuple[tuple[float, ...], float, float]:
    """Per-measurement factors that bring each time to the reference conditions (the median).

    ``probes`` is any "how fast could the host run now" quantity (a bandwidth probe, the CPU share other
    processes left): a measurement taken at ``p`` would have taken ``t * p / p_ref`` at the reference: a busier
    host (lower ``p``) runs slower, so its time is scaled down. Missing values get factor 1. Returns (factors,
    reference value, drift = max/min)."""
    vals = [p for p in probes if p is not None and p > 0]
    if not vals:
        return tuple(1.0 for _ in probes), 0.0, 1.0
    ref = float(np.median(vals))
    factors = tuple((p / ref) if (p is not None and p > 0) else 1.0 for p in probes)
    return factors, ref, max(vals) / min(vals)
