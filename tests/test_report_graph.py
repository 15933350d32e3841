"""`edgefit report --model FILE.onnx`: the user's graph predicted on every device in its own section ("Your models
on every device"), in results.json (``user_model_predictions``, ``user_model_answers``) and
results_user_models.csv; from a fresh database the kernel table is measured first; bad files and shapes are one
line, exit 2, before anything is measured or written. Small real graphs (tests/test_predict_graph.py's builders),
their nodes really timed here with a short budget; the calibration is a synthetic kernel table (the real one takes
~40 s and is `edgefit calibrate`'s own test)."""

from __future__ import annotations

import csv
import io
import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest
from rich.cells import cell_len

sys.path.insert(0, str(Path(__file__).parent))
from test_predict_graph import small_cnn
from test_report_fakes import device, fake_kernel_calibration, seed_synthetic_db

from edgefit.cli import main
from edgefit.profile_toml import profile_to_toml
from edgefit.verdict import VerdictKind

DEVICES = ["--device", "host", "--device", "raspberry-pi-5-8gb", "--device", "raspberry-pi-zero-2-w-512mb"]
SECTION = "## Your models on every device"
MARK = {"extrapolated": "E", "spec": "S", "measured": "M"}


@pytest.fixture
def quick_profiles(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Node timing with a 1 s budget instead of 8 s (the rounds are what is shortened; every node is still run);
    records which files were profiled, so a test can prove nothing was measured."""
    from edgefit.graphs import measure

    real = measure.profile_graph
    calls: list[str] = []

    def quick(path: Any, **kw: Any) -> Any:
        calls.append(str(path))
        return real(path, **{**kw, "budget_s": 1.0})

    monkeypatch.setattr(measure, "profile_graph", quick)
    return calls


@pytest.fixture
def fresh_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, list[Path]]:
    """An empty database; `calibrate_and_store` replaced by one that stores the synthetic kernel table, recording
    each call."""
    seed_synthetic_db(tmp_path / "seed.sqlite", monkeypatch, ladder=False)  # a synthetic host, no probes
    return tmp_path / "fresh.sqlite", fake_kernel_calibration(monkeypatch)


@pytest.fixture
def seeded_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A database holding a synthetic kernel table of this (synthetic) host."""
    db = tmp_path / "db.sqlite"
    seed_synthetic_db(db, monkeypatch, ladder=False)
    return db


def _tiny_board(tmp_path: Path) -> Path:
    """The cheapest device of the test, with 30 MiB usable: the graph (~60 MiB with the runtime) does not fit."""
    path = tmp_path / "tiny-board.toml"
    path.write_text(profile_to_toml(device("tiny-board", usable_gib=30 / 1024, price_usd=5.0)), encoding="utf-8")
    return path


def _md_rows(md: str, model_id: str) -> dict[str, list[str]]:
    """device id -> cells of the file's table in report.md's section."""
    section = md.split(SECTION, 1)[1].split("\n## ", 1)[0]
    table = section.split(f"**{model_id} at batch 1", 1)[1].split("\n\n", 2)[1]
    rows = {}
    for line in table.splitlines()[2:]:
        cells = [c.strip() for c in line.strip("|").split(" | ")]
        rows[cells[0]] = cells
    return rows


def _judged(r: dict[str, Any], max_latency_s: float | None) -> str:
    """The verdict rule, from the JSON numbers alone."""
    lat = r["latency_s_per_inference"]
    if not r["fits_in_memory"]:
        return "does_not_fit"
    if max_latency_s is not None and lat["value"] > max_latency_s:
        return "too_slow"
    if max_latency_s is not None and lat["high"] > max_latency_s:
        return "tight"
    return "fits"


def test_report_model_onnx_from_a_fresh_database(
    tmp_path: Path,
    fresh_db: tuple[Path, list[Path]],
    quick_profiles: list[str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    db, calibrations = fresh_db
    cnn = small_cnn(tmp_path / "cnn.onnx")
    tiny = _tiny_board(tmp_path)
    out = tmp_path / "out"
    argv = ["report", "--model", str(cnn), "--shape", "x=1x3x64x64", "--max-latency-ms", "5", *DEVICES]
    argv += ["--device", str(tiny), "--format", "md,json,csv", "--out", str(out), "--db", str(db)]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert calibrations == [db] and "measuring one first" in captured.err  # the kernel table measured first
    assert quick_profiles == [str(cnn)]

    doc = json.loads((out / "results.json").read_text())
    preds = {r["device_id"]: r for r in doc["user_model_predictions"]}
    assert set(preds) == {"host", "raspberry-pi-5-8gb", "raspberry-pi-zero-2-w-512mb", "tiny-board"}
    prices = {d["id"]: d["price_usd"] for d in doc["devices"]}
    for device_id, r in preds.items():
        assert r["model_id"] == "file:cnn.onnx" and r["max_latency_s"] == pytest.approx(0.005)
        assert r["inputs"] == ["x[1, 3, 64, 64] (image, NCHW, --shape)"]
        lat = r["latency_s_per_inference"]
        assert 0 < lat["low"] <= lat["value"] <= lat["high"]
        # this host: the whole file timed with its nodes (measured), or their sum (extrapolated); a device: spec
        assert lat["basis"] in (("measured", "extrapolated") if device_id == "host" else ("spec",))
        assert r["energy_per_inference_j"]["basis"] == "spec" and r["energy_per_inference_j"]["value"] > 0
        assert r["throughput_inferences_per_s"]["value"] == pytest.approx(1 / lat["value"])
        assert r["verdict"] == _judged(r, 0.005), r["reason"]
        assert r["price_usd"] == prices[device_id]
        assert r["nodes"] and any(op.endswith("Conv") for op in r["measured_on_the_fly"])
    assert preds["tiny-board"]["verdict"] == "does_not_fit" and "MiB usable" in preds["tiny-board"]["reason"]
    assert preds["host"]["fits_in_memory"] is True

    # the answers follow from the rows: meeting = fits or tight; cheapest = the lowest price among them
    (answer,) = doc["user_model_answers"]
    meeting = [d for d, r in preds.items() if r["verdict"] in ("fits", "tight")]
    assert answer["meeting_device_ids"] == meeting
    priced = [d for d in meeting if prices[d] is not None]
    cheapest = min(priced, key=lambda d: prices[d]) if priced else None
    assert answer["cheapest_device_id"] == cheapest and cheapest != "tiny-board"
    fitting = [d for d in priced if preds[d]["verdict"] == "fits"]
    assert answer["cheapest_fits_device_id"] == (min(fitting, key=lambda d: prices[d]) if fitting else None)
    assert answer["measured_on_the_fly"] == preds["host"]["measured_on_the_fly"]
    # only .onnx files given: the decoder tables still cover the catalog
    from edgefit.catalog import list_specs

    assert {m["id"] for m in doc["models"]} == {s.id for s in list_specs()}

    # report.md: one row per device whose numbers are the JSON's, with the report's basis letters
    md = (out / "report.md").read_text()
    assert SECTION in md
    rows = _md_rows(md, "file:cnn.onnx")
    assert set(rows) == set(preds)
    for device_id, cells in rows.items():
        r = preds[device_id]
        lat, mem, energy = r["latency_s_per_inference"], r["memory"]["total_bytes"], r["energy_per_inference_j"]
        assert cells[1] == f"{lat['value'] * 1e3:.3g} {MARK[lat['basis']]}"
        assert cells[2] == f"{lat['low'] * 1e3:.3g}-{lat['high'] * 1e3:.3g}"
        assert float(cells[3]) == pytest.approx(r["throughput_inferences_per_s"]["value"], rel=0.01)
        assert cells[4] == f"{mem['value'] / 2**20:.0f} {MARK[mem['basis']]}"
        usable_mib = r["memory"]["usable_ram_bytes"] / 2**20
        assert cells[5] == ("✓ fits" if r["fits_in_memory"] else f"✗ {usable_mib:.0f} usable")
        assert cells[6] == f"{energy['value'] * 1e3:.3g} S"
        assert cells[7] == VerdictKind(r["verdict"]).symbol
        assert cells[8] == ("-" if prices[device_id] is None else f"${prices[device_id]:,.0f}")
    section = md.split(SECTION, 1)[1]
    assert "target 5 ms per inference" in section
    assert f"meets the target on {len(meeting)} of 4 devices" in section
    if cheapest:
        assert f"cheapest device meeting the target: {cheapest} at $" in section
    assert "node types timed on the fly on this host" in section and "Conv" in section
    # the plain-words opening says it too, before the tables
    opening = md.split("## In plain words", 1)[1].split(SECTION, 1)[0]
    assert f"cnn.onnx runs at 5 ms per inference or faster on {len(meeting)} of 4 devices" in opening
    if cheapest:
        name = next(d["name"] for d in doc["devices"] if d["id"] == cheapest)
        assert f"the cheapest of them is {name} (${prices[cheapest]:,.0f})" in opening
    else:
        assert "the fastest is" in opening

    # results_user_models.csv: the same figures in base SI units
    table = list(csv.DictReader(io.StringIO((out / "results_user_models.csv").read_text())))
    assert {row["device_id"] for row in table} == set(preds)
    for row in table:
        r = preds[row["device_id"]]
        assert float(row["latency_s"]) == pytest.approx(r["latency_s_per_inference"]["value"], rel=1e-5)
        assert row["verdict"] == r["verdict"] and row["fits_in_memory"] == str(r["fits_in_memory"]).lower()

    # the terminal: a table per file that reads at 80 columns, then the answers
    assert "file:cnn.onnx: target 5 ms" in captured.out and "file:cnn.onnx: meets the target" in captured.out


def test_an_impossible_target_is_met_nowhere_and_mixed_catalog_models_keep_their_tables(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    seeded_db: Path,
    quick_profiles: list[str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    db = seeded_db
    from test_report_user_models import _bench

    cnn = small_cnn(tmp_path / "cnn.onnx")
    _bench(cnn, db, 0.012)  # `edgefit bench cnn.onnx` measured it whole here (scripted 12 ms): shown as M
    out = tmp_path / "out"
    monkeypatch.setenv("COLUMNS", "80")
    argv = ["report", "--model", "qwen2.5-0.5b", "--model", str(cnn), "--shape", "x=1x3x64x64", *DEVICES]
    argv += ["--min-fps", "1e9", "--format", "md,json", "--out", str(out), "--db", str(db)]
    assert main(argv) == 0
    stdout = capsys.readouterr().out
    doc = json.loads((out / "results.json").read_text())
    assert [m["id"] for m in doc["models"]] == ["qwen2.5-0.5b"]  # the catalog id goes to the decoder tables
    assert {r["model_id"] for r in doc["results"]} == {"qwen2.5-0.5b"}
    assert {r["model_id"] for r in doc["user_model_predictions"]} == {"file:cnn.onnx"}  # the file to its section
    assert {r["verdict"] for r in doc["user_model_predictions"]} == {"too_slow"}
    (answer,) = doc["user_model_answers"]
    assert answer["meeting_device_ids"] == [] and answer["cheapest_device_id"] is None
    assert answer["max_latency_s"] == pytest.approx(1e-9)
    md = (out / "report.md").read_text()
    assert "cheapest device meeting the target: none of the priced devices" in md
    assert "## Verdicts" in md and "Qwen2.5 0.5B" in md
    assert re.search(
        r"file:cnn\.onnx: measured whole on this host with `edgefit bench`: 1[12]\.?\d* ms per inference \(M, ", md
    )
    table = stdout.split("file:cnn.onnx: target", 1)[1].split("file:cnn.onnx: inputs", 1)[0]
    too_wide = [ln for ln in table.splitlines() if cell_len(ln) > 80]  # prose lines soft-wrap in the terminal
    assert too_wide == [] and "…" not in table, too_wide
    assert re.search(r"raspberry-pi-5-8gb.*✗ slow", table), table


def _bad(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    assert main(argv) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in lines[0], lines
    return lines[0]


def test_bad_files_and_shapes_are_one_line_before_anything_is_measured(
    tmp_path: Path,
    fresh_db: tuple[Path, list[Path]],
    quick_profiles: list[str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    db, calibrations = fresh_db
    cnn = small_cnn(tmp_path / "cnn.onnx")
    text = tmp_path / "notes.onnx"
    text.write_text("not a model\n", encoding="utf-8")
    out = tmp_path / "out"
    base = ["report", *DEVICES, "--out", str(out), "--db", str(db), "--model"]
    assert "no such file" in _bad([*base, str(tmp_path / "missing.onnx")], capsys)
    assert "not a readable ONNX model" in _bad([*base, str(text)], capsys)
    err = _bad([*base, str(cnn), "--shape", "x=1x4x64x64"], capsys)  # a fixed dim
    assert "fixed at 3" in err and "x [N, 3, H, W]" in err
    assert "4 dims expected" in _bad([*base, str(cnn), "--shape", "x=1x3x64"], capsys)
    assert "no input 'y'" in _bad([*base, str(cnn), "--shape", "y=1x3x64x64"], capsys)
    assert "no symbolic dim 'T'" in _bad([*base, str(cnn), "--dim", "T=4"], capsys)
    # a good file next to a bad one: still nothing measured
    assert "no such file" in _bad([*base, str(cnn), "--model", str(tmp_path / "gone.onnx")], capsys)
    assert "apply to --model MODEL.onnx" in _bad([*base, "qwen2.5-0.5b", "--max-latency-ms", "5"], capsys)
    assert "--max-latency-ms" in _bad([*base, str(cnn), "--max-latency-ms", "-1"], capsys)
    assert calibrations == [] and quick_profiles == []  # nothing measured
    assert not out.exists() and not db.exists()  # nothing written


def test_a_graph_that_cannot_run_writes_nothing(
    tmp_path: Path,
    fresh_db: tuple[Path, list[Path]],
    quick_profiles: list[str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Valid ONNX whose MatMul shapes disagree: it fails when its nodes are timed (after the kernel table was
    measured, which is kept), one line naming the file, exit 2, no report folder."""
    from onnx import TensorProto, helper
    from test_predict_graph import _save, _w

    db, calibrations = fresh_db
    i: list[Any] = []
    broken = _save(
        tmp_path / "broken.onnx",
        [helper.make_node("MatMul", ["x", _w(i, "w", 16, 4)], ["y"])],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        i,
    )
    out = tmp_path / "out"
    assert main(["report", "--model", str(broken), *DEVICES, "--out", str(out), "--db", str(db)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert "broken.onnx" in lines[-1] and "error" in lines[-1] and "Traceback" not in "".join(lines), lines
    assert calibrations == [db] and quick_profiles == [str(broken)] and not out.exists()


def test_report_json_names_the_answers_and_nothing_else_on_stdout(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    seeded_db: Path,
    quick_profiles: list[str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    db = seeded_db
    cnn = small_cnn(tmp_path / "cnn.onnx")
    out = tmp_path / "out"
    argv = ["report", "--model", str(cnn), "--model", "qwen2.5-0.5b", "--shape", "x=1x3x32x32", *DEVICES]
    assert main([*argv, "--format", "json", "--out", str(out), "--db", str(db), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    (answer,) = doc["user_model_answers"]
    assert answer["model_id"] == "file:cnn.onnx" and answer["max_latency_s"] is None
    assert answer["inputs"] == ["x[1, 3, 32, 32] (image, NCHW, --shape)"]
    # no target: a device meets it when the file fits its memory; the cheapest is the cheapest built-in device
    assert answer["meeting_device_ids"] == ["host", "raspberry-pi-5-8gb", "raspberry-pi-zero-2-w-512mb"]
    assert answer["cheapest_device_id"] == "raspberry-pi-zero-2-w-512mb"
    written = json.loads((out / "results.json").read_text())
    assert written["user_model_answers"] == doc["user_model_answers"]


def test_the_cheapest_device_meeting_the_target_and_the_cheapest_with_room() -> None:
    """Pure: a profile of fixed node times priced on three real device profiles with the synthetic table, and a
    target between the Pi 4's latency and the top of its interval: the Pi 4 is tight (and the cheapest meeting
    it), the Pi 5 fits with room, the Pi Zero is too slow; a price cap at the Pi 4's price leaves the Pi 4 alone."""
    from test_predict_graph import COMPUTE_NODE, _profile

    from edgefit.pipeline import calibration_from_table
    from edgefit.predict import synthetic
    from edgefit.predict.graph import predict_graph
    from edgefit.profiles import get_profile
    from edgefit.report.usergraphs import answer_lines, user_graph

    cal = calibration_from_table(synthetic.kernel_table())
    devices = tuple(get_profile(i) for i in ("raspberry-pi-4-2gb", "raspberry-pi-5-8gb", "raspberry-pi-zero-2-w-512mb"))
    pi4, pi5, zero = devices
    prof = _profile(COMPUTE_NODE)
    lat = {d.id: predict_graph(prof, d, cal).latency_s for d in devices}
    target = (max(lat[pi4.id].value, lat[pi5.id].high) + lat[pi4.id].high) / 2
    assert lat[pi5.id].high < target and lat[pi4.id].value < target < lat[pi4.id].high < lat[zero.id].value
    assert pi4.price_usd is not None and pi5.price_usd is not None and pi4.price_usd < pi5.price_usd

    g = user_graph(prof, devices, cal, max_latency_s=target)
    assert [r.verdict for r in g.rows] == ["tight", "fits", "too_slow"]
    assert [r.prediction.device_id for r in g.meeting()] == [pi4.id, pi5.id]
    cheapest, roomy = g.cheapest(), g.cheapest(with_room=True)
    assert cheapest is not None and cheapest.prediction.device_id == pi4.id
    assert roomy is not None and roomy.prediction.device_id == pi5.id
    lines = "\n".join(answer_lines(g))
    assert f"meets the target on 2 of 3 devices: {pi4.id} (tight), {pi5.id}" in lines
    assert f"cheapest device meeting the target: {pi4.id} at ${pi4.price_usd:,.0f} (list price)" in lines
    assert f"cheapest with its whole interval within the target: {pi5.id} at ${pi5.price_usd:,.0f}" in lines
    doc = g.answer_dict()
    assert (doc["cheapest_device_id"], doc["cheapest_fits_device_id"]) == (pi4.id, pi5.id)

    capped = user_graph(prof, devices, cal, max_latency_s=target, price_cap_usd=pi4.price_usd)
    assert [r.prediction.device_id for r in capped.meeting()] == [pi4.id]
    assert capped.cheapest(with_room=True) is None
    assert f"within the ${pi4.price_usd:,.0f} price cap on 1 of 3" in answer_lines(capped)[1]
    assert "cheapest with its whole interval within the target: none" in answer_lines(capped)
    none = user_graph(prof, devices, cal, max_latency_s=lat[pi5.id].value / 2)
    assert none.meeting() == () and none.cheapest() is None


def test_a_file_name_with_markup_prints_as_itself(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    seeded_db: Path,
    quick_profiles: list[str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A file name is untrusted text: rich markup and HTML in it print as themselves in the terminal, report.md
    (pipes and angle brackets escaped) and report.html (escaped by the template)."""
    db = seeded_db
    name = "[bold red]x[red] <b>y.onnx"  # no "/": it is a file name
    cnn = small_cnn(tmp_path / name)
    out = tmp_path / "out"
    argv = ["report", "--model", str(cnn), "--shape", "x=1x3x32x32", "--device", "raspberry-pi-5-8gb"]
    assert main([*argv, "--model", "qwen2.5-0.5b", "--format", "md,html", "--out", str(out), "--db", str(db)]) == 0
    captured = capsys.readouterr()
    assert f"file:{name}: meets memory and power on 1 of 1 devices" in captured.out
    assert str(cnn) in captured.err.replace("\n", "")  # the progress line, not styled away
    md = (out / "report.md").read_text()
    assert "file:[bold red]x[red] &lt;b&gt;y.onnx" in md and "<b>" not in md
    html = (out / "report.html").read_text()
    assert "[bold red]x[red] &lt;b&gt;y.onnx" in html and "<b>y" not in html
