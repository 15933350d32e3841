"""`edgefit validate`: back-test the calibrated prediction against what was measured here."""

from __future__ import annotations

import argparse
import importlib
from pathlib import Path
from typing import Any

from rich.table import Table

from edgefit import detect
from edgefit.bench.measurement import Measurement
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
from edgefit.predict.validate import DEFAULT_HELD_OUT, DEFAULT_PRECISIONS, ValidationResult, measure_fresh, validate
from edgefit.store import Store


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "validate",
        help="back-test predictions: refit on small rungs, predict larger ones and held-out models measured here",
        description=(
            "(a) Refit on the smaller ladder rungs and predict the larger rungs measured here; (b) unless "
            "--no-build, measure a fresh quick ladder and held-out architectures that are not in the ladder "
            "(default: a Qwen2.5-0.5B- and a TinyLlama-1.1B-shaped random-weight model) side by side, and "
            "predict the held-out ones from that ladder. Prints predicted vs measured decode, prefill and peak "
            "RSS with errors, and stores the result for reports."
        ),
    )
    p.add_argument(
        "--no-build",
        action="store_true",
        help="only back-test the latest ladder run already in the database (no building or measuring)",
    )
    p.add_argument(
        "--models",
        default=",".join(DEFAULT_HELD_OUT),
        help=f"held-out catalog ids, comma-separated (default {','.join(DEFAULT_HELD_OUT)})",
    )
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
    add_json_flag(p)
    add_db_flag(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    check_int_flag("--threads", args.threads, low=1, high=MAX_THREADS)
    check_float_flag("--budget-s", args.budget_s, low=0.0, high=MAX_BUDGET_S)
    db = db_path(args)
    host = detect.host_profile()
    fingerprint = detect.host_fingerprint()
    precisions = tuple(x.strip() for x in args.precision.split(",") if x.strip())
    if args.no_build:
        ladder, held, run_ids = _latest_ladder(db, fingerprint)
        notes: list[str] = []
    else:
        models = tuple(x.strip() for x in args.models.split(",") if x.strip())
        if not args.json:
            err_console().print(
                f"measuring a fresh quick ladder ({', '.join(precisions)}) and held-out {', '.join(models)}: "
                "a few minutes"
            )
        ladder, held, run_ids, notes = measure_fresh(
            db, models=models, precisions=precisions, threads=args.threads, progress=not args.json,
            budget_s=args.budget_s,
        )  # fmt: skip
    ladder = [m for m in ladder if m.precision in precisions] or ladder
    result = validate(ladder, host, held_out_measurements=held, run_ids=run_ids)
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


def _latest_ladder(db: Path, fingerprint: str) -> tuple[list[Measurement], list[Measurement], list[str]]:
    if not db.exists():
        raise PredictError(f"{db}: no results database; run `edgefit bench --ladder quick` first")
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
    raise PredictError(f"{db}: no ladder run from this host; run `edgefit bench --ladder quick` first")


def _fmt(figure: str, v: float) -> str:
    return f"{v / 2**20:.0f}" if figure == "peak_rss" else f"{v * 1e3:.1f}"


def _print_human(r: ValidationResult) -> None:
    c = console()
    titles = {
        "rung": "larger ladder rungs predicted from the smaller ones",
        "held_out": "held-out architectures predicted from the ladder",
    }
    for kind in ("rung", "held_out"):
        rows = [x for x in r.comparisons if x.kind == kind]
        if not rows:
            continue
        t = Table(show_edge=False, title=f"{titles[kind]} (decode, prefill: ms; peak RSS: MiB)")
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
    s = Table(show_edge=False, title="summary of |error| (%)")
    for col in ("group", "n", "median", "max", "target", "met"):
        s.add_column(col, no_wrap=True)
    for key, e in r.summary.items():
        target = met = ""
        if "meets_target" in e:
            target = f"{e['target_median_abs_error'] * 100:.0f}/{e['target_max_abs_error'] * 100:.0f}"
            met = "yes" if e["meets_target"] else "NO"
        med, mx = f"{e['median_abs_error'] * 100:.1f}", f"{e['max_abs_error'] * 100:.1f}"
        s.add_row(key, str(e["n"]), med, mx, target, met)
    c.print(s)
    c.print(f"drift during the ladder: {r.drift_ratio:.2f}x (times compared after the same normalisation)")
    for n in r.notes:
        c.print(f"note: {n}")
