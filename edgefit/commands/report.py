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
            "report.md, report.html (self-contained), results.json, results.csv and plots/ (SVG and PNG)."
        ),
    )
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, metavar="DIR", help="output folder (default: ./reports)")
    p.add_argument(
        "--format", default="md,html,json,csv", metavar="LIST", help="comma-separated: md,html,json,csv (default all)"
    )
    p.add_argument("--device", action="append", default=[], metavar="ID", help="only these devices (repeat)")
    p.add_argument("--model", action="append", default=[], metavar="ID|CARD", help="only these models (repeat)")
    add_workload_flags(p)
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
    from edgefit.report import pipeline, terminal
    from edgefit.report.summary import summary_paragraphs
    from edgefit.report.writer import parse_formats, write_report

    workload = workload_from_args(args)
    formats = parse_formats(args.format)
    if not (args.demand > 0 and math.isfinite(args.demand)):
        raise UsageError(f"--demand: expected a positive tokens/s figure, found {args.demand!r}")
    specs = select_specs(args.model)
    err = err_console()
    devices = select_devices(args.device)
    state = pipeline.host_state(db_path(args), devices=devices, progress=not args.json, say=lambda m: err.print(m))
    if not args.device:
        devices = (state.host, *devices)  # this host first: its figures are the measured ones
    facts = pipeline.device_facts(db_path(args), state, devices)
    data = pipeline.build_report_data(
        state, specs, devices, pipeline.REPORT_PRECISIONS, workload, demand_tokens_per_s=args.demand, facts=facts
    )
    data = dataclasses.replace(data, device_checks=_device_checks(args, state, devices, specs, workload))
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
            }
        )
        return 0
    out = console()
    for para in summary_paragraphs(data):
        out.print(para.text, markup=False)
        for item in para.items:
            out.print(f"  - {item}", markup=False)
        out.print()
    terminal.print_written(out, written, args.out)
    return 0


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
