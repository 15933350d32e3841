"""Decode at deep caches, predicted vs measured with the drift taken out: the kernel table's attention chains go to
a cache of 1024 tokens, the reports' workloads to 2048-4096. Each model file is timed among the chains of a fresh
kernel table (`edgefit validate`'s interleaved calls: twice back to back per round, the second run counted) at every
``--depths`` value, then priced from that same table. Prints per depth the predicted and measured (lower quartile
of the rounds) ms per token, the error, and the growth from the shallowest depth.

    python benchmarks/deep_context.py [--model qwen2.5-0.5b] [--config CONFIG.json] [--precision int4]
        [--depths 0,1024,2048,4096]

``--lead-mib 0`` builds the chains first in the worker, as before the lead (compare with the default).
``--config`` takes a Hugging Face config.json (benchmarks/unseen_configs): with ``--depths 64`` it separates the
pricing from the drift between `edgefit calibrate` and `edgefit bench FILE` in benchmarks/unseen_cli.py.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

from edgefit import detect
from edgefit.errors import EdgefitError
from edgefit.hfconfig import load_hf_config
from edgefit.kernels.calibrate import ModelCall, measure_table
from edgefit.kernels.table import estimate
from edgefit.onnxbuild.build import build_model
from edgefit.pipeline import calibration_from_table
from edgefit.predict import accounting
from edgefit.predict.translate import predict
from edgefit.units import MIB


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", action="append", help="catalog or ladder id (repeatable; default qwen2.5-0.5b)")
    ap.add_argument("--config", action="append", type=Path, default=[], help="a HF config.json (repeatable)")
    ap.add_argument("--precision", default="int4", help="comma-separated (default int4)")
    ap.add_argument("--depths", default="0,1024,2048,4096", help="cache depths in tokens")
    ap.add_argument("--budget-s", type=float, default=60.0, help="seconds of rounds (default 60)")
    ap.add_argument("--lead-mib", type=int, help="untimed weights built before the chains (default: calibrate's)")
    ap.add_argument("--save", type=Path, help="also write the kernel table (with the calls) to this JSON file")
    args = ap.parse_args(argv)
    depths = sorted({int(x) for x in args.depths.split(",")})
    precisions = args.precision.split(",")
    given = {}
    for path in args.config:
        try:
            spec = load_hf_config(path, path.parent.name)
        except EdgefitError as exc:
            print(exc, file=sys.stderr)
            return 2
        given[spec.id] = spec
    wanted = (args.model or ([] if given else ["qwen2.5-0.5b"])) + list(given)
    specs = accounting.resolve_specs(wanted, given=given)
    if len(specs) < len(set(wanted)):
        print(f"unknown model id(s): {', '.join(sorted(set(wanted) - set(specs)))}", file=sys.stderr)
        return 2
    calls = []
    for mid, spec in specs.items():
        for p in precisions:
            path = build_model(spec, p).path
            calls += [ModelCall(mid, p, 1, d, path) for d in depths if d < spec.max_context]  # the rotary table's end
    fingerprint = detect.host_fingerprint()
    host = detect.host_profile()
    lead = None if args.lead_mib is None else args.lead_mib * MIB
    table = measure_table(host, fingerprint, budget_s=args.budget_s, calls=calls, lead_bytes=lead)
    if args.save:
        args.save.write_text(json.dumps(table.to_dict()))
    cal = calibration_from_table(table)
    stream = cal.host.stream_bytes_per_s / 1e9
    print(f"{table.rounds} rounds after a {table.lead_bytes // MIB} MiB lead; fp32 GEMV streaming {stream:.1f} GB/s")
    errors: list[float] = []
    for mid, spec in specs.items():
        for p in precisions:
            rows = []
            for c in (c for c in table.calls if c.model_id == mid and c.precision == p):
                pred = predict(spec, p, host, cal, context_tokens=c.past, prompt_tokens=0, use_measurements=False)
                rows.append((c.past, pred.decode_s_per_token.value, estimate(c.compared_s)))
            if not rows:  # every depth at or beyond the model's context
                continue
            rows.sort()
            base_p, base_m = rows[0][1], rows[0][2]
            for past, pr, me in rows:
                err = pr / me - 1.0
                errors.append(abs(err))
                growth = f"growth predicted {(pr - base_p) * 1e3:+7.2f} measured {(me - base_m) * 1e3:+7.2f} ms"
                print(f"{mid} {p} depth {past:5d}: predicted {pr * 1e3:7.2f} measured {me * 1e3:7.2f} ms "
                      f"({err:+.1%}); {growth}")  # fmt: skip
    if errors:
        print(f"median |error| {statistics.median(errors):.1%}, worst {max(errors):.1%} over {len(errors)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
