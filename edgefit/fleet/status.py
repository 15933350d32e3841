"""`edgefit fleet status`: for each host, is it reachable, which Python and edgefit it has, and its last run.

```
 run_playbook("status.yml") ── per host: python probe, `edgefit --version` + host fingerprint, the host's own
                               `edgefit results list --json` (all cheap: nothing installed, nothing measured)
 + this machine's database: the last imported run of that fingerprint (or of the fingerprints remembered in
   hosts.json while the host is down) and the devices linked to it
```
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgefit.errors import FleetError
from edgefit.fleet.ansible import Event, require_ansible, run_playbook
from edgefit.fleet.inventory import FleetHost, load_inventory
from edgefit.fleet.outcome import classify_task, python_version
from edgefit.fleet.state import load_state
from edgefit.store import Store


@dataclass(frozen=True, slots=True)
class RunRef:
    id: str
    started_at: str
    status: str
    measurements: int

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True, slots=True)
class HostStatus:
    host: str
    address: str
    device_id: str
    reachable: bool
    problem: str | None
    reason: str | None
    python_version: str | None
    edgefit_version: str | None  # None: edgefit is not installed there (yet)
    host_fingerprint: str | None  # live from the host, else the last one remembered
    runs_on_host: int | None  # runs in the host's own database
    last_run_on_host: RunRef | None
    last_run_imported: RunRef | None  # the newest run of this host in this machine's database
    linked_devices: tuple[str, ...]  # device ids linked to the host's fingerprint(s) here
    kernel_tables_imported: int  # the host's own kernel tables in this machine's database (basis M for its device)
    last_bench: dict[str, Any] | None  # the last `fleet bench` outcome (hosts.json)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["linked_devices"] = list(self.linked_devices)
        return d


@dataclass(frozen=True, slots=True)
class FleetStatus:
    inventory: str
    db_path: str
    hosts: tuple[HostStatus, ...]
    wall_s: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "inventory": self.inventory,
            "db": self.db_path,
            "wall_s": self.wall_s,
            "hosts": [h.to_dict() for h in self.hosts],
        }


@dataclass
class _Probe:
    reachable: bool = False
    answered: bool = False
    problem: str | None = None
    reason: str | None = None
    python_version: str | None = None
    edgefit_version: str | None = None
    fingerprint: str | None = None
    runs: list[dict[str, Any]] | None = None


def _on_event(probes: dict[str, _Probe], ev: Event) -> None:
    p = probes.get(ev.host)
    if p is None or ev.event in ("start", "skipped"):
        return
    r = ev.result
    if ev.event in ("failed", "unreachable"):
        problem, reason = classify_task(ev.event, ev.stage, ev.task, r, answered_before=p.answered)
        if p.problem is None:
            p.problem, p.reason = problem.value, reason
        return
    if ev.task == "python: find the interpreter and home folder":
        p.reachable = p.answered = True
        p.python_version = python_version(str(r.get("stdout", "")))
    elif ev.task == "status: edgefit version and host fingerprint":
        lines = [ln.strip() for ln in str(r.get("stdout", "")).splitlines() if ln.strip()]
        if len(lines) >= 2:
            p.edgefit_version, p.fingerprint = lines[-2], lines[-1]
    elif ev.task == "status: runs in the host's database":
        try:
            p.runs = list(json.loads(str(r.get("stdout", ""))).get("runs", []))
        except (ValueError, AttributeError):
            p.runs = None


def _run_ref(d: dict[str, Any]) -> RunRef:
    return RunRef(
        id=str(d.get("id", "")),
        started_at=str(d.get("started_at", "")),
        status=str(d.get("status", "")),
        measurements=int(d.get("measurement_count", 0) or 0),
    )


def fleet_status(
    inventory: Path, *, db_path: Path, out_dir: Path, forks: int = 5, connect_timeout_s: float = 10.0
) -> FleetStatus:
    t0 = time.monotonic()
    require_ansible()
    hosts = load_inventory(inventory, profile_dirs=(out_dir / "profiles",))
    probes = {h.name: _Probe() for h in hosts}
    run = run_playbook(
        "status.yml",
        inventory,
        {},
        forks=forks,
        connect_timeout_s=connect_timeout_s,
        on_event=lambda ev: _on_event(probes, ev),
    )
    if not run.interrupted and not any(p.reachable or p.problem for p in probes.values()):
        raise FleetError(f"ansible-playbook failed before reaching any host (exit {run.returncode}): {run.stderr_tail}")
    state = load_state(out_dir)
    return FleetStatus(
        inventory=str(inventory),
        db_path=str(db_path),
        hosts=tuple(_host_status(h, probes[h.name], state.get(h.name, {}), db_path) for h in hosts),
        wall_s=round(time.monotonic() - t0, 3),
    )


def _host_status(h: FleetHost, p: _Probe, remembered: dict[str, Any], db_path: Path) -> HostStatus:
    fps = list(dict.fromkeys([*([p.fingerprint] if p.fingerprint else []), *remembered.get("host_fingerprints", [])]))
    last_imported: RunRef | None = None
    linked: list[str] = []
    tables = 0
    if db_path.exists() and fps:  # read-only: status never creates a database
        with Store(db_path) as store:
            runs = [r for fp in fps for r in store.runs(host_fingerprint=fp)]
            if runs:
                r = max(runs, key=lambda r: r.started_at)
                last_imported = RunRef(r.id, r.started_at, r.status, r.measurement_count)
            linked = [dev for dev, linked_fps in store.device_links().items() if set(linked_fps) & set(fps)]
            tables = sum(len(store.kernel_tables(host_fingerprint=fp)) for fp in fps)
    runs_on_host = len(p.runs) if p.runs is not None else None
    last_on_host = _run_ref(max(p.runs, key=lambda d: str(d.get("started_at", "")))) if p.runs else None
    return HostStatus(
        host=h.name,
        address=h.address,
        device_id=h.profile_id,
        reachable=p.reachable and p.problem not in ("unreachable", "connection_lost"),
        problem=p.problem,
        reason=p.reason,
        python_version=p.python_version,
        edgefit_version=p.edgefit_version,
        host_fingerprint=fps[0] if fps else None,
        runs_on_host=runs_on_host,
        last_run_on_host=last_on_host,
        last_run_imported=last_imported,
        linked_devices=tuple(linked),
        kernel_tables_imported=tables,
        last_bench=remembered.get("last_bench"),
    )
