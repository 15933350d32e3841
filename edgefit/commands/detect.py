"""`edgefit detect [--save PATH]`: a profile of this machine, with measured bandwidth and GEMM figures."""

from __future__ import annotations

import argparse
from pathlib import Path

from edgefit import detect, probes
from edgefit.commands._common import add_json_flag, check_output_file, console, err_console, print_json
from edgefit.commands.profiles import profile_table
from edgefit.errors import UsageError
from edgefit.profiles import profile_to_dict


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "detect",
        help="profile this machine: RAM, cores, features, measured bandwidth and GEMM",
        description=(
            "Reads RAM, cores per cluster, CPU model, features and clocks from the OS and measures memory "
            "bandwidth (STREAM-like triad and copy, fp32 GEMV) and fp32 GEMM with numpy, all cores, in ~10 s. "
            "Figures the OS does not give (theoretical bandwidth, power) are marked estimated with how. "
            "Also refreshes the cached host profile that `--device host` uses."
        ),
    )
    p.add_argument(
        "--save",
        type=Path,
        metavar="PATH",
        help="write the profile as TOML (its id is the file name stem); `edgefit profiles validate` accepts it",
    )
    p.add_argument(
        "--probe-seconds",
        type=float,
        default=6.0,
        metavar="S",
        help="time for all probes together, allocation not included (default: 6)",
    )
    add_json_flag(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if not 0.05 <= args.probe_seconds <= 120:
        raise UsageError(f"--probe-seconds: expected 0.05..120, found {args.probe_seconds}")
    check_output_file("--save", args.save)  # before ~10 s of probes, not after
    say = None if args.json else (lambda msg: err_console().print(f"probing {msg}...", markup=False))
    found = detect.detect_host_with_probes(args.probe_seconds, progress=say)
    profile, results = found.profile, found.probes
    detect.save_profile(profile, detect.host_cache_path())  # what `--device host` reads from now on
    saved = detect.save_profile(profile, args.save) if args.save else None
    if args.json:
        out = profile_to_dict(profile)
        out["fingerprint"] = detect.host_fingerprint()
        out["saved_to"] = saved.path if saved else None
        out["warnings"] = list(found.warnings)
        out["probes"] = {
            name: {
                "value": r.value,
                "unit": r.unit,
                "samples": list(r.samples),
                "min": r.min,
                "max": r.max,
                "threads": r.threads,
                "working_set_bytes": r.working_set_bytes,
                "method": r.method,
            }
            for name, r in results.items()
        }
        print_json(out)
        return 0
    c = console()
    c.print(profile_table(profile))
    for name, r in results.items():
        c.print(f"{name:>5}: {probes.describe(r)}; {r.method}", markup=False)
    for warning in found.warnings:
        err_console().print(f"warning: {warning}", markup=False)
    if saved:
        c.print(f"saved to {saved.path} (id {saved.id})", markup=False)
    return 0
