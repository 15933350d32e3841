"""Golden files for report.md and results.json, rendered from a fixed ReportData (tests/test_report_fakes.py).

The fixture carries fixed provenance (time, versions, host), so the goldens hold nothing host-specific.
Regenerate after an intended change with:

    EDGEFIT_UPDATE_GOLDENS=1 python -m pytest tests/test_report_golden.py

then review the diff of tests/golden/ before committing it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from test_report_fakes import fixed_report

from edgefit.report.markdown import render_markdown
from edgefit.report.results import results_csv, results_document

GOLDEN_DIR = Path(__file__).parent / "golden"
UPDATE = os.environ.get("EDGEFIT_UPDATE_GOLDENS") == "1"
PLOTS = {name: f"plots/{name}.svg" for name in ("verdicts", "scaling", "memory", "pareto")}


def _check(name: str, text: str) -> None:
    path = GOLDEN_DIR / name
    if UPDATE:
        GOLDEN_DIR.mkdir(exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return
    if not path.exists():
        pytest.fail(f"{path} is missing; create it with EDGEFIT_UPDATE_GOLDENS=1 python -m pytest {__file__}")
    expected = path.read_text(encoding="utf-8")
    assert text == expected, f"{name} differs from its golden; if intended, regenerate (see module docstring)"


def test_report_md_golden() -> None:
    _check("report.md", render_markdown(fixed_report(), PLOTS))


def test_results_json_golden() -> None:
    _check("results.json", json.dumps(results_document(fixed_report()), indent=2, allow_nan=False) + "\n")


def test_results_csv_golden() -> None:
    _check("results.csv", results_csv(fixed_report()))


def test_csv_has_one_row_per_combination() -> None:
    data = fixed_report()
    rows = results_csv(data).strip().splitlines()
    assert len(rows) - 1 == len(data.specs) * len(data.precisions) * len(data.devices)


def test_json_is_base_units_with_basis_and_schema() -> None:
    doc = results_document(fixed_report())
    assert doc["schema_version"] == 1
    first = doc["results"][0]
    assert set(first["decode_tokens_per_s"]) == {"value", "low", "high", "basis"}
    assert first["memory"]["total_bytes"]["value"] > 1e6  # bytes, not GiB
    assert {"edgefit_version", "onnxruntime_version", "host_fingerprint"} <= set(doc["provenance"])
    assert doc["validation"]["summary"]["held_out/decode/int4"]["median_abs_error"] == 0.065
    assert all(d["sources"] for d in doc["devices"])


def test_validation_sentences() -> None:
    from edgefit.report.summary import validation_sentence

    assert "has not been run" in validation_sentence(None)
    empty = validation_sentence({"summary": {}, "notes": ["rung back-test skipped: fewer than 4 rungs per precision"]})
    assert "compared nothing (rung back-test skipped" in empty
    full = validation_sentence(
        {"summary": {"rung/decode/fp32": {"n": 2, "median_abs_error": 0.05, "max_abs_error": 0.08}}}
    )
    assert "decode time median up to 5.0 %, worst 8.0 % (2 comparisons on larger ladder rungs)" in full


def test_shared_calibration_warnings_are_listed_once() -> None:
    import dataclasses

    data = fixed_report()
    shared, own = "calibration: host was busy", "needs more than usable"
    verdicts = tuple(
        dataclasses.replace(
            v, prediction=dataclasses.replace(v.prediction, warnings=(shared, own) if i == 0 else (shared,))
        )
        for i, v in enumerate(data.verdicts)
    )
    doc = results_document(dataclasses.replace(data, verdicts=verdicts))
    assert doc["common_warnings"] == [shared]
    assert doc["results"][0]["warnings"] == [own]
    assert all(r["warnings"] == [] for r in doc["results"][1:])
