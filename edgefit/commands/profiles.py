"""`edgefit profiles list|show ID|validate PATH...`: the device library and its sources."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rich.table import Table

from edgefit.commands._common import add_db_flag, add_json_flag, console, db_path, print_json
from edgefit.commands._tables import Col, fitted_table, left_out_note
from edgefit.errors import ProfileError, UsageError
from edgefit.profiles import (
    DeviceProfile,
    Figure,
    get_profile,
    iter_figures,
    load_profiles,
    profile_files,
    profile_to_dict,
)
from edgefit.units import GB, GIB, KIB, MIB


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "profiles",
        help="list, show and validate device profiles",
        description="The built-in device library (device_profiles/*.toml) and your own profile files.",
    )
    cmds = p.add_subparsers(dest="profiles_command", metavar="SUBCOMMAND")
    ls = cmds.add_parser("list", help="one row per device: RAM, bandwidth, cores, power, price")
    ls.add_argument("--dir", type=Path, action="append", default=[], help="also load profiles from this folder")
    add_json_flag(ls)
    show = cmds.add_parser("show", help="every figure of one device with its source or estimate note")
    show.add_argument("device", metavar="ID", help="device id (see `edgefit profiles list`), a .toml path, or host")
    show.add_argument("--dir", type=Path, action="append", default=[], help="also load profiles from this folder")
    add_json_flag(show)
    val = cmds.add_parser("validate", help="check profile files; exit 2 if any is bad")
    val.add_argument("paths", metavar="PATH", nargs="+", type=Path, help=".toml files or folders of them")
    add_json_flag(val)
    link = cmds.add_parser(
        "link",
        help="say that a calibrated host (fingerprint or run id) IS this device: its own kernel table answers for it",
        description=(
            "Link a device profile to a host whose kernel table is in the database (imported from that device's "
            "bundle, or measured by `edgefit fleet bench`). Predictions for the device then use that table "
            "untranslated, with basis 'measured'. Without HOST, lists the links."
        ),
    )
    link.add_argument("device", metavar="DEVICE", nargs="?", help="device id (see `edgefit profiles list`)")
    link.add_argument("host", metavar="HOST", nargs="?", help="host fingerprint, or the id of a calibration run")
    add_db_flag(link)
    add_json_flag(link)
    p.set_defaults(func=run, _profiles_parser=p)


def run(args: argparse.Namespace) -> int:
    if args.profiles_command == "list":
        return _list(args)
    if args.profiles_command == "show":
        return _show(args)
    if args.profiles_command == "validate":
        return _validate(args)
    if args.profiles_command == "link":
        return _link(args)
    args._profiles_parser.print_help()
    return 2


def _link(args: argparse.Namespace) -> int:
    from edgefit.store import Store

    db = db_path(args)
    if args.device is None or args.host is None:
        if args.device is not None:
            raise UsageError(
                "edgefit profiles link: give DEVICE and HOST (a fingerprint or run id), or neither to list links"
            )
        links = Store(db).device_links() if db.exists() else {}
        if args.json:
            print_json({"links": {d: list(fps) for d, fps in links.items()}})
        else:
            for d, fps in sorted(links.items()):
                console().print(f"{d}: {', '.join(fps)}", markup=False, highlight=False)
            if not links:
                console().print("no device is linked to a calibrated host", markup=False)
        return 0
    device = get_profile(args.device)  # ProfileError (exit 2) names the unknown id
    if device.id == "host":
        raise UsageError("edgefit profiles link: 'host' is this machine already; name a device profile")
    if not db.exists():
        raise UsageError(f"{db}: no results database; import the device's bundle first (`edgefit results import`)")
    with Store(db) as store:
        tables = store.kernel_tables()
        by_run = {rid: fp for rid, fp, _ in tables}
        calibrated = {fp for _, fp, _ in tables}
        fp = by_run.get(args.host, args.host if args.host in calibrated else None)
        if fp is None:
            known = ", ".join(sorted(calibrated)) or "none"
            raise UsageError(
                f"edgefit profiles link: {args.host!r} is neither a calibrated host's fingerprint nor a calibration "
                f"run in {db} (calibrated hosts: {known}); import the device's bundle first"
            )
        added = store.link_device(device.id, fp)
    if args.json:
        print_json({"device": device.id, "host_fingerprint": fp, "added": added})
    else:
        what = "linked" if added else "already linked"
        console().print(f"{device.id} {what} to host {fp}: its kernel table answers for it", markup=False)
    return 0


# --- human formatting ----------------------------------------------------------------------------------------


def format_value(fig: Figure) -> str:
    """One figure in a human unit: '8 GiB', '17.1 GB/s', '2.40 GHz', '154 GFLOP/s', '6.5 W', '80 USD'."""
    v = fig.value
    if fig.unit == "bytes":
        for scale, unit in ((GIB, "GiB"), (MIB, "MiB"), (KIB, "KiB")):
            if v >= scale:
                return f"{v / scale:.3g} {unit}" if v < 100 * scale else f"{v / scale:.0f} {unit}"
        return f"{v:.0f} B"
    if fig.unit == "bytes_per_s":
        return f"{v / GB:.1f} GB/s"
    if fig.unit == "hz":
        return f"{v / 1e9:.2f} GHz"
    if fig.unit == "flops_per_s":
        return f"{v / 1e9:.3g} GFLOP/s" if v < 1e12 else f"{v / 1e12:.3g} TFLOP/s"
    if fig.unit == "ops_per_s":
        return f"{v / 1e12:.3g} TOPS"
    suffix = {"w": "W", "wh": "Wh", "usd": "USD"}.get(fig.unit, fig.unit)
    return f"{v:.3g} {suffix}" if v < 1000 else f"{v:.0f} {suffix}"


def provenance(fig: Figure) -> str:
    """'source: <source> (method)' or 'estimated: <note>'."""
    if fig.estimated:
        text = f"estimated: {fig.note}"
        return text + (f" (from {fig.source})" if fig.source else "")
    text = f"source: {fig.source}"
    if fig.method:
        text += f"; method: {fig.method}"
    if fig.note:
        text += f"; note: {fig.note}"
    return text


def profile_table(p: DeviceProfile) -> Table:
    """Every field of one profile: figures with their provenance, plain fields as they are."""
    t = Table(title=f"{p.name} ({p.id})", show_lines=False)
    t.add_column("field", no_wrap=True)
    t.add_column("value", justify="right", no_wrap=True)
    t.add_column("source / estimate", overflow="fold")
    plain = [
        ("kind", p.kind),
        ("vendor", p.vendor or ""),
        ("cpu.model", p.cpu_model),
        ("cpu.isa", p.isa),
        ("cpu.features", " ".join(p.cpu_features)),
        *((f"cpu.clusters[{i}]", f"{c.cores}x {c.name}") for i, c in enumerate(p.clusters)),
        ("memory.type", p.memory_type),
        *((f"compute.{e.kind}.provider", e.provider) for e in p.engines),
    ]
    for name, value in plain:  # text goes in the wrapping column; the value column keeps short figures
        if value:
            t.add_row(name, "", value)
    for name, fig in iter_figures(p):
        label = f"{name} ({p.price_date})" if name == "price.usd" and p.price_date else name
        t.add_row(label, format_value(fig), provenance(fig))
    if p.notes:
        t.add_row("notes", "", p.notes)
    if p.path:
        t.add_row("file", "", p.path)
    return t


def _gib(fig: Figure | None) -> str:
    return f"{fig.value / GIB:.1f}" if fig else ""


# --- subcommands ---------------------------------------------------------------------------------------------


def _dirs(args: argparse.Namespace) -> tuple[Path, ...]:
    """--dir folders; a typo'd one is an error, not a quiet list of only the built-in profiles."""
    for d in args.dir:
        if not d.is_dir():
            raise UsageError(f"--dir {d}: {'is not a folder' if d.exists() else 'does not exist'}; expected a folder "
                             "of device profile .toml files")  # fmt: skip
    return tuple(args.dir)


def _list(args: argparse.Namespace) -> int:
    profiles = load_profiles(_dirs(args))
    if args.json:
        print_json([profile_to_dict(p) for p in profiles])
        return 0
    cols = (
        Col("id", keep=100),
        Col("name", wrap=True, keep=40, max_width=40),
        Col("kind", keep=20),
        Col("RAM [GiB]", "right", keep=30),
        Col("usable [GiB]", "right", keep=90),
        Col("bandwidth [GB/s]", "right", keep=80),
        Col("measured [GB/s]", "right", keep=25),
        Col("CPU cores", "right", keep=35),
        Col("load power [W]", "right", keep=60),
        Col("price [USD]", "right", keep=70),
    )
    rows = [
        (
            p.id,
            p.name,
            p.kind,
            _gib(p.ram),
            _gib(p.usable_ram),
            f"{p.bandwidth.value / GB:.1f}" + ("*" if p.bandwidth.estimated else ""),
            f"{p.measured_bandwidth.value / GB:.1f}" if p.measured_bandwidth else "",
            str(p.cpu_cores),
            f"{p.load_power.value:.3g}" + ("*" if p.load_power.estimated else ""),
            f"{p.price.value:.0f}" if p.price else "",
        )
        for p in profiles
    ]
    out = console()
    if not out.is_terminal:  # a pipe or file gets every column (rich would assume 80)
        out.width = max(out.width, 200)
    t, dropped = fitted_table(cols, rows, out.width, title=f"{len(profiles)} device profiles")
    out.print(t)
    if note := left_out_note(dropped, out.width):
        out.print(note)
    out.print("* estimated (see `edgefit profiles show ID` for every figure's source or estimate note)")
    return 0


def _show(args: argparse.Namespace) -> int:
    p = get_profile(args.device, _dirs(args))
    if args.json:
        print_json(profile_to_dict(p))
        return 0
    console().print(profile_table(p))
    return 0


def _validate(args: argparse.Namespace) -> int:
    files: list[Path] = []
    for path in args.paths:
        files.extend(profile_files(path) if path.is_dir() else [path])
    if not files:
        raise UsageError(f"{', '.join(map(str, args.paths))}: expected .toml profile files, found none")
    results: list[dict[str, Any]] = []
    first_file: dict[str, Path] = {}
    for path in files:
        try:
            p = DeviceProfile.from_toml(path)
            if p.id in first_file:
                raise ProfileError(
                    f"{path}: id: expected a unique device id, found {p.id!r} also in {first_file[p.id]}; "
                    f"remove or rename one of the two files"
                )
            first_file[p.id] = path
            results.append({"path": str(path), "ok": True, "id": p.id, "error": None})
        except ProfileError as exc:
            results.append({"path": str(path), "ok": False, "id": None, "error": str(exc)})
    bad = sum(not r["ok"] for r in results)
    if args.json:
        print_json(results)
    else:
        out = console()
        for r in results:
            out.print(f"OK    {r['path']} ({r['id']})" if r["ok"] else f"ERROR {r['error']}", markup=False)
        out.print(f"{len(results) - bad} ok, {bad} bad", markup=False)
    return 2 if bad else 0
