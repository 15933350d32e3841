"""GroupQueryAttention chains as the kernel table builds them (every node reads the same past key/value arrays)
against the same chains with a distinct past per node, as a decoder's layers have. Runs alternate, with a 64 MiB
read between runs so each starts with cold caches; per-node time at the lower quartile.

    python benchmarks/gqa_shared_past.py [--rounds 40]
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from edgefit.kernels.spec import KernelSpec
from edgefit.kernels.worker import chain_session, shared_pool_options

LAYOUTS = ((12, 3, 64, 512, 3), (12, 3, 64, 2048, 2), (32, 8, 64, 512, 2), (32, 8, 128, 1024, 2), (16, 4, 64, 128, 16))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=40)
    args = ap.parse_args(argv)
    so = shared_pool_options(2)
    flush = np.ones(16 << 20, dtype=np.float32)
    runs = []
    for heads, kv_heads, head_dim, past, nodes in LAYOUTS:
        spec = KernelSpec("gqa", nodes, m=1, heads=heads, kv_heads=kv_heads, head_dim=head_dim, past=past)
        sess, shared = chain_session(spec, 1, so)
        rng = np.random.default_rng(2)
        distinct = {k: (rng.standard_normal(v.shape, dtype=np.float32) if k.startswith("past.") else v)
                    for k, v in shared.items()}  # fmt: skip
        runs.append((spec, sess, shared, distinct))
    times: dict[tuple[str, str], list[float]] = {}
    for _ in range(args.rounds):
        for spec, sess, shared, distinct in runs:
            for name, feeds in (("shared", shared), ("distinct", distinct)):
                flush.sum()
                t0 = time.perf_counter()
                sess.run(None, feeds)
                times.setdefault((spec.id, name), []).append((time.perf_counter() - t0) / spec.nodes)
    for spec, *_ in runs:
        a, b = (float(np.quantile(times[(spec.id, n)], 0.25)) for n in ("shared", "distinct"))
        print(f"{spec.id:40s} per node: shared {a * 1e6:7.1f} us, distinct {b * 1e6:7.1f} us, ratio {b / a:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
