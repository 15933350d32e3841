"""Numbers for humans: one scaled unit per column, named once in the header. Machine output never uses these."""

from __future__ import annotations

from edgefit.predict.prediction import Basis, Estimate
from edgefit.units import GB, GIB, MIB

BASIS_MARK: dict[str, str] = {
    Basis.MEASURED.value: "M",
    Basis.EXTRAPOLATED.value: "E",
    Basis.SPEC.value: "S",
}
BASIS_LEGEND = (
    "M = measured (on this host, or on the device by its own kernel table), E = extrapolated from this host's "
    "kernel table, S = this host's kernel table translated with the device's datasheet figures"
)


def gib(n_bytes: float) -> str:
    """Bytes in GiB with sensible precision (``0.43``, ``5.1``, ``243``)."""
    value = n_bytes / GIB
    if value < 1:
        return f"{value:.2f}"
    if value < 100:
        return f"{value:.1f}"
    return f"{value:.0f}"


def gib_unit(n_bytes: float) -> str:
    return f"{n_bytes / MIB:.0f} MiB" if n_bytes < 0.95 * GIB else f"{gib(n_bytes)} GiB"


def gb(n_bytes: float) -> str:
    value = n_bytes / GB
    return f"{value:.1f}" if value < 100 else f"{value:.0f}"


def tps(value: float) -> str:
    """Tokens per second: two significant figures below 10, whole numbers above 100."""
    if value < 1:
        return f"{value:.2f}"
    if value < 100:
        return f"{value:.1f}"
    return f"{value:.0f}"


def seconds(value: float) -> str:
    if value < 0.01:
        return f"{value * 1000:.1f} ms"
    if value < 10:
        return f"{value:.2f} s"
    return f"{value:.0f} s"


def watts(value: float) -> str:
    return f"{value:.1f}"


def usd(value: float | None) -> str:
    return "-" if value is None else f"${value:,.0f}"


def params(n: int) -> str:
    """Parameter count as people say it: 494M, 1.2B, 8.0B, 405B."""
    if n >= 100e9:
        return f"{n / 1e9:.0f}B"
    if n >= 1e9:
        return f"{n / 1e9:.1f}B"
    return f"{n / 1e6:.0f}M"


def mark(estimate: Estimate) -> str:
    return BASIS_MARK.get(estimate.basis.value, "?")


def interval_tps(estimate: Estimate) -> str:
    """``12.3 (10.1-14.0) E``: value, interval, basis."""
    return f"{tps(estimate.value)} ({tps(estimate.low)}-{tps(estimate.high)}) {mark(estimate)}"
