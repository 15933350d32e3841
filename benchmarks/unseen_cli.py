"""Issue 10's unseen-shapes check, through the CLI as a user runs it: three HF configs in no ladder and no catalog
(benchmarks/unseen_configs: tied 64k vocab 1024x16; Qwen2-style deep-narrow 640x40; head_dim 128 at 2048x8, tied
49k vocab). In a fresh database and cache: `edgefit calibrate`, then per config and precision `edgefit models
build`, `edgefit bench FILE` and `edgefit predict --device host --context 64 --prompt 64`, for ``--rounds``
rounds. Prints every comparison (decode at depth 64, prefill of 64 tokens, peak RSS) and median / worst |error|,
and how far the host moved meanwhile (a second `edgefit calibrate` after the benches, against the first).

    python benchmarks/unseen_cli.py [--rounds 2] [--precision fp32,int4] [--calibrate-repeat 1] [--work DIR]

``--calibrate-repeat 3`` calibrates three times back to back first (`edgefit calibrate --repeat 3`): the answers
then take each kernel's median over the three tables. Also prints how many measured figures fell inside the
predicted interval.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from edgefit.kernels.table import KernelTable, fit_model
from edgefit.predict.validate import bracket_drift
from edgefit.store import Store

CONFIGS = Path(__file__).resolve().parent / "unseen_configs"


def _edgefit(env: dict[str, str], *argv: str) -> str:
    out = subprocess.run([sys.executable, "-m", "edgefit", *argv], env=env, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"edgefit {' '.join(argv)} failed: {out.stderr.strip().splitlines()[-1:]}")
    return out.stdout


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--precision", default="fp32,int4")
    ap.add_argument("--calibrate-repeat", type=int, default=1, help="calibrations before the benches (default 1)")
    ap.add_argument("--work", type=Path, help="keep the database, cache and files here (default: a temp folder)")
    args = ap.parse_args(argv)
    work = args.work or Path(tempfile.mkdtemp(prefix="edgefit-unseen-"))
    work.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "EDGEFIT_DB": str(work / "db.sqlite"), "EDGEFIT_CACHE_DIR": str(work / "cache")}
    _edgefit(env, "calibrate", "--repeat", str(args.calibrate_repeat))
    configs = sorted(p.parent for p in CONFIGS.glob("*/config.json"))
    precisions = args.precision.split(",")
    for c in configs:
        for p in precisions:
            _edgefit(env, "models", "build", str(c / "config.json"), "-p", p, "--out", str(work / f"{c.name}-{p}.onnx"))
    errs: dict[tuple[str, str], list[float]] = {}
    inside: dict[tuple[str, str], list[bool]] = {}
    for r in range(1, args.rounds + 1):
        for c in configs:
            for p in precisions:
                bench = json.loads(_edgefit(env, "bench", str(work / f"{c.name}-{p}.onnx"), "--json"))
                workload = ("--device", "host", "--context", "64", "--prompt", "64", "--json")
                pred = json.loads(
                    _edgefit(env, "predict", "--model", str(c / "config.json"), "--precision", p, *workload)
                )
                ms = bench["measurements"]
                dec = next(m for m in ms if m["phase"] == "decode" and m["context_tokens"] == 64)
                pre = next(m for m in ms if m["phase"] == "prefill" and m["prompt_tokens"] == 64)
                peak = max(m["peak_rss_bytes"] or 0 for m in ms)
                predicted = {"decode": (pred["decode_s_per_token"], dec["median_s"]),
                             "prefill": (pred["prefill_s"], pre["median_s"]),
                             "peak_rss": (pred["memory"]["total_bytes"], peak)}  # fmt: skip
                e = {k: est["value"] / got - 1 for k, (est, got) in predicted.items()}
                for k, (est, got) in predicted.items():
                    errs.setdefault((p, k), []).append(e[k])
                    inside.setdefault((p, k), []).append(est["low"] <= got <= est["high"])
                print(f"round {r} {c.name:11s} {p}: decode {dec['median_s'] * 1e3:7.2f} ms measured, "
                      f"{100 * e['decode']:+6.1f} % | prefill {100 * e['prefill']:+6.1f} % | "
                      f"peak {peak / 2**20:6.0f} MiB, {100 * e['peak_rss']:+6.1f} %", flush=True)  # fmt: skip
    # how far the host moved while the files were benched: a second table, compared with the one that priced them
    _edgefit(env, "calibrate")
    with Store(work / "db.sqlite") as store:
        before, after = (fit_model(KernelTable.from_dict(data)) for _, _, data in store.kernel_tables()[-2:])
    moved, _ = bracket_drift(before, after)
    print("the host between the calibration before the benches and one after them: "
          + ", ".join(f"{k} {100 * m:+.0f} %" for k, m in moved.items()))  # fmt: skip
    for (p, k), v in sorted(errs.items()):
        a = [abs(x) for x in v]
        print(f"{p} {k}: median |error| {100 * statistics.median(a):.1f} %, worst {100 * max(a):.1f} % (n {len(a)}); "
              f"inside the interval {sum(inside[p, k])} of {len(a)}")  # fmt: skip
    if not args.work:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
