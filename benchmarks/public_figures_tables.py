"""Published real-device decode figures (tests/data/public_llm_figures.toml, cited there) predicted with every
kernel table stored in a database, one line per table: how far the device answers land from the published
figures, and how much that moves from one calibration to the next. tests/test_public_figures.py does the same with
one recorded table; this runs on whatever this host measured.

    python benchmarks/public_figures_tables.py --db PATH
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

from edgefit import catalog
from edgefit.errors import CatalogError
from edgefit.kernels.table import KernelTable
from edgefit.pipeline import calibration_from_table
from edgefit.predict import predict
from edgefit.profiles import get_profile
from edgefit.store import Store

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

FIGURES = Path(__file__).resolve().parents[1] / "tests" / "data" / "public_llm_figures.toml"


def errors(table: KernelTable) -> list[tuple[str, float]]:
    """(label, predicted / published - 1) of each decode figure whose quantization edgefit knows."""
    cal = calibration_from_table(table)
    with FIGURES.open("rb") as f:
        figures = tomllib.load(f)["figures"]
    out = []
    for fig in figures:
        try:
            catalog.get_precision(fig["quantization"])
        except CatalogError:
            continue
        decode_tokens = int(fig.get("decode_tokens", 128))
        p = predict(catalog.load_spec(fig["model"]), fig["quantization"].lower(), get_profile(fig["device"]), cal,
                    context_tokens=decode_tokens // 2, prompt_tokens=int(fig.get("prompt_tokens", 512)),
                    threads=fig.get("threads"))  # fmt: skip
        label = f"{fig['device']} {fig['model']} {fig['quantization']}"
        out.append((label, p.decode_tokens_per_s.value / float(fig["decode_tokens_per_s"]) - 1.0))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--db", type=Path, required=True)
    ap.add_argument("--each", action="store_true", help="also print every figure's error per table")
    args = ap.parse_args(argv)
    with Store(args.db) as store:
        rows = store.kernel_tables()
    if not rows:
        print(f"{args.db}: no kernel tables (run `edgefit calibrate --db {args.db}`)", file=sys.stderr)
        return 2
    for _run_id, _fp, data in rows:
        table = KernelTable.from_dict(data)
        errs = errors(table)
        abs_errs = [abs(e) for _, e in errs]
        print(f"{table.measured_at} ({table.host.host_id}): decode median |error| "
              f"{100 * statistics.median(abs_errs):.1f} %, worst {100 * max(abs_errs):.1f} % "
              f"(n {len(errs)}), signed median {100 * statistics.median(e for _, e in errs):+.1f} %")  # fmt: skip
        if args.each:
            for label, e in errs:
                print(f"    {label}: {100 * e:+.1f} %")
    return 0


if __name__ == "__main__":
    sys.exit(main())
