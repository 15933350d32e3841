"""Is a model slower when it is the first thing its process builds? One process builds session A of FILE, then
``--lead-mib`` of untimed fp32 GEMV sessions, then session B of the same FILE, and times A and B alternately
(decode of one token on a cache of ``--depth``, each run after the other's, a pause between so the other's thread
pool has stopped spinning). Prints the lower quartile of each and their ratio. `edgefit bench FILE` builds its
model first; the kernel worker builds its chains after a lead (edgefit.kernels.worker.lead_sessions).

    python benchmarks/first_built.py FILE.onnx [--lead-mib 512] [--depth 64] [--rounds 30]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from edgefit.bench.feeds import FeedSpec, synthesize
from edgefit.bench.modelfile import inspect_model_file
from edgefit.bench.runner import session_options
from edgefit.kernels.table import estimate
from edgefit.kernels.worker import lead_sessions
from edgefit.units import MIB

THREADS = 2


def main(argv: list[str] | None = None) -> int:
    import onnxruntime as ort

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model", type=Path)
    ap.add_argument("--lead-mib", type=int, default=512)
    ap.add_argument("--depth", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=30)
    args = ap.parse_args(argv)
    path = str(args.model)
    feeds = synthesize(inspect_model_file(path, hash_file=False), FeedSpec(), seq=1, past=args.depth)
    providers = ["CPUExecutionProvider"]
    first = ort.InferenceSession(path, session_options(THREADS), providers=providers)
    lead = lead_sessions(args.lead_mib * MIB, session_options(THREADS))  # the worker's lead, on bench's options
    later = ort.InferenceSession(path, session_options(THREADS), providers=providers)
    times: dict[str, list[float]] = {"first": [], "later": []}
    sessions = {"first": first, "later": later}
    for r in range(args.rounds):
        for name in ("first", "later") if r % 2 else ("later", "first"):
            time.sleep(0.05)
            sessions[name].run(None, feeds)  # as `bench` repeats a call: the run after it is timed
            a = time.perf_counter()
            sessions[name].run(None, feeds)
            times[name].append(time.perf_counter() - a)
    qf, ql = estimate(times["first"]), estimate(times["later"])
    print(f"{args.model.name}: built first {qf * 1e3:.2f} ms, built after a {args.lead_mib} MiB lead "
          f"{ql * 1e3:.2f} ms (lower quartiles of {args.rounds}); first / later {qf / ql:.3f}")  # fmt: skip
    print(f"spread of the rounds (upper / lower quartile): first {np.quantile(times['first'], 0.75) / qf:.3f}, "
          f"later {np.quantile(times['later'], 0.75) / ql:.3f}")  # fmt: skip
    del lead
    return 0


if __name__ == "__main__":
    sys.exit(main())
