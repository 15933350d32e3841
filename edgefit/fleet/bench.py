"""`edgefit fleet bench`: measure every host of an Ansible inventory and import what each measured.

```
 plan_request(bench args, model files, calibrate args) ─> BenchRequest (args for the hosts, files to copy, keys)
 bench_fleet(inventory, request, ...)
   load_inventory ─> edgefit_wheel ─> run_playbook("bench.yml") ── events per host ──> _Tracker
                                                                   fetch ok: import the bundle at once,
                                                                   link its host fingerprint to the device
   ─> FleetBenchResult (one HostResult per host; hosts.json beside the bundles remembers fingerprints)
```

With a calibration requested, each host first measures its own kernel table (`edgefit calibrate`); the bundle
carries it, and once linked to the host's device it prices that device's predictions (basis measured).

A failing host never stops the others: Ansible's free strategy runs each host on its own, and the tracker turns
each host's failure into a reason. Bundles are imported as they arrive, so an interrupted fleet run keeps what
finished. The request key (edgefit version, arguments, model file hashes) marks a finished bench on the host:
running the same request again measures nothing and re-imports (adds nothing) unless ``force``.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as _dt
import hashlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import onnx

from edgefit import __version__
from edgefit.bench.modelfile import inspect_model_file
from edgefit.errors import EdgefitError, FleetError
from edgefit.fleet.ansible import Event, require_ansible, run_playbook
from edgefit.fleet.inventory import FleetHost, load_inventory
from edgefit.fleet.outcome import (
    Problem,
    classify_bench,
    classify_calibrate,
    classify_task,
    parse_summary,
    python_version,
)
from edgefit.fleet.state import save_state
from edgefit.fleet.wheel import edgefit_wheel, wheelhouse_tar
from edgefit.profiles import DeviceProfile
from edgefit.store import Store

REMOTE_DIR_TOKEN = "@EF_DIR@"  # replaced on each host by its edgefit folder (bench.yml)

# Progress: (host, stage, message) -> the command shows one line per host.
ProgressFn = Callable[[str, str, str], None]


@dataclass(frozen=True, slots=True)
class ModelCopy:
    src: Path  # on this machine
    dest: str  # relative to the host's edgefit folder


@dataclass(frozen=True, slots=True)
class BenchRequest:
    """What every host runs: ``edgefit calibrate <calibrate_args>`` (the device's kernel table; skipped when
    empty) and ``edgefit bench <args>`` with the model files copied along."""

    args: tuple[str, ...]  # model paths as @EF_DIR@/models/<sha>/<name>
    models: tuple[ModelCopy, ...]
    key: str  # sha256 of edgefit's version and the args (model hashes included): names a finished request
    calibrate_args: tuple[str, ...] = ()
    calibrate_key: str = ""  # the same for the calibration: a finished one is not measured again

    def to_dict(self) -> dict[str, Any]:
        return {
            "args": list(self.args),
            "models": [str(m.src) for m in self.models],
            "key": self.key,
            "calibrate_args": list(self.calibrate_args),
            "calibrate_key": self.calibrate_key,
        }


def _external_files(path: Path) -> list[Path]:
    """The external-data files a model refers to (already validated by inspect_model_file)."""
    model = onnx.load(str(path), load_external_data=False)
    found: dict[Path, None] = {}
    for t in onnx.external_data_helper._get_all_tensors(model):
        if t.HasField("data_location") and t.data_location == onnx.TensorProto.EXTERNAL:
            loc = {e.key: e.value for e in t.external_data}.get("location")
            if loc:
                found[path.parent / loc] = None
    return list(found)


def _key(what: str, args: Sequence[str]) -> str:
    src = json.dumps({"edgefit": __version__, what: list(args)}, sort_keys=True)
    return hashlib.sha256(src.encode()).hexdigest()[:16]


def plan_request(
    args: Sequence[str], model_files: Sequence[str], calibrate_args: Sequence[str] | None = None
) -> BenchRequest:
    """``args`` for `edgefit bench` as the user gave them; ``model_files`` the ones among them that are model
    paths; ``calibrate_args`` for `edgefit calibrate` (None: no calibration). Each model is checked here
    (one-line error, exit 2, before any host is touched) and gets a folder of its own on the hosts, named by its
    hash, so two files of one name do not clash and the model id is kept."""
    remote: dict[str, str] = {}
    copies: list[ModelCopy] = []
    for m in dict.fromkeys(model_files):
        p = Path(m).expanduser()
        info = inspect_model_file(p)
        folder = f"models/{info.sha256_16}"
        remote[m] = f"{REMOTE_DIR_TOKEN}/{folder}/{p.name}"
        copies.append(ModelCopy(p.resolve(), f"{folder}/{p.name}"))
        for ext in _external_files(p):
            copies.append(ModelCopy(ext.resolve(), f"{folder}/{ext.relative_to(p.parent).as_posix()}"))
    host_args = tuple(remote.get(a, a) for a in args)
    cal = tuple(calibrate_args) if calibrate_args is not None else ()
    return BenchRequest(
        host_args,
        tuple(copies),
        _key("args", host_args),
        calibrate_args=cal,
        calibrate_key=_key("calibrate", cal) if calibrate_args is not None else "",
    )


@dataclass(frozen=True, slots=True)
class HostResult:
    """One host's part of a fleet run. ``status``: ok | partial (something imported, something failed) |
    failed | unreachable | interrupted (this fleet run stopped before the host finished)."""

    host: str
    address: str
    device_id: str  # the profile its measurements are linked to (edgefit_device, or the detected one)
    status: str
    problem: str | None
    stage: str | None  # where it stopped or failed
    reason: str | None
    reused: bool  # the bench had already finished there for this request: nothing was measured again
    kernel_tables: int  # kernel tables (`edgefit calibrate`) of this host now in the database here
    python_version: str | None
    host_fingerprints: tuple[str, ...]
    run_ids: tuple[str, ...]  # runs of this request's bench (the summary's run id)
    runs_added: int
    runs_skipped: int
    measurements_added: int
    measurements_skipped: int
    links_added: tuple[str, ...]  # host fingerprints newly linked to device_id
    bundle_path: str | None
    profile_path: str | None  # the fetched `edgefit detect --save` profile (hosts without edgefit_device)
    models: tuple[dict[str, Any], ...]  # the bench summary's per-model outcomes (status, message)
    wall_s: float

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        for k in ("host_fingerprints", "run_ids", "links_added", "models"):
            d[k] = list(d[k])
        return d


@dataclass(frozen=True, slots=True)
class FleetBenchResult:
    inventory: str
    db_path: str
    out_dir: str
    request: BenchRequest
    hosts: tuple[HostResult, ...]
    interrupted: bool
    wall_s: float

    @property
    def ok(self) -> bool:
        return not self.interrupted and all(h.status == "ok" for h in self.hosts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "inventory": self.inventory,
            "db": self.db_path,
            "out_dir": self.out_dir,
            "request": self.request.to_dict(),
            "interrupted": self.interrupted,
            "wall_s": self.wall_s,
            "hosts": [h.to_dict() for h in self.hosts],
            "runs_added": sum(h.runs_added for h in self.hosts),
            "measurements_added": sum(h.measurements_added for h in self.hosts),
        }


_STAGE_WORDS = {
    "python": "connecting, checking Python",
    "install": "installing edgefit",
    "calibrate": "measuring its kernel table (edgefit calibrate)",
    "bench": "measuring (edgefit bench)",
    "export": "exporting results",
    "fetch": "fetching results",
    "detect": "profiling the device (edgefit detect)",
}


@dataclass
class _HostState:
    """Mutable while Ansible runs; frozen into a HostResult at the end."""

    host: FleetHost
    started: float | None = None
    finished: float | None = None
    stage: str | None = None
    answered: bool = False
    done: bool = False
    python_version: str | None = None
    problem: Problem | None = None
    problem_stage: str | None = None
    reason: str | None = None
    reused: bool = False
    kernel_tables: int = 0
    models: tuple[dict[str, Any], ...] = ()
    run_ids: tuple[str, ...] = ()
    fingerprints: tuple[str, ...] = ()
    counts: list[int] = field(default_factory=lambda: [0, 0, 0, 0])  # runs added/skipped, measurements a/s
    imported: bool = False
    links: list[str] = field(default_factory=list)
    bundle_path: Path | None = None
    profile_path: Path | None = None

    def fail(self, problem: Problem, stage: str | None, reason: str) -> None:
        if self.problem is None:  # the first problem is the cause; later ones follow from it
            self.problem, self.problem_stage, self.reason = problem, stage, reason


class _Tracker:
    def __init__(self, hosts: Sequence[FleetHost], db_path: Path, out_dir: Path, progress: ProgressFn) -> None:
        self.hosts = {h.name: _HostState(h) for h in hosts}
        self.db_path, self.out_dir, self.progress = db_path, out_dir, progress

    def handle(self, ev: Event) -> None:
        if ev.event == "end":
            for st in self.hosts.values():
                self._finish(st)
            return
        found = self.hosts.get(ev.host)
        if found is None:
            return
        st = found
        now = time.monotonic()
        if st.started is None:
            st.started = now
        if ev.event == "start":
            if ev.stage != st.stage:
                st.stage = ev.stage
                self.progress(st.host.name, ev.stage, _STAGE_WORDS.get(ev.stage, ev.stage))
            return
        if ev.event in ("ok", "skipped") and ev.stage == "python":
            st.answered = True
        if ev.event in ("failed", "unreachable"):
            problem, reason = classify_task(ev.event, ev.stage, ev.task, ev.result, answered_before=st.answered)
            st.fail(problem, ev.stage, reason)
            self._finish(st)
            return
        if ev.event != "ok":
            return
        r = ev.result
        if ev.task == "python: find the interpreter and home folder":
            st.python_version = python_version(str(r.get("stdout", "")))
        elif ev.task == "bench: read that run's summary":
            st.reused = True
            self._bench(st, 0, base64.b64decode(str(r.get("content", ""))).decode("utf-8", "replace"), "")
            self.progress(st.host.name, "bench", "already measured for this request (--force measures again)")
        elif ev.task == "calibrate: edgefit calibrate":
            rc = r.get("rc")
            cal_problem, why = classify_calibrate(rc if isinstance(rc, int) else None, str(r.get("stderr", "")))
            if cal_problem is not None and why is not None:
                st.fail(cal_problem, "calibrate", why)
        elif ev.task == "bench: edgefit bench":
            self._bench(st, r.get("rc"), str(r.get("stdout", "")), str(r.get("stderr", "")))
        elif ev.task == "export: edgefit results export" and r.get("rc") not in (0, None) and st.problem is None:
            st.fail(Problem.FETCH_FAILED, "export", f"edgefit results export failed: {r.get('stderr', '')!s}".strip())
        elif ev.task == "fetch: the results bundle":
            self._import(st, self.out_dir / "bundles" / f"{st.host.file_stem}.json")
        elif ev.task == "detect: fetch the profile":
            self._profile(st, self.out_dir / "profiles" / f"{st.host.file_stem}.toml")

    def _bench(self, st: _HostState, rc: Any, stdout: str, stderr: str) -> None:
        problem, reason = classify_bench(rc if isinstance(rc, int) else None, stdout, stderr)
        summary = parse_summary(stdout)
        if summary is not None:
            st.models = tuple(
                {k: m.get(k) for k in ("model_id", "precision", "status", "message", "measurements")}
                for m in summary.get("models", [])
            )
            if summary.get("run_id"):
                st.run_ids = (str(summary["run_id"]),)
        if problem is not None and reason is not None:
            st.fail(problem, "bench", reason + (" (earlier run)" if st.reused else ""))

    def _import(self, st: _HostState, bundle: Path) -> None:
        try:
            with Store(self.db_path) as store:
                s = store.import_bundle(bundle)
                links = [fp for fp in s.hosts if store.link_device(st.host.profile_id, fp)]
                st.kernel_tables = sum(len(store.kernel_tables(host_fingerprint=fp)) for fp in s.hosts)
        except EdgefitError as exc:
            st.fail(Problem.IMPORT_FAILED, "fetch", f"importing {bundle} failed: {exc}")
            return
        st.imported, st.bundle_path = True, bundle
        st.fingerprints = tuple(dict.fromkeys((*st.fingerprints, *s.hosts)))
        st.counts = [s.runs_added, s.runs_skipped, s.measurements_added, s.measurements_skipped]
        st.links += links
        self.progress(
            st.host.name, "fetch", f"imported: {s.runs_added} run(s), {s.measurements_added} measurement(s) added"
        )

    def _profile(self, st: _HostState, path: Path) -> None:
        try:
            DeviceProfile.from_toml(path)
        except EdgefitError as exc:
            st.fail(Problem.DETECT_FAILED, "detect", f"the profile {path} that edgefit detect wrote is invalid: {exc}")
            return
        st.profile_path = path

    def _finish(self, st: _HostState) -> None:
        if st.done:
            return
        st.done, st.finished = True, time.monotonic()
        status = self._status(st, interrupted=False)
        self.progress(st.host.name, "done", status + (f": {st.reason}" if st.reason else ""))

    @staticmethod
    def _status(st: _HostState, *, interrupted: bool) -> str:
        if not st.done and interrupted:
            return "interrupted"
        if st.problem is None:
            return "ok" if st.imported else "failed"
        if st.problem is Problem.UNREACHABLE:
            return "unreachable"
        return "partial" if st.imported and st.counts[0] + st.counts[1] > 0 else "failed"

    def results(self, *, interrupted: bool) -> tuple[HostResult, ...]:
        out = []
        for st in self.hosts.values():
            if not st.done and not interrupted:
                st.fail(Problem.FAILED, st.stage, "Ansible reported nothing more for this host")
                st.done = True
            if st.problem is None and not st.imported and st.done:
                st.fail(Problem.FETCH_FAILED, st.stage, "no results bundle came back from the host")
            wall = (st.finished or time.monotonic()) - st.started if st.started is not None else 0.0
            status = self._status(st, interrupted=interrupted)
            reason = st.reason if status != "interrupted" else "this fleet run was interrupted before the host finished"
            out.append(
                HostResult(
                    host=st.host.name,
                    address=st.host.address,
                    device_id=st.host.profile_id,
                    status=status,
                    problem=st.problem.value if st.problem is not None else None,
                    stage=st.problem_stage,
                    reason=reason,
                    reused=st.reused,
                    kernel_tables=st.kernel_tables,
                    python_version=st.python_version,
                    host_fingerprints=st.fingerprints,
                    run_ids=st.run_ids,
                    runs_added=st.counts[0],
                    runs_skipped=st.counts[1],
                    measurements_added=st.counts[2],
                    measurements_skipped=st.counts[3],
                    links_added=tuple(st.links),
                    bundle_path=str(st.bundle_path) if st.bundle_path else None,
                    profile_path=str(st.profile_path) if st.profile_path else None,
                    models=st.models,
                    wall_s=round(wall, 3),
                )
            )
        return tuple(out)


def bench_fleet(
    inventory: Path,
    request: BenchRequest,
    *,
    db_path: Path,
    out_dir: Path,
    forks: int = 5,
    connect_timeout_s: float = 10.0,
    wheels_dir: Path | None = None,
    force: bool = False,
    detect_probe_s: float = 6.0,
    bench_timeout_s: float = 6 * 3600.0,
    limit: Sequence[str] = (),
    progress: ProgressFn | None = None,
) -> FleetBenchResult:
    """Measure every host of ``inventory`` (all checks that can refuse run before any host is touched)."""
    t0 = time.monotonic()
    require_ansible()
    if wheels_dir is not None and not wheels_dir.is_dir():
        raise FleetError(f"--wheels {wheels_dir}: no such folder; expected a folder of .whl files")
    hosts = load_inventory(inventory, profile_dirs=(out_dir / "profiles",))
    if limit:
        unknown = sorted(set(limit) - {h.name for h in hosts})
        if unknown:
            raise FleetError(f"--limit: no host {', '.join(unknown)} in {inventory}")
        hosts = tuple(h for h in hosts if h.name in limit)
    out_dir.mkdir(parents=True, exist_ok=True)
    wheel = edgefit_wheel(out_dir, wheels_dir)
    wheelhouse = wheelhouse_tar(wheels_dir, out_dir) if wheels_dir is not None else None
    extra_vars = {
        "ef_wheel": str(wheel),
        "ef_wheelhouse": str(wheelhouse.resolve()) if wheelhouse is not None else "",
        "ef_models": [{"src": str(m.src), "dest": m.dest} for m in request.models],
        "ef_bench_args": list(request.args),
        "ef_key": request.key,
        "ef_calibrate_args": list(request.calibrate_args),
        "ef_cal_key": request.calibrate_key or "none",
        "ef_force": force,
        "ef_out": str(out_dir.resolve()),
        "ef_names": {h.name: h.file_stem for h in hosts},
        "ef_detect_probe_s": str(detect_probe_s),
        "ef_bench_timeout_s": int(bench_timeout_s),
    }
    tracker = _Tracker(hosts, db_path, out_dir, progress or (lambda host, stage, msg: None))
    for h in hosts:
        tracker.progress(h.name, "waiting", "waiting for a fork")
    run = run_playbook(
        "bench.yml",
        inventory,
        extra_vars,
        forks=forks,
        connect_timeout_s=connect_timeout_s,
        on_event=tracker.handle,
        limit=tuple(h.name for h in hosts) if limit else (),
    )
    if not run.interrupted and not any(st.started is not None for st in tracker.hosts.values()):
        raise FleetError(f"ansible-playbook failed before reaching any host (exit {run.returncode}): {run.stderr_tail}")
    results = tracker.results(interrupted=run.interrupted)
    save_state(out_dir, inventory, results, when=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))
    return FleetBenchResult(
        inventory=str(inventory),
        db_path=str(db_path),
        out_dir=str(out_dir),
        request=request,
        hosts=results,
        interrupted=run.interrupted,
        wall_s=round(time.monotonic() - t0, 3),
    )
