"""`edgefit bench` end to end with the real worker subprocess and onnxruntime, on tiny generated models:
user models of every kind, the builder's decoder, bad input (exit 2, one line, DB unchanged), Ctrl-C (exit 130,
finished measurements kept) and a killed bench (DB readable)."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from edgefit.bench import bench_file
from edgefit.bench.measurement import Phase
from edgefit.cli import main
from edgefit.store import Store

sys.path.insert(0, str(Path(__file__).parent / "data" / "onnx_models"))
import make_models as mm

FAST = ["--budget-s", "0.02", "--threads", "1"]


@pytest.fixture(scope="module")
def fx(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return mm.make_all(tmp_path_factory.mktemp("onnx_models"))


@pytest.fixture(autouse=True)
def _small_probe(monkeypatch: pytest.MonkeyPatch) -> None:
    """The bench runs in this (pytest) process here: keep the real bandwidth probe but on 32 MiB instead of its
    1.2 GiB default, so the test process's memory high-water mark stays small (Linux hands a parent's
    ru_maxrss to every child it execs, and other tests read ru_maxrss in children)."""
    from edgefit import probes
    from edgefit.bench import campaign

    monkeypatch.setattr(campaign, "_probe", lambda d: probes.quick_bandwidth(duration_s=d, total_bytes=32 << 20))


def _db_state(db: Path) -> str | None:
    return hashlib.sha256(db.read_bytes()).hexdigest() if db.exists() else None


def test_decoder_file_is_measured_per_token_with_its_cache(
    fx: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "r.sqlite"
    rc = main(["bench", str(fx["tiny_decoder"]), *FAST, "--json", "--db", str(db)])
    out = capsys.readouterr()
    assert rc == 0, out.err
    d = json.loads(out.out)  # --json: nothing but JSON on stdout
    got = [(m["phase"], m["prompt_tokens"], m["context_tokens"]) for m in d["measurements"]]
    assert got == [("load", 0, 0), ("prefill", 16, 0), ("prefill", 64, 0), ("decode", 1, 0), ("decode", 1, 64)]
    with Store(db) as st:
        stored = st.measurements(run_id=d["run_id"])
    assert len(stored) == 5 and all(m.model_id == "file:tiny_decoder_op17.onnx" for m in stored)
    dec = [m for m in stored if m.phase == Phase.DECODE]
    assert all(m.peak_rss_bytes and m.steady_rss_bytes and m.peak_rss_bytes >= m.steady_rss_bytes for m in dec)
    assert all(m.probe_bandwidth_bytes_per_s and m.probe_bandwidth_bytes_per_s > 1e8 for m in dec)
    assert all(len(m.warmup_samples_s) >= 1 for m in dec)


def test_user_models_of_every_kind_in_one_run(
    fx: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    names = ["multi_io_op11", "multi_io_op18", "control_flow_op11", "control_flow_op17", "recurrent", "external"]
    args = ["bench", *(str(fx[n]) for n in names), "--input", "M=2", "--dim", "n=4", "--dim", "time=5", *FAST]
    rc = main([*args, "--json", "--db", str(tmp_path / "r.sqlite")])
    out = capsys.readouterr()
    assert rc == 0, out.err
    d = json.loads(out.out)
    assert [m["status"] for m in d["models"]] == ["measured"] * len(names)
    runs = [m for m in d["measurements"] if m["phase"] == "run"]
    assert len(runs) == len(names) and all(m["median_s"] > 0 for m in runs)
    ext = next(m for m in d["measurements"] if m["model_id"] == "file:ext.onnx")
    assert ext["weight_file_bytes"] == 64 * 32 * 4  # external data counted


def test_builder_decoders_run_through_the_file_path(tmp_path: Path) -> None:
    from edgefit.catalog import ModelSpec
    from edgefit.onnxbuild import build_model

    spec = ModelSpec(id="t", name="t", family="ladder", hidden_size=64, num_layers=2, num_heads=4,
                     num_kv_heads=2, head_dim=16, intermediate_size=128, vocab_size=500, tied_embeddings=False,
                     max_context=256)  # fmt: skip
    paths = [build_model(spec, p, out=tmp_path / f"t-{p}.onnx").path for p in ("fp32", "int8", "int4")]
    s = bench_file(paths, threads=1, db_path=tmp_path / "r.sqlite", budget_s=0.02)
    assert [o.status for o in s.outcomes] == ["measured"] * 3
    assert sum(m.phase == Phase.DECODE for m in s.measurements) == 6


_BALLAST_THEN_BENCH = """
import sys
import numpy as np
from edgefit.bench import bench_file
ballast = np.ones(400 << 20, dtype=np.uint8)
s = bench_file([sys.argv[1]], threads=1, db_path=sys.argv[2], budget_s=0.02)
assert ballast.sum() == 400 << 20
print(max(m.peak_rss_bytes or 0 for m in s.measurements))
"""


def test_worker_peak_rss_is_its_own(fx: dict[str, Path], tmp_path: Path) -> None:
    """A parent holding 400 MiB must not show up in the worker's peak (ru_maxrss would carry it over exec).
    The parent is a subprocess of its own, so this test does not raise pytest's high-water mark."""
    proc = subprocess.run(
        [sys.executable, "-c", _BALLAST_THEN_BENCH, str(fx["multi_io_op11"]), str(tmp_path / "r.sqlite")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    peak = int(proc.stdout.split()[-1])
    assert 20 << 20 < peak < 300 << 20


# --- bad input: exit 2, one line on stderr, database unchanged ------------------------------------------


def _copy_external(fx: dict[str, Path], folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("ext.onnx", "ext.onnx.data"):
        (folder / name).write_bytes((fx["external"].parent / name).read_bytes())
    return folder / "ext.onnx"


def _bad(kind: str, fx: dict[str, Path], tmp: Path) -> list[str]:
    if kind == "not_onnx":
        p = tmp / "readme.onnx"
        p.write_text("# not a model\n")
        return [str(p)]
    if kind == "truncated":
        p = tmp / "cut.onnx"
        p.write_bytes(fx["tiny_decoder"].read_bytes()[:2000])
        return [str(p)]
    if kind == "missing_data":
        p = _copy_external(fx, tmp / "m")
        (tmp / "m" / "ext.onnx.data").unlink()
        return [str(p)]
    if kind == "escaping_data":
        p = _copy_external(fx, tmp / "e")
        (tmp / "outside.bin").write_bytes(b"\0" * 64 * 32 * 4)
        mm.set_external_location(p, "../outside.bin")
        return [str(p)]
    if kind == "larger_than_ram":
        return [str(mm.make_huge_sparse(tmp, gib=max(64, psutil.virtual_memory().total // (1 << 30) * 2)))]
    if kind == "unknown_dim":
        return [str(fx["multi_io_op11"]), "--dim", "sequence=8"]
    if kind == "unknown_input":
        return [str(fx["multi_io_op11"]), "--input", "rate=16000"]
    raise AssertionError(kind)


@pytest.mark.parametrize(
    ("kind", "words"),
    [
        ("not_onnx", "not a readable ONNX model"),
        ("truncated", "ONNX"),
        ("missing_data", "missing"),
        ("escaping_data", "escapes"),
        ("larger_than_ram", "available"),
        ("unknown_dim", "symbolic dims: batch, seq"),
        ("unknown_input", "inputs: ids, feats"),
    ],
)
def test_bad_input_exit_2_one_line_db_unchanged(
    kind: str, words: str, fx: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "r.sqlite"
    main(["bench", str(fx["multi_io_op11"]), *FAST, "--db", str(db)])  # a DB with one run already
    capsys.readouterr()
    before = _db_state(db)
    rc = main(["bench", *_bad(kind, fx, tmp_path), *FAST, "--db", str(db)])
    err = capsys.readouterr().err
    assert rc == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("edgefit: error:") and words in lines[0], err
    assert "Traceback" not in err
    assert _db_state(db) == before


# --- interruption ------------------------------------------------------------------------------------------


def _start(model: Path, db: Path, budget: str) -> subprocess.Popen[bytes]:
    env = dict(os.environ)
    return subprocess.Popen(
        [sys.executable, "-m", "edgefit", "bench", str(model), "--budget-s", budget, "--threads", "1", "--db", str(db)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )


def _wait_for_rows(db: Path, n: int, timeout_s: float = 60.0) -> int:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if db.exists():
            try:
                with Store(db) as st:
                    count = len(st.measurements())
                if count >= n:
                    return count
            except Exception:  # the schema is being created right now
                pass
        time.sleep(0.1)
    raise AssertionError(f"fewer than {n} measurements after {timeout_s} s")


def test_ctrl_c_finishes_the_current_measurement_and_exits_130(fx: dict[str, Path], tmp_path: Path) -> None:
    db = tmp_path / "r.sqlite"
    proc = _start(fx["tiny_decoder"], db, "1.0")
    _wait_for_rows(db, 2)  # load and the first prefill are stored
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err.decode()
    with Store(db) as st:
        (run,) = st.runs()
        stored = st.measurements()
    assert run.status == "interrupted"
    assert 2 <= len(stored) < 5  # the one in progress finished and was kept; the rest never started
    assert all(len(m.samples_s) >= 1 for m in stored)


def test_killed_bench_leaves_a_readable_db_with_finished_measurements(fx: dict[str, Path], tmp_path: Path) -> None:
    db = tmp_path / "r.sqlite"
    proc = _start(fx["tiny_decoder"], db, "1.0")
    n = _wait_for_rows(db, 2)
    children = psutil.Process(proc.pid).children(recursive=True)
    proc.kill()
    proc.wait(timeout=10)
    for c in children:  # the worker lives in its own session: end it too
        c.kill()
    with Store(db) as st:
        stored = st.measurements()
        assert len(stored) >= n
        assert st.runs()[0].status == "running"  # never finished, and says so


def test_readme_bench_examples_parse() -> None:
    """Every `edgefit bench` example in the README's Benchmarking section is a valid command line."""
    import shlex

    from edgefit.cli import build_parser

    readme = (Path(__file__).parent.parent / "README.md").read_text()
    section = readme.split("### Benchmarking", 1)[1].split("\n### ", 1)[0]
    examples = [line.split("#", 1)[0].split() for line in section.splitlines() if line.startswith("edgefit bench")]
    assert len(examples) >= 6
    parser = build_parser()
    for words in examples:
        args = parser.parse_args(shlex.split(" ".join(words[1:])))
        assert args.command == "bench"


def test_inference_failure_names_the_fix_and_dim_repairs_it(
    fx: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = str(tmp_path / "r.sqlite")
    rc = main(["bench", str(fx["needs_dim"]), *FAST, "--json", "--db", db])
    out = capsys.readouterr()
    assert rc == 2
    (model,) = json.loads(out.out)["models"]
    assert model["status"] == "failed" and "--dim" in model["message"] and "x[16]" in model["message"]
    rc = main(["bench", str(fx["needs_dim"]), "--dim", "n=15", *FAST, "--json", "--db", db])
    assert rc == 0
    assert [m["phase"] for m in json.loads(capsys.readouterr().out)["measurements"]] == ["load", "run"]
