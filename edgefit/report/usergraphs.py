"""Your own .onnx files on every device (`edgefit report --model FILE.onnx`): one table per file in the report.

    FILE.onnx ──its nodes timed once here (edgefit.graphs.measure.profile_graph)──> GraphProfile
        ──per device: predict.graph.predict_graph (this host's node times, translated) ──> GraphPrediction
        ──judge_graph (the one graph verdict `edgefit fit --model FILE.onnx` gives too) ──> GraphVerdict
        ──UserGraph: the file's rows, which devices meet the target, the cheapest of them
        ──> "Your models on every device" section, ``user_model_predictions`` in results.json,
            results_user_models.csv

Basis letters, as everywhere in the report, from each Estimate's own basis (``fmt.mark``): this host is M (the
whole file timed here with its nodes) or E (the sum of its nodes timed alone), another device S (this host's node
times translated with the device's datasheet figures); energy is always S (the profile's load power x the
latency). A file also measured whole here with `edgefit bench FILE` shows that figure too (M).
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from edgefit.report import fmt
from edgefit.report.tables import Cell, Table
from edgefit.units import MIB
from edgefit.verdict import VerdictKind

if TYPE_CHECKING:
    from edgefit.graphs.profile import GraphProfile
    from edgefit.predict.calibration import Calibration
    from edgefit.predict.graph import GraphPrediction
    from edgefit.profiles import DeviceProfile
    from edgefit.report.sections import Section
    from edgefit.report.usermodels import UserModelRun

# most useful first: the order `fit --model FILE.onnx` sorts its rows by
VERDICT_ORDER = ("fits", "tight", "too_slow", "over_power_budget", "does_not_fit")
SECTION_TITLE = "Your models on every device"


def judge_graph(pred: GraphPrediction, max_latency_s: float | None, power_cap_w: float | None) -> tuple[str, str]:
    """(verdict, reason quoting the numbers) for one GraphPrediction: ``fit`` and ``report`` share this rule.

    does_not_fit       predicted peak memory over the device's usable RAM
    too_slow           predicted latency over the target
    over_power_budget  the device's load power over the power cap
    tight              the latency's interval reaches over the target
    fits               otherwise
    """
    lat, mem = pred.latency_s, pred.memory
    if not mem.fits:
        return "does_not_fit", (
            f"needs {mem.total.value / 2**20:.0f} MiB, {mem.usable_ram_bytes / 2**20:.0f} MiB usable "
            f"({mem.total.basis.value})"
        )
    if max_latency_s is not None and lat.value > max_latency_s:
        return "too_slow", f"{lat.value * 1e3:.3g} ms > {max_latency_s * 1e3:.3g} ms ({lat.basis.value})"
    if power_cap_w is not None and pred.power_w.value > power_cap_w:
        return "over_power_budget", f"{pred.power_w.value:.1f} W load > {power_cap_w:g} W cap (spec)"
    if max_latency_s is not None and lat.high > max_latency_s:
        return "tight", (
            f"{lat.value * 1e3:.3g} ms, interval up to {lat.high * 1e3:.3g} ms > {max_latency_s * 1e3:.3g} ms "
            f"({lat.basis.value})"
        )
    return "fits", f"{lat.value * 1e3:.3g} ms per inference ({lat.basis.value})"


@dataclass(frozen=True, slots=True)
class GraphVerdict:
    """One file on one device: the prediction, its verdict and the device's list price (None when unknown)."""

    prediction: GraphPrediction
    verdict: str  # one of VERDICT_ORDER
    reason: str
    price_usd: float | None

    def __post_init__(self) -> None:
        if self.verdict not in VERDICT_ORDER:
            raise ValueError(f"verdict: expected one of {', '.join(VERDICT_ORDER)}, found {self.verdict!r}")

    @property
    def meets(self) -> bool:
        """fits or tight: the point prediction meets the target (as `fit --require` counts it)."""
        return self.verdict in ("fits", "tight")

    def to_dict(self, max_latency_s: float | None) -> dict[str, Any]:
        """results.json: the prediction as `predict --model FILE.onnx --json` gives it, plus verdict and price."""
        from edgefit.predict.graph import graph_prediction_to_dict

        return _finite(
            {
                **graph_prediction_to_dict(self.prediction),
                "verdict": self.verdict,
                "reason": self.reason,
                "max_latency_s": max_latency_s,
                "price_usd": self.price_usd,
            }
        )


@dataclass(frozen=True, slots=True)
class UserGraph:
    """A user's .onnx file predicted on every device of the report, with the target it was judged against."""

    model_id: str  # "file:<name>.onnx"
    path: str
    model_hash: str
    inputs: tuple[str, ...]  # the shapes it was timed at, with where each came from
    max_latency_s: float | None  # --max-latency-ms or 1 / --min-fps (the stricter); None: memory only
    power_cap_w: float | None
    price_cap_usd: float | None
    rows: tuple[GraphVerdict, ...]  # one per device, in the report's device order
    measured_on_the_fly: tuple[str, ...]  # node types timed here in single-node sessions

    def meeting(self) -> tuple[GraphVerdict, ...]:
        """Rows meeting the target (fits or tight) within the price cap."""
        cap = self.price_cap_usd
        return tuple(r for r in self.rows if r.meets and (cap is None or r.price_usd is None or r.price_usd <= cap))

    def cheapest(self, *, with_room: bool = False) -> GraphVerdict | None:
        """The lowest-priced device meeting the target (ties: the faster one); ``with_room``: among ``fits`` only
        (its whole interval within the target). None when no priced device does."""
        ok = [r for r in self.meeting() if r.price_usd is not None and (r.verdict == "fits" or not with_room)]
        return min(ok, key=lambda r: (r.price_usd, r.prediction.latency_s.value)) if ok else None

    def answer_dict(self) -> dict[str, Any]:
        cheapest, roomy = self.cheapest(), self.cheapest(with_room=True)
        return _finite(
            {
                "model_id": self.model_id,
                "path": self.path,
                "model_hash": self.model_hash,
                "inputs": list(self.inputs),
                "max_latency_s": self.max_latency_s,
                "power_cap_w": self.power_cap_w,
                "price_cap_usd": self.price_cap_usd,
                "meeting_device_ids": [r.prediction.device_id for r in self.meeting()],
                "cheapest_device_id": cheapest.prediction.device_id if cheapest else None,
                "cheapest_price_usd": cheapest.price_usd if cheapest else None,
                "cheapest_fits_device_id": roomy.prediction.device_id if roomy else None,  # verdict fits, not tight
                "cheapest_fits_price_usd": roomy.price_usd if roomy else None,
                "measured_on_the_fly": list(self.measured_on_the_fly),
            }
        )


def user_graph(
    profile: GraphProfile,
    devices: Sequence[DeviceProfile],
    cal: Calibration,
    *,
    max_latency_s: float | None,
    power_cap_w: float | None = None,
    price_cap_usd: float | None = None,
) -> UserGraph:
    """Predict and judge one profiled file on every device (nothing is measured here: the profile holds the
    node times)."""
    from edgefit.predict.graph import predict_graph

    rows = []
    for d in devices:
        pred = predict_graph(profile, d, cal)
        verdict, reason = judge_graph(pred, max_latency_s, power_cap_w)
        rows.append(GraphVerdict(pred, verdict, reason, d.price_usd))
    on_the_fly = rows[0].prediction.measured_on_the_fly if rows else tuple(sorted({n.op for n in profile.nodes}))
    return UserGraph(
        model_id=profile.model_id,
        path=profile.path,
        model_hash=profile.sha256_16,
        inputs=tuple(profile.inputs),
        max_latency_s=max_latency_s,
        power_cap_w=power_cap_w,
        price_cap_usd=price_cap_usd,
        rows=tuple(rows),
        measured_on_the_fly=tuple(on_the_fly),
    )


# --- rendering: one table per file (md, html), a compact one for the terminal ----------------------------------


def target_text(max_latency_s: float | None) -> str:
    if max_latency_s is None:
        return "no latency target (--max-latency-ms or --min-fps): judged on memory and power only"
    return f"target {max_latency_s * 1e3:.3g} ms per inference ({1.0 / max_latency_s:.3g} per s)"


def latency_ms(r: GraphVerdict) -> str:
    return f"{r.prediction.latency_s.value * 1e3:.3g}"


def interval_ms(r: GraphVerdict) -> str:
    lat = r.prediction.latency_s
    return f"{lat.low * 1e3:.3g}-{lat.high * 1e3:.3g}"


def per_s(r: GraphVerdict) -> str:
    rate = r.prediction.throughput_per_s.value
    return f"{rate:.0f}" if rate >= 100 else f"{rate:.3g}"


def memory_mib(r: GraphVerdict) -> str:
    return f"{r.prediction.memory.total.value / MIB:.0f}"


def ram_text(r: GraphVerdict) -> str:
    m = r.prediction.memory
    return "✓ fits" if m.fits else f"✗ {m.usable_ram_bytes / MIB:.0f} usable"


def energy_mj(r: GraphVerdict) -> str:
    return f"{r.prediction.energy_per_inference_j.value * 1e3:.3g}"


def graph_table(g: UserGraph) -> Table:
    rows = []
    for r in g.rows:
        p = r.prediction
        rows.append(
            (
                Cell(p.device_id),
                Cell(f"{latency_ms(r)} {fmt.mark(p.latency_s)}"),
                Cell(interval_ms(r)),
                Cell(per_s(r)),
                Cell(f"{memory_mib(r)} {fmt.mark(p.memory.total)}"),
                Cell(ram_text(r), None if p.memory.fits else VerdictKind.DOES_NOT_FIT),
                Cell(f"{energy_mj(r)} {fmt.mark(p.energy_per_inference_j)}"),
                Cell(VerdictKind(r.verdict).symbol, VerdictKind(r.verdict)),
                Cell(fmt.usd(r.price_usd)),
            )
        )
    return Table(
        f"{g.model_id} at batch 1; {target_text(g.max_latency_s)}",
        (
            "device",
            "latency [ms]",
            "interval [ms]",
            "rate [1/s]",
            "peak memory [MiB]",
            "RAM",
            "energy [mJ]",
            "verdict",
            "price [USD]",
        ),
        tuple(rows),
        note=(
            "per inference at batch 1; rate: inferences per second; peak memory: weights as loaded + activations "
            "+ runtime against the device's usable RAM; energy: the profile's load power x latency. "
            "M = this host, the whole file timed here with its nodes; E = this host, the sum of its nodes timed "
            "alone; S = this host's node times translated with the device's datasheet figures; price: list price "
            "(see Devices)"
        ),
    )


def answer_lines(g: UserGraph, measured: Sequence[UserModelRun] = ()) -> tuple[str, ...]:
    """Its inputs, which devices meet the target, the cheapest of them, what was timed on the fly (and the file
    measured whole here when `edgefit bench FILE` ran on the same file)."""
    meeting = g.meeting()
    ids = [r.prediction.device_id + (" (tight)" if r.verdict == "tight" else "") for r in meeting]
    goal = "the target" if g.max_latency_s is not None else "memory and power"
    capped = f" within the {fmt.usd(g.price_cap_usd)} price cap" if g.price_cap_usd is not None else ""
    listed = f": {', '.join(ids)}" if ids else ""
    lines = [
        f"inputs: {'; '.join(g.inputs)}",
        f"meets {goal}{capped} on {len(meeting)} of {len(g.rows)} devices{listed}",
    ]
    cheapest, roomy = g.cheapest(), g.cheapest(with_room=True)
    if cheapest is not None:
        lines.append(f"cheapest device meeting {goal}: {_priced(cheapest)}")
        if cheapest.verdict == "tight":
            lines.append(f"cheapest with its whole interval within {goal}: {_priced(roomy) if roomy else 'none'}")
    else:
        lines.append(f"cheapest device meeting {goal}: none of the priced devices")
    lines.append(
        "node types timed on the fly on this host (single-node sessions of the graph onnxruntime optimized): "
        f"{', '.join(g.measured_on_the_fly) or 'none'}"
    )
    for run in measured:
        if run.model_hash == g.model_hash and run.unit == "inference":
            lines.append(
                f"measured whole on this host with `edgefit bench`: {run.latency_s * 1e3:.3g} ms per inference "
                f"(M, {run.samples} samples)"
            )
    return tuple(lines)


def _priced(r: GraphVerdict) -> str:
    p = r.prediction
    tight = ", tight: its interval reaches over the target" if r.verdict == "tight" else ""
    return (
        f"{p.device_id} at {fmt.usd(r.price_usd)} (list price), {latency_ms(r)} ms per inference "
        f"({fmt.mark(p.latency_s)}{tight})"
    )


def user_graphs_section(graphs: Sequence[UserGraph], measured: Sequence[UserModelRun] = ()) -> Section | None:
    """None when no .onnx file was given to `edgefit report --model`."""
    from edgefit.report.sections import Section

    if not graphs:
        return None
    bullets: list[str] = []
    for g in graphs:
        bullets += [f"{g.model_id}: {line}" for line in answer_lines(g, measured)]
    return Section(
        SECTION_TITLE,
        paragraphs=(
            "The model files given with `edgefit report --model FILE.onnx`: each file's nodes, as onnxruntime runs "
            "the optimized graph, were timed once on this host in single-node sessions and priced on every device "
            "(the same prediction as `edgefit predict --model FILE.onnx`, the same verdict as `edgefit fit --model "
            "FILE.onnx`). Verdicts: ✓ fits, ~ tight (the latency's interval reaches over the target), ✗ slow, "
            "✗ power (load power over --power-cap), ✗ no-fit (peak memory over the usable RAM).",
        ),
        tables=tuple(graph_table(g) for g in graphs),
        bullets=tuple(bullets),
    )


def print_user_graphs(console: Any, graphs: Sequence[UserGraph], measured: Sequence[UserModelRun] = ()) -> None:
    """A table per file that reads at 80 columns (long device ids fold), then its answer lines."""
    from rich.table import Table as RichTable
    from rich.text import Text

    from edgefit.report.terminal import STYLES

    for g in graphs:
        t = RichTable(title=Text(f"{g.model_id}: {target_text(g.max_latency_s)}"), title_justify="left",
                      pad_edge=False, show_edge=False)  # fmt: skip
        t.add_column("device", overflow="fold")  # the other columns never wrap: this one takes what is left
        for col in ("ms", "interval", "1/s", "MiB", "mJ", "verdict"):
            t.add_column(col, justify="left" if col == "verdict" else "right", no_wrap=True)
        for r in g.rows:
            p = r.prediction
            kind = VerdictKind(r.verdict)
            t.add_row(
                Text(p.device_id),
                f"{latency_ms(r)} {fmt.mark(p.latency_s)}",
                interval_ms(r),
                per_s(r),
                memory_mib(r),
                energy_mj(r),
                Text(kind.symbol, style=STYLES[kind]),
            )
        console.print(t)
        for line in answer_lines(g, measured):
            console.print(Text(f"{g.model_id}: {line}"))
        console.print()


# --- machine output -----------------------------------------------------------------------------------------

CSV_COLUMNS: tuple[str, ...] = (
    "model_id",
    "device_id",
    "verdict",
    "latency_s",
    "latency_s_low",
    "latency_s_high",
    "latency_basis",
    "inferences_per_s",
    "memory_total_bytes",
    "usable_ram_bytes",
    "fits_in_memory",
    "memory_basis",
    "energy_per_inference_j",
    "energy_basis",
    "power_w",
    "price_usd",
    "max_latency_s",
    "reason",
)


def user_graphs_csv(graphs: Sequence[UserGraph]) -> str:
    """results_user_models.csv: one row per file x device, base SI units (results.csv's columns are a decoder's)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    g6: Callable[[float | None], str] = lambda x: "" if x is None or not math.isfinite(x) else f"{x:.6g}"  # noqa: E731
    for g in graphs:
        for r in g.rows:
            p = r.prediction
            w.writerow(
                (
                    p.model_id,
                    p.device_id,
                    r.verdict,
                    g6(p.latency_s.value),
                    g6(p.latency_s.low),
                    g6(p.latency_s.high),
                    p.latency_s.basis.value,
                    g6(p.throughput_per_s.value),
                    g6(p.memory.total.value),
                    p.memory.usable_ram_bytes,
                    "true" if p.memory.fits else "false",
                    p.memory.total.basis.value,
                    g6(p.energy_per_inference_j.value),
                    p.energy_per_inference_j.basis.value,
                    g6(p.power_w.value),
                    g6(r.price_usd),
                    g6(g.max_latency_s),
                    r.reason,
                )
            )
    return buf.getvalue()


def _finite(obj: Any) -> Any:
    """JSON has no inf/nan (results.json is written with allow_nan=False): map them to None."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj
