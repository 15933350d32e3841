"""Nothing in the folder a user runs edgefit from is ever imported by edgefit's own subprocesses (issue 9).

Model folders from hubs often hold ``.py`` files and ``cd model-dir && edgefit bench model.onnx`` is the normal
thing to do: ``python -m`` would put that folder first on the worker's ``sys.path``.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

from edgefit.cli import main

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "data" / "onnx_models"))
import make_models as mm  # noqa: E402

SHADOWS = ("json", "numpy", "onnxruntime", "onnx", "psutil")


def _plant(folder: Path, marker: Path) -> None:
    """Modules that shadow what the worker imports; each writes ``marker`` when imported, then fails."""
    body = f"open({str(marker)!r}, 'a').write(__name__ + '\\n')\nraise ImportError('planted module ran')\n"
    for name in SHADOWS:
        (folder / f"{name}.py").write_text(body, encoding="utf-8")
    (folder / "edgefit").mkdir()
    (folder / "edgefit" / "__init__.py").write_text(body, encoding="utf-8")
    (folder / "edgefit" / "bench").mkdir()
    (folder / "edgefit" / "bench" / "__init__.py").write_text(body, encoding="utf-8")


def test_bench_worker_never_imports_from_the_working_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    model_dir = tmp_path / "model-dir"
    model_dir.mkdir()
    model = mm.make_multi_io(model_dir)
    marker = tmp_path / "planted-code-ran"
    _plant(model_dir, marker)
    db = tmp_path / "r.sqlite"
    monkeypatch.chdir(model_dir)  # cd model-dir && edgefit bench model.onnx (a relative path)
    rc = main(["bench", model.name, "--budget-s", "0.02", "--threads", "1", "--json", "--db", str(db)])
    out = capsys.readouterr()
    assert not marker.exists(), f"code from the working folder ran: {marker.read_text()}"
    assert rc == 0, out.err
    d = json.loads(out.out)
    assert d["measurements"], "the worker found edgefit and onnxruntime without the working folder"


def test_every_python_subprocess_of_ours_is_isolated() -> None:
    """Any ``[sys.executable, ..., "-m", module]`` in edgefit must carry ``-I`` before ``-m``."""
    offenders = []
    for path in sorted((REPO / "edgefit").rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        for m in re.finditer(r"sys\.executable\s*,(?P<flags>[^\]]*?)\"-m\"", text, flags=re.S):
            if '"-I"' not in m.group("flags"):
                line = text.count("\n", 0, m.start()) + 1
                offenders.append(f"{path.relative_to(REPO)}:{line}")
    assert offenders == []


def test_a_worker_that_cannot_import_edgefit_is_a_one_line_bench_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """What a PYTHONPATH-only checkout gets (-I ignores PYTHONPATH): exit 2 and the fix, not a BrokenPipeError."""
    from edgefit.bench import executor

    fake = "import sys; sys.stdin.close(); sys.exit(\"ModuleNotFoundError: No module named 'edgefit'\")"
    monkeypatch.setattr(executor, "worker_command", lambda module: [sys.executable, "-I", "-c", fake])
    model = mm.make_multi_io(tmp_path)
    rc = main(["bench", str(model), "--budget-s", "0.02", "--threads", "1", "--db", str(tmp_path / "r.sqlite")])
    out = capsys.readouterr()
    assert rc == 2, out.err  # every model failed: bad input (here, the installation), one line per model
    assert "needs edgefit installed" in out.out + out.err and "Traceback" not in out.err
    assert "internal error" not in out.err
