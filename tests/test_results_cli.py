from __future__ import annotations

import dataclasses
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from edgefit import stats
from edgefit.bench.env import capture_environment
from edgefit.bench.measurement import Measurement, Phase, QualityWarning, WarningCode
from edgefit.cli import main
from edgefit.store import Store

SAMPLES = (0.0031, 0.0030, 0.0032, 0.0029, 0.0030, 0.0031, 0.0030, 0.0033)


def _measurement(run_id: str, host: str, **kw: Any) -> Measurement:
    base: dict[str, Any] = dict(
        model_id="llama-ladder-30m",
        model_hash="feedfacecafebeef",
        precision="int8",
        threads=2,
        provider="CPUExecutionProvider",
        phase=Phase.DECODE,
        prompt_tokens=1,
        context_tokens=256,
        samples_s=SAMPLES,
        warmup_samples_s=(0.02,),
        params=30_000_000,
        weight_file_bytes=34_000_000,
        weight_read_bytes_per_token=30_000_000,
        peak_rss_bytes=90_000_000,
        steady_rss_bytes=80_000_000,
        load_s=0.2,
        stop_reason="target_precision",
        host_fingerprint=host,
        warnings=(QualityWarning(WarningCode.HIGH_VARIANCE, 0.09, 0.05, "CV 9 %: close other programs"),),
        run_id=run_id,
    )
    base.update(kw)
    return Measurement(**base)


def _seed(db: Path, host: str = "pi5-aaaa", cpu: str = "Cortex-A76 x4") -> str:
    env = dataclasses.replace(capture_environment(threads=2), host_fingerprint=host, cpu_model=cpu)
    with Store(db) as store:
        rid = store.start_run(env, "ladder")
        store.add_measurement(_measurement(rid, host))
        store.add_measurement(
            _measurement(rid, host, phase=Phase.PREFILL, prompt_tokens=64, context_tokens=0, warnings=())
        )
        store.finish_run(rid)
    return rid


def _json(capsys: pytest.CaptureFixture[str], argv: list[str]) -> Any:
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def _counts(db: Path) -> tuple[int, int]:
    with sqlite3.connect(db) as c:
        return (
            int(c.execute("SELECT COUNT(*) FROM runs").fetchone()[0]),
            int(c.execute("SELECT COUNT(*) FROM measurements").fetchone()[0]),
        )


def test_list_on_missing_db_creates_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "none.sqlite"
    assert _json(capsys, ["results", "list", "--db", str(db), "--json"])["runs"] == []
    assert main(["results", "list", "--db", str(db)]) == 0
    assert "no runs" in capsys.readouterr().out
    assert main(["results", "hosts", "--db", str(db)]) == 0
    assert not db.exists()


def test_list_and_show(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "r.sqlite"
    rid = _seed(db)
    runs = _json(capsys, ["results", "list", "--db", str(db), "--json"])["runs"]
    assert [(r["id"], r["measurement_count"], r["status"], r["cpu_model"]) for r in runs] == [
        (rid, 2, "finished", "Cortex-A76 x4")
    ]
    assert main(["results", "list", "--db", str(db)]) == 0
    out = capsys.readouterr().out
    assert rid[:8] in out and "Cortex-A76 x4" in out and "finished" in out

    shown = _json(capsys, ["results", "show", rid[:6], "--db", str(db), "--json"])
    assert shown["run"]["id"] == rid
    decode = shown["measurements"][0]
    assert decode["samples_s"] == list(SAMPLES)
    assert decode["summary"]["median_s"] == pytest.approx(stats.median(SAMPLES))
    assert decode["summary"]["cv"] == pytest.approx(stats.cv(SAMPLES))
    assert decode["warnings"][0]["code"] == "high_variance"

    assert main(["results", "show", rid[:6], "--db", str(db)]) == 0
    out = capsys.readouterr().out
    assert "llama-ladder-30m" in out and "median [ms]" in out and "high_variance" in out
    assert f"{stats.median(SAMPLES) * 1e3:.3f}" in out
    assert "peak RSS [MiB]" in out and f" {90_000_000 / 2**20:.0f} " in out


def test_names_are_printed_literally_not_as_markup(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "r.sqlite"
    rid = _seed(db, cpu="[bold]CPU[/bold]")
    with Store(db) as store:
        store.add_measurement(_measurement(rid, "pi5-aaaa", model_id="file:[red]m[/red].onnx", context_tokens=1))
    assert main(["results", "show", rid, "--db", str(db)]) == 0
    out = capsys.readouterr().out
    assert "file:[red]m[/red].onnx" in out and "[bold]CPU[/bold]" in out


def test_show_unknown_and_ambiguous_run_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "r.sqlite"
    _seed(db)
    _seed(db)
    before = _counts(db)
    assert main(["results", "show", "zzzz", "--db", str(db)]) == 2
    err = capsys.readouterr().err
    assert "no run 'zzzz'" in err and "Traceback" not in err
    assert main(["results", "show", "", "--db", str(db)]) == 2
    assert _counts(db) == before
    assert main(["results", "show", "x", "--db", str(tmp_path / "missing.sqlite")]) == 2
    assert "no results database" in capsys.readouterr().err
    assert not (tmp_path / "missing.sqlite").exists()


def test_export_import_between_machines(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pi, laptop, bundle = tmp_path / "pi.sqlite", tmp_path / "laptop.sqlite", tmp_path / "pi5.json"
    _seed(pi, "pi5-aaaa", "Cortex-A76 x4")
    _seed(laptop, "laptop-bbbb", "Ryzen 7")
    ex = _json(capsys, ["results", "export", "--out", str(bundle), "--db", str(pi), "--json"])
    assert (ex["runs"], ex["measurements"], ex["hosts"]) == (1, 2, ["pi5-aaaa"])

    first = _json(capsys, ["results", "import", str(bundle), "--db", str(laptop), "--json"])
    assert (first["runs_added"], first["measurements_added"], first["measurements_skipped"]) == (1, 2, 0)
    again = _json(capsys, ["results", "import", str(bundle), "--db", str(laptop), "--json"])
    assert (again["runs_added"], again["measurements_added"], again["measurements_skipped"]) == (0, 0, 2)
    assert main(["results", "import", str(bundle), "--db", str(laptop)]) == 0
    out = capsys.readouterr().out
    assert "added 0 run(s) and 0 measurement(s); skipped 1 run(s) and 2 measurement(s)" in out
    assert "host pi5-aaaa (Cortex-A76 x4): another host" in out  # merging hosts is said, never silent

    hosts = _json(capsys, ["results", "hosts", "--db", str(laptop), "--json"])["hosts"]
    assert {h["host_fingerprint"] for h in hosts} == {"pi5-aaaa", "laptop-bbbb"}
    assert _counts(laptop) == (2, 4)


def test_export_selected_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "r.sqlite"
    rid = _seed(db)
    _seed(db)
    assert main(["results", "export", rid[:8], "--out", str(tmp_path / "one.json"), "--db", str(db)]) == 0
    assert "exported 1 run(s), 2 measurement(s)" in capsys.readouterr().out
    data = json.loads((tmp_path / "one.json").read_text())
    assert [r["id"] for r in data["runs"]] == [rid]


def test_export_needs_out(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["results", "export", "--db", str(tmp_path / "r.sqlite")]) == 2
    assert "--out" in capsys.readouterr().err


@pytest.mark.parametrize("content", ["not json at all", '{"format": "edgefit-results-bundle", "schema_version": 99}'])
def test_bad_bundle_exit_2_and_db_unchanged(tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str) -> None:
    db = tmp_path / "r.sqlite"
    _seed(db)
    before = _counts(db)
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    assert main(["results", "import", str(bad), "--db", str(db)]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and "Traceback" not in err and err.count("\n") == 1
    assert _counts(db) == before
    # no database is created by a refused import either
    assert main(["results", "import", str(bad), "--db", str(tmp_path / "fresh.sqlite")]) == 2
    assert not (tmp_path / "fresh.sqlite").exists()


def test_not_a_database_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "r.sqlite"
    db.write_text("hello\n" * 200)
    assert main(["results", "list", "--db", str(db)]) == 2
    assert "not an SQLite results database" in capsys.readouterr().err
    assert db.read_text() == "hello\n" * 200


def test_default_db_from_env(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "env.sqlite"
    monkeypatch.setenv("EDGEFIT_DB", str(db))
    rid = _seed(db)
    assert [r["id"] for r in _json(capsys, ["results", "list", "--json"])["runs"]] == [rid]
    assert main(["results"]) == 0  # bare `results` lists
    assert rid[:8] in capsys.readouterr().out


def test_compare_two_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "r.sqlite"
    env = dataclasses.replace(capture_environment(threads=2), host_fingerprint="h1")
    slower = tuple(x * 1.25 for x in SAMPLES)
    with Store(db) as store:
        a = store.start_run(env, "ladder")
        store.add_measurement(_measurement(a, "h1", warnings=()))  # DRAM-resident decode
        store.add_measurement(_measurement(a, "h1", model_id="tiny", warnings=(
            QualityWarning(WarningCode.FITS_IN_CACHE, 1e6, 1e8, "in cache"),)))  # fmt: skip
        store.add_measurement(_measurement(a, "h1", model_id="only-a"))
        b = store.start_run(env, "ladder")
        store.add_measurement(_measurement(b, "h1", samples_s=slower, warnings=(), model_hash="rebuilt0000000000"))
        store.add_measurement(_measurement(b, "h1", model_id="tiny", samples_s=tuple(x * 1.5 for x in SAMPLES)))
    r = _json(capsys, ["results", "compare", a[:8], b[:8], "--db", str(db), "--json"])
    assert (r["matched"], r["only_in_a"], r["only_in_b"], r["same_host"]) == (2, 1, 0, True)
    rows = {row["model_id"]: row for row in r["rows"]}
    assert rows["llama-ladder-30m"]["ratio_b_over_a"] == pytest.approx(1.25)
    assert rows["llama-ladder-30m"]["ci95_overlap"] is False
    assert rows["tiny"]["fits_in_cache"] is True
    assert rows["tiny"]["same_model_file"] is True and rows["llama-ladder-30m"]["same_model_file"] is False
    assert r["max_abs_rel_diff"] == pytest.approx(0.5)
    assert r["max_abs_rel_diff_decode_dram"] == pytest.approx(0.25)  # the in-cache rung is reported apart
    assert main(["results", "compare", a[:8], b[:8], "--db", str(db)]) == 0
    assert "25.0 % on decode of DRAM-resident models" in capsys.readouterr().out
    assert main(["results", "compare", a[:8], "nope", "--db", str(db)]) == 2


def _readme_examples() -> list[str]:
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    section = readme.split("### Benchmarking", 1)[1].split("\n### ", 1)[0]
    lines = [line.split("#", 1)[0].strip() for line in section.splitlines()]
    return [line for line in lines if line.startswith("edgefit results")]


def test_readme_examples_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    examples = _readme_examples()
    assert len(examples) == 6
    monkeypatch.chdir(tmp_path)
    db = tmp_path / "db.sqlite"
    monkeypatch.setenv("EDGEFIT_DB", str(db))
    rid = _seed(db)
    for line in examples:
        argv = [rid[:6] if word in ("3f2a", "9c01") else word for word in line.split()[1:]]
        assert main(argv) == 0, line
        assert capsys.readouterr().out
    assert (tmp_path / "pi5-results.json").exists()
