"""Record this host's calibration as JSON (the fixture tests/data/calibration_fixture.json is made this way).

    python -m edgefit.predict.record --db PATH [--run RUN_ID] --out tests/data/calibration_fixture.json

Reads the ladder measurements of one run (default: the latest ladder run of this host) from the results
database, calibrates against this host's profile (``edgefit detect``, cached) and writes the Calibration with
where it came from. A test can then predict exactly what the live calibration did, without a database.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from edgefit import detect
from edgefit.errors import EdgefitError, PredictError
from edgefit.predict.calibrate import Calibration, calibrate
from edgefit.store import Store

REGENERATE = "python -m edgefit.predict.record --db PATH --out tests/data/calibration_fixture.json"


def record(db: Path, run_id: str | None = None) -> dict[str, Any]:
    fingerprint = detect.host_fingerprint()
    ladder_ids = {
        r.spec.id for name in ("quick", "full") for r in importlib.import_module("edgefit.ladder").load_ladder(name)
    }
    with Store(db) as store:
        runs = [r.id for r in store.runs(host_fingerprint=fingerprint) if r.kind.startswith("ladder:")]
        for rid in reversed(runs) if run_id is None else [run_id]:
            ladder_ms = [m for m in store.measurements(run_id=rid) if m.model_id in ladder_ids]
            if ladder_ms:
                run_id = rid
                break
        else:
            raise PredictError(f"{db}: no ladder measurements from this host; run `edgefit bench --ladder quick` first")
    host = detect.host_profile()
    cal = calibrate(ladder_ms, host)
    return {
        "what": "edgefit host calibration, recorded from a real ladder run (see edgefit/predict/record.py)",
        "regenerate": REGENERATE,
        "recorded_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "run_id": run_id,
        "host_cpu": host.cpu_model,
        "calibration": cal.to_dict(),
    }


def load_recorded(path: Path) -> Calibration:
    data = json.loads(path.read_text(encoding="utf-8"))
    return Calibration.from_dict(data["calibration"])


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m edgefit.predict.record", description=__doc__.split("\n\n")[0])
    p.add_argument("--db", type=Path, required=True)
    p.add_argument("--run", default=None, help="run id (default: the latest ladder run of this host)")
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)
    try:
        doc = record(args.db, args.run)
    except EdgefitError as exc:
        print(f"edgefit: error: {exc}", file=sys.stderr)
        return exc.exit_code
    args.out.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    print(f"wrote {args.out} (run {doc['run_id']})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
