"""cli.main's exit codes (issue 9): a bug is exit 3 with one line and a saved traceback, never 1 ("does not
fit") nor a Python traceback; ``--json | head`` (stdout closed early) exits quietly; the codes are documented."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from edgefit import catalog
from edgefit.cli import EXIT_CODES, build_parser, main

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    "exc",
    [RuntimeError("boom [/b]\nsecond line"), MemoryError(), RecursionError("maximum recursion depth"),
     KeyError("k"), BrokenPipeError(32, "a worker's stdin, not stdout")],
)  # fmt: skip
def test_a_bug_is_exit_3_with_one_line_and_a_saved_traceback(
    exc: BaseException, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken() -> None:
        raise exc

    monkeypatch.setattr(catalog, "list_specs", broken)
    assert main(["models", "list"]) == 3
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith(f"edgefit: internal error: {type(exc).__name__}")
    assert "please report this" in lines[0]
    m = re.search(r"traceback saved in (\S+\.txt)$", lines[0])
    assert m, lines[0]
    saved = Path(m.group(1))
    assert saved.parent == tmp_path / "cache" / "crashes"  # EDGEFIT_CACHE_DIR (conftest)
    text = saved.read_text(encoding="utf-8")
    assert "Traceback (most recent call last)" in text and type(exc).__name__ in text
    assert "command: edgefit models list" in text and "in broken" in text


def test_traceback_goes_to_the_temp_folder_when_the_cache_is_not_writable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    monkeypatch.setenv("EDGEFIT_CACHE_DIR", str(blocker))  # a file: no crashes/ folder can be made under it
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(catalog, "list_specs", lambda: 1 / 0)
    assert main(["models", "list"]) == 3
    err = capsys.readouterr().err
    saved = Path(err.rsplit("traceback saved in ", 1)[1].strip())
    assert saved.parent == tmp_path / "tmp" and "ZeroDivisionError" in saved.read_text()


def test_bad_input_stays_2_and_not_met_stays_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "show", "no-such-model"]) == 2
    assert capsys.readouterr().err.startswith("edgefit: error: unknown model")
    assert main(["no-such-command"]) == 2


def _closed_pipe_run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    """``python -m edgefit ARGV`` with stdout a pipe whose reader is already gone (``| head`` that exited)."""
    r, w = os.pipe()
    os.close(r)
    try:
        return subprocess.run(
            [sys.executable, "-m", "edgefit", *argv], stdout=w, stderr=subprocess.PIPE, text=True, timeout=120
        )
    finally:
        os.close(w)


@pytest.mark.parametrize(
    "argv", [["profiles", "list", "--json"], ["models", "list"], ["models", "show", "qwen2.5-0.5b", "--json"]]
)
def test_closed_stdout_exits_quietly(argv: list[str]) -> None:
    proc = _closed_pipe_run(argv)
    assert proc.stderr == ""  # no traceback, no "Exception ignored ... BrokenPipeError"
    assert proc.returncode == 141  # 128 + SIGPIPE, as a shell reports a tool stopped by the closed pipe


def test_head_of_json_gets_its_lines_and_nothing_on_stderr() -> None:
    proc = subprocess.run(
        f"'{sys.executable}' -m edgefit profiles list --json | head -n 3",
        shell=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0 and proc.stdout.splitlines()[0] == "[" and proc.stderr == ""


def test_exit_codes_are_documented() -> None:
    help_text = build_parser().format_help()
    flat = " ".join(help_text.split())
    for code in ("0 ok", "1 `fit --require`", "2 bad input", "3 internal error", "130 interrupted", "141 stdout"):
        assert code in EXIT_CODES and code in flat
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert "3 internal error" in readme and "141" in readme
