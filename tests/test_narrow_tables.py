"""Tables read at 80 and 120 columns (issue 9: `edgefit profiles list` at 80 columns was a wall of "…"): the
key column (ids) is always whole, nothing is cut to "…", no line is wider than the terminal, and columns left
out are named. Without a terminal, bench progress is one plain stderr line per model."""

from __future__ import annotations

import io
import json
import re
import sys
from pathlib import Path

import pytest
from rich.cells import cell_len
from rich.console import Console

from edgefit.bench.progress import LineProgress, make_progress
from edgefit.catalog import list_specs
from edgefit.cli import main
from edgefit.commands._tables import Col, fitted_table, left_out_note
from edgefit.profiles import load_profiles

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "data" / "onnx_models"))
import make_models as mm  # noqa: E402

WIDTHS = (80, 120)


@pytest.fixture
def terminal(monkeypatch: pytest.MonkeyPatch) -> object:
    """Make rich treat stdout as a terminal of a given width, without colour or styles (plain text to assert on)."""

    def at(width: int) -> None:
        monkeypatch.setenv("COLUMNS", str(width))
        monkeypatch.setenv("TTY_COMPATIBLE", "1")
        monkeypatch.setenv("NO_COLOR", "1")  # bold and italic remain: _plain strips them

    return at


def _plain(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;]*m", "", text)


def _out(capsys: pytest.CaptureFixture[str]) -> str:
    return _plain(capsys.readouterr().out)


def _check(out: str, width: int) -> list[str]:
    lines = out.splitlines()
    assert lines, "no output"
    too_wide = [ln for ln in lines if cell_len(ln) > width]
    assert too_wide == [], f"lines wider than {width}: {too_wide[:3]}"
    assert "…" not in out, out
    return lines


def _cells(out: str) -> set[str]:
    return {c.strip() for line in out.splitlines() for c in line.replace("┃", "│").split("│")}


@pytest.mark.parametrize("width", WIDTHS)
def test_profiles_list(width: int, terminal: object, capsys: pytest.CaptureFixture[str]) -> None:
    terminal(width)  # type: ignore[operator]
    assert main(["profiles", "list"]) == 0
    out = _out(capsys)
    _check(out, width)
    cells = _cells(out)
    assert {p.id for p in load_profiles()} <= cells  # every id whole, on one line
    assert "bandwidth" in out and "[GB/s]" in out and "price" in out
    if width == 80:
        assert "left out at 80 columns: name" in out
    else:
        assert "Raspberry Pi 5" in out and "name" in cells and "left out" in out  # kind, measured left out


@pytest.mark.parametrize("width", WIDTHS)
def test_models_list(width: int, terminal: object, capsys: pytest.CaptureFixture[str]) -> None:
    terminal(width)  # type: ignore[operator]
    assert main(["models", "list"]) == 0
    out = _out(capsys)
    _check(out, width)
    cells = _cells(out)
    assert {s.id for s in list_specs()} <= cells
    assert "int8" in out and "int4" in out and "0.494" in cells  # qwen2.5-0.5b's params [B]
    assert ("left out at 80 columns: family" in out) == (width == 80)


@pytest.fixture
def seeded_db(tmp_path: Path) -> tuple[Path, str]:
    from test_results_cli import _seed

    db = tmp_path / "r.sqlite"
    return db, _seed(db, host="pi5-aaaa", cpu="Cortex-A76 x4 with a long marketing name")


@pytest.mark.parametrize("width", WIDTHS)
def test_results_list_and_show(
    width: int, terminal: object, seeded_db: tuple[Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    db, rid = seeded_db
    terminal(width)  # type: ignore[operator]
    assert main(["results", "list", "--db", str(db)]) == 0
    out = _out(capsys)
    _check(out, width)
    cells = _cells(out)
    assert rid[:8] in cells and "ladder" in cells and "finished" in cells and "pi5-aaaa" in out
    assert main(["results", "show", rid[:8], "--db", str(db)]) == 0
    out = _out(capsys)
    lines = _check(out, width)
    cells = _cells(out)
    assert "llama-ladder-30m" in cells and "decode" in cells and "3.050" in cells  # the median [ms], whole
    assert any("left out at 80 columns" in ln for ln in lines) == (width == 80)


@pytest.mark.parametrize("width", WIDTHS)
def test_fit_matrix(
    width: int, terminal: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from test_report_fakes import seed_synthetic_db

    db = tmp_path / "r.sqlite"
    seed_synthetic_db(db, monkeypatch)
    terminal(width)  # type: ignore[operator]
    devices = ["raspberry-pi-5-8gb", "nvidia-jetson-orin-nano-super-8gb", "intel-n100-mini-pc-16gb", "host"]
    argv = ["fit", "--model", "qwen2.5-0.5b", "--model", "llama-3.1-8b", "--precision", "int8", "--db", str(db)]
    assert main([*argv, *(a for d in devices for a in ("--device", d))]) == 0
    out = _out(capsys)
    _check(out, width)
    flat = "".join(out.replace("┃", "│").split())
    for name in ("qwen2.5-0.5b", "llama-3.1-8b", "fits", "no-fit", "usable"):
        assert name in out, name
    for device in devices[:3]:  # a long id folds inside its column: whole once the borders are removed
        assert device in flat.replace("│", "") or device in out, device
        for word in device.split("-"):  # ... broken after a hyphen, never mid-word ("intel-n100-mi" / "ni-pc")
            assert any(re.search(rf"(^|[\s│-]){re.escape(word)}($|[\s│-])", ln) for ln in out.splitlines()), word


def test_fitted_table_leaves_out_the_least_important_first() -> None:
    cols = (
        Col("id", keep=100),
        Col("name", wrap=True, keep=10),
        Col("a long header", "right", keep=60),
        Col("b", "right", keep=30),
    )
    rows = [("id-" + "x" * 30, "a long name of a board with words", "1.0", "2.0")]
    table, dropped = fitted_table(cols, rows, 55)  # id 33 + name 12 + 6 + 3, and borders: 67 > 55
    assert dropped == ("name",)  # "b" outranks it
    console = Console(width=55, file=io.StringIO(), color_system=None)
    console.print(table)
    text = console.file.getvalue()  # type: ignore[attr-defined]
    assert "id-" + "x" * 30 in text and "…" not in text and max(cell_len(ln) for ln in text.splitlines()) <= 55
    assert fitted_table(cols, rows, 50)[1] == ("name", "b")  # 52 > 50: the next lowest goes
    table, dropped = fitted_table(cols, rows, 200)
    assert dropped == () and left_out_note(dropped, 200) is None
    table, dropped = fitted_table(cols, rows, 10)  # too narrow for anything: the id column stays
    assert dropped == ("name", "a long header", "b")  # named in column order
    assert left_out_note(("b",), 80) == "left out at 80 columns: b (a wider terminal or --json shows them)"


def test_line_progress_is_one_plain_line_per_model() -> None:
    buf = io.StringIO()
    p = LineProgress(buf)
    p.start(5)
    p.describe("file:a.onnx fp32")
    p.advance(2)
    p.describe("file:b.onnx fp32")
    p.grow(-1)
    p.advance(2)
    p.stop()
    lines = buf.getvalue().splitlines()
    heads = [ln.split(" (")[0] for ln in lines]
    assert heads == ["bench: file:a.onnx fp32", "bench: file:b.onnx fp32", "bench: 4/4 measurements done"]
    assert "0/5 measurements done" in lines[0] and "2/5 measurements done" in lines[1]
    assert "\x1b" not in buf.getvalue() and "\r" not in buf.getvalue()


def test_bench_without_a_terminal_prints_progress_lines(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert not isinstance(make_progress(False), LineProgress)
    models = [mm.make_multi_io(tmp_path, 17), mm.make_multi_io(tmp_path, 11)]
    argv = ["bench", *map(str, models), "--budget-s", "0.02", "--threads", "1", "--db", str(tmp_path / "r.sqlite")]
    assert main(argv) == 0
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.startswith("bench: ")]
    assert [ln.split(" (")[0] for ln in lines[:2]] == [
        "bench: file:multi_io_op17.onnx file",  # a user file runs at the precision it was saved in
        "bench: file:multi_io_op11.onnx file",
    ], err
    assert "measurements done" in lines[-1]
    assert main([*argv, "--json"]) == 0  # --json: stdout is JSON and stderr stays quiet
    out, err = capsys.readouterr()
    assert json.loads(out)["measurements"] and "bench: " not in err


@pytest.mark.parametrize("width", WIDTHS)
def test_results_hosts_and_compare(
    width: int, terminal: object, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from test_results_cli import _seed

    db = tmp_path / "r.sqlite"
    a = _seed(db, host="a" * 16, cpu="Cortex-A76 x4 with a long marketing name")
    b = _seed(db, host="a" * 16, cpu="Cortex-A76 x4 with a long marketing name")
    terminal(width)  # type: ignore[operator]
    assert main(["results", "hosts", "--db", str(db)]) == 0
    out = _out(capsys)
    _check(out, width)
    assert "a" * 16 in _cells(out) and "Cortex-A76" in out
    assert main(["results", "compare", a[:8], b[:8], "--db", str(db)]) == 0
    out = _out(capsys)
    _check(out, width)
    cells = _cells(out)
    assert {"llama-ladder-30m", "decode", "prefill", "1.000"} <= cells  # same samples: B/A = 1.000, whole
