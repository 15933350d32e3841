"""Hostile and careless inputs through the whole CLI, in-process (``edgefit.cli.main([...])``), issue 9.

Every case asserts the same contract:
  * the exit code is one the command documents (0 ok, 1 "does not fit" for gates, 2 bad input): never an
    uncaught exception (it would fail the test) and never 3 (the internal-error code);
  * a refusal says what is wrong on one stderr line (argparse adds its usage line above its own);
  * after a refusal the results database is byte-identical (hashed) and no file appeared anywhere under the
    test's folders (cwd, HOME, cache, the inputs' folder): nothing half-written, no ``.tmp`` left behind;
  * anything accepted that prints JSON prints valid, strict JSON (no NaN / Infinity).

Property-based parts (hypothesis) mutate real files: a shipped device profile, a catalog card, a published
config.json, an exported results bundle, and the numeric flags of predict, fit, bench and models build.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sqlite3
import sys
import tempfile
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import onnx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnx import TensorProto

from edgefit.cli import main

REPO = Path(__file__).resolve().parents[1]
PROFILE = REPO / "device_profiles" / "raspberry-pi-5-8gb.toml"
CARD = REPO / "models" / "catalog" / "gemma-2-2b.toml"
CONFIG = REPO / "tests" / "data" / "hf_configs" / "qwen2.5-0.5b" / "config.json"
sys.path.insert(0, str(REPO / "tests" / "data" / "onnx_models"))
import make_models as mm  # noqa: E402

SETTINGS = settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture], derandomize=True
)
TINY_CARD = """id = "tiny"
hidden_size = 64
num_layers = 2
num_heads = 4
num_kv_heads = 2
intermediate_size = 128
vocab_size = 500
tied_embeddings = false
max_context = 256
"""
# Literal TOML values a careless or hostile file may hold where a number or a string is expected.
HOSTILE_TOML = (
    "nan", "inf", "-inf", "+inf", "1e999", "-1e999", "9" * 5000, "9" * 400, "-1", "0", "0.0", "-0.0", "true",
    '"x"', '""', "[]", "{}", "1e-320", "18446744073709551616", '"1e999 GiB"', '"nan GB/s"', '"-5 W"',
    '"9999999999999999999999 GiB"', '"[/bold]"', "[" * 40 + "]" * 40, '"\\u0000"', "2025-01-01",
)  # fmt: skip
DEEP = 5000  # nesting past Python's recursion limit


# --- the harness ---------------------------------------------------------------------------------------------


class Sandbox:
    """One hostile call: its own cwd, HOME, XDG dirs, cache and database, all under one folder we can list."""

    def __init__(self, root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.root = root
        self.inputs = root / "inputs"
        self.cwd = root / "cwd"
        for d in (self.inputs, self.cwd, root / "home", root / "cache"):
            d.mkdir(parents=True, exist_ok=True)
        self.db = root / "db" / "edgefit.sqlite"
        monkeypatch.setenv("HOME", str(root / "home"))
        for var in ("XDG_CACHE_HOME", "XDG_DATA_HOME", "XDG_CONFIG_HOME"):
            monkeypatch.setenv(var, str(root / "home" / var.lower()))
        monkeypatch.setenv("EDGEFIT_CACHE_DIR", str(root / "cache"))
        monkeypatch.setenv("EDGEFIT_DB", str(self.db))
        monkeypatch.chdir(self.cwd)

    def files(self) -> dict[str, str]:
        """Every file under the sandbox with a hash of its bytes (FIFOs and sockets by name only)."""
        out = {}
        for p in sorted(self.root.rglob("*")):
            if p.is_file() and not p.is_symlink():
                out[str(p.relative_to(self.root))] = hashlib.sha256(p.read_bytes()).hexdigest()
            elif not p.is_dir():
                out[str(p.relative_to(self.root))] = "special"
        return out


@pytest.fixture
def box(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Sandbox:
    return Sandbox(tmp_path, monkeypatch)


def fresh(box: Sandbox) -> Path:
    """A new empty folder for one hypothesis example (the fixture's tmp_path is shared by all examples)."""
    return Path(tempfile.mkdtemp(dir=box.inputs))


def strict_json(text: str) -> Any:
    def refuse(c: str) -> Any:
        raise AssertionError(f"invalid JSON constant {c} in output")

    return json.loads(text, parse_constant=refuse)


def call(
    box: Sandbox,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    *,
    ok: tuple[int, ...] = (0, 2),
    allow_new: tuple[str, ...] = (),
    needle: str | None = None,
) -> tuple[int, str, str]:
    """Run ``edgefit argv`` and check the contract; returns (code, stdout, stderr). ``allow_new``: path prefixes
    (relative to the sandbox) where an accepted (exit 0) call may write."""
    capsys.readouterr()
    before = box.files()
    code = main(argv)
    out, err = capsys.readouterr()
    assert code in ok, f"{argv}: exit {code}, expected one of {ok}; stderr: {err[-500:]}"
    assert "Traceback" not in err and "Traceback" not in out
    after = box.files()
    if code in (0, 1):  # 1 is a gate's answer ("fit --require": not met), not a refusal: output as for 0
        changed = {k for k in after if before.get(k) != after[k]}
        stray = {k for k in changed if not k.startswith(allow_new)} if allow_new else set()
        assert not stray, f"{argv}: wrote outside the allowed folders: {sorted(stray)}"
        if "--json" in argv and out.strip():
            strict_json(out)
        if code == 1:  # the gate says so on one stderr line (stdout holds only the JSON), never as an error
            lines = [line for line in err.splitlines() if line.strip()]
            assert "--require" in argv and len(lines) == 1 and "--require" in lines[0], f"{argv}: {lines}"
            assert not lines[0].startswith("edgefit: error")
    else:
        assert after == before, f"{argv}: a refusal changed files: {_diff(before, after)}"
        lines = [line for line in err.splitlines() if line.strip()]
        assert lines, f"{argv}: exit {code} without a message"
        if lines[0].startswith("usage:"):  # argparse: usage line(s), then one "error:" line
            assert "error:" in lines[-1]
        else:
            assert len(lines) == 1, f"{argv}: expected a one-line message, found {lines}"
            assert lines[0].startswith("edgefit: error: ") and len(lines[0]) < 1000
        if needle is not None:
            assert needle in err, f"{argv}: message {err!r} does not name {needle!r}"
    return code, out, err


def _diff(before: dict[str, str], after: dict[str, str]) -> list[str]:
    return sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))


# --- fixtures: a database with a real run, an exported bundle ---------------------------------------------


@pytest.fixture
def seeded(box: Sandbox, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Synthetic ladder measurements of this host (predict/fit work without measuring)."""
    from test_report_fakes import seed_synthetic_db

    box.db.parent.mkdir(parents=True, exist_ok=True)
    seed_synthetic_db(box.db, monkeypatch)
    return box.db


@pytest.fixture
def bundle(box: Sandbox, seeded: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    path = box.root / "bundle.json"
    assert main(["results", "export", "--out", str(path), "--db", str(seeded)]) == 0
    capsys.readouterr()
    data: dict[str, Any] = json.loads(path.read_text())
    assert [bool(r.get("kernel_table")) for r in data["runs"]] == [True, False]  # a kernel table, then a ladder
    for run in data["runs"]:
        run["measurements"] = run["measurements"][:3]  # small and fast
    path.unlink()
    return data


def measured_run(data: dict[str, Any]) -> dict[str, Any]:
    """The bundle's ladder run (the one with measurements and no kernel table)."""
    run: dict[str, Any] = next(r for r in data["runs"] if r["measurements"] and "kernel_table" not in r)
    return run


# --- mutations -----------------------------------------------------------------------------------------------

_TOML_VALUE = re.compile(r"(?m)(^|[{,]\s*)([A-Za-z_][A-Za-z0-9_]*)(\s*=\s*)(\"[^\"\n]*\"|[-+0-9.eE_]+|true|false)")


def mutate_toml(text: str, index: int, value: str) -> str:
    """Replace the ``index``-th ``key = value`` (top level or inside an inline table) by ``value``."""
    matches = list(_TOML_VALUE.finditer(text))
    m = matches[index % len(matches)]
    return text[: m.start(4)] + value + text[m.end(4) :]


def leaves(obj: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from leaves(v, (*path, k))
    elif isinstance(obj, list) and obj and len(obj) < 20:
        for i, v in enumerate(obj):
            yield from leaves(v, (*path, i))
    else:
        yield path


def set_leaf(obj: Any, path: tuple[Any, ...], value: Any) -> None:
    for k in path[:-1]:
        obj = obj[k]
    obj[path[-1]] = value


HUGE = "__HUGE_INT__"
DEEP_JSON = "__DEEP__"
hostile_json = st.sampled_from(
    [
        float("nan"), float("inf"), -float("inf"), 10**400, -(10**30), -1, 0, 2**63, 2**64, True, False, None, "",
        "x", "[/b]", [], {}, [[[]]], {"a": {"b": {}}}, 1e308, -1e-320, HUGE, DEEP_JSON, "1e999",
    ]
)  # fmt: skip


def dump_hostile(data: Any) -> str:
    text = json.dumps(data)  # allow_nan: writes NaN / Infinity literals, as a hand-edited file might
    text = text.replace(json.dumps(HUGE), "9" * 5000)
    return text.replace(json.dumps(DEEP_JSON), "[" * DEEP + "]" * DEEP)


# === property-based: mutated real files =====================================================================


@SETTINGS
@given(index=st.integers(0, 400), value=st.sampled_from(HOSTILE_TOML))
def test_mutated_profile(box: Sandbox, capsys: pytest.CaptureFixture[str], index: int, value: str) -> None:
    path = fresh(box) / PROFILE.name
    path.write_text(mutate_toml(PROFILE.read_text(), index, value))
    call(box, capsys, ["profiles", "show", str(path), "--json"])


@SETTINGS
@given(index=st.integers(0, 400), value=st.sampled_from(HOSTILE_TOML))
def test_mutated_profile_through_predict(
    box: Sandbox, seeded: Path, capsys: pytest.CaptureFixture[str], index: int, value: str
) -> None:
    path = fresh(box) / PROFILE.name
    path.write_text(mutate_toml(PROFILE.read_text(), index, value))
    argv = ["predict", "--model", "qwen2.5-0.5b", "--precision", "int8", "--device", str(path), "--json"]
    call(box, capsys, [*argv, "--db", str(seeded)])


@SETTINGS
@given(index=st.integers(0, 100), value=st.sampled_from(HOSTILE_TOML))
def test_mutated_card(box: Sandbox, capsys: pytest.CaptureFixture[str], index: int, value: str) -> None:
    path = fresh(box) / CARD.name
    path.write_text(mutate_toml(CARD.read_text(), index, value))
    call(box, capsys, ["models", "show", str(path), "--json"])


@SETTINGS
@given(key=st.sampled_from([*sorted(json.loads(CONFIG.read_text())), "head_dim", "extra"]), value=hostile_json)
def test_mutated_config_json(box: Sandbox, capsys: pytest.CaptureFixture[str], key: str, value: Any) -> None:
    data = json.loads(CONFIG.read_text())
    data[key] = value
    folder = fresh(box) / "qwen"
    folder.mkdir()
    (folder / "config.json").write_text(dump_hostile(data))
    call(box, capsys, ["models", "show", str(folder / "config.json"), "--json"])


@SETTINGS
@given(pick=st.integers(0, 10_000), value=hostile_json)
def test_mutated_bundle(
    box: Sandbox, bundle: dict[str, Any], capsys: pytest.CaptureFixture[str], pick: int, value: Any
) -> None:
    data = json.loads(json.dumps(bundle))
    paths = list(leaves(data))
    set_leaf(data, paths[pick % len(paths)], value)
    path = fresh(box) / "b.json"
    path.write_text(dump_hostile(data))
    db = fresh(box) / "import.sqlite"
    code, _, _ = call(box, capsys, ["results", "import", str(path), "--json", "--db", str(db)], allow_new=("inputs",))
    if code == 0:  # accepted: what was stored must read back and export as valid JSON
        for run in data["runs"]:
            call(box, capsys, ["results", "show", str(run["id"]), "--json", "--db", str(db)], ok=(0,))
        out = db.parent / "again.json"
        call(box, capsys, ["results", "export", "--out", str(out), "--db", str(db)], ok=(0,), allow_new=("inputs",))
        strict_json(out.read_text())


_INTS = st.one_of(st.integers(-(2**70), 2**70), st.sampled_from([0, -1, 1, 2**31, 2**63, 10**30]))
_NUMS = st.sampled_from(["nan", "inf", "-inf", "0", "-1", "1e309", "1e-320", "0.5", "abc", "9" * 5000, "5"])


@SETTINGS
@given(context=_INTS, prompt=_INTS, threads=_INTS)
def test_predict_flags(
    box: Sandbox, seeded: Path, capsys: pytest.CaptureFixture[str], context: int, prompt: int, threads: int
) -> None:
    argv = ["predict", "--model", "qwen2.5-0.5b", "--precision", "int8", "--device", "raspberry-pi-5-8gb"]
    argv += ["--context", str(context), "--prompt", str(prompt), "--threads", str(threads), "--json"]
    code, _, err = call(box, capsys, [*argv, "--db", str(seeded)])
    if 1 <= context < prompt <= 2**24 and 1 <= threads <= 1024:
        assert code == 2 and "--prompt" in err  # the same rule as fit


@SETTINGS
@given(context=_INTS, prompt=_INTS, min_tps=_NUMS, cap=_NUMS)
def test_fit_flags(
    box: Sandbox, seeded: Path, capsys: pytest.CaptureFixture[str], context: int, prompt: int, min_tps: str, cap: str
) -> None:
    argv = ["fit", "--model", "qwen2.5-0.5b", "--precision", "int8", "--device", "raspberry-pi-5-8gb", "--json"]
    argv += ["--context", str(context), "--prompt", str(prompt), "--min-tps", min_tps, "--power-cap", cap]
    call(box, capsys, [*argv, "--require", "--db", str(seeded)], ok=(0, 1, 2))


@SETTINGS
@given(budget=_NUMS, threads=_NUMS)
def test_bench_flags(box: Sandbox, capsys: pytest.CaptureFixture[str], budget: str, threads: str) -> None:
    # a model file that does not exist: valid flags end in a clear refusal too, and nothing is ever measured
    argv = ["bench", str(box.inputs / "absent.onnx"), "--budget-s", budget, "--threads", threads, "--json"]
    call(box, capsys, [*argv, "--db", str(box.db)], ok=(2,))


@SETTINGS
@given(seed=_INTS, layers=_INTS, block=st.sampled_from([16, 32, 33, 0, -32, 2**20, 2**62, 64]))
def test_models_build_flags(
    box: Sandbox, capsys: pytest.CaptureFixture[str], seed: int, layers: int, block: int
) -> None:
    folder = fresh(box)
    card = folder / "tiny.toml"
    card.write_text(TINY_CARD)
    argv = ["models", "build", str(card), "-p", "int4", "--seed", str(seed), "--layers", str(layers)]
    argv += ["--block-size", str(block), "--out", str(folder / "out" / "tiny.onnx"), "--json"]
    call(box, capsys, argv, allow_new=("inputs",))


# === explicit classes from issue 9 ============================================================================


def _special_files(box: Sandbox, suffix: str) -> list[Path]:
    """/dev/zero, /dev/urandom and a FIFO, each reachable under a name with ``suffix`` (a symlink)."""
    out = []
    fifo = box.inputs / f"fifo{suffix}"
    os.mkfifo(fifo)
    out.append(fifo)
    for dev in ("/dev/zero", "/dev/urandom"):
        link = box.inputs / f"{Path(dev).name}{suffix}"
        link.symlink_to(dev)
        out.append(link)
    return out


@pytest.mark.skipif(not Path("/dev/zero").exists() or not hasattr(os, "mkfifo"), reason="needs /dev/zero and FIFOs")
def test_device_files_and_fifos_are_refused_without_reading(box: Sandbox, capsys: pytest.CaptureFixture[str]) -> None:
    for p in _special_files(box, ".toml"):
        call(box, capsys, ["profiles", "show", str(p)], ok=(2,), needle="not a regular file")
        call(box, capsys, ["models", "show", str(p)], ok=(2,), needle="not a regular file")
    for p in _special_files(box, ".json"):
        call(box, capsys, ["models", "show", str(p)], ok=(2,), needle="not a regular file")
        call(box, capsys, ["results", "import", str(p), "--db", str(box.db)], ok=(2,), needle="not a regular file")
    for p in _special_files(box, ".onnx"):
        call(box, capsys, ["bench", str(p), "--db", str(box.db)], ok=(2,))
    for p in ("/dev/zero", "/dev/urandom"):
        call(box, capsys, ["results", "import", p, "--db", str(box.db)], ok=(2,), needle="not a regular file")
        call(box, capsys, ["profiles", "show", p], ok=(2,), needle="not a regular file")


def test_oversized_files_are_refused(box: Sandbox, capsys: pytest.CaptureFixture[str]) -> None:
    big = box.inputs / "big.toml"
    with big.open("wb") as f:
        f.truncate(17 * 2**20)  # sparse: 17 MiB of zeros, larger than the 16 MiB cap
    call(box, capsys, ["profiles", "show", str(big)], ok=(2,), needle="MiB allowed")
    call(box, capsys, ["models", "show", str(big)], ok=(2,), needle="MiB allowed")


@pytest.mark.parametrize(
    ("suffix", "text"),
    [
        (".toml", "a = " + "[" * DEEP + "]" * DEEP + "\n"),
        (".toml", "a = " + "{b = " * DEEP + "1" + "}" * DEEP + "\n"),
        (".toml", "hidden_size = " + "9" * 5000 + "\n"),
        (".toml", "hidden_size = nan\n"),
        (".json", '{"architectures": ["LlamaForCausalLM"], "x": ' + "[" * DEEP + "]" * DEEP + "}"),
        (".json", '{"architectures": ["LlamaForCausalLM"], "hidden_size": ' + "9" * 5000 + "}"),
        (".json", '{"architectures": ["LlamaForCausalLM"], "hidden_size": NaN}'),
        (".json", '{"architectures": ["LlamaForCausalLM"], "rope_theta": 1e999}'),
    ],
)
def test_deep_nesting_huge_integers_and_non_finite_numbers(
    box: Sandbox, capsys: pytest.CaptureFixture[str], suffix: str, text: str
) -> None:
    card = box.inputs / ("config.json" if suffix == ".json" else "card.toml")
    card.write_text(text)
    call(box, capsys, ["models", "show", str(card)], ok=(2,))
    if suffix == ".toml":
        call(box, capsys, ["profiles", "show", str(card)], ok=(2,))
    else:
        call(box, capsys, ["results", "import", str(card), "--db", str(box.db)], ok=(2,))


@pytest.mark.parametrize(
    "value", ["NaN", "Infinity", "-Infinity", "1e999", "9" * 5000, "18446744073709551616", "-1", "true", '"5"']
)
def test_bundle_numbers_are_checked_and_show_export_stay_valid_json(
    box: Sandbox, bundle: dict[str, Any], seeded: Path, capsys: pytest.CaptureFixture[str], value: str
) -> None:
    for field in ("samples_s", "threads", "load_s", "peak_rss_bytes"):
        data = json.loads(json.dumps(bundle))
        m = measured_run(data)["measurements"][0]
        m[field] = [HUGE] if field == "samples_s" else HUGE
        path = fresh(box) / "b.json"
        path.write_text(json.dumps(data).replace(json.dumps(HUGE), value))
        db = fresh(box) / "d.sqlite"
        code, _, _ = call(box, capsys, ["results", "import", str(path), "--db", str(db)], allow_new=("inputs",))
        if code == 0:
            rid = measured_run(data)["id"]
            _, out, _ = call(box, capsys, ["results", "show", rid, "--json", "--db", str(db)], ok=(0,))
            strict_json(out)


def test_reused_run_id_is_refused_and_db_unchanged(
    box: Sandbox, bundle: dict[str, Any], seeded: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = json.loads(json.dumps(bundle))
    measured_run(data)["host_fingerprint"] = "another-host-fingerprint"  # same id, different run
    path = box.inputs / "reused.json"
    path.write_text(json.dumps(data))
    call(box, capsys, ["results", "import", str(path), "--db", str(seeded)], ok=(2,), needle="different run")


def test_hand_edited_database_with_invalid_json_names_the_row(
    box: Sandbox, seeded: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # closing(): sqlite3's own context manager only commits; an open connection would keep the -shm file alive
    with closing(sqlite3.connect(seeded)) as c, c:
        c.execute("UPDATE measurements SET samples_s = '[0.1, ' WHERE id = (SELECT MIN(id) FROM measurements)")
        rid = c.execute("SELECT run_id FROM measurements WHERE id = (SELECT MIN(id) FROM measurements)").fetchone()[0]
    call(box, capsys, ["results", "show", rid, "--db", str(seeded)], ok=(2,), needle="measurements row")
    call(box, capsys, ["results", "export", "--out", str(box.inputs / "x.json"), "--db", str(seeded)], ok=(2,))
    with closing(sqlite3.connect(seeded)) as c, c:
        c.execute("UPDATE runs SET environment = '{\"cpu_model\": NaN'")
    call(box, capsys, ["results", "list", "--db", str(seeded)], ok=(2,), needle="runs row")


def test_out_that_is_a_directory(box: Sandbox, seeded: Path, capsys: pytest.CaptureFixture[str]) -> None:
    d = box.inputs / "adir"
    d.mkdir()
    call(box, capsys, ["results", "export", "--out", str(d), "--db", str(seeded)], ok=(2,), needle="is a directory")
    card = box.inputs / "tiny.toml"
    card.write_text(TINY_CARD)
    call(box, capsys, ["models", "build", str(card), "-p", "fp32", "--out", str(d)], ok=(2,), needle="is a directory")
    call(box, capsys, ["detect", "--save", str(d)], ok=(2,), needle="is a directory")  # before any probe


def test_export_failure_leaves_no_temp_file(
    box: Sandbox, seeded: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def full_disk(self: Path, target: object) -> Path:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Path, "replace", full_disk)
    call(box, capsys, ["results", "export", "--out", str(box.inputs / "r.json"), "--db", str(seeded)], ok=(2,))


def test_model_too_large_to_allocate_is_refused_before_writing(
    box: Sandbox, capsys: pytest.CaptureFixture[str]
) -> None:
    card = box.inputs / "huge.toml"
    # every field within its range (head_dim 4096), but the embedding alone is 16M x 16384 fp32 = 1 TiB
    card.write_text(TINY_CARD.replace("hidden_size = 64", "hidden_size = 16384").replace("500", "16777216"))
    call(box, capsys, ["models", "build", str(card), "-p", "fp32"], ok=(2,), needle="needs")


def test_stale_build_temp_files_of_dead_processes_are_removed(box: Sandbox, capsys: pytest.CaptureFixture[str]) -> None:
    card = box.inputs / "tiny.toml"
    card.write_text(TINY_CARD)
    out = box.inputs / "built" / "tiny.onnx"
    out.parent.mkdir()
    dead_pid = 2**22 + 12345  # above Linux's default pid_max: no such process
    stale = [out.parent / f"other.onnx.tmp{dead_pid}", out.parent / f"other.onnx.data.tmp{dead_pid}"]
    live = out.parent / f"busy.onnx.tmp{os.getppid()}"  # a live process's build may still be writing: kept
    for p in (*stale, live):
        p.write_bytes(b"half")
    call(box, capsys, ["models", "build", str(card), "-p", "fp32", "--out", str(out)], ok=(0,), allow_new=("inputs",))
    assert not any(p.exists() for p in stale) and live.exists()
    assert sorted(p.name for p in out.parent.iterdir()) == sorted(
        ["tiny.onnx", "tiny.onnx.data", "tiny.onnx.json", live.name]
    )


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["predict", "--prompt", "5000", "--context", "100"], "--prompt 5000 exceeds --context 100"),
        (["fit", "--prompt", "5000", "--context", "100"], "--prompt 5000 exceeds --context 100"),
        (["predict", "--context", "-5"], "--context -5"),
        (["predict", "--context", str(2**40)], "--context"),
        (["predict", "--threads", "0"], "--threads 0"),
        (["fit", "--generate", "0"], "--generate 0"),
        (["fit", "--max-ttft", "nan"], "--max-ttft nan"),
        (["fit", "--price-cap", "inf"], "--price-cap inf"),
    ],
)
def test_workload_flags_one_rule(
    box: Sandbox, seeded: Path, capsys: pytest.CaptureFixture[str], argv: list[str], needle: str
) -> None:
    base = ["--model", "qwen2.5-0.5b", "--precision", "int8", "--device", "raspberry-pi-5-8gb", "--db", str(seeded)]
    call(box, capsys, [*argv, *base], ok=(2,), needle=needle)


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["bench", "--budget-s", "nan"], "--budget-s"),
        (["bench", "--budget-s", "inf"], "--budget-s"),
        (["bench", "--budget-s", "0"], "--budget-s"),
        (["bench", "--budget-s", "-1"], "--budget-s"),
        (["bench", "--threads", "0"], "--threads"),
        (["validate", "--budget-s", "nan", "--no-build"], "--budget-s"),
        (["models", "build", "smollm2-135m", "-p", "fp32", "--seed", "-1"], "seed"),
        (["models", "build", "smollm2-135m", "-p", "int4", "--block-size", str(2**40)], "block_size"),
    ],
)
def test_numeric_flags_refused_before_any_work(
    box: Sandbox, capsys: pytest.CaptureFixture[str], argv: list[str], needle: str
) -> None:
    call(box, capsys, [*argv, "--db", str(box.db)] if argv[0] != "models" else argv, ok=(2,), needle=needle)


def _tiny_onnx(box: Sandbox) -> Path:
    return mm.make_external(box.inputs)


@pytest.mark.parametrize(
    ("how", "needle"),
    [
        ("nul_location", "NUL byte"),
        ("absolute_location", "absolute"),
        ("escaping_location", "escapes"),
        ("bad_data_type", "data_type"),
    ],
)
def test_hostile_onnx_files(box: Sandbox, capsys: pytest.CaptureFixture[str], how: str, needle: str) -> None:
    path = _tiny_onnx(box)
    if how == "nul_location":
        mm.set_external_location(path, "ext.onnx.data\x00/../../etc/passwd")
    elif how == "absolute_location":
        mm.set_external_location(path, "/etc/passwd")
    elif how == "escaping_location":
        mm.set_external_location(path, "../../../../etc/passwd")
    else:
        m = onnx.load(str(path), load_external_data=False)
        m.graph.initializer[0].data_type = 999
        onnx.save(m, str(path))
    call(box, capsys, ["bench", str(path), "--db", str(box.db)], ok=(2,), needle=needle)
    call(box, capsys, ["predict", "--model", str(path), "--precision", "fp32", "--device", "raspberry-pi-5-8gb"],
         ok=(2,))  # fmt: skip


def test_unknown_onnx_type_in_value_info_is_described_not_crashed(box: Sandbox) -> None:
    from edgefit.bench.modelfile import inspect_model_file

    path = _tiny_onnx(box)
    m = onnx.load(str(path), load_external_data=False)
    m.graph.input[0].type.tensor_type.elem_type = 999
    m.graph.node[0].attribute.append(onnx.helper.make_attribute("K", "not-an-int"))
    onnx.save(m, str(path))
    info = inspect_model_file(path)
    assert info.inputs[0].dtype == "onnx:999"
    assert TensorProto.FLOAT  # the weights are unchanged


@pytest.mark.parametrize("content", [b"{", b"x" * 50, b"\x00" * 99, b"not sqlite at all\n" * 10])
def test_a_short_or_foreign_db_file_is_refused_not_converted(
    box: Sandbox, capsys: pytest.CaptureFixture[str], content: bytes
) -> None:
    # SQLite itself turns a short non-database file into a database: a typo'd --db would lose the file
    db = box.inputs / "notes.txt"
    db.write_bytes(content)
    for argv in (["results", "list"], ["results", "import", str(box.inputs / "none.json")], ["fit", "--device", "x"]):
        call(box, capsys, [*argv, "--db", str(db)], ok=(2,))
    assert db.read_bytes() == content
    if Path("/dev/zero").exists():
        call(box, capsys, ["results", "list", "--db", "/dev/zero"], ok=(2,), needle="not a regular file")


def test_a_profile_dir_that_does_not_exist_is_an_error(box: Sandbox, capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["profiles", "list"], ["profiles", "show", "raspberry-pi-5-8gb"]):
        call(box, capsys, [*argv, "--dir", str(box.inputs / "typo")], ok=(2,), needle="does not exist")
        call(box, capsys, [*argv, "--dir", str(PROFILE)], ok=(2,), needle="is not a folder")


def test_cache_dir_that_is_a_file(box: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    from test_detect import _fake_host

    from edgefit import detect
    from edgefit.errors import ProfileError

    blocker = box.inputs / "cache-is-a-file"
    blocker.write_text("x")
    monkeypatch.setenv("EDGEFIT_CACHE_DIR", str(blocker))
    host = _fake_host(box.inputs)
    with pytest.raises(ProfileError, match="cannot write the profile"):  # was NotADirectoryError from the cleanup
        detect.save_profile(host, blocker / "box.toml")
    monkeypatch.setattr(detect, "detect_host", lambda probe_seconds=6.0: host)
    assert detect.host_profile().id == "host"  # the cache cannot be written: detected again next time, no crash
    assert blocker.read_text() == "x"
