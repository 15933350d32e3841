"""`edgefit report` after only `edgefit bench FILE.onnx`: no "run bench first"; the kernel table it needs is
measured when missing; the user's files get their own section (latency, memory, measured here) and a
``user_models`` list in results.json."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest

from edgefit.bench import bench_file
from edgefit.bench.executor import InProcessExecutor, ModelJob
from edgefit.bench.runner import ScriptedRunner
from edgefit.cli import main

sys.path.insert(0, str(Path(__file__).parent))
from test_bench_shapes import make_image_model
from test_report_fakes import fake_kernel_calibration, seed_synthetic_db

ARGS = ["--model", "qwen2.5-0.5b", "--device", "raspberry-pi-5-8gb", "--format", "md,json"]


def _bench(path: Path, db: Path, latency_s: float) -> None:
    def runner(job: ModelJob) -> ScriptedRunner:
        rng = np.random.default_rng(0)
        return ScriptedRunner(lambda ph, p, c: latency_s * (1 + 0.01 * rng.standard_normal()), is_decoder=False)

    bench_file(path, db_path=db, executor=InProcessExecutor(runner), guard=lambda e, w: None)


def test_report_after_only_user_file_benches_lists_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "db.sqlite"
    seed_synthetic_db(db, monkeypatch, ladder=False)
    _bench(make_image_model(tmp_path, "det.onnx", [1, 3, 32, 32]), db, 0.012)
    _bench(make_image_model(tmp_path, "cls.onnx", [1, 3, 16, 16]), db, 0.003)
    _bench(make_image_model(tmp_path, "cls.onnx", [1, 3, 16, 16]), db, 0.004)  # a newer run replaces the older
    out = tmp_path / "out"
    assert main(["report", "--out", str(out), "--db", str(db), *ARGS]) == 0
    captured = capsys.readouterr()
    assert "bench" not in captured.err  # nothing asks for a ladder run
    md = (out / "report.md").read_text()
    assert "## Your models measured on this host" in md
    section = md.split("## Your models measured on this host", 1)[1]
    assert re.search(r"\| file:det\.onnx \(inference\) \| 1[12]\.\d M \| ±\d\.\d% \|", section), section
    assert re.search(r"\| file:cls\.onnx \(inference\) \| 4\.\d\d M \|", section), section
    doc = json.loads((out / "results.json").read_text())
    rows = {r["model_id"]: r for r in doc["user_models"]}
    assert set(rows) == {"file:det.onnx", "file:cls.onnx"}
    assert rows["file:det.onnx"]["basis"] == "measured" and rows["file:det.onnx"]["latency_s"] == pytest.approx(
        0.012, rel=0.02
    )
    assert rows["file:cls.onnx"]["latency_s"] == pytest.approx(0.004, rel=0.02)
    assert rows["file:det.onnx"]["stop_reason"] == "target_precision"


def test_report_from_a_fresh_database_measures_its_kernel_table_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Only user-file benches, no kernel table: report calibrates (here through a fake that stores a synthetic
    table, so the test stays fast) instead of failing."""
    from edgefit import detect

    seeded = tmp_path / "seed.sqlite"
    seed_synthetic_db(seeded, monkeypatch, ladder=False)  # fakes host_profile; the table goes unused
    db = tmp_path / "fresh.sqlite"
    _bench(make_image_model(tmp_path, "det.onnx", [1, 3, 32, 32]), db, 0.01)
    calls = fake_kernel_calibration(monkeypatch)
    assert detect.host_fingerprint()
    out = tmp_path / "out"
    assert main(["report", "--out", str(out), "--db", str(db), *ARGS]) == 0
    err = capsys.readouterr().err
    assert calls == [db] and "measuring one first" in err and "bench --ladder" not in err
    assert "file:det.onnx (inference)" in (out / "report.md").read_text()
