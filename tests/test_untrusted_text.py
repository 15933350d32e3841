"""Untrusted text (names, ids, paths, messages) never reaches rich as markup (issue 9): a ``[/bold]`` in a
profile name crashed ``profiles show``, a DB path with ``[/b]`` crashed ``results list``, and a backslash
(``\\[/b]``) got past the old escape helper. Each must print as itself, exit 0."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from edgefit.cli import main

REPO = Path(__file__).resolve().parents[1]
PROFILE = REPO / "device_profiles" / "raspberry-pi-5-8gb.toml"
HOSTILE = ("[/bold]", "\\[/b]", "[bold red]x[/]", "[link=file:///etc/passwd]y[/link]", "\\\\[/]")
sys.path.insert(0, str(REPO / "tests" / "data" / "onnx_models"))
import make_models as mm  # noqa: E402


def _profile(folder: Path, name: str, pid: str = "hostile-board-8gb") -> Path:
    text = PROFILE.read_text(encoding="utf-8")
    text = text.replace('id = "raspberry-pi-5-8gb"', f'id = "{pid}"')
    text = re.sub(r'(?m)^name = ".*"$', lambda _: f"name = {_toml_str(name)}", text, count=1)
    path = folder / f"{pid}.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _toml_str(s: str) -> str:
    return "'" + s + "'"  # literal TOML string: backslashes stay as they are


def _flat(text: str) -> str:
    """Output with table borders and wrapping removed, so a name split over lines can still be found."""
    return re.sub(r"[\s│┃|]+", "", text)


@pytest.mark.parametrize("name", HOSTILE)
def test_profile_names_print_literally(name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _profile(tmp_path, name)
    assert main(["profiles", "show", str(path)]) == 0
    out = capsys.readouterr().out
    assert name in out
    assert main(["profiles", "list", "--dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "hostile-board-8gb" in _flat(out)


def test_db_path_with_markup_prints_literally(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from test_results_cli import _seed

    folder = tmp_path / "[/b]" / "\\[/b]"
    folder.mkdir(parents=True)
    db = folder / "r.sqlite"
    rid = _seed(db)
    assert main(["results", "list", "--db", str(db)]) == 0
    assert str(db) in capsys.readouterr().out.replace("\n", "")
    assert main(["results", "show", rid[:8], "--db", str(db)]) == 0
    capsys.readouterr()
    assert main(["results", "show", "[/b]", "--db", str(db)]) == 2  # the error message carries the path and ref
    err = capsys.readouterr().err
    assert err.startswith("edgefit: error: ") and "[/b]" in err and err.count("\n") == 1


def test_fit_matrix_and_reasons_print_names_literally(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from test_report_fakes import seed_synthetic_db

    db = tmp_path / "r.sqlite"
    seed_synthetic_db(db, monkeypatch)
    device = _profile(tmp_path, "\\[/b] [bold]board[/]")
    card = tmp_path / "card.toml"
    card.write_text(
        'id = "tiny-card"\nname = "[/bold] \\\\[/b]"\nhidden_size = 64\nnum_layers = 2\nnum_heads = 4\n'
        "num_kv_heads = 2\nintermediate_size = 128\nvocab_size = 500\ntied_embeddings = false\nmax_context = 256\n",
        encoding="utf-8",
    )
    argv = ["fit", "--device", str(device), "--model", str(card), "--precision", "fp32", "--db", str(db)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "hostile-board-8gb" in _flat(out) and "tiny-card" in _flat(out)
    assert main(["models", "show", str(card)]) == 0
    assert "[/bold] \\[/b]" in capsys.readouterr().out


def test_bench_of_a_file_named_like_markup(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "[/b]"  # a "[" folder holding a "b]" folder: the path reads "[/b]"
    folder.mkdir(parents=True)
    model = mm.make_multi_io(folder)
    hostile = model.with_name("[bold]m[red] \\[link=x].onnx")  # a file name cannot hold "/"
    model.rename(hostile)
    argv = ["bench", str(hostile), "--budget-s", "0.02", "--threads", "1", "--db", str(tmp_path / "r.sqlite")]
    assert main(argv) == 0, capsys.readouterr().err
    out, err = capsys.readouterr()
    assert "[bold]m[red]" in _flat(out) and "Traceback" not in err


@pytest.mark.parametrize("name", ["evil\x1b[2J\x1b]0;pwned\x07.toml", "two\nlines.toml", "nul\x00.toml"])
def test_control_characters_in_names_never_reach_the_terminal(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A file name with terminal escapes or a newline: the error is one line, the escapes shown as \\xNN."""
    assert main(["profiles", "show", str(tmp_path / name)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("edgefit: error: ")
    assert not any(ch in err[:-1] for ch in "\x1b\x07\x00\n"), repr(err)
    assert "\\x" in err


def test_progress_lines_show_control_characters_escaped() -> None:
    import io

    from edgefit.bench.progress import LineProgress

    buf = io.StringIO()
    p = LineProgress(buf)
    p.start(1)
    p.describe("file:evil\x1b[2J.onnx file")
    assert "\x1b" not in buf.getvalue() and "file:evil\\x1b[2J.onnx" in buf.getvalue()
