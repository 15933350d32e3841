"""Where a model's measurements run: a worker subprocess (real), or in this process with a given Runner (tests).

    parent                                   worker (python -I -m edgefit.bench.worker)
    ──────                                   ──────
    job line ───────────────────────────────> load, then per phase:
    <─────────────────────── {"event":"result"}   (store it now)
    <─────────────────────── {"event":"probe"}    before each decode measurement
    quick_bandwidth() (worker waits) ───────> reply
    <─────────────────────── {"event":"done"}

Ctrl-C: the worker runs in its own session, so the terminal's SIGINT reaches only the parent; ``StopFlag``
forwards it as "stop after the current measurement". A second Ctrl-C kills the worker and raises
KeyboardInterrupt.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from edgefit.bench.loop import MeasurePlan, PhaseResult, PowerFactory, measure_model
from edgefit.bench.modelfile import inspect_model_file
from edgefit.bench.modelinfo import ModelFileInfo
from edgefit.bench.runner import Runner
from edgefit.bench.worker import job_to_json
from edgefit.errors import BenchError, EdgefitError, MemoryGuardError, ModelFileError

ProbeFn = Callable[[float], float | None]


@dataclass(frozen=True, slots=True)
class ModelJob:
    model_path: Path
    threads: int
    plan: MeasurePlan
    dims: dict[str, int] = field(default_factory=dict)
    scalars: dict[str, float] = field(default_factory=dict)
    kv_fill: str = "prefill"  # how the worker fills the KV cache for decode depths: "prefill" | "synthetic"
    info: ModelFileInfo | None = None  # inspected here when None, so the worker never imports onnx
    power_interval_s: float | None = None  # sample the power sensors at this interval (None: no sensors here)
    shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)  # --shape NAME=AxB: whole input shapes


class StopFlag:
    """Set by Ctrl-C (or a test); checked between measurements."""

    def __init__(self) -> None:
        self.requested = False
        self.proc: subprocess.Popen[bytes] | None = None

    def request(self) -> None:
        if self.requested and self.proc is not None and self.proc.poll() is None:
            self.proc.kill()  # second Ctrl-C: stop now
            raise KeyboardInterrupt
        self.requested = True
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(OSError):
                self.proc.send_signal(signal.SIGINT)


@contextlib.contextmanager
def ctrl_c_sets(flag: StopFlag) -> Iterator[None]:
    """While active, Ctrl-C sets ``flag`` instead of raising (main thread only; elsewhere a no-op)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: object) -> None:
        flag.request()

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


class Executor(Protocol):
    def run(self, job: ModelJob, on_result: Callable[[PhaseResult], None], stop: StopFlag) -> None: ...


def no_probe(duration_s: float) -> float | None:
    return None


class InProcessExecutor:
    """Runs the measurement loop here with a Runner from ``runner_factory`` (a ScriptedRunner in tests)."""

    def __init__(
        self, runner_factory: Callable[[ModelJob], Runner], probe: ProbeFn = no_probe, power: PowerFactory | None = None
    ) -> None:
        self.runner_factory = runner_factory
        self.probe = probe
        self.power = power  # tests: a sampler over fake sensors

    def run(self, job: ModelJob, on_result: Callable[[PhaseResult], None], stop: StopFlag) -> None:
        runner = self.runner_factory(job)
        measure_model(
            runner, job.plan, on_result, should_stop=lambda: stop.requested, probe=self.probe, power=self.power
        )


_ERROR_KINDS: dict[str, type[EdgefitError]] = {
    "ModelFileError": ModelFileError,
    "MemoryGuardError": MemoryGuardError,
}


def worker_command(module: str) -> list[str]:
    """argv that runs one of our modules in a fresh, isolated interpreter. ``-I``: neither the working folder nor
    the script's folder goes on ``sys.path``, no ``PYTHON*`` variables, no user site-packages, so a ``json.py``,
    ``numpy.py`` or ``edgefit/`` in the folder the user runs edgefit from is never imported. edgefit itself is
    still found: a regular install is in site-packages, an editable one is a ``.pth`` file there."""
    return [sys.executable, "-I", "-m", module]


def run_json_worker(
    module: str,
    job: dict[str, Any],
    on_event: Callable[[dict[str, Any]], None],
    *,
    cwd: str,
    timeout_s: float | None = None,
) -> tuple[int, str]:
    """Run ``module`` as an isolated worker (``worker_command``) in ``cwd``: send ``job`` as one JSON line, call
    ``on_event`` with each JSON line it prints, wait for it. Returns (exit code, its stderr). The worker is killed
    on any exception here, Ctrl-C included. Its stderr goes to a file in ``cwd``, so a chatty worker cannot fill
    a pipe and stall."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    err_path = Path(cwd) / "worker-stderr.txt"
    with err_path.open("w+") as err:
        proc = subprocess.Popen(
            worker_command(module), cwd=cwd, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err,
            text=True, start_new_session=True,
        )  # fmt: skip
        assert proc.stdin is not None and proc.stdout is not None  # set by PIPE above
        try:
            proc.stdin.write(json.dumps(job) + "\n")
            proc.stdin.close()
            for line in proc.stdout:
                try:
                    event = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if isinstance(event, dict):
                    on_event(event)
            rc = proc.wait(timeout=timeout_s)
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        err.seek(0)
        return rc, err.read()


def worker_failure(rc: int, stderr: str) -> str:
    """Why a worker ended without a result, in a few words: killed by a signal (out of memory, most often), else
    the last line it wrote to stderr, else its exit code."""
    if rc < 0:
        return f"killed by signal {-rc} (out of memory?)"
    return (stderr.strip().splitlines() or [f"exit code {rc}"])[-1]


class WorkerExecutor:
    """One ``python -I -m edgefit.bench.worker`` per model; ``probe`` runs here, between the worker's steps."""

    def __init__(self, probe: ProbeFn = no_probe, timeout_s: float | None = None) -> None:
        self.probe = probe
        self.timeout_s = timeout_s

    def _timeout(self, job: ModelJob) -> float:
        if self.timeout_s is not None:
            return self.timeout_s
        # Generous: every phase may spend its budget, plus warmups, cache pre-fill, load and start-up.
        return 120.0 + len(job.plan.phases) * (4 * job.plan.policy.budget_s + 30.0)

    def run(self, job: ModelJob, on_result: Callable[[PhaseResult], None], stop: StopFlag) -> None:
        info = job.info if job.info is not None else inspect_model_file(job.model_path, hash_file=False)
        model_path = job.model_path.resolve()  # the worker runs in its own empty folder
        with tempfile.TemporaryFile() as err, tempfile.TemporaryDirectory(prefix="edgefit-worker-") as cwd:
            proc = subprocess.Popen(
                worker_command("edgefit.bench.worker"),
                cwd=cwd,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=err,
                start_new_session=True,  # the terminal's Ctrl-C goes to the parent only; it forwards it
            )
            stop.proc = proc
            timed_out = threading.Event()

            def on_timeout() -> None:
                timed_out.set()
                proc.kill()

            timer = threading.Timer(self._timeout(job), on_timeout)
            timer.daemon = True
            timer.start()
            error: dict[str, Any] | None = None
            try:
                assert proc.stdin is not None and proc.stdout is not None  # set by PIPE above
                line = (
                    job_to_json(
                        model_path,
                        job.threads,
                        job.plan,
                        job.dims,
                        job.scalars,
                        job.kv_fill,
                        info,
                        job.power_interval_s,
                        job.shapes,
                    )
                    + "\n"
                )
                try:
                    proc.stdin.write(line.encode())
                    proc.stdin.flush()
                except BrokenPipeError:
                    pass  # the worker died before reading its job: its exit code and stderr say why, below
                if stop.requested:
                    proc.send_signal(signal.SIGINT)
                for raw in proc.stdout:
                    msg = json.loads(raw)
                    event = msg.get("event")
                    if event == "result":
                        on_result(PhaseResult.from_dict(msg["result"]))
                    elif event == "probe":
                        value = self.probe(float(msg["duration_s"]))
                        proc.stdin.write((json.dumps({"bandwidth_bytes_per_s": value}) + "\n").encode())
                        proc.stdin.flush()
                    elif event == "error":
                        error = msg
                    elif event == "done":
                        break
                rc = proc.wait()
            except BaseException:
                proc.kill()
                proc.wait()
                raise
            finally:
                timer.cancel()
                stop.proc = None
                with contextlib.suppress(OSError):
                    if proc.stdin is not None:
                        proc.stdin.close()
                if proc.stdout is not None:
                    proc.stdout.close()
            if error is not None:
                kind = _ERROR_KINDS.get(str(error.get("kind")), BenchError)
                raise kind(str(error.get("message")))
            if timed_out.is_set():
                limit = self._timeout(job)
                raise BenchError(f"{job.model_path.name}: worker killed after {limit:.0f} s without finishing")
            if rc != 0:
                err.seek(0)
                tail = err.read().decode(errors="replace").strip().splitlines()[-1:] or ["(no message)"]
                why = " (killed: out of memory?)" if rc == -9 else ""
                if "No module named 'edgefit" in tail[0]:  # -I: only an installed edgefit is importable
                    why = " (the isolated worker needs edgefit installed: pip install it, a PYTHONPATH is ignored)"
                raise BenchError(f"{job.model_path.name}: worker exited with code {rc}{why}: {tail[0]}")
