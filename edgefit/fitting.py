"""Weighted non-negative least squares: the one fitting routine of edgefit (kernel classes, peak memory).

Pure numpy on plain numbers; no I/O. Fits minimise *relative* residuals (each row weighted by 1/y) because the
points span orders of magnitude in time or bytes, and a 1 % error on a small point matters as much as on a large
one. Coefficients are physical costs (seconds per byte, per MAC, fixed seconds), so they are kept non-negative.
"""

from __future__ import annotations

from collections.abc import Sequence
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

    def term(self, name: str, x: dict[str, float]) -> float:
        """One coefficient's contribution at features ``x``; the feature named "c" is the constant 1."""
        return self.coef(name) * (1.0 if name == "c" else x.get(name, 0.0))

    def evaluate(self, x: dict[str, float]) -> float:
        return sum(self.term(n, x) for n in self.names)

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
        raise PredictError("no measurements to fit; run `edgefit calibrate` first")
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
