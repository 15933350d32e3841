"""Every `edgefit fit` / `edgefit report` example in the README's "Verdicts and reports" section runs, on a
database seeded with synthetic measurements, with the exit code its comment states (default 0)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from test_report_fakes import seed_synthetic_db

from edgefit.cli import main

README = Path(__file__).resolve().parents[1] / "README.md"


def _examples() -> list[str]:
    text = README.read_text(encoding="utf-8")
    section = text.split("### Verdicts and reports", 1)[1].split("\n## ", 1)[0].split("\n### ", 1)[0]
    lines = []
    for block in re.findall(r"```sh\n(.*?)```", section, flags=re.S):
        lines += [ln.strip() for ln in block.splitlines() if ln.strip().startswith(("edgefit fit", "edgefit report"))]
    return lines


def test_the_section_has_examples() -> None:
    assert len(_examples()) >= 4


@pytest.mark.parametrize("line", _examples())
def test_readme_example_runs(line: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import edgefit.report.plots as plots

    monkeypatch.setattr(plots, "render_plots", lambda data: {})  # plots have their own tests; keep this fast
    db = tmp_path / "db.sqlite"
    seed_synthetic_db(db, monkeypatch)
    command, _, comment = line.partition("#")
    expected = int(m.group(1)) if (m := re.search(r"exit (\d)", comment)) else 0
    argv = shlex.split(command)[1:]
    if argv[0] == "report":  # never write into the repository or /tmp from a test
        if "--out" in argv:
            argv[argv.index("--out") + 1] = str(tmp_path / "out")
        else:
            argv += ["--out", str(tmp_path / "reports")]
    for i, arg in enumerate(argv):  # a user's model file: a small real CNN (input x [N, 3, H, W]) in its place
        if arg.endswith(".onnx"):
            from test_predict_graph import small_cnn

            argv[i] = str(small_cnn(tmp_path / Path(arg).name))
            _quick_graph_profiles(monkeypatch)
    assert main([*argv, "--db", str(db)]) == expected


def _quick_graph_profiles(monkeypatch: pytest.MonkeyPatch) -> None:
    """Node timing rounds for 1 s instead of 8 s: the example's exit code is what is checked here."""
    from edgefit.graphs import measure

    real = measure.profile_graph
    monkeypatch.setattr(measure, "profile_graph", lambda path, **kw: real(path, **{**kw, "budget_s": 1.0}))
