"""Measure this host's kernel table in a worker subprocess and store it (``edgefit calibrate``).

plan (grid sized to free RAM) ──job──> worker: build chains, warm up, interleaved rounds ──> raw samples
──> KernelTable (host facts + samples) ──> Store: a run of kind "kernels" + its table (bundles carry both)
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from edgefit import memory, probes
from edgefit.bench.executor import run_json_worker, worker_failure
from edgefit.errors import BenchError
from edgefit.kernels.plan import PRECISIONS, default_plan
from edgefit.kernels.table import CallSamples, HostFacts, KernelSamples, KernelTable
from edgefit.paths import cache_dir
from edgefit.profiles import DeviceProfile
from edgefit.units import MIB

RUN_KIND = "kernels"
DEFAULT_BUDGET_S = 20.0  # seconds of interleaved rounds after the build (~10-15 s more on 2 cores)
ROUNDS_MIN = 12
ROUNDS_MAX = 200
# untimed fp32 weights the worker builds before the chains (kernels.worker.lead_sessions says why); with a 256 MiB
# lead, fp32 decoders timed among the chains were still priced 0.4-11.5 % slow (three runs), with 768 MiB 0.2-3.7 %
LEAD_BYTES = 512 * MIB


def default_lead_bytes(available_bytes: int) -> int:
    """The lead's size: LEAD_BYTES, or an eighth of free RAM when that is less (a Pi with 2 GB free: 256 MiB)."""
    return int(min(LEAD_BYTES, available_bytes // 8))


@dataclass(frozen=True, slots=True)
class ModelCall:
    """A whole decoder file to time among the chains: ``tokens`` new tokens on a synthetic cache of ``past``."""

    model_id: str
    precision: str
    tokens: int
    past: int
    path: Path

    @property
    def id(self) -> str:
        return CallSamples(self.model_id, self.precision, self.tokens, self.past, ()).id


def host_facts(host: DeviceProfile, fingerprint: str) -> HostFacts:
    import onnxruntime

    clock = max((c.max_clock_hz.value for c in host.clusters), default=0.0)
    llc = host.last_level_cache.value if host.last_level_cache else (probes.last_level_cache_bytes() or 0)
    hot, cold = probes.mapped_granules(cache_dir())  # where built models' data lives
    return HostFacts(
        host_fingerprint=fingerprint,
        host_id=host.id,
        cpu_model=host.cpu_model,
        isa=host.isa,
        cores=host.cpu_cores,
        clock_hz=float(clock),
        llc_bytes=int(llc),
        onnxruntime_version=onnxruntime.__version__,
        int8_dot_path=str(getattr(host, "int8_dot_path", "") or ""),
        mapped_granule_bytes=hot,
        mapped_cold_granule_bytes=cold,
    )


def measure_table(
    host: DeviceProfile,
    fingerprint: str,
    *,
    threads: int | None = None,
    precisions: tuple[str, ...] = PRECISIONS,
    budget_s: float = DEFAULT_BUDGET_S,
    rounds_min: int = ROUNDS_MIN,
    progress: Callable[[str], None] | None = None,
    calls: Sequence[ModelCall] = (),
    lead_bytes: int | None = None,
) -> KernelTable:
    """Run the worker on the default plan (and ``calls`` among its chains); BenchError (one line) when it fails.
    ``lead_bytes``: untimed weights built before the chains (None: ``default_lead_bytes``)."""
    avail = memory.available_memory_bytes()
    plan = default_plan(avail, precisions)
    n_threads = threads or host.cpu_cores
    llc = host.last_level_cache.value if host.last_level_cache else (probes.last_level_cache_bytes() or 32 * MIB)
    bw_bytes = int(min(max(2 * llc, 64 * MIB), 1024 * MIB, avail // 8))
    job = {
        "kernels": [k.to_dict() for k in plan.kernels],
        "threads": n_threads,
        "rounds_min": rounds_min,
        "rounds_max": max(ROUNDS_MAX, rounds_min),
        "budget_s": budget_s,
        "seed": 0,
        "bandwidth_bytes": bw_bytes,
        "lead_bytes": default_lead_bytes(avail) if lead_bytes is None else lead_bytes,
        "calls": [{"id": c.id, "path": str(c.path), "tokens": c.tokens, "past": c.past} for c in calls],
    }
    t0 = time.perf_counter()
    result = _run_worker(job, progress)
    table = KernelTable(
        host=host_facts(host, fingerprint),
        threads=n_threads,
        rounds=int(result["rounds"]),
        kernels=tuple(
            KernelSamples(k, tuple(result["cold_s"][k.id]), tuple(result["warm_s"][k.id])) for k in plan.kernels
        ),
        triad_bytes_per_s=tuple(float(x) for x in result["bandwidth_bytes_per_s"]),
        runtime_rss_bytes=int(result["runtime_rss_bytes"]),
        measured_at=datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        seconds=time.perf_counter() - t0,
        dropped=plan.dropped,
        notes=(f"{len(plan.dropped)} chains left out to stay within a quarter of free RAM",) if plan.dropped else (),
        others_cores=float(result.get("others_cores", 0.0)),
        lead_bytes=int(result.get("lead_bytes", 0)),
        calls=tuple(
            CallSamples(
                c.model_id,
                c.precision,
                c.tokens,
                c.past,
                tuple(result["call_s"][c.id]),
                tuple(result.get("call_warm_s", {}).get(c.id, ())),
            )
            for c in calls
            if result.get("call_s", {}).get(c.id)
        ),
    )
    return table


def _run_worker(job: dict[str, Any], progress: Callable[[str], None] | None) -> dict[str, Any]:
    got: dict[str, Any] = {}

    def on_event(event: dict[str, Any]) -> None:
        kind = event.get("event")
        if kind == "lead" and progress:
            progress(f"kernel table: built {event['done']}/{event['total']} lead sessions (untimed)")
        elif kind == "built" and progress:
            progress(f"kernel table: built {event['done']}/{event['total']} chains")
        elif kind == "round" and progress:
            progress(f"kernel table: round {event['round']} ({event['elapsed_s']:.0f} s)")
        elif kind in ("result", "error"):
            got[kind] = event

    with tempfile.TemporaryDirectory(prefix="edgefit-kernels-") as cwd:
        rc, stderr = run_json_worker("edgefit.kernels.worker", job, on_event, cwd=cwd)
    if "result" not in got:
        why = str(got["error"].get("message", "unknown error")) if "error" in got else ""
        why = worker_failure(rc, stderr) if rc < 0 or not why else why
        raise BenchError(f"kernel calibration failed: {why}; re-run `edgefit calibrate` (see --help for options)")
    return got["result"]


def calibrate_and_store(
    db_path: Path,
    host: DeviceProfile,
    fingerprint: str,
    *,
    threads: int | None = None,
    precisions: tuple[str, ...] = PRECISIONS,
    budget_s: float = DEFAULT_BUDGET_S,
    progress: Callable[[str], None] | None = None,
    calls: Sequence[ModelCall] = (),
) -> tuple[str, KernelTable]:
    """Measure and store; returns (run id, table). The run is marked failed/interrupted if measuring stops."""
    from edgefit.bench.env import capture_environment
    from edgefit.store import Store

    env = capture_environment()
    with Store(db_path) as store:
        run_id = store.start_run(env, RUN_KIND)
    status = "failed"
    try:
        table = measure_table(host, fingerprint, threads=threads, precisions=precisions, budget_s=budget_s,
                              progress=progress, calls=calls)  # fmt: skip
        with Store(db_path) as store:
            store.save_kernel_table(run_id, fingerprint, table.to_dict())
        status = "finished"
    except KeyboardInterrupt:
        status = "interrupted"
        raise
    finally:
        with Store(db_path) as store:
            store.finish_run(run_id, status)
    return run_id, table
