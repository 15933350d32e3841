"""`edgefit fit`: the verdict matrix (models x devices per precision) for a workload; `--require` gates CI."""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence
from pathlib import Path

from rich.text import Text

from edgefit.catalog import ModelSpec
from edgefit.commands._common import (
    add_db_flag,
    add_json_flag,
    check_workload_flags,
    console,
    db_path,
    err_console,
    print_json,
)
from edgefit.errors import UsageError
from edgefit.profiles import DeviceProfile
from edgefit.verdict import Workload

DEFAULT_PRECISIONS: tuple[str, ...] = ("fp32", "int8", "int4")
SUSTAINED_PER_DEVICE = "device"  # --sustained without a RATIO: each device's own measured factor
# Below this many combinations every reason is printed under the matrix.
REASONS_FOR_AT_MOST = 12


def add_workload_flags(p: argparse.ArgumentParser) -> None:
    w = Workload()
    g = p.add_argument_group("workload")
    g.add_argument(
        "--context",
        type=int,
        default=w.context_tokens,
        metavar="N",
        help=f"context tokens held in the KV cache (default {w.context_tokens})",
    )
    g.add_argument(
        "--prompt",
        type=int,
        default=None,
        metavar="N",
        help=f"prompt tokens, prefilled before the first token (default {w.prompt_tokens}, or --context if smaller)",
    )
    g.add_argument(
        "--generate",
        type=int,
        default=w.generate_tokens,
        metavar="N",
        help=f"tokens generated per response, for response time and energy (default {w.generate_tokens})",
    )
    g.add_argument(
        "--min-tps",
        type=float,
        default=w.min_decode_tokens_per_s,
        metavar="X",
        help="minimum decode tokens/s (default 5, about reading speed)",
    )
    g.add_argument("--max-ttft", type=float, default=None, metavar="S", help="maximum time to first token [s]")
    g.add_argument(
        "--power-cap", type=float, default=None, metavar="W", help="power cap [W] (on top of a device's own budget)"
    )
    g.add_argument("--price-cap", type=float, default=None, metavar="USD", help="leave out devices priced above this")
    g.add_argument(
        "--sustained",
        nargs="?",
        const=SUSTAINED_PER_DEVICE,
        default=None,
        metavar="RATIO",
        help=(
            "judge decode speed once warm: scale each device's predicted tok/s by its sustained/burst ratio from "
            "a `bench --sustained` run on it (this host, or a linked device's imported bundle), else 1.0 with a "
            "note; --sustained RATIO uses that ratio (0 < RATIO <= 1) for every device"
        ),
    )


def sustained_from_args(args: argparse.Namespace) -> tuple[bool, float | None]:
    """``--sustained`` as (sustained?, given ratio or None); a RATIO that is not a number in (0, 1] is a usage
    error naming the flag."""
    raw = getattr(args, "sustained", None)
    if raw is None:
        return False, None
    if raw == SUSTAINED_PER_DEVICE:
        return True, None
    try:
        ratio = float(raw)
    except ValueError:
        ratio = math.nan
    if not (0 < ratio <= 1.0):  # NaN fails too
        raise UsageError(
            f"--sustained {raw!r}: expected a sustained/burst ratio in (0, 1] such as 0.8, or --sustained alone "
            "to use each device's measured ratio"
        )
    return True, ratio


def workload_from_args(args: argparse.Namespace) -> Workload:
    check_workload_flags(args, default_prompt=Workload().prompt_tokens)  # the same check as `predict`
    sustained, ratio = sustained_from_args(args)
    return Workload(
        context_tokens=args.context,
        prompt_tokens=args.prompt,
        generate_tokens=args.generate,
        min_decode_tokens_per_s=args.min_tps,
        max_ttft_s=args.max_ttft,
        power_cap_w=args.power_cap,
        price_cap_usd=args.price_cap,
        sustained=sustained,
        sustained_ratio=ratio,
    )


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "fit",
        help="verdict matrix: which models fit which devices, at which precision, for a workload",
        description=(
            "Predict every requested model x precision x device from this host's calibration and judge it "
            "against the workload: fits, tight, too_slow, over_power_budget, does_not_fit, weights_not_public. "
            "Defaults: every built-in device, every catalog model, fp32/int8/int4. With no measurements of this "
            "host in the database, the quick ladder is measured first (a few minutes)."
        ),
    )
    p.add_argument(
        "--device",
        action="append",
        default=[],
        metavar="ID",
        help="device id, profile .toml, or a folder of them such as fleet/profiles (repeat; default: all built-in; "
        "'host' = this machine)",
    )
    p.add_argument(
        "--model",
        action="append",
        default=[],
        metavar="ID|CARD",
        help="catalog id, card .toml, HF config.json, or your own MODEL.onnx (repeat; default: the catalog)",
    )
    p.add_argument(
        "--precision",
        action="append",
        default=[],
        metavar="P",
        help="fp32, fp16, int8, int4, q8_0, q4_k_m, ... (repeat or comma-separate; default fp32,int8,int4)",
    )
    add_workload_flags(p)
    from edgefit.commands.fit_graph import add_graph_flags

    add_graph_flags(p)
    p.add_argument(
        "--require", action="store_true", help="exit 1 if any requested combination is not fits/tight, printing why"
    )
    add_json_flag(p)
    add_db_flag(p)
    p.set_defaults(func=run)


def select_devices(refs: Sequence[str]) -> tuple[DeviceProfile, ...]:
    """Profiles by id, .toml path, ``host``, or a folder of .toml profiles (every one in it: ``fleet/profiles``,
    where ``edgefit fleet bench`` keeps the boards it detected). Nothing given: the built-in library."""
    from edgefit.profiles import DeviceProfile, get_profile, load_profiles, profile_files

    if not refs:
        return load_profiles()
    out: dict[str, DeviceProfile] = {}
    for ref in dict.fromkeys(refs):
        folder = Path(ref)
        if ref not in ("host",) and folder.is_dir():
            files = profile_files(folder)
            if not files:
                raise UsageError(f"--device {ref}: a folder with no profile .toml files in it; give a device id, a "
                                 "profile .toml or a folder of them (e.g. fleet/profiles)")  # fmt: skip
            found = [DeviceProfile.from_toml(f) for f in files]
        else:
            found = [get_profile(ref)]
        for p in found:
            out.setdefault(p.id, p)  # a device named twice (by id and in a folder) is priced once
    return tuple(out.values())


def select_specs(refs: Sequence[str]) -> tuple[ModelSpec, ...]:
    from edgefit.catalog import list_specs, load_spec

    if not refs:
        return list_specs()
    return tuple(load_spec(r) for r in dict.fromkeys(refs))


def select_precisions(refs: Sequence[str], default: Sequence[str] = DEFAULT_PRECISIONS) -> tuple[str, ...]:
    from edgefit.catalog import get_precision

    names = [n.strip() for r in refs for n in r.split(",") if n.strip()]
    if not names:
        return tuple(default)
    return tuple(get_precision(n).name for n in dict.fromkeys(names))  # CatalogError names the valid ones


def run(args: argparse.Namespace) -> int:
    from edgefit.report import pipeline, terminal
    from edgefit.report.results import answers, device_facts_dict, verdict_dict

    if any(str(m).lower().endswith(".onnx") for m in args.model):
        from edgefit.commands.fit_graph import run_graph_fit

        return run_graph_fit(args)
    if args.shape or args.dim or args.input or args.max_latency_ms is not None or args.min_fps is not None:
        raise UsageError("--shape, --dim, --input, --max-latency-ms and --min-fps apply to --model MODEL.onnx")
    workload = workload_from_args(args)
    devices = select_devices(args.device)
    specs = select_specs(args.model)
    precisions = select_precisions(args.precision)
    devices, over_price = _price_filter(devices, workload)
    if not devices:
        raise UsageError(f"--price-cap {workload.price_cap_usd:g}: every requested device costs more; raise the cap")
    err = err_console()
    state = pipeline.host_state(db_path(args), devices=devices, progress=not args.json, say=lambda m: err.print(m))
    facts = pipeline.device_facts(db_path(args), state, devices)
    data = pipeline.build_report_data(state, specs, devices, precisions, workload, include_scaling=False, facts=facts)
    failed = [v for v in data.verdicts if not v.ok]
    price_failures = [f"{d.id}: price ${d.price_usd:,.0f} > ${workload.price_cap_usd:,.0f} cap" for d in over_price]
    ok = not failed and not (args.device and price_failures)
    if args.json:
        print_json(
            {
                "schema_version": 1,
                "kind": "edgefit.fit",
                "workload": workload.to_dict(),
                "ok": ok,
                "results": [verdict_dict(v, workload.generate_tokens) for v in data.verdicts],
                "answers": answers(data),
                "skipped": [_skip(s) for s in data.skipped],
                "devices_over_price_cap": [d.id for d in over_price],
                "device_facts": device_facts_dict(data),
            }
        )
    else:
        out = console()
        terminal.print_matrix(out, data)
        own = sorted(
            {v.prediction.device_id for v in data.verdicts if v.prediction.calibration.get("table_role") == "device"}
        )
        if own:  # the legend's "M = measured on this host" covers these too: say where they were measured
            out.print(
                f"M on {', '.join(own)}: priced with the kernel table measured on that device itself "
                "(edgefit fleet bench, or edgefit profiles link)",
                markup=False,
            )
        for line in price_failures:
            out.print(f"left out (over the price cap): {line}")
        if args.require and failed:
            out.print(Text(f"--require: {len(failed)} combination(s) do not meet the workload:", style="bold red"))
            terminal.print_reasons(out, failed)
        elif len(data.verdicts) <= REASONS_FOR_AT_MOST:
            terminal.print_reasons(out, data.verdicts)
        terminal.print_answers(out, data)
        terminal.print_device_facts(out, data)
        for s in data.skipped:
            out.print(Text(f"not predicted: {s.model_id} @ {s.precision} on {s.device_id}: {s.reason}", style="dim"))
    if args.require and not ok:
        if args.json:  # stdout holds the JSON; say the outcome where a CI log shows it
            print(f"edgefit fit --require: {len(failed) + len(price_failures)} combination(s) do not meet the "
                  "workload (see 'ok' and 'results' in the JSON)", file=sys.stderr)  # fmt: skip
        return 1
    return 0


def _price_filter(
    devices: Sequence[DeviceProfile], workload: Workload
) -> tuple[tuple[DeviceProfile, ...], tuple[DeviceProfile, ...]]:
    cap = workload.price_cap_usd
    if cap is None:
        return tuple(devices), ()
    keep = tuple(d for d in devices if d.price_usd is None or d.price_usd <= cap)
    drop = tuple(d for d in devices if d.price_usd is not None and d.price_usd > cap)
    return keep, drop


def _skip(s: object) -> dict[str, str]:
    return {k: str(getattr(s, k)) for k in ("model_id", "precision", "device_id", "reason")}
