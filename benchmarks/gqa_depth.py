"""Attention on layouts and cache depths the kernel table never timed: GroupQueryAttention decode chains of the
table's three layouts at its depths (0, 256, 1024), and of other layouts (the catalog's: 12/2/128, 32/32/64, 15/5/64,
14/2/64, 32/4/64, 8/4/256) at depths up to 4096, all built and timed as the kernel worker does (one process, one
thread pool, shuffled rounds, a 64 MiB fp32 GEMV chain run before each so every chain starts cold). The table's own
fit (``fit_gqa`` on the cold runs of its layouts and depths) then predicts every other chain; prints the error per
depth, median and worst over the other layouts.

    python benchmarks/gqa_depth.py [--seconds 90]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import numpy as np

from edgefit.kernels.plan import GQA_LAYOUTS, GQA_PASTS, gqa_decode_chain
from edgefit.kernels.spec import KernelSpec
from edgefit.kernels.table import estimate, fit_gqa, gqa_features
from edgefit.kernels.worker import chain_session, shared_pool_options

OTHER_LAYOUTS = ((12, 2, 128), (32, 32, 64), (15, 5, 64), (14, 2, 64), (32, 4, 64), (8, 4, 256))
DEPTHS = (0, 256, 1024, 2048, 4096)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=90.0, help="seconds of rounds (default 90)")
    args = ap.parse_args(argv)
    so = shared_pool_options(2)
    specs = [gqa_decode_chain(*layout, p) for layout in GQA_LAYOUTS for p in GQA_PASTS]
    specs += [gqa_decode_chain(*layout, p) for layout in OTHER_LAYOUTS for p in DEPTHS]
    sessions = []
    for i, spec in enumerate(specs):
        sessions.append((spec, *chain_session(spec, i, so)))
    flush, flush_feeds = chain_session(KernelSpec("linear", 4, precision="fp32", m=1, k=2048, n=2048), 0, so)
    for _, sess, feeds in sessions:
        sess.run(None, feeds)
    cold: dict[str, list[float]] = {s.id: [] for s in specs}
    rng = np.random.default_rng(0)
    t0, rounds = time.perf_counter(), 0
    while time.perf_counter() - t0 < args.seconds or rounds < 5:
        for i in rng.permutation(len(sessions)):
            spec, sess, feeds = sessions[i]
            flush.run(None, flush_feeds)
            a = time.perf_counter()
            sess.run(None, feeds)
            cold[spec.id].append(time.perf_counter() - a)
        rounds += 1
    per_node = {s.id: estimate(cold[s.id]) / s.nodes for s in specs}
    table_ids = {gqa_decode_chain(*layout, p).id for layout in GQA_LAYOUTS for p in GQA_PASTS}
    fit = fit_gqa([(s, per_node[s.id]) for s in specs if s.id in table_ids])
    print(f"{rounds} rounds; fit on the table's {len(table_ids)} chains: relative rms {fit.rms_rel:.2f}")
    by_depth: dict[int, list[float]] = {}
    for s in specs:
        if s.id in table_ids:
            continue
        x = gqa_features(s=1, past=s.past, heads=s.heads, kv_heads=s.kv_heads, head_dim=s.head_dim)
        err = fit.evaluate(x) / per_node[s.id] - 1.0
        by_depth.setdefault(s.past, []).append(err)
        print(f"  {s.heads:3d}/{s.kv_heads:2d}/{s.head_dim:3d} depth {s.past:5d}: measured "
              f"{per_node[s.id] * 1e3:7.3f} ms/node, predicted {fit.evaluate(x) * 1e3:7.3f} ({err:+.0%})")  # fmt: skip
    for depth, errs in sorted(by_depth.items()):
        abs_errs = [abs(e) for e in errs]
        print(f"depth {depth:5d}: median |error| {statistics.median(abs_errs):.0%}, worst {max(abs_errs):.0%} "
              f"over {len(errs)} layouts")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
