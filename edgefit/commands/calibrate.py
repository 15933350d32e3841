"""`edgefit calibrate`: measure this host's kernel table (the calibration every prediction prices ops with)."""

from __future__ import annotations

import argparse
from typing import Any

from rich.table import Table
from rich.text import Text

from edgefit import detect
from edgefit.catalog import get_precision
from edgefit.commands._common import (
    MAX_BUDGET_S,
    MAX_THREADS,
    add_db_flag,
    add_json_flag,
    check_float_flag,
    check_int_flag,
    console,
    db_path,
    err_console,
    print_json,
)
from edgefit.errors import UsageError
from edgefit.kernels.calibrate import DEFAULT_BUDGET_S, calibrate_and_store
from edgefit.kernels.plan import PRECISIONS
from edgefit.kernels.table import KernelModel, fit_model
from edgefit.pipeline import host_state
from edgefit.units import MIB

MAX_REPEAT = 10


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "calibrate",
        help="measure this host's kernel table (~40 s): the calibration predictions price a model's ops with",
        description=(
            "Time the kernels decoders are made of through onnxruntime itself, as functions of their shapes: "
            "MatMul / MatMulNBits (8- and 4-bit, block 32, accuracy level 4) at M = 1 over a (K, N) grid and at "
            "M = 16 and 128, GroupQueryAttention against cache length and head layout, RotaryEmbedding, "
            "SkipSimplifiedLayerNorm, QuickGelu, Mul, a do-nothing node (dispatch) and an empty session run, "
            "plus a STREAM triad bandwidth probe. Chains of distinct weights, each node feeding the next; all "
            "chains interleaved in shuffled rounds sharing one thread pool; the lower quartile over rounds is the "
            "estimate (interference only adds time; the minimum catches lucky rounds) and the split-half "
            "difference its noise. Before the chains, 512 MiB of untimed fp32 weights are built (an eighth of "
            "free RAM when that is less): on some hosts the first weights a process builds stream slower than "
            "the rest, and a decoder's weights are mostly past them. This host's answers take each kernel's "
            "median over its last three tables (same threads, onnxruntime and chains, within a day, the earlier "
            "ones on a quiet machine), so one calibration in an unusual spell of a drifting machine does not move "
            "them alone; the summary says which. "
            "Stored in the results database with its environment; `edgefit results export` carries it to other "
            "machines. `edgefit report`, `fit`, "
            "`predict` and `validate` run this first when the database has no table for this host."
        ),
    )
    p.add_argument("--threads", type=int, default=None, help="threads (default: the host's cores)")
    p.add_argument(
        "--precision",
        default=",".join(PRECISIONS),
        help=f"weight precisions to time, comma-separated (default {','.join(PRECISIONS)})",
    )
    p.add_argument(
        "--budget-s",
        type=float,
        default=DEFAULT_BUDGET_S,
        help=f"seconds of interleaved rounds after building the chains (default {DEFAULT_BUDGET_S:g}; at least "
        "12 rounds are run whatever the budget)",
    )
    p.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="calibrate this many times back to back (default 1; at most 10): with 3, this host's answers take "
        "each kernel's median over the three right away",
    )
    add_json_flag(p)
    add_db_flag(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    check_int_flag("--threads", args.threads, low=1, high=MAX_THREADS)
    check_float_flag("--budget-s", args.budget_s, low=0.0, high=MAX_BUDGET_S)
    check_int_flag("--repeat", args.repeat, low=1, high=MAX_REPEAT)
    names = tuple(x.strip() for x in args.precision.split(",") if x.strip())
    for n in names:
        get_precision(n)  # CatalogError (exit 2) for an unknown name
    bad = [n for n in names if n not in PRECISIONS]
    if bad or not names:
        raise UsageError(
            f"--precision {args.precision!r}: the kernel table times {', '.join(PRECISIONS)} "
            f"(onnxruntime runs fp16 as fp32; GGUF formats are priced with the nearest of int8/int4)"
        )
    err = err_console()
    last = [""]

    def progress(msg: str) -> None:
        if not args.json and msg.split(":")[1].split()[0] != last[0]:
            last[0] = msg.split(":")[1].split()[0]
            err.print(msg, markup=False, highlight=False)

    host = detect.host_profile()
    run_ids = []
    for i in range(args.repeat):
        if args.repeat > 1 and not args.json:
            err.print(f"calibration {i + 1} of {args.repeat}", markup=False, highlight=False)
            last[0] = ""
        run_id, table = calibrate_and_store(
            db_path(args), host, detect.host_fingerprint(), threads=args.threads, precisions=names,
            budget_s=args.budget_s, progress=progress,
        )  # fmt: skip
        run_ids.append(run_id)
    model = fit_model(table)
    # which tables this host's answers now use: each kernel's median over its last three (pipeline.pooled_table)
    state = host_state(db_path(args), calibrate_if_missing=False)
    answers = {"run_ids": run_ids, "answers_run_id": state.kernel_run_id,
               "answers_note": state.calibration.host_table_note}  # fmt: skip
    if args.json:
        print_json({"schema_version": 1, "kind": "edgefit.calibrate", "run_id": run_id, **summary(model), **answers})
        return 0
    _print_human(run_id, model)
    if state.calibration.host_table_note:
        console().print(f"note: {state.calibration.host_table_note}", markup=False)
    return 0


def summary(model: KernelModel) -> dict[str, object]:
    t = model.table
    return {
        "host_fingerprint": t.host.host_fingerprint,
        "threads": t.threads,
        "rounds": t.rounds,
        "chains": len(t.kernels),
        "seconds": t.seconds,
        "noise_rel": model.noise_rel,
        "session_run_s": model.run_s,
        "dispatch_s_per_node": model.tiny_s,
        "gemv_fixed_s_per_node": dict(model.gemv_overhead_s),
        "stream_bytes_per_s": model.stream_bytes_per_s,
        "triad_bytes_per_s": model.triad_bytes_per_s,
        "fp32_gemm_flops_per_s": 2 * model.fp32_gemm_macs_per_s,
        "int8_gemm_ops_per_s": 2 * model.int8_gemm_macs_per_s,
        "dropped": list(t.dropped),
        "warnings": list(model.warnings),
    }


class _PlainTable(Table):
    """A rich Table whose cells are plain text ("[us]" in a label is a unit, not a style tag)."""

    def add_row(self, *cells: object, **kw: Any) -> None:
        super().add_row(*(Text(str(c)) for c in cells), **kw)


def _print_human(run_id: str, model: KernelModel) -> None:
    c = console()
    t = model.table
    c.print(
        f"kernel table {run_id[:8]}: {len(t.kernels)} chains x {t.rounds} rounds at {t.threads} threads in "
        f"{t.seconds:.0f} s (after a {t.lead_bytes / MIB:.0f} MiB untimed lead); noise (split-half, median) "
        f"{model.noise_rel:.1%}",
        markup=False,
    )
    tab = _PlainTable(show_edge=False, title="measured here (lower quartile over rounds)")
    tab.add_column("figure", no_wrap=True)
    tab.add_column("value", justify="right", no_wrap=True)
    tab.add_row("session run [us]", f"{model.run_s * 1e6:.1f}")
    tab.add_row("dispatch per node [us]", f"{model.tiny_s * 1e6:.2f}")
    for p, s in sorted(model.gemv_overhead_s.items()):
        tab.add_row(f"{p} GEMV node, smallest [us]", f"{s * 1e6:.1f}")
    tab.add_row("fp32 GEMV streaming [GB/s]", f"{model.stream_bytes_per_s / 1e9:.1f}")
    tab.add_row("STREAM triad [GB/s]", f"{model.triad_bytes_per_s / 1e9:.1f}")
    tab.add_row("fp32 GEMM, M=128 [GFLOP/s]", f"{2 * model.fp32_gemm_macs_per_s / 1e9:.0f}")
    tab.add_row("int8 MatMulNBits GEMM, M=128 [GOP/s]", f"{2 * model.int8_gemm_macs_per_s / 1e9:.0f}")
    c.print(tab)  # labels hold "[us]": cells are Text, never markup (see add_row below)
    for w in model.warnings:
        c.print(f"warning: {w}", markup=False)
    if t.dropped:
        c.print(f"note: left out for memory: {', '.join(t.dropped)}", markup=False)
