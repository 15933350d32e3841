"""Does the kernel worker's whole-model call time a file as `edgefit bench` does? The two alternate on one file
and depth (bench's harness for ~1 s, then the kernel worker timing the file once per round for ~1 s), so drift
hits both alike; printed per pair and as medians of the per-pair ratios. `edgefit validate`'s interleaved rows
rest on this: a call priced from its own rounds is what `bench FILE` would measure.

    python benchmarks/calls_vs_bench.py MODEL.onnx [--depth 128] [--pairs 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import numpy as np

from edgefit.bench.executor import ModelJob, StopFlag, WorkerExecutor
from edgefit.bench.loop import MeasurePlan, MeasurePolicy, PhasePlan, PhaseResult
from edgefit.bench.measurement import Phase
from edgefit.kernels import calibrate as kc

THREADS = 2
BUDGET_S = 1.0


def _q25_median(xs: list[float] | tuple[float, ...]) -> tuple[float, float]:
    return float(np.quantile(xs, 0.25)), float(np.median(xs))


def harness(path: Path, depth: int) -> tuple[float, float]:
    plan = MeasurePlan((PhasePlan(Phase.DECODE, 1, depth),), MeasurePolicy(budget_s=BUDGET_S, probe_s=0))
    got: list[PhaseResult] = []
    WorkerExecutor().run(ModelJob(path, THREADS, plan), got.append, StopFlag())
    (decode,) = [r for r in got if r.phase == "decode"]
    return _q25_median(decode.samples_s)


def call(path: Path, depth: int) -> tuple[float, float]:
    job = {"kernels": [], "threads": THREADS, "rounds_min": 12, "rounds_max": 400, "budget_s": BUDGET_S, "seed": 0,
           "bandwidth_bytes": 0, "calls": [{"id": "x", "path": str(path), "tokens": 1, "past": depth}]}  # fmt: skip
    return _q25_median(kc._run_worker(job, None)["call_s"]["x"])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model", type=Path)
    ap.add_argument("--depth", type=int, default=128)
    ap.add_argument("--pairs", type=int, default=5)
    args = ap.parse_args(argv)
    ratios: list[float] = []
    for _ in range(args.pairs):
        (bq, bm), (cq, cm) = harness(args.model, args.depth), call(args.model, args.depth)
        ratios.append(cq / bm)
        print(f"bench q25 {bq * 1e3:8.2f} median {bm * 1e3:8.2f} ms | call q25 {cq * 1e3:8.2f} median "
              f"{cm * 1e3:8.2f} ms | call q25 / bench median {cq / bm:.3f}", flush=True)  # fmt: skip
    print(f"median of call q25 / bench median over {len(ratios)} pairs: {statistics.median(ratios):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
