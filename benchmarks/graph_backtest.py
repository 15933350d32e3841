"""Back-test of `edgefit predict --model FILE.onnx --device host` against `edgefit bench FILE` on the same host.

Real non-LLM models shipped inside PyPI packages (not tuned on; fetch them with pip, no account needed):

    pip download --no-deps rapidocr-onnxruntime==1.4.4 silero-vad==6.2.3 -d wheels
    unzip -o -q 'wheels/*.whl' -d wheels/x
    python benchmarks/graph_backtest.py --db /tmp/backtest.sqlite --models-dir wheels/x [--budget-s 15]

Per model, interleaved: predict (its nodes timed one by one here, and the whole file in the same rounds), then
``--repeats`` times bench (the whole file run: the median of its samples, and its fastest sample) and predict again;
the figures quoted are the medians of the predicts and of the bench medians, so slow drift of a shared machine
(this VM switches between two speeds 1.7x apart for minutes) hits both sides alike. "host ms" is what
`predict --device host` answers (the whole file as timed with its nodes); "sum ms" is the sum of the nodes timed
alone, which a device's prediction translates (and scales by the file's whole / sum ratio measured here). Prints
one row per model and the median / worst absolute error of latency and of peak memory (predicted total vs the
bench's RSS after inference). Not collected by pytest (minutes of work).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

from edgefit.store import Store

# (file name inside the packages, --shape flags): PP-OCR rec/cls get the text-line crops they are used with
MODELS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("ch_PP-OCRv4_det_infer.onnx", ()),
    ("ch_PP-OCRv4_rec_infer.onnx", ("x=1x3x48x320",)),
    ("ch_ppocr_mobile_v2.0_cls_infer.onnx", ("x=1x3x48x192",)),
    ("silero_vad.onnx", ()),
    ("silero_vad_16k_op15.onnx", ()),
    ("silero_vad_half.onnx", ()),
)


def _edgefit(*args: str) -> dict:
    cmd = [sys.executable, "-m", "edgefit", *args, "--json"]
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed: {out.stderr.strip().splitlines()[-1:]}")
    return json.loads(out.stdout)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--db", required=True)
    ap.add_argument("--models-dir", required=True, type=Path)
    ap.add_argument("--budget-s", default="15")
    ap.add_argument(
        "--repeats", type=int, default=1, help="bench runs per model, each followed by a predict (default 1)"
    )
    ap.add_argument(
        "--file",
        action="append",
        default=[],
        metavar="NAME[:INPUT=AxB...]",
        help="other model files to find under --models-dir (instead of the six above), with their --shape flags",
    )
    args = ap.parse_args()
    models = [(f.split(":")[0], tuple(f.split(":")[1:])) for f in args.file] or list(MODELS)
    rows = []
    for name, shapes in models:
        found = sorted(args.models_dir.rglob(name))
        if not found:
            print(f"{name}: not found under {args.models_dir}, skipped", file=sys.stderr)
            continue
        path = str(found[0])
        flags = [x for s in shapes for x in ("--shape", s)]
        pred = [_edgefit("predict", "--model", path, "--device", "host", *flags, "--db", args.db)]
        medians, fastest, rss = [], [], 0
        for _ in range(args.repeats):
            bench = _edgefit("bench", path, *flags, "--budget-s", args.budget_s, "--db", args.db)
            pred.append(_edgefit("predict", "--model", path, "--device", "host", *flags, "--db", args.db))
            run = next(m for m in bench["measurements"] if m["phase"] == "run")
            with Store(Path(args.db)) as store:
                (raw,) = store.measurements(run_id=bench["run_id"], phase="run")
            medians.append(run["median_s"])
            fastest.append(min(raw.samples_s))
            rss = max(rss, run["steady_rss_bytes"] or 0)
        lat = statistics.median(p["latency_s_per_inference"]["value"] for p in pred)
        mem = statistics.mean(p["memory"]["total_bytes"]["value"] for p in pred)
        both = [p["latency_s_per_inference"]["value"] for p in pred]
        node_sum = statistics.median(p["calibration"]["host_latency_s"] for p in pred)
        rows.append((name, lat, statistics.median(medians), min(fastest), mem, rss, both, node_sum))
    print(
        f"{'model':26} {'host ms':>8} {'median':>8} {'err':>5} {'min':>8} {'err':>5} {'sum ms':>7} {'err':>5} "
        f"{'pred MiB':>8} {'RSS':>6} {'err':>5}"
    )
    lat_err, min_err, mem_err, sum_err = [], [], [], []
    for name, lat, med, best, mem, rss, both, node_sum in rows:
        e1, e0, e3 = lat / med - 1, lat / best - 1, node_sum / med - 1
        e2 = mem / rss - 1 if rss else float("nan")
        lat_err.append(abs(e1))
        min_err.append(abs(e0))
        sum_err.append(abs(e3))
        if rss:
            mem_err.append(abs(e2))
        print(
            f"{name[:26]:26} {lat * 1e3:8.3f} {med * 1e3:8.3f} {e1:+5.0%} {best * 1e3:8.3f} {e0:+5.0%} "
            f"{node_sum * 1e3:7.3f} {e3:+5.0%} {mem / 2**20:8.1f} {rss / 2**20:6.1f} {e2:+5.0%}  "
            f"(host figure {', '.join(f'{b * 1e3:.3f}' for b in both)})"
        )
    if lat_err:
        n = len(lat_err)
        print(
            f"latency vs bench median: median |error| {statistics.median(lat_err):.0%}, worst {max(lat_err):.0%} ({n})"
        )
        print(f"latency vs bench fastest: median |error| {statistics.median(min_err):.0%}, worst {max(min_err):.0%}")
        print(
            f"node sum (what a device's prediction is built from, before x composition) vs bench median: median "
            f"|error| {statistics.median(sum_err):.0%}, worst {max(sum_err):.0%}"
        )
    if mem_err:
        print(f"memory:  median |error| {statistics.median(mem_err):.0%}, worst {max(mem_err):.0%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
