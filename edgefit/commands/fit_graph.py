"""`edgefit fit --model MODEL.onnx`: one verdict per device for your own graph at batch 1.

MODEL.onnx ──its nodes timed once here (edgefit.graphs)──> priced on every device (edgefit.predict.graph)
    does_not_fit       predicted peak memory over the device's usable RAM
    too_slow           predicted latency over --max-latency-ms (or 1 / --min-fps)
    tight              the latency's interval reaches over the limit
    over_power_budget  the device's load power over --power-cap
    fits               otherwise
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rich.table import Table
from rich.text import Text

from edgefit.commands._common import check_float_flag, console, db_path, err_console, print_json
from edgefit.errors import UsageError

if TYPE_CHECKING:
    from edgefit.graphs.profile import GraphProfile
    from edgefit.predict.graph import GraphPrediction


def add_graph_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("your own MODEL.onnx (--model FILE.onnx)")
    g.add_argument("--max-latency-ms", type=float, default=None, metavar="MS", help="maximum latency per inference")
    g.add_argument("--min-fps", type=float, default=None, metavar="X", help="minimum inferences per second")
    g.add_argument("--shape", action="append", default=[], metavar="NAME=AxB", help="an input's whole shape")
    g.add_argument("--dim", action="append", default=[], metavar="NAME=VALUE", help="a named dim")
    g.add_argument("--input", action="append", default=[], metavar="NAME=VALUE", help="a scalar input's value")


def judge(pred: GraphPrediction, max_latency_s: float | None, power_cap_w: float | None) -> tuple[str, str]:
    """(verdict, reason quoting the numbers): the one graph verdict rule, shared with `edgefit report`."""
    from edgefit.report.usergraphs import judge_graph

    return judge_graph(pred, max_latency_s, power_cap_w)


@dataclass(frozen=True, slots=True)
class GraphRequest:
    """--model FILE.onnx ... with its flags, parsed and checked against every file (nothing measured yet)."""

    files: tuple[str, ...]
    shapes: dict[str, tuple[int, ...]]
    dims: dict[str, int]
    scalars: dict[str, float]
    max_latency_s: float | None  # --max-latency-ms or 1 / --min-fps, the stricter; None when neither is given


def graph_request(args: argparse.Namespace, files: Sequence[str]) -> GraphRequest:
    """Parse --shape/--dim/--input/--max-latency-ms/--min-fps and check every file and flag against each file's
    inputs (the same one-line errors as the measurement would give), before anything is measured."""
    from edgefit.bench.modelfile import inspect_model_file
    from edgefit.commands.bench import _pairs, _shapes
    from edgefit.graphs.measure import check_graph_flags

    check_float_flag("--max-latency-ms", args.max_latency_ms, low=0.0, high=1e9)
    check_float_flag("--min-fps", args.min_fps, low=0.0, high=1e9)
    limits = [x for x in ((args.max_latency_ms or 0) / 1e3, 1.0 / args.min_fps if args.min_fps else 0.0) if x > 0]
    shapes, dims, scalars = _shapes(args.shape), _pairs(args.dim, "--dim", int), _pairs(args.input, "--input", float)
    unique = tuple(dict.fromkeys(str(f) for f in files))
    for f in unique:
        check_graph_flags(inspect_model_file(f, hash_file=False), shapes, dims, scalars)
    return GraphRequest(unique, shapes, dims, scalars, min(limits) if limits else None)


def profile_files(req: GraphRequest, say: Callable[[str], None] | None) -> tuple[GraphProfile, ...]:
    """Each file's nodes timed here (``edgefit.graphs.measure.profile_graph``), one after the other."""
    from edgefit.graphs import measure

    out = []
    for f in req.files:
        if say is not None:
            say(f"timing the nodes of {f} on this host (single-node sessions)")
        out.append(measure.profile_graph(f, shapes=req.shapes, dims=req.dims, scalars=req.scalars))
    return tuple(out)


def run_graph_fit(args: argparse.Namespace) -> int:
    from edgefit import pipeline
    from edgefit.commands.fit import select_devices
    from edgefit.predict.graph import graph_prediction_to_dict, predict_graph

    files = [m for m in args.model if str(m).lower().endswith(".onnx")]
    if len(files) != len(args.model):
        raise UsageError("--model: give either .onnx files or model cards, not both (run `edgefit fit` twice)")
    if args.precision:
        raise UsageError("--precision does not apply to a .onnx (it runs at the precision it was saved in)")
    req = graph_request(args, files)  # every file and flag checked before anything is measured
    max_latency_s = req.max_latency_s
    devices = select_devices(args.device)
    if args.price_cap is not None:
        devices = tuple(d for d in devices if d.price_usd is None or d.price_usd <= args.price_cap)
        if not devices:
            raise UsageError(f"--price-cap {args.price_cap:g}: every requested device costs more; raise the cap")
    err = err_console()

    def say(m: str) -> None:
        err.print(m, markup=False, highlight=False, soft_wrap=True)

    state = pipeline.host_state(db_path(args), devices=devices, progress=None, say=say)
    rows: list[dict[str, Any]] = []
    preds = []
    for prof in profile_files(req, None if args.json else say):
        for d in devices:
            pred = predict_graph(prof, d, state.calibration)
            verdict, reason = judge(pred, max_latency_s, args.power_cap)
            preds.append((pred, verdict, reason))
            rows.append({**graph_prediction_to_dict(pred), "verdict": verdict, "reason": reason})
    failed = [r for r in rows if r["verdict"] not in ("fits", "tight")]
    if args.json:
        print_json(
            {
                "schema_version": 1,
                "kind": "edgefit.fit.graph",
                "max_latency_s": max_latency_s,
                "power_cap_w": args.power_cap,
                "ok": not failed,
                "results": rows,
            }
        )
    else:
        _print(preds, max_latency_s)
    if args.require and failed:
        print(f"edgefit fit --require: {len(failed)} device(s) do not meet the target", file=sys.stderr)
        return 1
    return 0


def _print(preds: list[tuple[Any, str, str]], max_latency_s: float | None) -> None:
    from edgefit.report.fmt import BASIS_MARK
    from edgefit.report.usergraphs import VERDICT_ORDER as ORDER

    out = console()
    target = f"target {max_latency_s * 1e3:.3g} ms per inference" if max_latency_s else "no latency target"
    for model_id in dict.fromkeys(p.model_id for p, _, _ in preds):
        mine = sorted(((p, v, r) for p, v, r in preds if p.model_id == model_id),
                      key=lambda x: (ORDER.index(x[1]), x[0].latency_s.value))  # fmt: skip
        out.print(Text.assemble((model_id, "bold"), f" at batch 1 ({target}); inputs: {'; '.join(mine[0][0].inputs)}"))
        t = Table(show_edge=False)
        for col, just in (("device", "left"), ("ms", "right"), ("interval", "right"), ("fps", "right"),
                          ("MiB", "right"), ("mJ", "right"), ("B", "left"), ("verdict", "left")):  # fmt: skip
            t.add_column(col, justify=just, no_wrap=col == "device")  # type: ignore[arg-type]
        for p, v, _r in mine:
            lat = p.latency_s
            t.add_row(
                Text(p.device_id),
                f"{lat.value * 1e3:.3g}",
                f"{lat.low * 1e3:.3g}..{lat.high * 1e3:.3g}",
                f"{p.throughput_per_s.value:.3g}",
                f"{p.memory.total.value / 2**20:.0f}",
                f"{p.energy_per_inference_j.value * 1e3:.3g}",
                BASIS_MARK.get(lat.basis.value, "?"),
                v,
            )
        out.print(t)
        out.print(
            "B: M = this host, the whole file timed here; E = this host, its nodes' sum; S = translated with the "
            "device's spec figures",
            style="dim",
        )
        for p, v, r in mine:
            if v != "fits":
                out.print(Text(f"{p.device_id}: {v}: {r}"))
