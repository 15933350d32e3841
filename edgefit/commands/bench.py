"""`edgefit bench`: measure the quick/full ladder of built decoders, or your own .onnx files, on this machine."""

from __future__ import annotations

import argparse

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from edgefit import stats
from edgefit.bench import BenchSummary, bench_file, default_threads, run_ladder
from edgefit.bench.campaign import DEFAULT_BUDGET_S, LADDER_KV_FILL
from edgefit.commands._common import (
    MAX_BUDGET_S,
    MAX_THREADS,
    MAX_TOKENS,
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
from edgefit.units import MIB


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "bench",
        help="measure the benchmark ladder or your .onnx files here (one subprocess per model)",
        description=(
            "Measure load time, peak/steady RSS, prefill latency (16/64/128-token prompts) and decode latency per "
            "token at KV depths 0/128/512 of the built ladder models with onnxruntime on the CPU, one worker "
            "process per model. Your own .onnx files: decoders (past_key_values.* inputs) at prompts 16/64 and "
            "depths 0/64, other models one inference with synthesized inputs. Each measurement repeats until the "
            "median's 95% interval is within +-2% or --budget-s of samples is spent; raw samples go to the results "
            "database. Ctrl-C stops after the current measurement and keeps the finished ones (exit 130)."
        ),
    )
    p.add_argument("models", nargs="*", metavar="MODEL.onnx", help="your .onnx files (instead of the ladder)")
    p.add_argument("--ladder", choices=("quick", "full"), default=None, help="ladder to measure (default: quick)")
    p.add_argument(
        "--precision",
        default="fp32,int8,int4",
        help="comma-separated ladder precisions (default: fp32,int8,int4)",
    )
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        help=f"intra-op threads (default: physical cores, here {default_threads()})",
    )
    p.add_argument(
        "--dim",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="value of a symbolic input dim of your model (repeatable); unset ones: batch 1, others 16",
    )
    p.add_argument(
        "--input",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="fixed value of a scalar input, e.g. a sample rate (repeatable); default 1",
    )
    p.add_argument(
        "--budget-s",
        type=float,
        default=DEFAULT_BUDGET_S,
        help=f"time budget of samples per measurement in seconds (default {DEFAULT_BUDGET_S})",
    )
    p.add_argument(
        "--kv-fill",
        choices=("synthetic", "prefill"),
        default=None,
        help="how decode depths fill the KV cache: a real prompt pass ('prefill', as llama-bench -d; default for "
        "model files) or noise of the same shape ('synthetic', same timed work, no fill cost; ladder default)",
    )
    add_json_flag(p)
    add_db_flag(p)
    p.set_defaults(func=run)


def _pairs(items: list[str], flag: str, cast: type) -> dict:
    out = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise UsageError(f"{flag} {item!r}: expected NAME=VALUE")
        try:
            out[name] = cast(value)
        except ValueError:
            raise UsageError(f"{flag} {item!r}: expected a {cast.__name__} value, found {value!r}") from None
        if cast is int:
            check_int_flag(f"{flag} {name}=", out[name], low=1, high=MAX_TOKENS)  # a dim: 1..16M
        else:
            check_float_flag(f"{flag} {name}=", out[name], low=-1e12, high=1e12, low_open=False)
    return out


def run(args: argparse.Namespace) -> int:
    check_int_flag("--threads", args.threads, low=1, high=MAX_THREADS)
    check_float_flag("--budget-s", args.budget_s, low=0.0, high=MAX_BUDGET_S)  # nan, inf, 0, -1 refused
    if args.models and args.ladder:
        raise UsageError("give either --ladder or model files, not both")
    progress = not args.json
    if args.models:
        summary = bench_file(
            args.models,
            dims=_pairs(args.dim, "--dim", int),
            inputs=_pairs(args.input, "--input", float),
            threads=args.threads,
            db_path=db_path(args),
            progress=progress,
            budget_s=args.budget_s,
            kv_fill=args.kv_fill or "prefill",
        )
    else:
        if args.dim or args.input:
            raise UsageError("--dim and --input apply to model files, not to the ladder")
        precisions = tuple(p.strip() for p in args.precision.split(",") if p.strip())
        summary = run_ladder(
            args.ladder or "quick",
            precisions=precisions,
            threads=args.threads,
            db_path=db_path(args),
            progress=progress,
            budget_s=args.budget_s,
            kv_fill=args.kv_fill or LADDER_KV_FILL,
        )
    if args.json:
        print_json(summary.to_dict())
    else:
        _print_summary(summary)
    if summary.interrupted:
        return 130
    # A model that failed (e.g. inference impossible with the synthesized inputs) is bad input: exit 2, after
    # the summary that says which and why.
    return 2 if any(o.status == "failed" for o in summary.outcomes) else 0


_STOP = {"target_precision": "ci", "time_budget": "budget", "max_samples": "max"}
# Short labels keep the table readable in 80 columns; --json and `edgefit results show` carry the full codes.
_WARN = {
    "high_variance": "var",
    "too_few_samples": "few",
    "time_budget_exhausted": "budget",
    "busy_machine": "busy",
    "throttled": "throttled",
    "fits_in_cache": "cache",
    "drift": "drift",
}


def _print_summary(s: BenchSummary) -> None:
    t = Table(
        title=f"edgefit bench ({s.kind}, {s.threads} threads): measured here, medians of raw samples",
        caption="tokens: pN = prompt of N tokens, dN = one decoded token after N cached. stop: ci = 95% interval "
        "of the median within ±2%, budget = --budget-s spent, max = sample cap. warnings: var = high variance, "
        "few = too few samples, budget = CI target not reached, busy = other processes used the CPU, cache = "
        "weights fit the last-level cache, drift = bandwidth probe moved, throttled = thermal throttling",
    )
    for col in ("model", "prec", "phase", "tokens", "median [ms]", "95% CI", "n", "stop", "peak RSS [MiB]",
                "warnings"):  # fmt: skip
        t.add_column(escape(col), justify="left" if col in ("model", "prec", "phase", "stop", "warnings") else "right")
    for m in s.measurements:
        st = stats.summarize(m.samples_s)
        ci = "" if st.n < stats.MIN_SAMPLES_FOR_CI95 else f"±{st.ci95_rel:.1%}"
        tokens = {"prefill": f"p{m.prompt_tokens}", "decode": f"d{m.context_tokens}"}.get(m.phase.value, "")
        t.add_row(
            m.model_id,
            m.precision,
            m.phase.value,
            tokens,
            f"{st.median_s * 1e3:.3f}",
            ci,
            str(st.n),
            _STOP.get(m.stop_reason, m.stop_reason),
            f"{m.peak_rss_bytes / MIB:.0f}" if m.peak_rss_bytes else "",
            " ".join(_WARN.get(w.code.value, w.code.value) for w in m.warnings),
        )
    out = console()
    if not out.is_terminal:  # a pipe or file gets the whole table (rich would squeeze it into 80 columns)
        out = Console(highlight=False, width=200)
    out.print(t)
    for o in s.outcomes:
        if o.status != "measured":
            out.print(f"{o.model_id} {o.precision}: {o.status}: {o.message}")
    for note in s.notes:
        out.print(f"note: {note}")
    out.print(f"run {s.run_id}: {len(s.measurements)} measurements stored in {s.db_path} ({s.wall_s:.1f} s)")
    if s.interrupted:
        err_console().print("interrupted: the measurements above are stored; the run is marked interrupted")
