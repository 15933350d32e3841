"""`edgefit fit`: exit codes of --require, the matrix without colour, --json, and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_report_fakes import seed_synthetic_db

from edgefit.cli import main


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "seeded.sqlite"
    seed_synthetic_db(path, monkeypatch)
    return path


def test_small_model_on_pi5_passes_require(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["fit", "--model", "qwen2.5-0.5b", "--precision", "int8", "--device", "raspberry-pi-5-8gb"]
    assert main([*argv, "--require", "--db", str(db)]) == 0
    out = capsys.readouterr().out
    assert "fits" in out  # symbol and word: readable without colour (NO_COLOR is set by conftest)
    assert "raspberry-pi-5-8gb" in out


def test_70b_on_pi5_fails_require_with_the_reason(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["fit", "--model", "llama-3.1-70b", "--precision", "int8", "--device", "raspberry-pi-5-8gb"]
    assert main([*argv, "--require", "--db", str(db)]) == 1
    out = capsys.readouterr().out
    assert "✗ no-fit" in out
    assert "GiB usable" in out and "needs" in out
    # without --require the same matrix is only information
    assert main([*argv, "--db", str(db)]) == 0


def test_json_is_machine_output_only(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["fit", "--model", "qwen2.5-0.5b", "--model", "llama-3.1-70b", "--precision", "int4,int8"]
    assert main([*argv, "--device", "raspberry-pi-5-8gb", "--json", "--require", "--db", str(db)]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["ok"] is False
    kinds = {(r["model_id"], r["precision"]): r["verdict"] for r in doc["results"]}
    assert kinds[("llama-3.1-70b", "int8")] == "does_not_fit"
    assert kinds[("qwen2.5-0.5b", "int8")] in ("fits", "tight")
    assert len(doc["results"]) == 4
    r = doc["results"][0]
    assert r["memory"]["usable_ram_bytes"] > 2**30  # base units


def test_workload_flags_change_the_verdict(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["fit", "--model", "qwen2.5-0.5b", "--precision", "int8", "--device", "raspberry-pi-5-8gb", "--json"]
    assert main([*argv, "--min-tps", "10000", "--db", str(db)]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["results"][0]["verdict"] == "too_slow"
    assert main([*argv, "--power-cap", "0.5", "--db", str(db)]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["results"][0]["verdict"] == "over_power_budget"


def test_price_cap_leaves_out_devices_and_fails_require(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["fit", "--model", "qwen2.5-0.5b", "--precision", "int8", "--device", "raspberry-pi-5-8gb"]
    argv += ["--device", "raspberry-pi-5-2gb", "--price-cap", "60", "--require", "--db", str(db)]
    assert main(argv) == 1
    out = capsys.readouterr().out
    assert "over the price cap" in out and "raspberry-pi-5-8gb" in out


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["--device", "rpi5"], "unknown device"),
        (["--model", "llama-9000"], "llama-9000"),
        (["--precision", "int3"], "int3"),
        (["--prompt", "9000"], "--prompt 9000 exceeds --context 4096"),
        (["--context", "-1"], "--context -1"),
        (["--min-tps", "nan"], "--min-tps nan"),
    ],
)
def test_bad_input_exits_2(db: Path, capsys: pytest.CaptureFixture[str], argv: list[str], needle: str) -> None:
    assert main(["fit", *argv, "--db", str(db)]) == 2
    err = capsys.readouterr().err
    assert needle in err
    assert "Traceback" not in err


def test_empty_db_without_calibration_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from edgefit import detect, pipeline
    from edgefit.errors import PredictError
    from edgefit.predict import synthetic

    monkeypatch.setattr(detect, "host_profile", lambda *a, **k: synthetic.device("host"))
    with pytest.raises(PredictError, match=r"no kernel table for this host.*edgefit calibrate"):
        pipeline.host_state(tmp_path / "empty.sqlite", calibrate_if_missing=False)


def test_fit_without_ladder_measurements_uses_the_kernel_table_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Only a kernel table (no ladder run, e.g. after `edgefit calibrate` or user-file benches): fit answers,
    with the catalog's prepack factors for memory."""
    db = tmp_path / "kernels-only.sqlite"
    seed_synthetic_db(db, monkeypatch, ladder=False)
    argv = ["fit", "--model", "qwen2.5-0.5b", "--device", "raspberry-pi-5-8gb", "--json", "--db", str(db)]
    assert main(argv) == 0
    doc = json.loads(capsys.readouterr().out)
    (r,) = [x for x in doc["results"] if x["precision"] == "int4"]
    assert r["verdict"] in ("fits", "tight")


def test_answers_in_words_and_json(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["fit", "--model", "qwen2.5-0.5b", "--model", "llama-3.1-70b", "--device", "raspberry-pi-5-8gb"]
    assert main([*argv, "--db", str(db)]) == 0
    out = capsys.readouterr().out
    assert "largest model on raspberry-pi-5-8gb: qwen2.5-0.5b at" in out
    assert "best precision for llama-3.1-70b on raspberry-pi-5-8gb: none meets the workload" in out
    assert main([*argv, "--json", "--db", str(db)]) == 0
    doc = json.loads(capsys.readouterr().out)
    (largest,) = doc["answers"]["largest_model"]
    assert largest["model_id"] == "qwen2.5-0.5b"


def test_a_folder_of_profiles_prices_every_board_in_it(
    db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--device fleet/profiles`: every profile `edgefit fleet bench` detected, with built-in ids next to them;
    a device named twice is priced once; an empty folder or a broken profile in it is one line, exit 2."""
    import dataclasses

    from edgefit.profile_toml import profile_to_toml
    from edgefit.profiles import get_profile

    folder = tmp_path / "fleet" / "profiles"
    folder.mkdir(parents=True)
    pi = get_profile("raspberry-pi-5-8gb")
    for name in ("pi5-a", "pi5-b"):
        (folder / f"{name}.toml").write_text(profile_to_toml(dataclasses.replace(pi, id=name, name=name)))
    (folder / "notes.txt").write_text("not a profile")
    argv = ["fit", "--model", "qwen2.5-0.5b", "--precision", "int4", "--json", "--db", str(db)]
    assert main([*argv, "--device", str(folder), "--device", "intel-n100-mini-pc-16gb", "--device", str(folder)]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [r["device_id"] for r in doc["results"]] == ["pi5-a", "pi5-b", "intel-n100-mini-pc-16gb"]
    a, b = (r["decode_tokens_per_s"]["value"] for r in doc["results"][:2])
    assert a == b  # the same board's figures under two names: the same answer

    empty = tmp_path / "empty"
    empty.mkdir()
    assert main([*argv, "--device", str(empty)]) == 2
    assert "a folder with no profile .toml files" in capsys.readouterr().err
    (folder / "broken.toml").write_text("id = 'broken'\n[[[")
    assert main([*argv, "--device", str(folder)]) == 2
    err = capsys.readouterr().err
    assert "broken.toml" in err and "Traceback" not in err
