"""`edgefit results list|show|export|import|hosts`: look at stored runs and move them between machines.

Statistics shown are computed here from the raw samples (edgefit.stats), never stored. Read-only subcommands
never create a database; `import` validates the whole bundle before it opens one.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from edgefit.bench.measurement import Measurement
from edgefit.commands._common import add_db_flag, add_json_flag, console, db_path, print_json
from edgefit.detect import host_fingerprint
from edgefit.errors import StoreError
from edgefit.stats import summarize
from edgefit.store import HostInfo, RunInfo, Store, load_bundle, measurement_to_dict
from edgefit.units import MIB


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "results",
        help="list, show, export and import stored measurements (move results between machines)",
        description=(
            "Stored benchmark runs: list them, show one with statistics computed from its raw samples, "
            "export runs to a versioned JSON bundle, import a bundle (idempotent: importing twice adds nothing)."
        ),
    )
    rs = p.add_subparsers(dest="results_command", metavar="SUBCOMMAND")

    lp = rs.add_parser("list", help="list runs: id prefix, kind, host, start time, status, measurements")
    lp.add_argument("--host", default=None, help="only runs of this host fingerprint (or its prefix)")
    sp = rs.add_parser("show", help="one run's environment and a summary per measurement")
    sp.add_argument("run", metavar="RUN", help="run id or a unique prefix of it (see `edgefit results list`)")
    ep = rs.add_parser("export", help="write runs (default: all) to a JSON bundle")
    ep.add_argument("runs", metavar="RUN", nargs="*", help="run ids or unique prefixes (default: every run)")
    ep.add_argument("--out", type=Path, required=True, help="bundle file to write, e.g. pi5-results.json")
    ip = rs.add_parser("import", help="add a JSON bundle's runs and measurements (already present ones skipped)")
    ip.add_argument("file", type=Path, metavar="FILE", help="a bundle written by `edgefit results export`")
    rs.add_parser("hosts", help="hosts with stored runs (fingerprint, CPU, runs, measurements)")
    hp = rs.choices["hosts"]
    for q in (lp, sp, ep, ip, hp):
        add_json_flag(q)
        add_db_flag(q)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    cmd = getattr(args, "results_command", None)
    if cmd is None:  # bare `edgefit results` lists
        cmd = "list"
        args.host, args.json, args.db = None, False, None
    return {"list": _list, "show": _show, "export": _export, "import": _import, "hosts": _hosts}[cmd](args)


def _existing_db(args: argparse.Namespace) -> Path | None:
    path = db_path(args)
    return path if path.exists() else None


def _no_db_error(args: argparse.Namespace) -> StoreError:
    return StoreError(
        f"{db_path(args)}: no results database yet; run `edgefit bench` or `edgefit results import FILE` first"
    )


def _print_table(out: Console, table: Table) -> None:
    # In a pipe rich assumes 80 columns and wraps every cell; a table only takes the width it needs.
    if not out.is_terminal:
        out.width = max(out.width, 200)
    out.print(table)


def _add_row(table: Table, *cells: str) -> None:
    # cells hold names from files and other hosts (model ids, CPU names): never let them act as rich markup
    table.add_row(*(escape(c) for c in cells))


def _when(iso: str | None) -> str:
    return "" if not iso else iso.replace("T", " ")[:16]


def _host_label(r: RunInfo) -> str:
    cpu = r.environment.cpu_model or r.environment.machine or "?"
    return f"{r.host_fingerprint[:8]} {cpu}"


def _list(args: argparse.Namespace) -> int:
    path = _existing_db(args)
    runs: tuple[RunInfo, ...] = ()
    if path is not None:
        with Store(path) as store:
            runs = store.runs()
    if args.host:
        runs = tuple(r for r in runs if r.host_fingerprint.startswith(args.host))
    if args.json:
        print_json({"db": str(db_path(args)), "runs": [_run_json(r) for r in runs]})
        return 0
    out = console()
    if not runs:
        out.print(f"no runs in {db_path(args)}; `edgefit bench` measures, `edgefit results import FILE` adds some")
        return 0
    table = Table(title=f"runs in {db_path(args)}")
    for col in ("run", "kind", "host", "started (UTC)", "status"):
        table.add_column(escape(col))
    table.add_column("measurements", justify="right")
    for r in runs:
        _add_row(table, r.id[:8], r.kind, _host_label(r), _when(r.started_at), r.status, str(r.measurement_count))
    _print_table(out, table)
    return 0


def _run_json(r: RunInfo) -> dict[str, object]:
    d = r.to_dict()
    d.pop("environment")
    d["cpu_model"] = r.environment.cpu_model
    return d


def _summary_row(m: Measurement) -> dict[str, object]:
    s = summarize(m.samples_s)
    return {
        "model_id": m.model_id,
        "precision": m.precision,
        "phase": m.phase.value,
        "prompt_tokens": m.prompt_tokens,
        "context_tokens": m.context_tokens,
        "threads": m.threads,
        "summary": s.to_dict(),
        "warnings": [w.code.value for w in m.warnings],
    }


def _show(args: argparse.Namespace) -> int:
    path = _existing_db(args)
    if path is None:
        raise _no_db_error(args)
    with Store(path) as store:
        info = store.run(args.run)
        ms = store.measurements(run_id=info.id)
    if args.json:
        rows = []
        for m in ms:
            d = measurement_to_dict(m)
            d["summary"] = summarize(m.samples_s).to_dict()
            rows.append(d)
        print_json({"run": info.to_dict(), "measurements": rows})
        return 0
    out = console()
    env = info.environment
    out.print(f"run {info.id}  {info.kind}  {info.status}  started {_when(info.started_at)} UTC")
    out.print(
        f"host {info.host_fingerprint}  {env.cpu_model or '?'} ({env.machine}), "
        f"{env.physical_cores or '?'} cores, {env.os_pretty or env.os_name} {env.os_release}"
    )
    extras = [f"onnxruntime {info.onnxruntime_version or '?'}", f"edgefit {info.edgefit_version}"]
    if env.threads is not None:
        extras.append(f"threads {env.threads}")
    if env.cpu_governor:
        extras.append(f"governor {env.cpu_governor}")
    if env.load_avg is not None:
        extras.append(f"load {env.load_avg[0]:.2f}")
    if env.throttling is not None and env.throttling.flags:
        extras.append("throttling " + ",".join(env.throttling.flags))
    if env.temperatures_c:
        extras.append(f"max temp {max(t for _, t in env.temperatures_c):.0f} °C")
    out.print("  ".join(extras))
    if not ms:
        out.print("no measurements in this run")
        return 0
    table = Table()
    for col in ("model", "precision", "phase"):
        table.add_column(escape(col))
    for col in ("prompt", "context", "threads", "n", "median [ms]", "CV [%]", "CI95 ± [%]", "peak RSS [MiB]"):
        table.add_column(escape(col), justify="right")
    table.add_column("warnings")
    for m in ms:
        s = summarize(m.samples_s)
        ci = "-" if not math.isfinite(s.ci95_rel) else f"{s.ci95_rel * 100:.1f}"
        cv = "-" if not math.isfinite(s.cv) else f"{s.cv * 100:.1f}"
        _add_row(
            table,
            m.model_id,
            m.precision,
            m.phase.value,
            str(m.prompt_tokens),
            str(m.context_tokens),
            str(m.threads),
            str(s.n),
            f"{s.median_s * 1e3:.3f}",
            cv,
            ci,
            "-" if m.peak_rss_bytes is None else f"{m.peak_rss_bytes / MIB:.0f}",
            ", ".join(w.code.value for w in m.warnings),
        )
    _print_table(out, table)
    return 0


def _export(args: argparse.Namespace) -> int:
    path = _existing_db(args)
    if path is None:
        raise _no_db_error(args)
    with Store(path) as store:
        summary = store.export_bundle(args.runs or None, args.out)
    if args.json:
        print_json(
            {"path": summary.path, "runs": summary.runs, "measurements": summary.measurements, "hosts": summary.hosts}
        )
        return 0
    console().print(
        f"exported {summary.runs} run(s), {summary.measurements} measurement(s) from "
        f"{len(summary.hosts)} host(s) to {summary.path}"
    )
    return 0


def _import(args: argparse.Namespace) -> int:
    load_bundle(args.file)  # validate before touching (or creating) the database
    with Store(db_path(args)) as store:
        s = store.import_bundle(args.file)
        cpus = {h.host_fingerprint: h.cpu_model for h in store.hosts()}
    if args.json:
        print_json(
            {
                "path": s.path,
                "db": str(db_path(args)),
                "runs_added": s.runs_added,
                "runs_skipped": s.runs_skipped,
                "measurements_added": s.measurements_added,
                "measurements_skipped": s.measurements_skipped,
                "hosts": s.hosts,
            }
        )
        return 0
    out = console()
    out.print(
        f"imported {s.path} into {db_path(args)}: added {s.runs_added} run(s) and {s.measurements_added} "
        f"measurement(s); skipped {s.runs_skipped} run(s) and {s.measurements_skipped} measurement(s) "
        "already present",
        markup=False,
    )
    # Merging hosts is explicit: say whose measurements these are; they keep that host's fingerprint.
    here = host_fingerprint()
    for h in s.hosts:
        whose = "this host" if h == here else "another host; its measurements keep its own fingerprint"
        out.print(f"  host {h[:8]} ({cpus.get(h) or '?'}): {whose}", markup=False)
    return 0


def _hosts(args: argparse.Namespace) -> int:
    path = _existing_db(args)
    hosts: tuple[HostInfo, ...] = ()
    if path is not None:
        with Store(path) as store:
            hosts = store.hosts()
    if args.json:
        print_json({"hosts": [dataclasses.asdict(h) for h in hosts]})
        return 0
    out = console()
    if not hosts:
        out.print(f"no hosts in {db_path(args)}")
        return 0
    table = Table(title="hosts (measurements keep their host; calibration mixes hosts only when asked)")
    for col in ("host", "cpu", "machine", "os"):
        table.add_column(escape(col))
    table.add_column("runs", justify="right")
    table.add_column("measurements", justify="right")
    table.add_column("last run (UTC)")
    for h in hosts:
        _add_row(
            table,
            h.host_fingerprint,
            h.cpu_model or "?",
            h.machine,
            h.os_name,
            str(h.runs),
            str(h.measurements),
            _when(h.last_seen),
        )
    _print_table(out, table)
    return 0
