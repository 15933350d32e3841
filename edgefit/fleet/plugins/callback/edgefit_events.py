"""Ansible stdout callback for `edgefit fleet`: one JSON line per host event, read by edgefit.fleet.ansible.

Each line is ``EDGEFIT_EVENT {"event": ..., "host": ..., "task": ..., ...}``: ``start`` when a host starts a task,
then ``ok``, ``failed``, ``skipped`` or ``unreachable`` with the fields of the task result edgefit reads (rc,
stdout, stderr, msg, stat, content), and ``end`` after the play. Loaded by ansible-playbook from this folder
(ANSIBLE_CALLBACK_PLUGINS); it runs inside Ansible's process, so it imports only Ansible and the standard library.
Works with ansible-core 2.15 .. 2.19 (2.19 renamed ``result._result`` to ``result.result``).
"""

from __future__ import annotations

import json
import sys
from typing import Any

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
    name: edgefit_events
    type: stdout
    short_description: JSON lines of per-host task events for edgefit fleet
    description: One line per host event, prefixed with EDGEFIT_EVENT, for edgefit's fleet controller.
"""

PREFIX = "EDGEFIT_EVENT "
_KEEP = ("rc", "stdout", "stderr", "msg", "stat", "content", "changed", "skip_reason", "module_stderr")
_MAX_CHARS = 2_000_000  # a bench summary is well below this; a runaway output is cut


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "stdout"
    CALLBACK_NAME = "edgefit_events"

    def _emit(self, event: str, **fields: Any) -> None:
        sys.stdout.write(PREFIX + json.dumps({"event": event, **fields}, default=str) + "\n")
        sys.stdout.flush()

    @staticmethod
    def _parts(result: Any) -> tuple[str, str, dict[str, Any]]:
        host = getattr(result, "host", None) or result._host
        task = getattr(result, "task", None) or result._task
        data = getattr(result, "result", None)
        if not isinstance(data, dict):
            data = result._result
        kept = {}
        items = data.get("results")
        if isinstance(items, list):  # a loop: the first failed item says why
            bad = [i for i in items if isinstance(i, dict) and i.get("failed")]
            if bad:
                data = {**data, **{k: bad[0][k] for k in _KEEP if k in bad[0]}}
        for k in _KEEP:
            if k in data:
                v = data[k]
                kept[k] = v[-_MAX_CHARS:] if isinstance(v, str) else v
        return host.get_name(), task.get_name(), kept

    def _result(self, event: str, result: Any) -> None:
        host, task, data = self._parts(result)
        self._emit(event, host=host, task=task, result=data)

    def v2_runner_on_start(self, host: Any, task: Any) -> None:
        self._emit("start", host=host.get_name(), task=task.get_name())

    def v2_runner_on_ok(self, result: Any) -> None:
        self._result("ok", result)

    def v2_runner_on_failed(self, result: Any, ignore_errors: bool = False) -> None:
        self._result("failed", result)

    def v2_runner_on_skipped(self, result: Any) -> None:
        self._result("skipped", result)

    def v2_runner_on_unreachable(self, result: Any) -> None:
        self._result("unreachable", result)

    def v2_playbook_on_no_hosts_matched(self) -> None:
        self._emit("no_hosts")

    def v2_playbook_on_stats(self, stats: Any) -> None:
        self._emit("end")
