"""`edgefit bench`: measure the quick/full ladder of built decoders, or your own .onnx files, on this machine."""

from __future__ import annotations

import argparse

from edgefit import stats
from edgefit.bench import BenchSummary, bench_file, default_threads, run_ladder
from edgefit.bench.campaign import DEFAULT_BUDGET_S, FILE_BUDGET_S, LADDER_KV_FILL
from edgefit.bench.powerhook import measured_energy
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
from edgefit.commands._tables import Col, fitted_table, left_out_note
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
            "depths 0/64, other models one inference with synthesized inputs (images, audio chunks, recurrent "
            "states, token ids are recognised; --shape/--dim/--input set the rest). Each measurement repeats until "
            "the median's 95% interval is within +-2% or --budget-s of samples is spent; raw samples go to the "
            "results database. Ctrl-C stops after the current measurement and keeps the finished ones (exit 130)."
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
        "--shape",
        action="append",
        default=[],
        metavar="NAME=AxBxC",
        help="whole shape of an input of your model, e.g. --shape x=1x3x640x640 (repeatable); reaches named, "
        "unnamed and fixed dims",
    )
    p.add_argument(
        "--dim",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="value of a named symbolic input dim of your model (repeatable); unset ones follow the input's role "
        "(image 224 or 640, audio 512 samples, state 1, batch 1), else 16",
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
        default=None,
        help="cap on the seconds of samples per measurement; sampling stops earlier once the median's 95%% interval "
        f"is within ±2%% (default: {FILE_BUDGET_S:g} for model files, {DEFAULT_BUDGET_S} per ladder measurement)",
    )
    p.add_argument(
        "--kv-fill",
        choices=("synthetic", "prefill"),
        default=None,
        help="how decode depths fill the KV cache: a real prompt pass ('prefill', as llama-bench -d; default for "
        "model files) or noise of the same shape ('synthetic', same timed work, no fill cost; ladder default)",
    )
    p.add_argument(
        "--sustained",
        type=float,
        default=None,
        metavar="SECONDS",
        help="sustained mode: run --model's decode (or your model's inference) back to back for SECONDS and record "
        "tokens/s, thermal zones, CPU clocks, throttle flags (vcgencmd on a Pi) and power over time; stores the "
        "series and the sustained/burst ratio",
    )
    p.add_argument(
        "--model",
        default=None,
        metavar="ID|FILE.onnx",
        help="with --sustained: a ladder rung or catalog id (built small, cached; --precision picks one, default "
        "fp32) or your .onnx file",
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


def _shapes(items: list[str]) -> dict[str, tuple[int, ...]]:
    """--shape NAME=1x3x640x640 (also 1,3,640,640; an empty value is a scalar)."""
    out: dict[str, tuple[int, ...]] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise UsageError(f"--shape {item!r}: expected NAME=AxBxC, e.g. --shape x=1x3x640x640")
        parts = [v.strip() for v in value.replace(",", "x").replace("X", "x").split("x")] if value.strip() else []
        if not all(v.isdigit() for v in parts):
            raise UsageError(f"--shape {item!r}: expected dims as positive integers joined by 'x', e.g. 1x3x640x640")
        dims = tuple(int(v) for v in parts)
        if not all(1 <= d <= MAX_TOKENS for d in dims):
            raise UsageError(f"--shape {item!r}: expected dims as positive integers up to {MAX_TOKENS:,}")
        if name in out and out[name] != dims:
            raise UsageError(f"--shape {name} given twice with different shapes")
        out[name] = dims
    return out


def run(args: argparse.Namespace) -> int:
    check_int_flag("--threads", args.threads, low=1, high=MAX_THREADS)
    check_float_flag("--budget-s", args.budget_s, low=0.0, high=MAX_BUDGET_S)  # nan, inf, 0, -1 refused
    if args.sustained is not None or args.model is not None:
        return _run_sustained(args)
    if args.models and args.ladder:
        raise UsageError("give either --ladder or model files, not both")
    progress = not args.json
    if args.models:
        summary = bench_file(
            args.models,
            dims=_pairs(args.dim, "--dim", int),
            inputs=_pairs(args.input, "--input", float),
            shapes=_shapes(args.shape),
            threads=args.threads,
            db_path=db_path(args),
            progress=progress,
            budget_s=args.budget_s,
            kv_fill=args.kv_fill or "prefill",
        )
    else:
        if args.dim or args.input or args.shape:
            raise UsageError("--shape, --dim and --input apply to model files, not to the ladder")
        precisions = tuple(p.strip() for p in args.precision.split(",") if p.strip())
        summary = run_ladder(
            args.ladder or "quick",
            precisions=precisions,
            threads=args.threads,
            db_path=db_path(args),
            progress=progress,
            budget_s=DEFAULT_BUDGET_S if args.budget_s is None else args.budget_s,
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
    title = f"edgefit bench ({s.kind}, {s.threads} threads): measured here, medians of raw samples"
    caption = (
        "tokens: pN = prompt of N tokens, dN = one decoded token after N cached. stop: ci = 95% interval "
        "of the median within ±2% (reached), budget = --budget-s spent first (the 95% CI column says how close it "
        "got), max = sample cap. warnings: var = high variance, "
        "few = too few samples, budget = CI target not reached, busy = other processes used the CPU, cache = "
        "weights fit the last-level cache, drift = bandwidth probe moved, throttled = thermal throttling"
    )
    power = any(m.power for m in s.measurements)  # measured power columns only where a sensor was read
    cols = (
        Col("model", keep=100, wrap=True),
        Col("prec", keep=95),
        Col("phase", keep=90),
        Col("tokens", keep=95),
        Col("median [ms]", "right", keep=100),
        Col("95% CI", "right", keep=60),
        Col("n", "right", keep=40),
        Col("stop", keep=45),
        Col("peak RSS [MiB]", "right", keep=70),
        *((Col("power [W]", "right", keep=55), Col("energy [mJ/unit]", "right", keep=50)) if power else ()),
        Col("warnings", keep=65, wrap=True),
    )
    rows = []
    for m in s.measurements:
        e = measured_energy(m)
        pw = (f"{e.mean_w:.2f}" if e else "", f"{e.energy_j * 1e3:.3g}" if e else "") if power else ()
        st = stats.summarize(m.samples_s)
        ci = "" if st.n < stats.MIN_SAMPLES_FOR_CI95 else f"±{st.ci95_rel:.1%}"
        tokens = {"prefill": f"p{m.prompt_tokens}", "decode": f"d{m.context_tokens}"}.get(m.phase.value, "")
        rows.append((
            m.model_id,
            m.precision,
            m.phase.value,
            tokens,
            f"{st.median_s * 1e3:.3f}",
            ci,
            str(st.n),
            _STOP.get(m.stop_reason, m.stop_reason),
            f"{m.peak_rss_bytes / MIB:.0f}" if m.peak_rss_bytes else "",
            *pw,
            " ".join(_WARN.get(w.code.value, w.code.value) for w in m.warnings),
        ))  # fmt: skip
    out = console()
    if not out.is_terminal:  # a pipe or file gets the whole table (rich would squeeze it into 80 columns)
        out.width = 200
    t, dropped = fitted_table(cols, rows, out.width, title=title, caption=caption)
    out.print(t)
    if note := left_out_note(dropped, out.width):
        out.print(note)
    for o in s.outcomes:
        if o.status != "measured":
            out.print(f"{o.model_id} {o.precision}: {o.status}: {o.message}")
    for note in s.notes:
        out.print(f"note: {note}")
    out.print(f"run {s.run_id}: {len(s.measurements)} measurements stored in {s.db_path} ({s.wall_s:.1f} s)")
    if s.interrupted:
        err_console().print("interrupted: the measurements above are stored; the run is marked interrupted")


def _run_sustained(args: argparse.Namespace) -> int:
    """`edgefit bench --sustained SECONDS --model ID|FILE.onnx [--precision P]`."""
    from edgefit.bench.sustained_run import bench_sustained

    if args.sustained is None or args.model is None:
        raise UsageError(
            "--sustained SECONDS and --model ID|FILE.onnx go together, e.g. --sustained 60 --model ladder-55m"
        )
    if args.models or args.ladder:
        raise UsageError("--sustained runs one --model; leave out --ladder and model files")
    check_float_flag("--sustained", args.sustained, low=0.0, high=24 * 3600.0)
    precisions = [p.strip() for p in args.precision.split(",") if p.strip()]
    if len(precisions) != 1 and args.precision != "fp32,int8,int4":
        raise UsageError(f"--precision {args.precision}: --sustained runs one precision, e.g. --precision int8")
    precision = precisions[0] if args.precision != "fp32,int8,int4" else "fp32"
    summary = bench_sustained(
        args.model, args.sustained, precision, threads=args.threads, db_path=db_path(args), progress=not args.json,
        dims=_pairs(args.dim, "--dim", int), inputs=_pairs(args.input, "--input", float), shapes=_shapes(args.shape),
    )  # fmt: skip
    if args.json:
        print_json(summary.to_dict())
    else:
        _print_sustained(summary)
    return 130 if summary.interrupted else (2 if any(o.status == "failed" for o in summary.outcomes) else 0)


def _print_sustained(s: BenchSummary) -> None:
    out = console()
    for o in s.outcomes:
        if o.status != "measured":
            out.print(f"{o.model_id} {o.precision}: {o.status}: {o.message}")
    for m in s.measurements:
        ser = m.sustained
        if ser is None:
            continue
        unit = "tok/s" if ser.unit == "tokens" else "inf/s"
        n = len(ser.t_s)
        out.print(
            f"{m.model_id} {m.precision}, {m.threads} threads, {sum(m.samples_s):.0f} s of steps, {n} points "
            f"every {ser.interval_s:.2g} s (measured here)"
        )
        ratio = ser.sustained_ratio
        out.print(
            f"  burst {ser.burst_rate_per_s:.1f} {unit} (first 10 %), sustained {ser.sustained_rate_per_s:.1f} {unit} "
            f"(last 25 %): sustained/burst {ratio:.3f}"
            if ratio is not None
            else "  no rate"
        )
        rates = list(ser.rate_per_s)
        if rates:
            out.print(f"  per-interval rate: min {min(rates):.1f}, max {max(rates):.1f} {unit}")
        tmax = ser.max_temperature_c()
        if tmax is not None:
            first = [v for v in ser.temperatures_c[0] if v is not None]
            out.print(f"  temperature: {max(first):.1f} -> max {tmax:.1f} °C ({', '.join(ser.zones)})")
        clocks = [c for c in ser.cpu_freq_hz if c is not None]
        if clocks:
            out.print(f"  CPU clock: {clocks[0] / 1e9:.2f} -> min {min(clocks) / 1e9:.2f} GHz")
        if any(b is not None for b in ser.throttled):
            out.print(f"  throttled or capped at {ser.throttled_points()} of {n} points (vcgencmd get_throttled)")
        e = measured_energy(m)
        if e is not None:
            above = "" if e.energy_above_idle_j is None else f", {e.energy_above_idle_j:.4g} J above idle"
            per = ser.unit[:-1]
            out.print(f"  power {e.mean_w:.2f} W ({e.sensor}, {e.covers}): {e.energy_j:.4g} J per {per}{above}")
        for note in ser.notes:
            out.print(f"  note: {note}")
    for note in s.notes:
        out.print(f"note: {note}")
    out.print(f"run {s.run_id}: stored in {s.db_path} ({s.wall_s:.1f} s); `edgefit report` plots the series")
    if s.interrupted:
        err_console().print("interrupted: the series so far is stored; the run is marked interrupted")
