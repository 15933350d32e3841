"""Does an fp32 GEMV's streaming rate depend on where its weights landed? Builds ``--chains`` identical fp32 GEMV
chains (2 x 2048 x 2048, 32 MiB each, different seeds) in one process, as the kernel worker builds its chains, and
times them in shuffled rounds. Per chain it prints the rate (GB/s at the lower quartile) from the first and the
second half of the rounds; then the spread across chains against the spread between halves. Identical work, so a
spread across chains well beyond the halves' is the placement of each chain's buffers, fixed for the process.

    python benchmarks/buffer_placement.py [--chains 12] [--rounds 30]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import numpy as np

from edgefit.kernels.graphs import build_kernel
from edgefit.kernels.spec import KernelSpec
from edgefit.kernels.table import estimate
from edgefit.kernels.worker import shared_pool_options


def main(argv: list[str] | None = None) -> int:
    import onnxruntime as ort

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--chains", type=int, default=12)
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--lead-mib", type=int, default=0, help="first build an untimed fp32 chain of this many MiB")
    args = ap.parse_args(argv)
    so = shared_pool_options(2)
    spec = KernelSpec("linear", 2, precision="fp32", m=1, k=2048, n=2048)
    lead = []
    if args.lead_mib > 0:  # kept alive to the end, never timed
        lead_spec = KernelSpec("linear", max(1, args.lead_mib // 16), precision="fp32", m=1, k=2048, n=2048)
        model, feeds = build_kernel(lead_spec, seed=10_000)
        lead.append(ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"]))
    chain_bytes = spec.nodes * spec.weight_bytes_per_node()
    sessions = []
    for i in range(args.chains):
        model, feeds = build_kernel(spec, seed=i)
        sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
        sess.run(None, feeds)
        sessions.append((sess, feeds))
    times: list[list[float]] = [[] for _ in sessions]
    rng = np.random.default_rng(1)
    for _ in range(args.rounds):
        for i in rng.permutation(len(sessions)):
            sess, feeds = sessions[i]
            a = time.perf_counter()
            sess.run(None, feeds)
            times[i].append(time.perf_counter() - a)
    half = args.rounds // 2
    rates, halves = [], []
    for i, ts in enumerate(times):
        first, second = chain_bytes / estimate(ts[:half]) / 1e9, chain_bytes / estimate(ts[half:]) / 1e9
        rates.append(chain_bytes / estimate(ts) / 1e9)
        halves.append(abs(first - second) / min(first, second))
        print(f"chain {i:2d} (built {i + 1}.): {first:5.1f} GB/s first half, {second:5.1f} second half")
    print(f"across chains: {min(rates):.1f}-{max(rates):.1f} GB/s ({max(rates) / min(rates) - 1:.0%} apart); "
          f"between a chain's halves: median {statistics.median(halves):.1%}, worst {max(halves):.1%}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
