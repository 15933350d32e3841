"""The kernel-calibration worker: builds every chain of a plan in one process, then times them interleaved.

    stdin : one JSON object {"kernels": [KernelSpec dicts], "threads", "rounds_min", "rounds_max", "budget_s",
            "seed", "bandwidth_bytes", optional "lead_bytes", optional "calls": [{"id", "path", "tokens", "past"}]}
    stdout: JSON lines: {"event": "lead" | "built", "done", "total"} while building, {"event": "round", "round",
            "elapsed_s"} per round, then {"event": "result", ...} with the raw samples; {"event": "error",
            "message"} on failure

Timing (why this way, ONNXRUNTIME-NOTES.md): on a shared machine interference comes in bursts shorter than a
second and drift over minutes, so every kernel is sampled once or twice per *round* and the rounds are repeated;
the order within a round is shuffled, so slow drift and fast bursts hit all kernels alike. Per round each chain
runs twice back to back: the first run (``cold``) follows the other chains, whose weights together exceed the
last-level cache, so it reads its weights from DRAM as a decoder larger than the cache does every token; the
second (``warm``) finds what fits still cached. A short STREAM triad pass runs once per round as the bandwidth
reference. ``calls`` (``edgefit validate``): whole decoder files, one call each (``tokens`` new tokens on a
synthetic cache of ``past``) timed among the chains, twice back to back per round like the chains, so a model and
the kernels that price it meet the same drift and bursts (a model measured minutes after its table differed by the
drift between them). Before the chains, untimed fp32 sessions (``lead_bytes``, 512 MiB by default) are built and
kept: on this project's VM the first few hundred MiB of weights a process built often streamed slower than the
rest (``lead_sessions``).
Raw samples go back to the parent; the estimators live in ``edgefit.kernels.table``.

Run as ``python -I -m edgefit.kernels.worker`` (isolated: nothing is imported from the caller's folder).
"""

from __future__ import annotations

import json
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any, TextIO

import numpy as np


def _emit(out: TextIO, event: dict[str, Any]) -> None:
    out.write(json.dumps(event) + "\n")
    out.flush()


def _rss_bytes() -> int:
    import psutil

    return int(psutil.Process().memory_info().rss)


def run(job: dict[str, Any], out: TextIO) -> None:
    import onnxruntime as ort

    from edgefit import probes
    from edgefit.kernels.graphs import KernelSpec, build_kernel

    threads = int(job["threads"])
    ort.set_default_logger_severity(3)
    specs = [KernelSpec.from_dict(d) for d in job["kernels"]]
    # the runtime's own footprint, before any kernel is built: the "runtime" term of peak memory
    _empty_model, _ = build_kernel(KernelSpec("empty", 1))
    # ONE intra-op thread pool shared by every chain's session, as a decoder's nodes share its session's pool.
    # With a pool per session, each of the ~70 sessions' threads kept spinning after its run and took the cores
    # from the next chain: rounds ran ~5x slower and their times were bimodal (measured: 12-13 rounds in the
    # budget with per-session pools, 52-67 with one pool; split-half noise 6-9 % vs 4 % when quiet)
    so = shared_pool_options(threads)
    _warm = ort.InferenceSession(_empty_model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    _warm.run(None, {"x": np.ones(1, dtype=np.float32)})
    base_rss = _rss_bytes()
    lead = lead_sessions(int(job.get("lead_bytes") or 0), so, lambda e: _emit(out, e))
    lead_bytes = sum(n for _, n in lead)
    sessions: list[tuple[str, Any, dict[str, np.ndarray]]] = []
    t_build = time.perf_counter()
    for i, spec in enumerate(specs):
        sess, feeds = chain_session(spec, int(job.get("seed", 0)) + i, so)
        sessions.append((spec.id, sess, feeds))
        _emit(out, {"event": "built", "done": i + 1, "total": len(specs)})
    build_s = time.perf_counter() - t_build
    calls = _call_sessions(job.get("calls") or [], threads)
    for _sid, sess, feeds in [*sessions, *calls]:  # warm-up: first runs allocate buffers and fault pages in
        sess.run(None, feeds)
        sess.run(None, feeds)
    bw_bytes = int(job.get("bandwidth_bytes") or 0)
    cold: dict[str, list[float]] = {sid: [] for sid, _, _ in sessions}
    warm: dict[str, list[float]] = {sid: [] for sid, _, _ in sessions}
    call_s: dict[str, list[float]] = {cid: [] for cid, _, _ in calls}
    call_warm_s: dict[str, list[float]] = {cid: [] for cid, _, _ in calls}
    entries = [*sessions, *calls]
    bandwidth: list[float] = []
    rng = np.random.default_rng(int(job.get("seed", 0)))
    rounds_min, rounds_max = int(job["rounds_min"]), int(job["rounds_max"])
    budget_s = float(job["budget_s"])
    import psutil

    me = psutil.Process()
    cpu0, mine0 = psutil.cpu_times(), me.cpu_times()
    t0 = time.perf_counter()
    rounds = 0
    perf = time.perf_counter
    while rounds < rounds_max and (rounds < rounds_min or perf() - t0 < budget_s):
        for idx in rng.permutation(len(entries)):
            sid, sess, feeds = entries[idx]
            if idx >= len(sessions):  # a whole model's call: twice per round (cold, then warm as bench repeats it)
                a = perf()
                sess.run(None, feeds)
                b = perf()
                sess.run(None, feeds)
                call_s[sid].append(b - a)
                call_warm_s[sid].append(perf() - b)
                continue
            a = perf()
            sess.run(None, feeds)
            b = perf()
            sess.run(None, feeds)
            c = perf()
            cold[sid].append(b - a)
            warm[sid].append(c - b)
        if bw_bytes:
            bandwidth.append(probes.triad_pass(bw_bytes, threads))
        rounds += 1
        _emit(out, {"event": "round", "round": rounds, "elapsed_s": perf() - t0})
    wall = perf() - t0
    cpu1, mine1 = psutil.cpu_times(), me.cpu_times()
    busy = (cpu1.user + cpu1.system) - (cpu0.user + cpu0.system)
    mine = (mine1.user + mine1.system) - (mine0.user + mine0.system)
    others_cores = max(busy - mine, 0.0) / max(wall, 1e-9)  # CPU other processes used while we timed
    probes.release_buffers()
    del lead
    _emit(
        out,
        {
            "event": "result",
            "threads": threads,
            "rounds": rounds,
            "build_s": build_s,
            "rounds_s": wall,
            "others_cores": others_cores,
            "cold_s": cold,
            "warm_s": warm,
            "call_s": call_s,
            "call_warm_s": call_warm_s,
            "call_sessions": len({id(sess) for _, sess, _ in calls}),
            "lead_bytes": lead_bytes,
            "bandwidth_bytes_per_s": bandwidth,
            "bandwidth_working_set_bytes": bw_bytes,
            "runtime_rss_bytes": base_rss,
            "peak_rss_bytes": _rss_bytes(),
            "onnxruntime_version": ort.__version__,
        },
    )


def shared_pool_options(threads: int) -> Any:
    """Session options for sessions on ONE process-wide intra-op pool of ``threads`` threads, created here (call it
    before the process's first session), as the chains are timed; the benchmarks that time chains use it too."""
    import onnxruntime as ort
    from onnxruntime.capi import _pybind_state

    _pybind_state.set_global_thread_pool_sizes(threads, 1)
    so = ort.SessionOptions()
    so.use_per_session_threads = False
    so.log_severity_level = 3
    return so


def chain_session(spec: Any, seed: int, so: Any) -> tuple[Any, dict[str, np.ndarray]]:
    """One chain's onnxruntime session (built from ``spec`` with weights drawn from ``seed``) and its feeds; the
    model and its serialized copy are dropped when this returns, so only the session holds the weights."""
    import onnxruntime as ort

    from edgefit.kernels.graphs import build_kernel

    model, feeds = build_kernel(spec, seed=seed)
    blob = model.SerializeToString()
    del model
    return ort.InferenceSession(blob, so, providers=["CPUExecutionProvider"]), feeds


def lead_sessions(
    lead_bytes: int, so: Any, emit: Callable[[dict[str, Any]], None] | None = None
) -> list[tuple[Any, int]]:
    """Untimed fp32 GEMV sessions (32 MiB each) holding up to ``lead_bytes`` of weights, built before the chains
    and kept to the end: (session, weight bytes). On this project's VM, identical chains built one after another
    in a process mostly streamed 11-24 % apart, the first built slowest, and 5-6 % apart in no order after a
    256 MiB lead (benchmarks/buffer_placement.py --lead-mib); a decoder built first in its process ran 5-12 %
    slower than the same file built after 512 MiB of other sessions (benchmarks/first_built.py). The chains were
    the first ~400 MiB built and the validated models the last, so fp32 decoders timed among the chains were priced
    14-21 % slow; with a 512 MiB lead, within 6 % (benchmarks/deep_context.py). When the effect was absent, the lead
    changed nothing (within 3 % with and without)."""
    from edgefit.kernels.graphs import KernelSpec

    spec = KernelSpec("linear", 2, precision="fp32", m=1, k=2048, n=2048)
    size = spec.nodes * spec.weight_bytes_per_node()
    out = []
    total = lead_bytes // size
    for i in range(total):
        sess, feeds = chain_session(spec, 100_000 + i, so)
        sess.run(None, feeds)
        out.append((sess, size))
        if emit is not None:
            emit({"event": "lead", "done": i + 1, "total": total})
    return out


def _call_sessions(calls: list[dict[str, Any]], threads: int) -> list[tuple[str, Any, dict[str, np.ndarray]]]:
    """Sessions and feeds of whole-model calls: ``edgefit bench``'s session options, on the same shared thread
    pool as the chains. One session per model file, shared by that file's calls (decode at two depths and a
    prefill are three calls): a session per call held the prepacked weights three times over."""
    import onnxruntime as ort

    from edgefit.bench.feeds import FeedSpec, synthesize
    from edgefit.bench.modelfile import inspect_model_file
    from edgefit.bench.runner import session_options

    by_path: dict[str, tuple[Any, Any]] = {}
    out = []
    for c in calls:
        path = str(c["path"])
        if path not in by_path:
            so = session_options(threads)
            so.use_per_session_threads = False
            sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
            by_path[path] = (sess, inspect_model_file(path, hash_file=False))
        sess, info = by_path[path]
        feeds = synthesize(info, FeedSpec(), seq=int(c["tokens"]), past=int(c["past"]))
        out.append((str(c["id"]), sess, feeds))
    return out


def main() -> int:
    try:
        job = json.loads(sys.stdin.readline())
        run(job, sys.stdout)
    except Exception as exc:  # reported to the parent, which raises a one-line error
        _emit(
            sys.stdout, {"event": "error", "message": f"{type(exc).__name__}: {exc}", "trace": traceback.format_exc()}
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
