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
