"""Record a stored kernel table as a JSON fixture (tests/data/kernel_table_fixture.json is made this way).

    python -m edgefit.kernels.record --db PATH --out tests/data/kernel_table_fixture.json [--run RUN_ID]

Takes the latest kernel table in the database (or the given run's) and writes it with where it came from, so a
test can price models with a real table without a database or a measurement.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from edgefit.kernels.table import KernelTable

REGENERATE = "python -m edgefit.kernels.record --db PATH --out tests/data/kernel_table_fixture.json"


def record(db: Path, run: str | None = None) -> dict[str, Any]:
    from edgefit.store import Store

    with Store(db) as store:
        rows = store.kernel_tables()
        run_id = store.resolve_run_id(run) if run else None
    rows = tuple(r for r in rows if run_id is None or r[0] == run_id)
    if not rows:
        raise SystemExit(f"{db}: no kernel table{f' for run {run}' if run else ''}; run `edgefit calibrate` first")
    rid, fp, table = rows[-1]
    KernelTable.from_dict(table)  # it must load
    return {"what": "edgefit kernel table, recorded from a real calibration", "run_id": rid,
            "host_fingerprint": fp, "regenerate": REGENERATE, "kernel_table": table}  # fmt: skip


def load_recorded(path: Path) -> KernelTable:
    data = json.loads(path.read_text(encoding="utf-8"))
    return KernelTable.from_dict(data["kernel_table"], where=str(path))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m edgefit.kernels.record", description=__doc__.split("\n")[0])
    ap.add_argument("--db", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--run", default=None)
    args = ap.parse_args(argv)
    args.out.write_text(json.dumps(record(args.db, args.run), indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
