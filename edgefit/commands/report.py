"""`edgefit report`: the main job. Measure this host if needed, predict every device x model x precision,
write report.md, report.html, results.json, results.csv and the plots."""

from __future__ import annotations

import argparse
import dataclasses
import math
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from edgefit.commands._common import add_db_flag, add_json_flag, console, db_path, err_console, print_json
from edgefit.commands.fit import add_workload_flags, select_devices, select_specs, workload_from_args
from edgefit.errors import UsageError

if TYPE_CHECKING:
    from edgefit.catalog import ModelSpec
    from edgefit.commands.fit_graph import GraphRequest
    from edgefit.pipeline import HostState
    from edgefit.profiles import DeviceProfile
    from edgefit.report.devicecheck import DeviceCheck
    from edgefit.verdict import Workload

DEFAULT_OUT = Path("reports")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "report",
        help="the main job: which models run on which device, as md/html/json/csv with plots",
        description=(
            "If the database has no kernel table for this host, measure one first (`edgefit calibrate`, ~40 s), "
            "then predict every built-in device (and this host) x catalog model x precision by pricing each "
            "model's ops with it (a device linked to an imported table uses its own) "
            "(fp32, int8, int4; GGUF q8_0 and q4_k_m for memory, with the nearest measured speed) and write "
            "report.md, report.html (self-contained), results.json, results.csv and plots/ (SVG and PNG). "
            "With --model FILE.onnx (repeatable, may be mixed with catalog ids), each file's nodes are timed once "
            "on this host and the file is predicted on every device in its own section (latency, memory, energy "
            "per inference, verdict against --max-latency-ms or --min-fps, the cheapest device meeting it), in "
            "results.json (user_model_predictions) and results_user_models.csv; the decoder tables keep the "
            "catalog ids given, or the whole catalog when only .onnx files are given."
        ),
    )
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, metavar="DIR", help="output folder (default: ./reports)")
    p.add_argument(
        "--format", default="md,html,json,csv", metavar="LIST", help="comma-separated: md,html,json,csv (default all)"
    )
    p.add_argument("--device", action="append", default=[], metavar="ID",
                   help="only these devices: an id, a profile .toml, or a folder of them such as fleet/profiles, "
                        "where `edgefit fleet bench` keeps the boards it detected (repeat)")  # fmt: skip
    p.add_argument(
        "--model",
        action="append",
        default=[],
        metavar="ID|CARD|FILE.onnx",
        help="only these catalog models, or your own MODEL.onnx in its own section (repeat)",
    )
    add_workload_flags(p)
    from edgefit.commands.fit_graph import add_graph_flags

    add_graph_flags(p)
    p.add_argument(
        "--demand",
        type=float,
        default=100.0,
        metavar="TOK_PER_S",
        help="aggregate tokens/s the procurement tables size a fleet of devices for (default 100)",
    )
    add_json_flag(p)
    add_db_flag(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from edgefit.commands.fit_graph import profile_files
    from edgefit.report import pipeline, terminal
    from edgefit.report.summary import summary_paragraphs
    from edgefit.report.usergraphs import print_user_graphs, user_graph
    from edgefit.report.writer import parse_formats, write_report

    workload = workload_from_args(args)
    formats = parse_formats(args.format)
    if not (args.demand > 0 and math.isfinite(args.demand)):
        raise UsageError(f"--demand: expected a positive tokens/s figure, found {args.demand!r}")
    files = [m for m in args.model if str(m).lower().endswith(".onnx")]
    graphs = _graph_request(args, files)  # every .onnx file and its flags checked before anything is measured
    specs = select_specs([m for m in args.model if m not in files])  # only .onnx files: the whole catalog
    err = err_console()
    devices = select_devices(args.device)
    state = pipeline.host_state(db_path(args), devices=devices, progress=not args.json, say=lambda m: err.print(m))
    if not args.device:
        devices = (state.host, *devices)  # this host first: its figures are the measured ones

    def say(m: str) -> None:  # a file's path is printed as itself, never as markup
        err.print(m, markup=False, highlight=False, soft_wrap=True)

    profiles = profile_files(graphs, say) if graphs else ()
    facts = pipeline.device_facts(db_path(args), state, devices)
    data = pipeline.build_report_data(
        state, specs, devices, pipeline.REPORT_PRECISIONS, workload, demand_tokens_per_s=args.demand, facts=facts
    )
    target_s = graphs.max_latency_s if graphs else None
    mine = tuple(
        user_graph(p, devices, state.calibration, max_latency_s=target_s, power_cap_w=args.power_cap,
                   price_cap_usd=args.price_cap)
        for p in profiles
    )  # fmt: skip
    checks = _device_checks(args, state, devices, specs, workload)
    data = dataclasses.replace(data, device_checks=checks, user_graphs=mine)
    written = write_report(data, args.out, formats)

    if args.json:
        print_json(
            {
                "schema_version": 1,
                "kind": "edgefit.report",
                "out_dir": str(args.out),
                "files": [str(p) for p in written],
                "ran_calibration": state.ran_calibration,
                "measurements": len(state.measurements),
                "verdict_counts": dict(Counter(v.kind.value for v in data.verdicts)),
                "measured_devices": sorted({c.device_id for c in data.device_checks}),
                "validation": state.validation,
                **({"user_model_answers": [g.answer_dict() for g in data.user_graphs]} if data.user_graphs else {}),
            }
        )
        return 0
    out = console()
    for para in summary_paragraphs(data):
        out.print(para.text, markup=False)
        for item in para.items:
            out.print(f"  - {item}", markup=False)
        out.print()
    print_user_graphs(out, data.user_graphs, data.user_models)
    terminal.print_written(out, written, args.out)
    return 0


def _graph_request(args: argparse.Namespace, files: Sequence[str]) -> GraphRequest | None:
    """The .onnx files given with --model and their flags, checked (None when there are none: then the graph
    flags are a usage error, as in `edgefit fit`)."""
    from edgefit.commands.fit_graph import graph_request

    if files:
        return graph_request(args, files)
    if args.shape or args.dim or args.input or args.max_latency_ms is not None or args.min_fps is not None:
        raise UsageError("--shape, --dim, --input, --max-latency-ms and --min-fps apply to --model MODEL.onnx")
    return None


def _device_checks(
    args: argparse.Namespace,
    state: HostState,
    devices: Sequence[DeviceProfile],
    specs: Sequence[ModelSpec],
    workload: Workload,
) -> tuple[DeviceCheck, ...]:
    """Linked devices' own figures (the rungs they ran, their own kernel table) against the datasheet prediction."""
    from edgefit.report.data import precision_runs_here
    from edgefit.report.devicecheck import device_checks
    from edgefit.report.pipeline import REPORT_PRECISIONS

    precisions = [p for p in REPORT_PRECISIONS if precision_runs_here(p)]
    return device_checks(db_path(args), state, devices, specs, precisions,
                         context_tokens=workload.context_tokens, prompt_tokens=workload.prompt_tokens)  # fmt: skip
