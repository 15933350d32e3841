"""What happened on one host, in words: pure functions of what Ansible and `edgefit bench` returned.

```
 bench task: rc, stdout (the bench's --json summary), stderr ──> classify_bench ──> (problem, reason)
 a failed task / an unreachable host                        ──> classify_task  ──> (problem, reason)
```

Problems (``Problem``): the host never answered (``unreachable``), answered and then went away (``connection_lost``),
has no usable Python (``no_python``, ``python_too_old``), could not install edgefit (``install_failed``), ran out
of memory (``out_of_memory``: a worker killed by the kernel, an allocation that failed, or the memory guard
refusing a model), was interrupted there (``interrupted``), or something else failed at a stage
(``calibrate_failed``, ``bench_failed``, ``detect_failed``, ``fetch_failed``, ``import_failed``).
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Mapping
from typing import Any


class Problem(str, enum.Enum):
    UNREACHABLE = "unreachable"
    CONNECTION_LOST = "connection_lost"
    NO_PYTHON = "no_python"
    PYTHON_TOO_OLD = "python_too_old"
    INSTALL_FAILED = "install_failed"
    OUT_OF_MEMORY = "out_of_memory"
    INTERRUPTED = "interrupted"
    KILLED = "killed"
    CALIBRATE_FAILED = "calibrate_failed"
    BENCH_FAILED = "bench_failed"
    DETECT_FAILED = "detect_failed"
    FETCH_FAILED = "fetch_failed"
    IMPORT_FAILED = "import_failed"
    FAILED = "failed"


# A worker killed by SIGKILL (the kernel's OOM killer), an allocation onnxruntime or numpy could not make, or
# edgefit's own memory guard ("needs ~X at peak ..., Y available").
_OOM = re.compile(
    r"out of memory|exited with code -9\b|bad_alloc|failed to allocate|MemoryError|cannot allocate memory"
    r"|needs ~.* at peak",
    re.IGNORECASE,
)


def last_line(*texts: str) -> str:
    """The last non-empty line of the first text that has one (Ansible's noise lines skipped)."""
    for text in texts:
        lines = [ln.strip() for ln in (text or "").splitlines() if ln.strip()]
        lines = [ln for ln in lines if not ln.startswith(("Shared connection to", "Connection to "))]
        if lines:
            return lines[-1]
    return ""


def python_version(probe_stdout: str) -> str | None:
    """ "3.11.2" from the playbook's Python probe (a JSON line with "version": [3, 11, 2])."""
    for line in reversed((probe_stdout or "").splitlines()):
        if line.strip().startswith("{"):
            try:
                return ".".join(str(x) for x in json.loads(line)["version"])
            except (ValueError, KeyError, TypeError):
                return None
    return None


def parse_summary(stdout: str) -> dict[str, Any] | None:
    """The `edgefit bench --json` summary in ``stdout``, or None."""
    text = (stdout or "").strip()
    if not text.startswith("{"):
        return None
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        return None
    return data if isinstance(data, dict) else None


def classify_bench(rc: int | None, stdout: str, stderr: str) -> tuple[Problem | None, str | None]:
    """The problem of one `edgefit bench` on a host (None when every model was measured or skipped by design)."""
    summary = parse_summary(stdout)
    if summary is not None:
        failed = [m for m in summary.get("models", []) if m.get("status") == "failed"]
        oom = [m for m in failed if _OOM.search(str(m.get("message", "")))]
        if oom:
            m = oom[0]
            return Problem.OUT_OF_MEMORY, f"out of memory measuring {m.get('model_id')}: {m.get('message')}"
        if failed:
            m = failed[0]
            more = f" (+{len(failed) - 1} more)" if len(failed) > 1 else ""
            return Problem.BENCH_FAILED, f"{m.get('model_id')} failed: {m.get('message')}{more}"
        if summary.get("interrupted"):
            return Problem.INTERRUPTED, "the bench was interrupted on the host; its finished measurements are kept"
        return None, None
    why = last_line(stderr, stdout)
    if rc in (-9, 137):
        return Problem.KILLED, "edgefit bench was killed (SIGKILL: the kernel's out-of-memory killer, or a user)"
    if rc in (-15, 143):
        return Problem.KILLED, "edgefit bench was terminated (SIGTERM: the host shutting down?)"
    if rc == 130 or rc == -2:
        return Problem.INTERRUPTED, "the bench was interrupted on the host; its finished measurements are kept"
    if _OOM.search(why):
        return Problem.OUT_OF_MEMORY, why.removeprefix("edgefit: error: ")
    return Problem.BENCH_FAILED, (why.removeprefix("edgefit: error: ") or f"edgefit bench exited with code {rc}")


def classify_calibrate(rc: int | None, stderr: str) -> tuple[Problem | None, str | None]:
    """The problem of one `edgefit calibrate` on a host (None when it stored a kernel table)."""
    if rc == 0:
        return None, None
    why = last_line(stderr).removeprefix("edgefit: error: ")
    if rc in (-9, 137):
        return Problem.KILLED, "edgefit calibrate was killed (SIGKILL: the kernel's out-of-memory killer, or a user)"
    if rc in (130, -2):
        return Problem.INTERRUPTED, "edgefit calibrate was interrupted on the host"
    if _OOM.search(why):
        return Problem.OUT_OF_MEMORY, f"out of memory in edgefit calibrate: {why}"
    return Problem.CALIBRATE_FAILED, f"edgefit calibrate failed: {why or f'exit code {rc}'}"


def classify_task(
    event: str, stage: str, task: str, result: Mapping[str, Any], *, answered_before: bool
) -> tuple[Problem, str]:
    """A failed task or an unreachable host at ``stage`` (the part of the task name before ':')."""
    msg = str(result.get("msg") or "")
    detail = last_line(str(result.get("stderr") or ""), str(result.get("module_stderr") or ""), msg,
                       str(result.get("stdout") or ""))  # fmt: skip
    if event == "unreachable":
        why = last_line(msg).removeprefix("Task failed: ") or "no answer"
        if answered_before:
            return Problem.CONNECTION_LOST, f"connection lost during {stage} (host down or rebooted?): {why}"
        return Problem.UNREACHABLE, why
    if stage == "python":
        if "3.10 or newer" in msg:
            return Problem.PYTHON_TOO_OLD, msg.strip()
        rc = result.get("rc")
        if rc == 127 or "not found" in detail:
            return Problem.NO_PYTHON, f"no Python there ({detail}); install Python >= 3.10 or set edgefit_python"
        return Problem.NO_PYTHON, f"could not run Python there: {detail or f'exit code {rc}'}"
    if stage == "install":
        return Problem.INSTALL_FAILED, f"install failed ({task.partition(':')[2].strip()}): {detail}"
    if stage == "bench":
        return Problem.BENCH_FAILED, f"{task}: {detail}"
    if stage == "calibrate":
        return Problem.CALIBRATE_FAILED, f"{task}: {detail}"
    if stage == "detect":
        return Problem.DETECT_FAILED, f"edgefit detect failed: {detail}"
    if stage in ("fetch", "export"):
        return Problem.FETCH_FAILED, f"{task}: {detail}"
    return Problem.FAILED, f"{task}: {detail}"
