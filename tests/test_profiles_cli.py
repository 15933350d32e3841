"""`edgefit profiles list|show|validate` on the built-in library and on test profiles."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edgefit.cli import main
from edgefit.paths import builtin_profiles_dir
from edgefit.profiles import load_profiles, profile_files
from tests.test_profiles import write_profile


def test_list_json_lists_every_profile_in_base_units(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_profile(tmp_path)
    assert main(["profiles", "list", "--json", "--dir", str(tmp_path)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert len(data) == len(load_profiles()) + 1
    test = next(d for d in data if d["id"] == "test-board-8gb")
    assert test["memory"]["ram_bytes"] == {
        "value": 8 * 2**30,
        "unit": "bytes",
        "source": "test datasheet p. 2",
        "estimated": False,
    }
    assert test["memory"]["usable_ram_bytes"]["estimated"] is True
    assert test["compute"]["cpu"]["peak_fp32_flops_per_s"]["value"] == pytest.approx(153.6e9)
    assert test["power"]["idle_w"]["value"] == pytest.approx(2.7)
    assert test["price"] == {
        "usd": {"value": 80.0, "unit": "usd", "source": "test shop", "estimated": False},
        "date": "2024-10",
    }


def test_list_table_has_the_columns(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "240")
    write_profile(tmp_path)
    assert main(["profiles", "list", "--dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    for header in ("RAM [GiB]", "usable [GiB]", "bandwidth [GB/s]", "CPU cores", "load power [W]", "price [USD]"):
        assert header in out, header
    assert "test-board-8gb" in out and "8.0" in out and "17.1" in out


def test_show_prints_every_figure_with_its_source_or_estimate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_profile(tmp_path)
    assert main(["profiles", "show", str(path)]) == 0
    out = capsys.readouterr().out
    for text in ("8 GiB", "test datasheet p. 2", "estimated: ram minus ~1 GiB", "STREAM triad, 4 threads", "6 TOPS"):
        assert text in out, text


def test_show_json_by_id(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_profile(tmp_path)
    assert main(["profiles", "show", "test-board-8gb", "--dir", str(tmp_path), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["id"] == "test-board-8gb" and data["cpu"]["cores"] == 8
    assert [c["name"] for c in data["cpu"]["clusters"]] == ["Cortex-A76", "Cortex-A55"]


def test_show_unknown_id_suggests(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    write_profile(tmp_path, "acme-board-4gb")
    assert main(["profiles", "show", "acme-board", "--dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "unknown device 'acme-board'; did you mean acme-board-4gb?" in err


def test_validate_builtin_library(capsys: pytest.CaptureFixture[str]) -> None:
    files = profile_files(builtin_profiles_dir())
    assert main(["profiles", "validate", "--json", str(builtin_profiles_dir())]) == 0
    data = json.loads(capsys.readouterr().out)
    assert len(data) == len(files) and all(r["ok"] for r in data)


def test_validate_mixed_good_and_bad(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = write_profile(tmp_path)
    bad = write_profile(tmp_path, "bad-board-4gb", ram="-4 GiB")
    assert main(["profiles", "validate", "--json", str(good), str(bad)]) == 2
    data = json.loads(capsys.readouterr().out)
    assert [r["ok"] for r in data] == [True, False]
    assert data[1]["error"].startswith(f"{bad}: memory.ram.value: ")


def test_validate_nothing_to_validate(tmp_path: Path) -> None:
    assert main(["profiles", "validate", str(tmp_path)]) == 2


def test_profiles_without_subcommand_is_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["profiles"]) == 2
