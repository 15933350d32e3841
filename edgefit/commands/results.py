"""`edgefit results list|show|compare|hosts|export|import`: look at stored runs and move them between machines.

Statistics shown are computed here from the raw samples (edgefit.stats), never stored. Read-only subcommands
never create a database; `import` validates the whole bundle before it opens one.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from edgefit.bench.measurement import Measurement, WarningCode
from edgefit.bench.powerhook import energy_dict, measured_energy
from edgefit.commands._common import add_db_flag, add_json_flag, check_output_file, console, db_path, print_json
from edgefit.commands._tables import Col, fitted_table, left_out_note
from edgefit.detect import host_fingerprint
from edgefit.errors import StoreError
from edgefit.stats import summarize
from edgefit.store import HostInfo, RunInfo, Store, load_bundle, measurement_to_dict
from edgefit.units import GIB, MIB

# the columns naming one measurement (model, precision, phase, workload), first in `show` and `compare`
_KEY_COLS = (
    Col("model", keep=100, wrap=True),
    Col("precision", keep=95),
    Col("phase", keep=95),
    Col("prompt", "right", keep=85),
    Col("context", "right", keep=85),
)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "results",
        help="list, show, export and import stored measurements (move results between machines)",
        description=(
            "Stored benchmark runs: list them, show one with statistics computed from its raw samples, "
            "compare two runs, list the hosts, export runs to a versioned JSON bundle, import a bundle "
            "(idempotent: importing twice adds nothing)."
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
    hp = rs.add_parser("hosts", help="hosts with stored runs (fingerprint, CPU, runs, measurements)")
    cp = rs.add_parser(
        "compare",
        help="two runs side by side: each configuration's median and the ratio B/A (run-to-run spread)",
    )
    cp.add_argument("run_a", metavar="RUN_A", help="run id or unique prefix (the reference)")
    cp.add_argument("run_b", metavar="RUN_B", help="run id or unique prefix (compared with RUN_A)")
    for q in (lp, sp, ep, ip, hp, cp):
        add_json_flag(q)
        add_db_flag(q)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    cmd = getattr(args, "results_command", None)
    if cmd is None:  # bare `edgefit results` lists
        cmd = "list"
        args.host, args.json, args.db = None, False, None
    return {"list": _list, "show": _show, "export": _export, "import": _import, "hosts": _hosts, "compare": _compare}[
        cmd
    ](args)


def _existing_db(args: argparse.Namespace) -> Path | None:
    path = db_path(args)
    return path if path.exists() else None


def _no_db_error(args: argparse.Namespace) -> StoreError:
    return StoreError(
        f"{db_path(args)}: no results database yet; run `edgefit bench` or `edgefit results import FILE` first"
    )


def _print_fitted(out: Console, cols: Sequence[Col], rows: Sequence[Sequence[str]], title: str | None = None) -> None:
    """A table of the columns that fit the terminal (the least important left out and named); a pipe gets all."""
    if not out.is_terminal:
        out.width = max(out.width, 200)
    table, dropped = fitted_table(cols, rows, out.width, title=title)
    out.print(table)
    if note := left_out_note(dropped, out.width):
        out.print(note)


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
            store.reap_dead_runs(host_fingerprint())  # a run whose process was killed is `killed`, not `running`
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
    cols = (
        Col("run", keep=100),
        Col("kind", keep=80, wrap=True),
        Col("host", keep=75, wrap=True),
        Col("started (UTC)", keep=60),
        Col("status", keep=70),
        Col("measurements", "right", keep=50),
    )
    rows = [(r.id[:8], r.kind, _host_label(r), _when(r.started_at), r.status, str(r.measurement_count)) for r in runs]
    _print_fitted(out, cols, rows, title=f"runs in {db_path(args)}")
    return 0


def _run_json(r: RunInfo) -> dict[str, object]:
    d = r.to_dict()
    d.pop("environment")
    d["cpu_model"] = r.environment.cpu_model
    return d


def _show(args: argparse.Namespace) -> int:
    path = _existing_db(args)
    if path is None:
        raise _no_db_error(args)
    with Store(path) as store:
        store.reap_dead_runs(host_fingerprint())
        info = store.run(args.run)
        ms = store.measurements(run_id=info.id)
    if args.json:
        rows = []
        for m in ms:
            d = measurement_to_dict(m)
            d["summary"] = summarize(m.samples_s).to_dict()
            d["energy"] = energy_dict(m)  # measured energy per unit (token / prompt token / inference), or None
            rows.append(d)
        print_json({"run": info.to_dict(), "measurements": rows})
        return 0
    out = console()
    env = info.environment
    # names from other hosts are printed as text, never as rich markup
    out.print(f"run {info.id}  {info.kind}  {info.status}  started {_when(info.started_at)} UTC", markup=False)
    out.print(
        f"host {info.host_fingerprint}  {env.cpu_model or '?'} ({env.machine}), "
        f"{env.physical_cores or '?'} cores, {env.os_pretty or env.os_name} {env.os_release}"
        + (f", {env.board}" if env.board else ""),
        markup=False,
    )
    mem = []
    if env.ram_bytes is not None:
        mem.append(f"RAM {env.ram_bytes / GIB:.1f} GiB")
    if env.available_memory_bytes is not None:
        mem.append(f"available {env.available_memory_bytes / GIB:.1f} GiB")
    if env.cgroup_memory_limit_bytes is not None:
        mem.append(f"cgroup limit {env.cgroup_memory_limit_bytes / GIB:.1f} GiB")
    if mem:
        out.print(", ".join(mem), markup=False)
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
    out.print("  ".join(extras), markup=False)
    if not ms:
        out.print("no measurements in this run")
        return 0
    power = any(m.power for m in ms)  # measured power columns only where a sensor was read
    cols = (
        *_KEY_COLS,
        Col("threads", "right", keep=30),
        Col("n", "right", keep=40),
        Col("median [ms]", "right", keep=100),
        Col("CV [%]", "right", keep=35),
        Col("CI95 ± [%]", "right", keep=60),
        Col("peak RSS [MiB]", "right", keep=70),
        *(
            (Col("power [W]", "right", keep=55), Col("energy [mJ/unit]", "right", keep=50),
             Col("above idle [mJ/unit]", "right", keep=45))
            if power
            else ()
        ),
        Col("warnings", keep=65, wrap=True),
    )  # fmt: skip
    cells: list[tuple[str, ...]] = []
    for m in ms:
        s = summarize(m.samples_s)
        e = measured_energy(m)
        above = None if e is None else e.energy_above_idle_j
        pw = (
            ("-", "-", "-")
            if e is None
            else (f"{e.mean_w:.2f}", f"{e.energy_j * 1e3:.3g}", "-" if above is None else f"{above * 1e3:.3g}")
        )
        ci = "-" if not math.isfinite(s.ci95_rel) else f"{s.ci95_rel * 100:.1f}"
        cv = "-" if not math.isfinite(s.cv) else f"{s.cv * 100:.1f}"
        cells.append((
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
            *(pw if power else ()),
            ", ".join(w.code.value for w in m.warnings),
        ))  # fmt: skip
    _print_fitted(out, cols, cells)
    _print_power_notes(out, ms, power)
    return 0


def _print_power_notes(out: Console, ms: Sequence[Measurement], power: bool) -> None:
    """What the power columns mean (units per phase, sensor coverage), or that no sensor was read; sustained
    runs: their rates and sustained/burst ratio."""
    if power:
        sensors = sorted({(r.sensor, r.covers) for m in ms for r in m.power})
        out.print(
            "power: measured here by " + ", ".join(f"{s} ({c})" for s, c in sensors) + "; energy per unit = mean W x "
            "median latency: per token (decode), per prompt token (prefill), per inference (run)",
            markup=False,
        )
    else:
        out.print("power: no sensor readings in this run (no power sensor found); energy elsewhere is estimated")
    for m in ms:
        ser = m.sustained
        if ser is not None and ser.sustained_ratio is not None:
            unit = "tok/s" if ser.unit == "tokens" else "inf/s"
            tmax = ser.max_temperature_c()
            out.print(
                f"sustained {m.model_id} {m.precision}: burst {ser.burst_rate_per_s:.1f} {unit}, sustained "
                f"{ser.sustained_rate_per_s:.1f} {unit}, ratio {ser.sustained_ratio:.3f} over {len(ser.t_s)} points"
                + ("" if tmax is None else f", max {tmax:.1f} °C"),
                markup=False,
            )


def _export(args: argparse.Namespace) -> int:
    check_output_file("--out", args.out)
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
    cols = (
        Col("host", keep=100),
        Col("cpu", keep=90, wrap=True),
        Col("machine", keep=60),
        Col("os", keep=40, wrap=True),
        Col("runs", "right", keep=70),
        Col("measurements", "right", keep=50),
        Col("last run (UTC)", keep=55),
    )
    rows = [
        (h.host_fingerprint, h.cpu_model or "?", h.machine, h.os_name, str(h.runs), str(h.measurements),
         _when(h.last_seen))
        for h in hosts
    ]  # fmt: skip
    _print_fitted(out, cols, rows, "hosts (measurements keep their host; calibration mixes hosts only when asked)")
    return 0


def _config_key(m: Measurement) -> tuple[object, ...]:
    # by model id, not file hash: a rung rebuilt between runs (new builder, new seed) is still the same rung;
    # the comparison says when the files differ
    return (m.model_id, m.precision, m.threads, m.provider, m.phase.value, m.prompt_tokens, m.context_tokens)


def _pooled(ms: tuple[Measurement, ...]) -> dict[tuple[object, ...], list[Measurement]]:
    # repeats of one configuration within a run (interleaved measurements) are pooled: their samples together
    out: dict[tuple[object, ...], list[Measurement]] = {}
    for m in ms:
        out.setdefault(_config_key(m), []).append(m)
    return out


@dataclass(frozen=True, slots=True)
class _Pair:
    model_id: str
    precision: str
    phase: str
    prompt_tokens: int
    context_tokens: int
    median_a_s: float
    median_b_s: float
    ratio_b_over_a: float | None
    ci95_overlap: bool
    fits_in_cache: bool
    same_model_file: bool  # same model_hash in both runs


def _pair(ma: list[Measurement], mb: list[Measurement]) -> _Pair:
    sa = summarize([x for m in ma for x in m.samples_s])
    sb = summarize([x for m in mb for x in m.samples_s])
    first = ma[0]
    return _Pair(
        model_id=first.model_id,
        precision=first.precision,
        phase=first.phase.value,
        prompt_tokens=first.prompt_tokens,
        context_tokens=first.context_tokens,
        median_a_s=sa.median_s,
        median_b_s=sb.median_s,
        ratio_b_over_a=sb.median_s / sa.median_s if sa.median_s > 0 else None,
        ci95_overlap=sa.ci95_low_s <= sb.ci95_high_s and sb.ci95_low_s <= sa.ci95_high_s,
        fits_in_cache=any(w.code is WarningCode.FITS_IN_CACHE for m in (*ma, *mb) for w in m.warnings),
        same_model_file={m.model_hash for m in ma} == {m.model_hash for m in mb},
    )


def _spread(pairs: list[_Pair]) -> float | None:
    rel = [abs(p.ratio_b_over_a - 1.0) for p in pairs if p.ratio_b_over_a is not None]
    return max(rel) if rel else None


def _compare(args: argparse.Namespace) -> int:
    path = _existing_db(args)
    if path is None:
        raise _no_db_error(args)
    with Store(path) as store:
        a, b = store.run(args.run_a), store.run(args.run_b)
        pa, pb = _pooled(store.measurements(run_id=a.id)), _pooled(store.measurements(run_id=b.id))
    pairs = [_pair(ma, pb[key]) for key, ma in pa.items() if key in pb]
    spread_all = _spread(pairs)
    spread_dram = _spread([p for p in pairs if p.phase == "decode" and not p.fits_in_cache])
    only_a, only_b = len(set(pa) - set(pb)), len(set(pb) - set(pa))
    if args.json:
        print_json(
            {
                "run_a": a.id,
                "run_b": b.id,
                "same_host": a.host_fingerprint == b.host_fingerprint,
                "matched": len(pairs),
                "only_in_a": only_a,
                "only_in_b": only_b,
                "max_abs_rel_diff": spread_all,
                "max_abs_rel_diff_decode_dram": spread_dram,
                "rows": [dataclasses.asdict(p) for p in pairs],
            }
        )
        return 0
    out = console()
    out.print(f"A = run {a.id[:8]} ({_when(a.started_at)} UTC), B = run {b.id[:8]} ({_when(b.started_at)} UTC)")
    if a.host_fingerprint != b.host_fingerprint:
        out.print(f"note: different hosts ({a.host_fingerprint[:8]} vs {b.host_fingerprint[:8]})")
    cols = (
        *_KEY_COLS,
        Col("A median [ms]", "right", keep=100),
        Col("B median [ms]", "right", keep=100),
        Col("B/A", "right", keep=100),
        Col("CI95 overlap", keep=60),
        Col("in cache", keep=40),
        Col("model file", keep=50),
    )
    rows = [
        (
            p.model_id,
            p.precision,
            p.phase,
            str(p.prompt_tokens),
            str(p.context_tokens),
            f"{p.median_a_s * 1e3:.3f}",
            f"{p.median_b_s * 1e3:.3f}",
            "-" if p.ratio_b_over_a is None else f"{p.ratio_b_over_a:.3f}",
            "yes" if p.ci95_overlap else "no",
            "yes" if p.fits_in_cache else "",
            "same" if p.same_model_file else "rebuilt",
        )
        for p in pairs
    ]
    _print_fitted(out, cols, rows)

    def pct(x: float | None) -> str:
        return "-" if x is None else f"{x * 100:.1f} %"

    out.print(
        f"{len(pairs)} configurations in both runs ({only_a} only in A, {only_b} only in B); largest |B/A - 1|: "
        f"{pct(spread_all)} overall, {pct(spread_dram)} on decode of DRAM-resident models",
        markup=False,
    )
    return 0
