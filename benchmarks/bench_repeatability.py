"""Repeatability of the answer: two kernel calibrations back to back on this host, then decode tok/s predicted
for a grid of catalog models x fp32/int8/int4 x devices with each; how far the answers move (issue 10's target:
median <= 5 %, worst <= 15 %).

    python -m pytest benchmarks/bench_repeatability.py --benchmark-enable -s        # measures two tables now
    python benchmarks/bench_repeatability.py --db PATH [--all-pairs]                # compares the last two
                                                                                    # tables in PATH (or each pair)
    python benchmarks/bench_repeatability.py --db PATH --as-answered                # each calibration's answers
                                                                                    # against the one before

``--as-answered`` compares what the answers were after each calibration in PATH, as ``edgefit predict`` prices
them (``edgefit.pipeline.pooled_table``: each kernel's median over this host's last three tables), against after
the calibration before it, next to the same comparison with the latest table alone.

Also compares estimators on the same raw samples (minimum over rounds, 10th/25th percentile, median): the one
whose answers move least between the two calibrations is the one ``edgefit.kernels.table`` should use.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from edgefit import catalog, profiles
from edgefit.kernels import table as kt
from edgefit.kernels.table import KernelTable, fit_model
from edgefit.pipeline import calibration_from_table
from edgefit.predict import predict

MODELS = ("qwen2.5-0.5b", "llama-3.2-1b", "llama-3.2-3b", "phi-3-mini-4k", "llama-3.1-8b")
PRECISIONS = ("fp32", "int8", "int4")
DEVICES = ("host", "raspberry-pi-5-8gb", "intel-n100-mini-pc-16gb", "nvidia-jetson-orin-nano-super-8gb",
           "apple-macbook-air-m2-16gb")  # fmt: skip


def _devices() -> list[profiles.DeviceProfile | None]:
    out: list[profiles.DeviceProfile | None] = []
    for d in DEVICES:
        if d == "host":
            out.append(None)
            continue
        try:
            out.append(profiles.get_profile(d))
        except Exception:  # a renamed profile: use what exists
            continue
    return out


def grid(table: KernelTable) -> dict[tuple[str, str, str], float]:
    cal = calibration_from_table(table)
    from edgefit.predict import synthetic

    host = synthetic.device(table.host.host_id)
    out = {}
    for mid in MODELS:
        spec = catalog.load_spec(mid)
        for p in PRECISIONS:
            for d in _devices():
                dev = d or host
                pred = predict(spec, p, dev, cal, context_tokens=512, prompt_tokens=128, use_measurements=False)
                out[(mid, p, dev.id)] = pred.decode_tokens_per_s.value
    return out


def moves(a: dict[tuple[str, str, str], float], b: dict[tuple[str, str, str], float]) -> tuple[float, float, int]:
    rel = [abs(b[k] / a[k] - 1) for k in a if k in b]
    return statistics.median(rel), max(rel), len(rel)


def _with_estimator(
    fn: Callable[[Sequence[float]], float],
) -> Callable[[KernelTable], dict[tuple[str, str, str], float]]:
    def run(table: KernelTable) -> dict[tuple[str, str, str], float]:
        orig = kt.estimate
        kt.estimate = fn  # type: ignore[assignment]
        try:
            return grid(table)
        finally:
            kt.estimate = orig  # type: ignore[assignment]

    return run


def _q(q: float) -> Callable[[Sequence[float]], float]:
    def f(xs: Sequence[float]) -> float:
        s = sorted(xs)
        return float(s[min(len(s) - 1, int(q * (len(s) - 1) + 0.5))])

    return f


ESTIMATORS: dict[str, Callable[[Sequence[float]], float]] = {
    "min": lambda xs: float(min(xs)),
    "q10": _q(0.10),
    "q25": _q(0.25),
    "median": lambda xs: float(statistics.median(xs)),
}


def compare(t1: KernelTable, t2: KernelTable) -> str:
    lines = [f"tables: {t1.measured_at} ({t1.rounds} rounds) vs {t2.measured_at} ({t2.rounds} rounds)"]
    for name, fn in ESTIMATORS.items():
        g1, g2 = _with_estimator(fn)(t1), _with_estimator(fn)(t2)
        med, worst, n = moves(g1, g2)
        lines.append(f"estimator {name:6s}: decode tok/s moves median {med:.1%}, worst {worst:.1%} over {n} answers")
        for part, keep in (
            ("this host", lambda k: k[2] == t1.host.host_id),
            ("devices", lambda k: k[2] != t1.host.host_id),
        ):
            a1 = {k: v for k, v in g1.items() if keep(k)}
            if a1:
                m2, w2, n2 = moves(a1, g2)
                lines.append(f"    {part:9s}: median {m2:.1%}, worst {w2:.1%} over {n2}")
    m1, m2 = fit_model(t1), fit_model(t2)
    lines.append(f"noise (split-half): {m1.noise_rel:.1%} / {m2.noise_rel:.1%}")
    return "\n".join(lines)


def _two_tables(db: Path, fingerprint: str | None = None) -> tuple[KernelTable, KernelTable]:
    from edgefit.store import Store

    with Store(db) as store:
        rows = store.kernel_tables(fingerprint)
    if len(rows) < 2:
        raise SystemExit(f"{db}: needs two kernel tables of one host (run `edgefit calibrate --db {db}` twice)")
    return KernelTable.from_dict(rows[-2][2]), KernelTable.from_dict(rows[-1][2])


def _all_tables(db: Path) -> list[KernelTable]:
    from edgefit.store import Store

    with Store(db) as store:
        return [KernelTable.from_dict(r[2]) for r in store.kernel_tables()]


def answered_after_each(tables: Sequence[KernelTable]) -> list[KernelTable]:
    """After each calibration, the table this host's answers are priced with, as ``pipeline.host_state`` makes it
    from the tables so far (one host): each kernel's median over the last three that pool together."""
    from edgefit.pipeline import pooled_table, recent_pool

    numbered = [(str(j), t) for j, t in enumerate(tables)]
    return [pooled_table(recent_pool(numbered[: k + 1]))[0] for k in range(len(tables))]


def as_answered(tables: Sequence[KernelTable]) -> None:
    rows: dict[str, list[tuple[float, float, float, float]]] = {"latest table": [], "as answered": []}
    host_id = tables[0].host.host_id
    for label, seq in (("latest table", list(tables)), ("as answered", answered_after_each(tables))):
        grids = [grid(t) for t in seq]
        for k, (a, b) in enumerate(itertools.pairwise(grids), start=2):
            med, worst, _ = moves({key: v for key, v in a.items() if key[2] == host_id}, b)
            dmed, dworst, _ = moves({key: v for key, v in a.items() if key[2] != host_id}, b)
            rows[label].append((med, worst, dmed, dworst))
            print(f"calibration {k} vs {k - 1}, {label}: this host median {med:.1%}, worst {worst:.1%}; devices "
                  f"median {dmed:.1%}, worst {dworst:.1%}")  # fmt: skip
    for label, r in rows.items():
        if not r:
            continue
        host_med, host_top, host_worst = statistics.median(x[0] for x in r), max(x[0] for x in r), max(x[1] for x in r)
        dev_med, dev_worst = statistics.median(x[2] for x in r), max(x[3] for x in r)
        print(f"{label}: between calibrations this host's answers moved a median {host_med:.1%} (pairs' medians up "
              f"to {host_top:.1%}, worst answer {host_worst:.1%}); the devices' a median {dev_med:.1%} (worst "
              f"{dev_worst:.1%}); {len(r)} pairs")  # fmt: skip


@pytest.mark.benchmark(group="repeatability")
def test_two_calibrations_back_to_back(benchmark: object, tmp_path: Path) -> None:
    from edgefit import detect
    from edgefit.kernels.calibrate import calibrate_and_store

    host, fp = detect.host_profile(), detect.host_fingerprint()
    db = tmp_path / "repeat.sqlite"
    t0 = time.perf_counter()
    calibrate_and_store(db, host, fp)
    calibrate_and_store(db, host, fp)
    print(f"\ntwo calibrations in {time.perf_counter() - t0:.0f} s")
    print(compare(*_two_tables(db, fp)))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--db", type=Path, required=True)
    ap.add_argument("--all-pairs", action="store_true", help="compare every consecutive pair of tables, not the last")
    ap.add_argument(
        "--as-answered", action="store_true", help="after each calibration, the answers as edgefit prices them"
    )
    args = ap.parse_args(argv)
    if args.as_answered:
        as_answered(_all_tables(args.db))
    elif args.all_pairs:
        tables = _all_tables(args.db)
        for t1, t2 in itertools.pairwise(tables):
            print(compare(t1, t2))
    else:
        print(compare(*_two_tables(args.db)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
