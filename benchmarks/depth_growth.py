"""Decode-time growth with the KV cache, predicted vs measured, from a database's latest `edgefit validate`: per
model and precision, (time at the deepest cache - time at the shallowest) from the benchmark's rows. Both depths
come from one benchmark run, seconds apart, so slow drift mostly cancels; fast noise does not.

    python benchmarks/depth_growth.py --db PATH
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

from edgefit.store import Store


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--db", type=Path, required=True)
    args = ap.parse_args(argv)
    with Store(args.db) as store:
        validation = store.latest_validation()
    if not validation:
        print(f"{args.db}: no stored validation (run `edgefit validate --db {args.db}`)", file=sys.stderr)
        return 2
    by: dict[tuple[str, str], dict[int, tuple[float, float]]] = {}
    for c in validation.get("comparisons", ()):
        if c.get("timing", "bench") == "bench" and c.get("figure") == "decode":
            by.setdefault((c["model_id"], c["precision"]), {})[int(c["workload_tokens"])] = (c["predicted"],
                                                                                            c["measured"])  # fmt: skip
    ratios = []
    for (model, precision), depths in sorted(by.items()):
        lo, hi = min(depths), max(depths)
        if lo == hi:
            continue
        dp, dm = depths[hi][0] - depths[lo][0], depths[hi][1] - depths[lo][1]
        ratio = dp / dm if dm > 0 else float("nan")
        if dm > 0:
            ratios.append(ratio)
        print(f"{model[:24]:24s} {precision:5s} {lo}->{hi}: measured {dm * 1e3:+7.2f} ms, "
              f"predicted {dp * 1e3:+7.2f} ms, predicted / measured {ratio:.2f}")  # fmt: skip
    if ratios:
        print(f"median predicted / measured growth: {statistics.median(ratios):.2f} over {len(ratios)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
