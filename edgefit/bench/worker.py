"""One model per process: ``python -I -m edgefit.bench.worker`` reads a job (one JSON object on stdin), measures
with a real ``OrtRunner``, and writes one JSON line per finished measurement to stdout, so peak RSS belongs to
this model alone and the parent stores each result the moment it arrives.

    stdin : {"model_path": ..., "threads": N, "phases": [[phase, prompt, context], ...], "policy": {...},
             "dims": {...}, "scalars": {...}, "kv_fill": ..., "info": ModelFileInfo}   (first line: the job)
            {"bandwidth_bytes_per_s": x}                       (reply to each probe request)
    stdout: {"event": "result", "result": PhaseResult}   (one per measurement, load first)
            {"event": "probe", "duration_s": d}          (before each decode measurement: parent probes, replies)
            {"event": "error", "message": "..."}          (an EdgefitError: one line for the user)
            {"event": "done"}

SIGINT asks the worker to stop after the current measurement (the parent forwards the user's Ctrl-C).
"""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path
from typing import Any, TextIO

from edgefit.bench.feeds import FeedSpec
from edgefit.bench.loop import MeasurePlan, MeasurePolicy, PhasePlan, PhaseResult, PowerFactory, measure_model
from edgefit.bench.measurement import Phase
from edgefit.bench.modelinfo import ModelFileInfo, info_from_dict, info_to_dict
from edgefit.bench.runner import OrtRunner
from edgefit.errors import EdgefitError


def job_to_json(
    model_path: Path,
    threads: int,
    plan: MeasurePlan,
    dims: dict[str, int] | None = None,
    scalars: dict[str, float] | None = None,
    kv_fill: str = "prefill",
    info: ModelFileInfo | None = None,
    power_interval_s: float | None = None,
    shapes: dict[str, tuple[int, ...]] | None = None,
) -> str:
    p = plan.policy
    return json.dumps(
        {
            "model_path": str(model_path),
            "threads": threads,
            "phases": [[ph.phase.value, ph.prompt_tokens, ph.context_tokens] for ph in plan.phases],
            "policy": {
                "budget_s": p.budget_s,
                "min_samples": p.min_samples,
                "max_samples": p.max_samples,
                "warmups": p.warmups,
                "target_rel_ci": p.target_rel_ci,
                "probe_s": p.probe_s,
            },
            "dims": dims or {},
            "scalars": scalars or {},
            "kv_fill": kv_fill,
            "info": None if info is None else info_to_dict(info),
            "power_interval_s": power_interval_s,
            "shapes": {k: list(v) for k, v in (shapes or {}).items()},
        }
    )


def _plan_from(job: dict[str, Any]) -> MeasurePlan:
    phases = tuple(PhasePlan(Phase(ph), int(pt), int(ct)) for ph, pt, ct in job["phases"])
    return MeasurePlan(phases=phases, policy=MeasurePolicy(**job["policy"]))


def _power_factory(job: dict[str, Any]) -> PowerFactory | None:
    """Sensors found here (the same machine as the parent), sampled during each measurement; None: power off."""
    interval = job.get("power_interval_s")
    if not interval:
        return None
    from edgefit.power.sampler import PowerSampler
    from edgefit.power.sensors import discover

    sensors = discover().sensors
    if not sensors:
        return None
    return lambda: PowerSampler(sensors, float(interval))


def _private_stdout() -> TextIO:
    """Keep the JSON channel clean: anything a library prints to fd 1 goes to stderr instead."""
    fd = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return os.fdopen(fd, "w", buffering=1)


def main() -> int:
    out = _private_stdout()
    stop = {"requested": False}

    def _on_sigint(signum: int, frame: object) -> None:
        stop["requested"] = True

    signal.signal(signal.SIGINT, _on_sigint)

    def send(obj: dict[str, Any]) -> None:
        out.write(json.dumps(obj) + "\n")
        out.flush()

    try:
        job = json.loads(sys.stdin.readline())
        path = Path(job["model_path"])
        if job.get("info") is not None:
            info = info_from_dict(job["info"])
        else:  # a job written by hand: inspect here (imports onnx, which then counts in this RSS)
            from edgefit.bench.modelfile import inspect_model_file

            info = inspect_model_file(path, hash_file=False)
        spec = FeedSpec(
            dims={k: int(v) for k, v in job["dims"].items()},
            scalars=dict(job["scalars"]),
            shapes={k: tuple(int(d) for d in v) for k, v in (job.get("shapes") or {}).items()},
        )
        plan = _plan_from(job)
        decode_like = (Phase.DECODE, Phase.SUSTAINED)
        deepest = max((ph.context_tokens for ph in plan.phases if ph.phase in decode_like), default=0)
        runner = OrtRunner(path, info, int(job["threads"]), spec, kv_fill_tokens=deepest, kv_fill=job["kv_fill"])

        def emit(r: PhaseResult) -> None:
            send({"event": "result", "result": r.to_dict()})

        def probe(duration_s: float) -> float | None:
            # The parent runs the bandwidth probe (its 1 GiB+ arrays must not count in this model's peak RSS)
            # while this process waits: interleaved, never concurrent.
            if duration_s <= 0:
                return None
            send({"event": "probe", "duration_s": duration_s})
            reply = json.loads(sys.stdin.readline() or "{}")
            value = reply.get("bandwidth_bytes_per_s")
            return None if value is None else float(value)

        measure_model(runner, plan, emit, should_stop=lambda: stop["requested"], probe=probe, power=_power_factory(job))
    except EdgefitError as exc:
        send({"event": "error", "message": str(exc), "kind": type(exc).__name__})
        return 2
    except MemoryError:
        send({"event": "error", "message": "out of memory in the worker", "kind": "MemoryError"})
        return 2
    except Exception as exc:  # anything else still reaches the user as one line, never a traceback
        first = str(exc).splitlines()[0] if str(exc) else ""
        send({"event": "error", "message": f"worker failed: {type(exc).__name__}: {first}", "kind": "BenchError"})
        return 2
    send({"event": "done", "stopped": stop["requested"]})
    return 0


if __name__ == "__main__":
    sys.exit(main())
