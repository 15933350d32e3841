"""`edgefit fleet bench|status INVENTORY`: measure real devices of an Ansible inventory, or look at them.

The work is in edgefit.fleet (Ansible as a subprocess); this module parses, shows one progress line per host on
stderr, and prints the per-host outcome (a table, or --json).
"""

from __future__ import annotations

import argparse
import sys
import threading
from pathlib import Path
from typing import Any

from rich.live import Live
from rich.table import Table
from rich.text import Text

from edgefit.commands._common import (
    MAX_BUDGET_S,
    add_db_flag,
    add_json_flag,
    check_float_flag,
    console,
    db_path,
    err_console,
    print_json,
)
from edgefit.errors import UsageError

_STATUS_STYLE = {"ok": "green", "partial": "yellow", "failed": "red", "unreachable": "red", "interrupted": "yellow"}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "fleet",
        help="measure real devices of an Ansible inventory over SSH (install, bench, fetch, import)",
        description=(
            "Measure a fleet of real devices through Ansible (needs `pip install 'edgefit[fleet]'`). `bench` "
            "installs this edgefit in a venv on every host of an inventory (INI or YAML), runs `edgefit bench` "
            "there, fetches the results bundle and imports it, linking each host to its device profile (host var "
            "edgefit_device; hosts without one get a profile from their own `edgefit detect --save`, named after "
            "the host). `status` shows reachability, Python, the edgefit installed and the last run per host."
        ),
    )
    fs = p.add_subparsers(dest="fleet_command", metavar="SUBCOMMAND", parser_class=_SplitAtDashDash)
    bp = fs.add_parser(
        "bench",
        usage="edgefit fleet bench [options] INVENTORY [-- BENCH_ARGS ...]",
        help="install edgefit on every host, measure there, import the results (hosts in parallel)",
        description=(
            "Install this edgefit on every host of INVENTORY, measure its kernel table there (`edgefit calibrate`, "
            "once per host: the imported table makes that device's predictions basis M), run `edgefit bench` "
            "there (default --ladder quick; "
            "anything after `--` is passed to `edgefit bench`, .onnx files among it are copied along), fetch the "
            "results bundle and import it. Hosts run in parallel (--forks); a host that is unreachable, lacks "
            "Python >= 3.10, fails to install, runs out of memory or is interrupted is reported with its reason "
            "and the others carry on. Running the same request again measures nothing (--force does). "
            "Exit 0 when every host delivered, 1 when any did not, 130 when interrupted."
        ),
    )
    bp.add_argument("inventory", type=Path, metavar="INVENTORY", help="Ansible inventory file (INI or YAML)")
    bp.set_defaults(bench_args=[])  # filled by _SplitAtDashDash from what follows `--`
    bp.add_argument(
        "--ladder",
        choices=("quick", "full"),
        default=None,
        help="ladder to measure when no model files (default quick)",
    )
    bp.add_argument(
        "--wheels",
        type=Path,
        default=None,
        metavar="DIR",
        help="folder of wheels (edgefit's dependencies, built for the hosts' Python and CPU) to install from, "
        "for hosts without access to a package index; copied to every host",
    )
    bp.add_argument("--force", action="store_true", help="measure again where this request already finished")
    bp.add_argument(
        "--no-calibrate",
        action="store_true",
        help="skip `edgefit calibrate` on the hosts (their predictions then stay datasheet-translated)",
    )
    bp.add_argument(
        "--calibrate-budget-s",
        type=float,
        default=None,
        metavar="S",
        help="seconds of interleaved rounds for each host's `edgefit calibrate` (default: calibrate's own)",
    )
    bp.add_argument(
        "--calibrate-precision",
        default=None,
        metavar="P,...",
        help="weight precisions each host's kernel table times (default: calibrate's own, fp32,int8,int4)",
    )
    bp.add_argument(
        "--detect-probe-seconds",
        type=float,
        default=6.0,
        metavar="S",
        help="probe time of `edgefit detect` on hosts without edgefit_device (default 6)",
    )
    bp.add_argument(
        "--bench-timeout",
        type=float,
        default=6 * 3600.0,
        metavar="S",
        help="give up on a host's `edgefit bench` after S seconds (default 21600)",
    )
    bp.add_argument("--limit", default=None, metavar="HOST,...", help="only these inventory hosts")
    sp = fs.add_parser(
        "status",
        help="per host: reachable?, Python, edgefit installed, last run (nothing heavy runs)",
        description=(
            "For every host of INVENTORY: whether it answers over SSH, its Python, the edgefit installed there by "
            "`fleet bench`, its host fingerprint, the runs in its own database, and its last run imported here."
        ),
    )
    sp.add_argument("inventory", type=Path, metavar="INVENTORY", help="Ansible inventory file (INI or YAML)")
    for q in (bp, sp):
        q.add_argument("--forks", type=int, default=5, metavar="N", help="hosts worked on at once (default 5)")
        q.add_argument(
            "--timeout", type=float, default=10.0, metavar="S", help="SSH connection timeout in seconds (default 10)"
        )
        q.add_argument(
            "--out",
            type=Path,
            default=None,
            metavar="DIR",
            help="where fetched bundles, detected profiles and hosts.json go (default: fleet/ beside the --db)",
        )
        add_json_flag(q)
        add_db_flag(q)
    p.set_defaults(func=run)


class _SplitAtDashDash(argparse.ArgumentParser):
    """Everything after the first `--` is `edgefit bench`'s: kept out of this parser, so fleet options may come
    before or after INVENTORY (argparse alone would give a `*` positional nothing once an option followed it)."""

    def parse_known_args(  # type: ignore[override]
        self, args: list[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        rest: list[str] | None = None
        if args is not None and "--" in args:
            i = list(args).index("--")
            args, rest = list(args[:i]), list(args[i + 1 :])
        ns, extras = super().parse_known_args(args, namespace)
        if rest is not None:
            ns.bench_args = rest
        return ns, extras


def run(args: argparse.Namespace) -> int:
    cmd = getattr(args, "fleet_command", None)
    if cmd is None:
        raise UsageError("edgefit fleet: expected a subcommand: bench or status (`edgefit fleet --help`)")
    if args.forks < 1:
        raise UsageError(f"--forks {args.forks}: expected a positive integer")
    if args.timeout <= 0:
        raise UsageError(f"--timeout {args.timeout}: expected a positive number of seconds")
    return _bench(args) if cmd == "bench" else _status(args)


def _out_dir(args: argparse.Namespace) -> Path:
    return args.out if args.out is not None else db_path(args).parent / "fleet"


def _bench_request_args(args: argparse.Namespace) -> tuple[list[str], list[str]]:
    """The `edgefit bench` arguments for every host (checked here with bench's own parser) and the model files."""
    from edgefit.commands import bench as bench_cmd

    bench_args = list(args.bench_args)
    for flag in ("--json", "--db"):
        if any(a == flag or a.startswith(flag + "=") for a in bench_args):
            raise UsageError(f"bench arguments: {flag} is set by `edgefit fleet bench`; leave it out")
    parser = argparse.ArgumentParser(prog="edgefit fleet bench ... --", add_help=False, exit_on_error=False)
    bench_cmd.register(parser.add_subparsers())
    try:
        ns, unknown = parser.parse_known_args(["bench", *bench_args])
    except argparse.ArgumentError as exc:
        raise UsageError(f"bench arguments after `--`: {exc}") from None
    except SystemExit:  # argparse reported the error itself (a bad choice)
        raise UsageError("bench arguments after `--` are not valid for `edgefit bench` (see above)") from None
    if unknown:
        raise UsageError(f"bench arguments after `--`: unknown {' '.join(unknown)} (`edgefit bench --help` lists them)")
    models = list(ns.models)
    if models and (args.ladder or ns.ladder):
        raise UsageError("give either --ladder or model files, not both")
    if not models and ns.ladder is None:
        bench_args += ["--ladder", args.ladder or "quick"]
    return bench_args, models


class _ProgressLines:
    """One line per host on stderr: redrawn in place on a terminal, printed as it changes otherwise."""

    def __init__(self, hosts: list[str]) -> None:
        self.err = err_console()
        self.lines: dict[str, str] = dict.fromkeys(hosts, "waiting")
        self.lock = threading.Lock()
        self.live: Live | None = None
        if self.err.is_terminal:
            self.live = Live(self._render(), console=self.err, refresh_per_second=4, transient=False)

    def _render(self) -> Table:
        t = Table.grid(padding=(0, 2))
        for host, line in self.lines.items():
            t.add_row(Text(host, style="bold"), line)
        return t

    def __enter__(self) -> _ProgressLines:
        if self.live is not None:
            self.live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.live is not None:
            self.live.__exit__(None, None, None)

    def update(self, host: str, stage: str, message: str) -> None:
        with self.lock:
            if self.lines.get(host) == message:
                return
            self.lines[host] = message
            if self.live is not None:
                self.live.update(self._render())
            else:
                print(f"[{host}] {message}", file=sys.stderr, flush=True)


def _calibrate_args(args: argparse.Namespace) -> list[str] | None:
    """`edgefit calibrate` arguments for every host (checked here), or None with --no-calibrate."""
    if args.no_calibrate:
        if args.calibrate_budget_s is not None or args.calibrate_precision is not None:
            raise UsageError("--no-calibrate: leave out --calibrate-budget-s and --calibrate-precision")
        return None
    out: list[str] = []
    if args.calibrate_budget_s is not None:
        check_float_flag("--calibrate-budget-s", args.calibrate_budget_s, low=0.0, high=MAX_BUDGET_S)
        out += ["--budget-s", f"{args.calibrate_budget_s:g}"]
    if args.calibrate_precision is not None:
        from edgefit.kernels.plan import PRECISIONS

        names = [x.strip() for x in args.calibrate_precision.split(",") if x.strip()]
        bad = [n for n in names if n not in PRECISIONS]
        if bad or not names:
            raise UsageError(
                f"--calibrate-precision {args.calibrate_precision!r}: expected a comma-separated list of "
                f"{', '.join(PRECISIONS)}"
            )
        out += ["--precision", ",".join(names)]
    return out


def _bench(args: argparse.Namespace) -> int:
    from edgefit.fleet import bench_fleet, load_inventory, plan_request

    bench_args, models = _bench_request_args(args)
    request = plan_request(bench_args, models, _calibrate_args(args))  # model files checked before any host is touched
    out_dir = _out_dir(args)
    hosts = load_inventory(args.inventory, profile_dirs=(out_dir / "profiles",))
    limit = tuple(h.strip() for h in args.limit.split(",") if h.strip()) if args.limit else ()
    with _ProgressLines([h.name for h in hosts if not limit or h.name in limit]) as progress:
        result = bench_fleet(
            args.inventory,
            request,
            db_path=db_path(args),
            out_dir=out_dir,
            forks=args.forks,
            connect_timeout_s=args.timeout,
            wheels_dir=args.wheels,
            force=args.force,
            detect_probe_s=args.detect_probe_seconds,
            bench_timeout_s=args.bench_timeout,
            limit=limit,
            progress=progress.update,
        )
    if args.json:
        print_json(result.to_dict())
    else:
        _print_bench(result)
    if result.interrupted:
        return 130
    return 0 if result.ok else 1


def _print_bench(result: Any) -> None:
    out = console()
    if not out.is_terminal:
        out.width = max(out.width, 200)
    t = Table(title=f"edgefit fleet bench {result.inventory}")
    for col in ("host", "device", "status"):
        t.add_column(col)
    for col in ("measurements added", "runs added", "kernel table", "python", "time [s]"):
        t.add_column(col, justify="right")
    t.add_column("reason")
    for h in result.hosts:
        style = _STATUS_STYLE.get(h.status, "")
        status = h.status + (" (earlier run)" if h.reused else "")
        t.add_row(
            h.host,
            h.device_id,
            Text(status, style=style) if style else status,
            str(h.measurements_added),
            str(h.runs_added),
            "M" if h.kernel_tables else "-",  # its own table: predictions for its device are measured
            h.python_version or "-",
            f"{h.wall_s:.0f}",
            h.reason or "",
        )
    out.print(t)
    added = sum(h.measurements_added for h in result.hosts)
    delivered = sum(1 for h in result.hosts if h.bundle_path)
    out.print(
        f"{added} measurement(s) added to {result.db_path} from {delivered} of {len(result.hosts)} host(s) "
        f"in {result.wall_s:.0f} s; bundles and hosts.json in {result.out_dir}",
        markup=False,
    )
    profiles = [h for h in result.hosts if h.profile_path]
    if profiles:
        out.print(
            "profiles detected on hosts without edgefit_device: "
            f"`edgefit profiles list --dir {result.out_dir}/profiles`; use one as "
            f"`edgefit fit --device {result.out_dir}/profiles/{profiles[0].device_id}.toml`",
            markup=False,
        )


def _status(args: argparse.Namespace) -> int:
    from edgefit.fleet import fleet_status

    result = fleet_status(
        args.inventory, db_path=db_path(args), out_dir=_out_dir(args), forks=args.forks, connect_timeout_s=args.timeout
    )
    if args.json:
        print_json(result.to_dict())
        return 0
    out = console()
    if not out.is_terminal:
        out.width = max(out.width, 200)
    t = Table(title=f"edgefit fleet status {result.inventory}")
    for col in ("host", "device", "reachable", "python", "edgefit", "fingerprint", "runs there", "last run imported",
                "kernel table"):  # fmt: skip
        t.add_column(col)
    t.add_column("reason")
    for h in result.hosts:
        last = h.last_run_imported
        t.add_row(
            h.host,
            h.device_id,
            Text("yes", style="green") if h.reachable else Text("no", style="red"),
            h.python_version or "-",
            h.edgefit_version or ("not installed" if h.reachable else "-"),
            (h.host_fingerprint or "-")[:8],
            "-" if h.runs_on_host is None else str(h.runs_on_host),
            "-" if last is None else f"{last.id[:8]} {last.started_at[:16].replace('T', ' ')} {last.status}",
            "M" if h.kernel_tables_imported else "-",
            h.reason or "",
        )
    out.print(t)
    return 0
