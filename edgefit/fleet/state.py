"""What the controller remembers of each host between fleet runs: ``<out>/hosts.json``.

Host fingerprints (so `fleet status` finds a host's runs in the database even while the host is down), the
device its measurements are linked to, and the outcome of the last `fleet bench` there. Written atomically;
hosts of other inventories sharing the folder are kept.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Protocol

STATE_FILE = "hosts.json"
STATE_SCHEMA_VERSION = 1


class _Result(Protocol):  # edgefit.fleet.bench.HostResult (read-only fields)
    @property
    def host(self) -> str: ...
    @property
    def device_id(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def problem(self) -> str | None: ...
    @property
    def reason(self) -> str | None: ...
    @property
    def host_fingerprints(self) -> tuple[str, ...]: ...
    @property
    def run_ids(self) -> tuple[str, ...]: ...


def load_state(out_dir: Path) -> dict[str, dict[str, Any]]:
    """host name -> its remembered facts ({} when there is no readable state file)."""
    try:
        data = json.loads((out_dir / STATE_FILE).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}
    hosts = data.get("hosts") if isinstance(data, dict) else None
    return {str(k): v for k, v in hosts.items() if isinstance(v, dict)} if isinstance(hosts, dict) else {}


def save_state(out_dir: Path, inventory: Path, results: Iterable[_Result], *, when: str) -> None:
    hosts = load_state(out_dir)
    for r in results:
        before = hosts.get(r.host, {})
        fps = list(dict.fromkeys([*before.get("host_fingerprints", []), *r.host_fingerprints]))
        hosts[r.host] = {
            "inventory": str(inventory),
            "device_id": r.device_id,
            "host_fingerprints": fps,
            "last_bench": {
                "finished_at": when,
                "status": r.status,
                "problem": r.problem,
                "reason": r.reason,
                "run_ids": list(r.run_ids),
            },
        }
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = out_dir / (STATE_FILE + ".tmp")
    tmp.write_text(json.dumps({"schema_version": STATE_SCHEMA_VERSION, "hosts": hosts}, indent=1) + "\n", "utf-8")
    tmp.replace(out_dir / STATE_FILE)
