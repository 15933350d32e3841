"""Drive ansible-core from edgefit: find it, run ``ansible-inventory`` and ``ansible-playbook`` with the playbooks
and the event callback shipped in this package, and stream per-host events back.

```
 run_playbook("bench.yml", inventory, extra_vars, forks) ──> python -I -u -m ansible.cli.playbook ... (subprocess)
        ^                                                     │ stdout: "EDGEFIT_EVENT {json}" lines from
        └── on_event(Event) per line, as they come ◄──────────┘ plugins/callback/edgefit_events.py
```

ansible-core is an optional dependency (``pip install 'edgefit[fleet]'``); nothing here imports it: it runs as
a subprocess of this interpreter, so it is the one installed beside edgefit.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import importlib.util
import json
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgefit.errors import FleetError

PACKAGE_DIR = Path(__file__).resolve().parent
PLAYBOOKS_DIR = PACKAGE_DIR / "playbooks"
CALLBACK_DIR = PACKAGE_DIR / "plugins" / "callback"
EVENT_PREFIX = "EDGEFIT_EVENT "
MIN_ANSIBLE_CORE = (2, 15)
# ssh options added to Ansible's defaults: a host that dies without closing the connection (power cut) is seen
# within ~1 minute instead of at TCP's keepalive (hours).
SSH_ARGS = "-C -o ControlMaster=auto -o ControlPersist=60s -o ServerAliveInterval=15 -o ServerAliveCountMax=4"


def require_ansible() -> str:
    """ansible-core's version, or FleetError (one line, with the install command) when it is missing or old."""
    if importlib.util.find_spec("ansible") is None:
        raise FleetError(
            "edgefit fleet needs ansible-core, which is not installed here; "
            "install it with `pip install 'edgefit[fleet]'` (or `pip install 'ansible-core>=2.15'`)"
        )
    try:
        version = importlib.metadata.version("ansible-core")
    except importlib.metadata.PackageNotFoundError:
        version = "0"
    parts = tuple(int(p) if p.isdigit() else 0 for p in version.split(".")[:2])
    if parts < MIN_ANSIBLE_CORE:
        raise FleetError(
            f"edgefit fleet needs ansible-core >= 2.15, found {version}; upgrade with `pip install 'edgefit[fleet]'`"
        )
    return version


def ansible_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment for ansible-* subprocesses: our callback, pipelining, no retry files, a UTF-8 locale."""
    env = dict(os.environ)
    env.update(
        {
            "ANSIBLE_CALLBACK_PLUGINS": str(CALLBACK_DIR),
            "ANSIBLE_STDOUT_CALLBACK": "edgefit_events",
            "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1",
            "ANSIBLE_PIPELINING": "1",  # one ssh round trip per task instead of three
            "ANSIBLE_RETRY_FILES_ENABLED": "0",
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_FORCE_COLOR": "0",
            "ANSIBLE_INVENTORY_UNPARSED_FAILED": "1",  # a file Ansible cannot read is an error, not an empty fleet
            "ANSIBLE_DEPRECATION_WARNINGS": "0",
            "ANSIBLE_SYSTEM_WARNINGS": "0",
            "ANSIBLE_PYTHON_INTERPRETER": env.get("ANSIBLE_PYTHON_INTERPRETER", "auto_silent"),
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.setdefault("ANSIBLE_SSH_ARGS", SSH_ARGS)
    # ansible-core refuses to start unless the locale's encoding is UTF-8 (CI and cron often have none)
    if not any("UTF-8" in env.get(k, "").upper() or "UTF8" in env.get(k, "").upper() for k in ("LC_ALL", "LANG")):
        env["LC_ALL"] = "C.UTF-8"
    if extra:
        env.update(extra)
    return env


def _tail(text: str, n: int = 1) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return " ".join(lines[-n:])


def inventory_json(inventory: Path) -> dict[str, Any]:
    """``ansible-inventory --list`` of ``inventory`` (INI, YAML or any source Ansible reads)."""
    require_ansible()
    try:
        proc = subprocess.run(
            [sys.executable, "-I", "-m", "ansible.cli.inventory", "-i", str(inventory), "--list"],
            capture_output=True,
            text=True,
            env=ansible_env(),
            timeout=120,
        )
    except subprocess.TimeoutExpired:
        raise FleetError(f"{inventory}: ansible-inventory did not answer within 120 s") from None
    if proc.returncode != 0:
        why = _tail(proc.stderr.replace("[ERROR]:", "").replace("ERROR!", "")) or f"exit code {proc.returncode}"
        raise FleetError(f"{inventory}: Ansible cannot read this inventory: {why}")
    try:
        data = json.loads(proc.stdout)
    except json.JSONDecodeError:
        raise FleetError(f"{inventory}: ansible-inventory gave no JSON: {_tail(proc.stdout)}") from None
    if not isinstance(data, dict):
        raise FleetError(f"{inventory}: ansible-inventory gave {type(data).__name__}, expected a JSON object")
    return data


@dataclass(frozen=True, slots=True)
class Event:
    """One host event from the callback: ``start`` (a task begins), ``ok``, ``failed``, ``skipped``,
    ``unreachable`` (with the task's result fields), or ``end`` / ``no_hosts`` (host and task empty)."""

    event: str
    host: str = ""
    task: str = ""
    result: Mapping[str, Any] = field(default_factory=dict)

    @property
    def stage(self) -> str:
        """The playbook's task names are "<stage>: <what>"."""
        return self.task.partition(":")[0].strip() if ":" in self.task else self.task

    @classmethod
    def from_line(cls, line: str) -> Event | None:
        if not line.startswith(EVENT_PREFIX):
            return None
        try:
            d = json.loads(line[len(EVENT_PREFIX) :])
        except json.JSONDecodeError:
            return None
        result = d.get("result")
        return cls(
            event=str(d.get("event", "")),
            host=str(d.get("host", "")),
            task=str(d.get("task", "")),
            result=result if isinstance(result, dict) else {},
        )


@dataclass(frozen=True, slots=True)
class PlaybookRun:
    returncode: int
    interrupted: bool
    stderr_tail: str  # the last lines Ansible wrote to stderr (its own errors: a bad playbook, a bad inventory)
    other_output: str  # stdout lines that were not events (warnings from plugins)


def run_playbook(
    playbook: str,
    inventory: Path,
    extra_vars: Mapping[str, Any],
    *,
    forks: int,
    connect_timeout_s: float,
    on_event: Callable[[Event], None],
    limit: Sequence[str] = (),
) -> PlaybookRun:
    """Run one of the shipped playbooks; ``on_event`` sees each host event as it happens. Ctrl-C (or
    KeyboardInterrupt raised by ``on_event``) stops Ansible and returns with ``interrupted``: what the
    callback already handled (bundles imported) is kept."""
    require_ansible()
    with tempfile.TemporaryDirectory(prefix="edgefit-fleet-") as tmp:
        vars_file = Path(tmp) / "vars.json"
        vars_file.write_text(json.dumps(dict(extra_vars)), encoding="utf-8")
        # -I: nothing in the user's folder shadows Ansible's imports; -u: -I ignores PYTHONUNBUFFERED, events stream
        argv = [
            sys.executable, "-I", "-u", "-m", "ansible.cli.playbook", str(PLAYBOOKS_DIR / playbook),
            "-i", str(inventory),
            "--forks", str(forks), "--timeout", str(max(1, round(connect_timeout_s))), "-e", f"@{vars_file}",
        ]  # fmt: skip
        if limit:
            argv += ["--limit", ",".join(limit)]
        env = ansible_env({"ANSIBLE_LOCAL_TEMP": str(Path(tmp) / "ansible-local")})
        err_path = Path(tmp) / "stderr.txt"
        other: list[str] = []
        interrupted = False
        with err_path.open("w+", encoding="utf-8") as err:
            proc = subprocess.Popen(
                argv, stdout=subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL, env=env, text=True, bufsize=1
            )
            try:
                assert proc.stdout is not None  # set by PIPE above
                for line in proc.stdout:
                    event = Event.from_line(line)
                    if event is None:
                        if line.strip():
                            other.append(line.rstrip())
                        continue
                    on_event(event)
                rc = proc.wait()
            except KeyboardInterrupt:
                interrupted = True
                rc = _stop(proc)
            finally:
                if proc.poll() is None:
                    _stop(proc)
            err.seek(0)
            stderr_tail = _tail(err.read(), 3)
        return PlaybookRun(rc, interrupted, stderr_tail, "\n".join(other[-20:]))


def _stop(proc: subprocess.Popen[str]) -> int:
    """SIGINT (Ansible then stops its workers), then SIGTERM, then SIGKILL: bounded, ~25 s at most."""
    for sig, wait_s in ((signal.SIGINT, 15.0), (signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(sig)
        try:
            return proc.wait(timeout=wait_s)
        except subprocess.TimeoutExpired:
            continue
        except KeyboardInterrupt:  # a second Ctrl-C: go on to the next, harder signal
            continue
    return proc.wait()
