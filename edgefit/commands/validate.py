"""`edgefit validate`: back-test the calibrated prediction against what was measured here."""

from __future__ import annotations

import argparse
import dataclasses
import importlib
from pathlib import Path
from typing import Any

from rich.table import Table

from edgefit import detect, pipeline
from edgefit.bench.measurement import Measurement
from edgefit.catalog import ModelSpec, get_precision
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
from edgefit.errors import PredictError
from edgefit.kernels.table import KernelTable, fit_model, merge_tables
from edgefit.predict import accounting
from edgefit.predict.validate import (
    CALL_ROUNDS,
    DEFAULT_HELD_OUT,
    DEFAULT_PRECISIONS,
    DEFAULT_RANDOM,
    ValidationResult,
    bracket_drift,
    measure_fresh,
    model_calls,
    random_specs,
    validate,
)
from edgefit.store import Store

MAX_CALLS_S = 240.0  # cap on the seconds the interleaved model calls add to the table measured after the models


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "validate",
        help="check the kernel-table predictions against whole models measured here (ladder, held out, random)",
        description=(
            "Predict from this host's kernel table (measured first when missing) what whole models measured here "
            "took, none of which the table was fitted on: every quick-ladder rung, held-out catalog architectures "
            "(default: Qwen2.5-0.5B- and TinyLlama-1.1B-shaped random-weight models) and --random architectures "
            "drawn at random (width, depth, heads, kv heads, head_dim, MLP width, vocab, tied, biases). Unless "
            "--no-build they are built and measured now, in one run. Prints predicted vs measured decode, "
            "prefill and peak RSS with errors, the kernel-level interpolation error, and stores the result for "
            "reports. The fresh table measured after the models also times each built file among its chains "
            "(interleaved/ rows: model and kernels under the same drift, so the pricing alone is tested)."
        ),
    )
    p.add_argument(
        "--no-build",
        action="store_true",
        help="only compare with the latest ladder run already in the database (no building or measuring)",
    )
    p.add_argument(
        "--models",
        default=",".join(DEFAULT_HELD_OUT),
        help=f"held-out catalog ids, comma-separated (default {','.join(DEFAULT_HELD_OUT)}; '' for none)",
    )
    p.add_argument(
        "--random", type=int, default=DEFAULT_RANDOM, help=f"random architectures to add (default {DEFAULT_RANDOM})"
    )
    p.add_argument("--seed", type=int, default=None, help="seed of the random architectures (default: a new one)")
    p.add_argument(
        "--precision",
        default=",".join(DEFAULT_PRECISIONS),
        help=f"precisions to measure and check, comma-separated (default {','.join(DEFAULT_PRECISIONS)})",
    )
    p.add_argument("--threads", type=int, default=None, help="threads (default: physical cores)")
    p.add_argument(
        "--budget-s",
        type=float,
        default=1.0,
        help="seconds of timed samples per measurement (default 1.0, twice the ladder's: more samples per model)",
    )
    p.add_argument(
        "--reuse-table",
        action="store_true",
        help="predict with the latest stored kernel table instead of two fresh ones measured just before and just "
        "after the models and merged (a VM drifts 1.3x within minutes: a table from earlier compares two different "
        "machines)",
    )
    add_json_flag(p)
    add_db_flag(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    check_int_flag("--threads", args.threads, low=1, high=MAX_THREADS)
    check_int_flag("--random", args.random, low=0, high=50)
    check_int_flag("--seed", args.seed, low=0, high=2**31 - 1)
    check_float_flag("--budget-s", args.budget_s, low=0.0, high=MAX_BUDGET_S)
    db = db_path(args)
    fingerprint = detect.host_fingerprint()
    precisions = tuple(x.strip() for x in args.precision.split(",") if x.strip())
    for name in precisions:
        get_precision(name)  # CatalogError names the valid ones
    say = err_console().print if not args.json else (lambda *_a, **_k: None)
    state0 = pipeline.host_state(db, progress=None, say=lambda m: say(m, markup=False, highlight=False))  # a table
    bracket = not args.no_build and not args.reuse_table
    before: KernelTable | None = None
    if bracket:
        from edgefit.kernels.calibrate import calibrate_and_store

        if state0.ran_calibration:
            before = state0.calibration.host.table
        else:
            say("measuring a fresh kernel table just before the models (`--reuse-table` skips it)", markup=False)
            before = calibrate_and_store(db, state0.host, fingerprint, threads=args.threads)[1]
    specs: dict[str, ModelSpec] = {}
    if args.no_build:
        ladder, held, run_ids = _latest_ladder(db, fingerprint)
        specs = _random_specs_of(held)
        notes: list[str] = []
    else:
        models = tuple(x.strip() for x in args.models.split(",") if x.strip())
        say(
            f"measuring the quick ladder ({', '.join(precisions)}), held-out {', '.join(models) or 'none'} and "
            f"{args.random} random architectures: a few minutes",
            markup=False,
            highlight=False,
        )
        ladder, held, specs, run_ids, notes = measure_fresh(
            db, models=models, random_n=args.random, seed=args.seed, precisions=precisions, threads=args.threads,
            progress=not args.json, budget_s=args.budget_s,
        )  # fmt: skip
    ladder = [m for m in ladder if m.precision in precisions] or ladder
    if before is not None:
        from edgefit import memory
        from edgefit.kernels.calibrate import DEFAULT_BUDGET_S

        all_specs = accounting.resolve_specs({m.model_id for m in (*ladder, *held)}, given=specs)
        calls, round_s, call_notes = model_calls(
            [*ladder, *held], all_specs, memory.available_memory_bytes(), rungs={m.model_id for m in ladder}
        )
        notes += call_notes
        budget_s = DEFAULT_BUDGET_S + min(CALL_ROUNDS * round_s, MAX_CALLS_S)
        say(
            f"and one just after them, with the {len(calls)} model calls timed among its chains (~{budget_s:.0f} s): "
            "the two tables bracket the benchmark and are merged",
            markup=False,
        )
        calibrate_and_store(db, state0.host, fingerprint, threads=args.threads, calls=calls, budget_s=budget_s)
    state = pipeline.host_state(db, calibrate_if_missing=False)  # the memory model now sees the fresh ladder
    # the latest table alone, not the answers' median over the last three: the calls were timed in its rounds and
    # the bracket merges it with the table before the models
    calibration = dataclasses.replace(
        state.calibration, host=state.latest_table or state.calibration.host, host_table_note=""
    )
    # the latest table (just measured, or an earlier validate's) prices the calls timed in its own rounds
    interleaved = calibration if calibration.host.table.calls else None
    if interleaved is not None and args.no_build:
        specs = {**specs, **_random_specs_of_ids({c.model_id for c in calibration.host.table.calls})}
    if before is not None:
        _moved, drift_note = bracket_drift(fit_model(before), calibration.host)
        if drift_note:
            notes.append(drift_note)
        merged = fit_model(merge_tables(before, calibration.host.table))
        calibration = dataclasses.replace(calibration, host=merged)
        notes.append(
            f"kernel table: {before.rounds} rounds just before and {calibration.host.table.rounds - before.rounds} "
            "just after the models, merged"
        )
    result = validate(
        calibration, state.host, ladder_measurements=ladder, held_out_measurements=held, specs=specs,
        run_ids=run_ids, interleaved=interleaved,
    )  # fmt: skip
    if notes:
        result = ValidationResult(**{**_fields(result), "notes": (*result.notes, *notes)})
    with Store(db) as store:
        store.save_validation(result.to_dict(), host_fingerprint=fingerprint)
    if args.json:
        print_json(result.to_dict())
    else:
        _print_human(result)
    return 0


def _fields(r: ValidationResult) -> dict[str, Any]:
    return {f: getattr(r, f) for f in r.__dataclass_fields__}


def _random_specs_of(ms: list[Measurement]) -> dict[str, ModelSpec]:
    return _random_specs_of_ids({m.model_id for m in ms})


def _random_specs_of_ids(ids: set[str]) -> dict[str, ModelSpec]:
    """Random architectures are named random-<seed>-<index>: regenerate them from their seed."""
    out: dict[str, ModelSpec] = {}
    for mid in {m for m in ids if m.startswith("random-")}:
        try:
            _, seed, index = mid.split("-")
            drawn = random_specs(int(index) + 1, int(seed))
        except ValueError:
            continue
        if len(drawn) > int(index):
            out[mid] = drawn[int(index)]
    return out


def _latest_ladder(db: Path, fingerprint: str) -> tuple[list[Measurement], list[Measurement], list[str]]:
    if not db.exists():
        raise PredictError(f"{db}: no results database; run `edgefit validate` (without --no-build) first")
    ladder_ids = {
        r.spec.id for n in ("quick", "full") for r in importlib.import_module("edgefit.ladder").load_ladder(n)
    }
    with Store(db) as store:
        runs = [r for r in store.runs(host_fingerprint=fingerprint) if r.kind.startswith("ladder:")]
        for r in reversed(runs):
            ms = store.measurements(run_id=r.id)
            ladder = [m for m in ms if m.model_id in ladder_ids]
            if ladder:  # other models in the same run (an earlier `validate`'s held-out ones) are held out again
                return ladder, [m for m in ms if m.model_id not in ladder_ids], [r.id]
    raise PredictError(f"{db}: no ladder run from this host; run `edgefit validate` (without --no-build) first")


def _fmt(figure: str, v: float) -> str:
    return f"{v / 2**20:.0f}" if figure == "peak_rss" else f"{v * 1e3:.1f}"


def _print_human(r: ValidationResult) -> None:
    c = console()
    titles = {
        "rung": "ladder rungs predicted from the kernel table",
        "held_out": "held-out catalog architectures predicted from the kernel table",
        "random": "random architectures predicted from the kernel table",
    }
    for timing, kind in [(t, k) for t in ("bench", "interleaved") for k in ("rung", "held_out", "random")]:
        rows = [x for x in r.comparisons if x.kind == kind and x.timing == timing]
        if not rows:
            continue
        title = f"{titles[kind]} (decode, prefill: ms; peak RSS: MiB)"
        if timing == "interleaved":
            title = f"{titles[kind]}, timed among its chains (ms; measured: lower quartile of the rounds)"
        t = Table(show_edge=False, title=title)
        t.add_column("model", no_wrap=True)
        for col in ("prec", "figure", "tokens", "predicted", "measured", "error %", "in interval"):
            left = col in ("prec", "figure", "in interval")
            t.add_column(col, justify="left" if left else "right", no_wrap=True, min_width=len(col) if left else None)
        for x in rows:
            t.add_row(
                x.model_id, x.precision, x.figure, str(x.workload_tokens), _fmt(x.figure, x.predicted),
                _fmt(x.figure, x.measured), f"{x.error_rel * 100:+.1f}", "yes" if x.within_interval else "no",
            )  # fmt: skip
        c.print(t)
    s = Table(
        show_edge=False,
        title="summary of |error| (%); interleaved/: whole models timed among the table's chains, against the "
        "lower quartile of their rounds (vs med: against the median)",
    )
    for col in ("group", "n", "median", "max", "target", "met", "vs med"):
        s.add_column(col, no_wrap=True)
    for key, e in r.summary.items():
        target = met = ""
        if "meets_target" in e:
            target = f"{e['target_median_abs_error'] * 100:.0f}/{e['target_max_abs_error'] * 100:.0f}"
            met = "yes" if e["meets_target"] else "NO"
        med, mx = f"{e['median_abs_error'] * 100:.1f}", f"{e['max_abs_error'] * 100:.1f}"
        vs_med = f"{e['median_abs_error_vs_median'] * 100:.1f}" if "median_abs_error_vs_median" in e else ""
        s.add_row(key, str(e["n"]), med, mx, target, met, vs_med)
    c.print(s)
    k = Table(show_edge=False, title="kernel level: each chain predicted from its neighbours (|error| %)")
    for col in ("class", "n", "median", "max"):
        k.add_column(col, no_wrap=True)
    for name, e in r.kernel_errors.items():
        k.add_row(name, f"{e['n']:.0f}", f"{e['median_abs_error'] * 100:.1f}", f"{e['max_abs_error'] * 100:.1f}")
    c.print(k)
    c.print(f"kernel table noise (split-half, median over chains): {r.table_noise_rel:.1%}")
    for n in r.notes:
        c.print(f"note: {n}")
