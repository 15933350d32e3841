"""Your own .onnx files measured on this host (`edgefit bench FILE.onnx`): one row per file in the report.

    Store measurements (this host) ──> latest run per file (model id + file hash)
        ──> UserModelRun: latency per inference (median of the raw samples, its 95 % interval, n, stop reason),
            memory (RSS after load, growth during inference: onnxruntime's arena, peak)   all measured here
        ──> "Your models measured on this host" section (none when no file was measured)

Decoders from files are shown per decoded token at their shallowest measured depth.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from edgefit import stats
from edgefit.bench.measurement import Measurement, Phase
from edgefit.report.tables import Cell, Table
from edgefit.units import MIB

if TYPE_CHECKING:
    from edgefit.report.sections import Section

FILE_PRECISION = "file"  # what bench_file stores as a user model's precision


@dataclass(frozen=True, slots=True)
class UserModelRun:
    """A user's model file as last measured on this host (basis: measured here)."""

    model_id: str  # "file:<name>.onnx"
    model_hash: str
    unit: str  # "inference" | "token" (a decoder's decode step)
    latency_s: float  # median of the raw samples
    ci95_rel: float  # half-width of the median's 95 % interval, relative (inf below 6 samples)
    samples: int
    stop_reason: str
    threads: int
    load_rss_bytes: int | None  # RSS after the session was created: weights as held + runtime
    run_rss_bytes: int | None  # RSS after the warm runs
    peak_rss_bytes: int | None  # the worker's high-water mark
    run_id: str | None
    started_at: str | None

    def to_dict(self) -> dict[str, Any]:
        """results.json: base SI units; every figure measured on this host."""
        return {
            "model_id": self.model_id,
            "model_hash": self.model_hash,
            "basis": "measured",
            "unit": self.unit,
            "latency_s": self.latency_s,
            "ci95_rel": self.ci95_rel if self.samples >= stats.MIN_SAMPLES_FOR_CI95 else None,
            "samples": self.samples,
            "stop_reason": self.stop_reason,
            "threads": self.threads,
            "load_rss_bytes": self.load_rss_bytes,
            "arena_bytes": self.arena_bytes,
            "peak_rss_bytes": self.peak_rss_bytes,
            "run_id": self.run_id,
        }

    @property
    def arena_bytes(self) -> int | None:
        """Growth of RSS from load to the warm runs: activations, held by onnxruntime's arena between runs."""
        if self.load_rss_bytes is None or self.run_rss_bytes is None:
            return None
        return max(0, self.run_rss_bytes - self.load_rss_bytes)


def user_model_runs(measurements: Sequence[Measurement]) -> tuple[UserModelRun, ...]:
    """The latest measured run of each user file (measurements in store order, oldest first)."""
    runs: dict[tuple[str, str], list[Measurement]] = {}
    for m in measurements:
        if m.precision != FILE_PRECISION or not m.samples_s:
            continue
        key = (m.model_id, m.model_hash)
        rows = runs.setdefault(key, [])
        if rows and rows[-1].run_id != m.run_id:
            rows.clear()  # a newer run of the same file replaces the older one
        rows.append(m)
    out = []
    for (model_id, model_hash), rows in runs.items():
        load = next((m for m in rows if m.phase == Phase.LOAD), None)
        timed = [m for m in rows if m.phase == Phase.RUN]
        unit = "inference"
        if not timed:
            decode = sorted((m for m in rows if m.phase == Phase.DECODE), key=lambda m: m.context_tokens)
            timed, unit = decode[:1], "token"
        if not timed:
            continue
        m = timed[0]
        s = stats.summarize(m.samples_s)
        peaks = [r.peak_rss_bytes for r in rows if r.peak_rss_bytes]
        out.append(
            UserModelRun(
                model_id=model_id,
                model_hash=model_hash,
                unit=unit,
                latency_s=s.median_s,
                ci95_rel=s.ci95_rel,
                samples=s.n,
                stop_reason=m.stop_reason,
                threads=m.threads,
                load_rss_bytes=load.steady_rss_bytes if load is not None else None,
                run_rss_bytes=m.steady_rss_bytes,
                peak_rss_bytes=max(peaks) if peaks else None,
                run_id=m.run_id,
                started_at=m.started_at,
            )
        )
    return tuple(sorted(out, key=lambda r: r.model_id))


def _mib(v: int | None) -> str:
    return "" if v is None else f"{v / MIB:.0f}"


def user_models_table(runs: Sequence[UserModelRun]) -> Table:
    rows = []
    for r in runs:
        ci = "" if r.samples < stats.MIN_SAMPLES_FOR_CI95 else f"±{r.ci95_rel:.1%}"
        per_s = f"{1.0 / r.latency_s:.3g}" if r.latency_s > 0 else ""
        arena = "" if r.arena_bytes is None else f"{r.arena_bytes / MIB:.1f}"
        rows.append(
            tuple(
                Cell(t)
                for t in (
                    f"{r.model_id} ({r.unit})",
                    f"{r.latency_s * 1e3:.3g} M",
                    ci,
                    f"{per_s} M" if per_s else "",
                    _mib(r.load_rss_bytes),
                    arena,
                    f"{_mib(r.peak_rss_bytes)} M" if r.peak_rss_bytes else "",
                )
            )
        )
    return Table(
        "Your models on this host (M: measured here, median of raw samples)",
        ("model", "latency [ms]", "95% CI", "per s", "load RSS [MiB]", "arena [MiB]", "peak [MiB]"),
        tuple(rows),
    )


def user_models_section(runs: Sequence[UserModelRun]) -> Section | None:
    """None when no model file was measured on this host."""
    from edgefit.report.sections import Section

    if not runs:
        return None
    short = [r.model_id for r in runs if r.stop_reason != "target_precision"]
    notes = [
        "Latency per inference (per decoded token for decoders, at their shallowest KV depth) and memory of the "
        "model files measured with `edgefit bench FILE.onnx` on this machine, with onnxruntime on the CPU at "
        f"{runs[0].threads} threads. load RSS: the process after creating the session (weights as onnxruntime "
        "holds them, plus the runtime); arena: what the warm runs added (activations, kept by onnxruntime's "
        "arena); peak: the process's high-water mark.",
    ]
    if short:
        notes.append(
            f"Sampling stopped before the ±2 % target for {', '.join(short)} (time budget): their interval says how "
            "precise they are; `edgefit bench FILE --budget-s SECONDS` samples longer."
        )
    return Section("Your models measured on this host", paragraphs=tuple(notes), tables=(user_models_table(runs),))
