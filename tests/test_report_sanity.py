"""Sanity of verdicts over the real device library and catalog, predicted by the real predictor from a
calibration of synthetic ladder measurements (the prediction stage's fake seam), and `edgefit report` end to end."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from test_report_fakes import seed_synthetic_db

from edgefit.catalog import list_specs, load_spec
from edgefit.cli import main
from edgefit.profiles import load_profiles
from edgefit.report import pipeline
from edgefit.report.data import ReportData
from edgefit.verdict import VerdictKind, Workload, naive_weight_bytes

ALL_PRECISIONS = ("fp32", "fp16", "int8", "int4", "q8_0", "q4_k_m")


@pytest.fixture(scope="module")
def report_data(tmp_path_factory: pytest.TempPathFactory) -> ReportData:
    mp = pytest.MonkeyPatch()
    db = tmp_path_factory.mktemp("sanity") / "db.sqlite"
    try:
        seed_synthetic_db(db, mp)
        state = pipeline.host_state(db, calibrate_if_missing=False)
        return pipeline.build_report_data(
            state, list_specs(), load_profiles(), ALL_PRECISIONS, Workload(), include_scaling=False
        )
    finally:
        mp.undo()


def test_405b_fits_no_builtin_device_at_any_precision(report_data: ReportData) -> None:
    verdicts = report_data.verdicts_for(model_id="llama-3.1-405b")
    assert len(verdicts) == len(report_data.devices) * len(ALL_PRECISIONS)
    assert {v.kind for v in verdicts} == {VerdictKind.DOES_NOT_FIT}


def test_every_ok_verdict_is_within_memory_and_speed(report_data: ReportData) -> None:
    floor = report_data.workload.min_decode_tokens_per_s
    ok = [v for v in report_data.verdicts if v.ok]
    assert ok, "the library has small boards that run small models"
    for v in ok:
        p = v.prediction
        assert p.memory.total.value <= p.memory.usable_ram_bytes, v
        assert p.decode_tokens_per_s.value >= floor, v
    for v in report_data.verdicts:
        if v.prediction.memory.total.value > v.prediction.memory.usable_ram_bytes:
            assert not v.ok


def test_memory_is_what_the_runtime_holds_not_bits_alone(report_data: ReportData) -> None:
    """An 8B model at int4 needs far more than 8e9 x 0.5 bytes, and the verdict says so."""
    spec = load_spec("llama-3.1-8b")
    naive = naive_weight_bytes(spec, "int4")
    verdicts = [v for v in report_data.verdicts_for(model_id=spec.id) if v.prediction.precision == "int4"]
    assert verdicts
    for v in verdicts:
        assert v.prediction.memory.total.value > 1.5 * naive
        assert v.notes and "4 bits would be 4.0 GB" in v.notes[0]


def test_closed_weights_are_flagged_with_numbers(report_data: ReportData) -> None:
    closed = [s for s in report_data.specs if not s.open_weights]
    assert closed
    for v in report_data.verdicts_for(model_id=closed[0].id):
        assert v.kind is VerdictKind.WEIGHTS_NOT_PUBLIC
        assert v.prediction.memory.total.value > 0


def test_report_command_end_to_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "db.sqlite"
    seed_synthetic_db(db, monkeypatch)
    out = tmp_path / "rep"
    argv = ["report", "--out", str(out), "--db", str(db), "--format", "md,json,csv", "--json", "--demand", "250"]
    argv += ["--model", "qwen2.5-0.5b", "--model", "llama-3.1-405b", "--device", "raspberry-pi-5-8gb"]
    assert main(argv) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["ran_calibration"] is False
    assert {Path(f).name for f in doc["files"]} >= {"report.md", "results.json", "results.csv", "verdicts.svg"}
    md = (out / "report.md").read_text()
    assert "`edgefit validate` has not been run" in md
    assert "Llama 3.1 405B needs at least" in md
    results = json.loads((out / "results.json").read_text())
    assert results["provenance"]["measurements"] > 0
    assert {r["precision"] for r in results["results"]} == set(pipeline.REPORT_PRECISIONS)
    assert [p["fleet_demand_tokens_per_s"] for p in results["procurement"]] == [250.0]
    assert "devices for 250 tok/s" in md


def test_report_quotes_this_hosts_validation_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import edgefit.report.plots as plots
    from edgefit.store import Store

    monkeypatch.setattr(plots, "render_plots", lambda data: {})
    db = tmp_path / "db.sqlite"
    fingerprint = seed_synthetic_db(db, monkeypatch)
    other = {"summary": {"rung/decode/fp32": {"n": 3, "median_abs_error": 0.5, "max_abs_error": 0.9}}}
    mine = {
        "summary": {
            "held_out/decode/int4": {"n": 2, "median_abs_error": 0.031, "max_abs_error": 0.044},
            "random/decode/int4": {"n": 3, "median_abs_error": 0.12, "max_abs_error": 0.25},
            "interleaved/random/decode/int4": {"n": 3, "median_abs_error": 0.047, "max_abs_error": 0.061},
        }
    }
    with Store(db) as store:
        store.save_validation(mine, host_fingerprint=fingerprint)
        store.save_validation(other, host_fingerprint="another-host")
    out = tmp_path / "rep"
    argv = ["report", "--out", str(out), "--db", str(db), "--format", "md", "--model", "qwen2.5-0.5b"]
    assert main([*argv, "--device", "raspberry-pi-5-8gb"]) == 0
    md = (out / "report.md").read_text()
    # held-out and random architectures together: the larger median, the worst of both
    assert "decode time median up to 12.0 %, worst 25.0 % (5 comparisons on held-out and random architectures)" in md
    # and the same models timed among the table's kernels: the pricing alone, said apart from the drift
    assert re.search(
        r"Timed among the table's own kernels in the same rounds \(the pricing alone, without the machine's drift "
        r"between measurements\): decode time median up to 4\.7 %, worst 6\.1 % \(3 comparisons",
        md,
    ), md
    assert "50.0 %" not in md
