"""The results bundle as a contract, not only a round trip: the exported key sets equal the lists written down
here (a renamed key fails this file), a bundle missing or renaming any key is refused with the key named and the
database unchanged, a reused run id from another run is refused, and a run whose process was SIGKILLed is marked
``killed`` by the next command that lists runs."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from test_store import env_for, make_measurement

from edgefit.cli import main
from edgefit.errors import StoreError
from edgefit.store import Store

# Written down on purpose: change these lists only together with BUNDLE_SCHEMA_VERSION and docs/CONTRACTS.md.
BUNDLE_KEYS = {"format", "schema_version", "edgefit_version", "exported_at", "runs"}
RUN_KEYS = {
    "id",
    "kind",
    "started_at",
    "finished_at",
    "status",
    "host_fingerprint",
    "edgefit_version",
    "onnxruntime_version",
    "environment",
    "measurements",
}
MEASUREMENT_KEYS = {
    "model_id",
    "model_hash",
    "precision",
    "threads",
    "provider",
    "phase",
    "prompt_tokens",
    "context_tokens",
    "samples_s",
    "warmup_samples_s",
    "params",
    "weight_file_bytes",
    "weight_read_bytes_per_token",
    "peak_rss_bytes",
    "steady_rss_bytes",
    "load_s",
    "stop_reason",
    "host_fingerprint",
    "warnings",
    "probe_bandwidth_bytes_per_s",
    "timer",
    "started_at",
    "layers",
    "hidden_size",
    "power",
    "sustained",
}
WARNING_KEYS = {"code", "value", "threshold", "message"}
# Keys whose absence is tolerated (they have defaults); every other key above is required on import.
OPTIONAL_MEASUREMENT_KEYS = {
    *("warnings", "probe_bandwidth_bytes_per_s", "timer", "started_at", "layers", "hidden_size", "power", "sustained")
}


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def exported(tmp_path: Path) -> dict[str, Any]:
    src = tmp_path / "src.sqlite"
    with Store(src) as store:
        rid = store.start_run(env_for("host-b"), "ladder:quick")
        store.add_measurement(make_measurement(rid, host_fingerprint="host-b"))
        store.finish_run(rid)
        store.export_bundle(None, tmp_path / "b.json")
    data: dict[str, Any] = json.loads((tmp_path / "b.json").read_text())
    return data


def _dst(tmp_path: Path) -> Path:
    dst = tmp_path / "dst.sqlite"
    with Store(dst) as store:
        rid = store.start_run(env_for("host-z"), "ladder")
        store.add_measurement(make_measurement(rid, host_fingerprint="host-z"))
        store.finish_run(rid)
    return dst


def test_exported_key_sets_equal_the_written_down_lists(exported: dict[str, Any]) -> None:
    assert set(exported) == BUNDLE_KEYS
    (run,) = exported["runs"]
    assert set(run) == RUN_KEYS
    (m,) = run["measurements"]
    assert set(m) == MEASUREMENT_KEYS
    assert all(set(w) == WARNING_KEYS for w in m["warnings"]) and m["warnings"]


@pytest.mark.parametrize("key", sorted(RUN_KEYS))
def test_a_renamed_or_missing_run_key_is_refused(tmp_path: Path, exported: dict[str, Any], key: str) -> None:
    run = exported["runs"][0]
    run[key + "_renamed"] = run.pop(key)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(exported))
    dst = _dst(tmp_path)
    before = _sha(dst)
    with Store(dst) as store, pytest.raises(StoreError, match=key):
        store.import_bundle(bad)
    assert _sha(dst) == before


@pytest.mark.parametrize("key", sorted(MEASUREMENT_KEYS))
def test_a_renamed_measurement_key_is_refused(tmp_path: Path, exported: dict[str, Any], key: str) -> None:
    m = exported["runs"][0]["measurements"][0]
    m[key + "_renamed"] = m.pop(key)  # a renamed optional key must not silently drop its value
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(exported))
    dst = _dst(tmp_path)
    before = _sha(dst)
    with Store(dst) as store, pytest.raises(StoreError, match=key):
        store.import_bundle(bad)
    assert _sha(dst) == before


@pytest.mark.parametrize("key", sorted(MEASUREMENT_KEYS - OPTIONAL_MEASUREMENT_KEYS))
def test_a_missing_required_measurement_key_is_refused(tmp_path: Path, exported: dict[str, Any], key: str) -> None:
    del exported["runs"][0]["measurements"][0][key]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(exported))
    with pytest.raises(StoreError, match=f"missing field '{key}'"):
        Store(tmp_path / "x.sqlite").import_bundle(bad)


@pytest.mark.parametrize("field", ["host_fingerprint", "kind", "started_at"])
def test_a_reused_run_id_of_another_run_is_refused(tmp_path: Path, exported: dict[str, Any], field: str) -> None:
    dst = _dst(tmp_path)
    with Store(dst) as store:
        local = store.runs()[0]
    run = exported["runs"][0]
    run["id"] = local.id  # same id as the local run; same host/kind/start except `field`
    run.update(host_fingerprint=local.host_fingerprint, kind=local.kind, started_at=local.started_at)
    run[field] = "2020-01-01T00:00:00+00:00" if field == "started_at" else "something-else"
    bad = tmp_path / "reused.json"
    bad.write_text(json.dumps(exported))
    before = _sha(dst)
    with Store(dst) as store, pytest.raises(StoreError, match="has the id of a different run"):
        store.import_bundle(bad)
    assert _sha(dst) == before


def test_the_same_run_re_exported_still_merges(tmp_path: Path, exported: dict[str, Any]) -> None:
    bundle = tmp_path / "b.json"
    bundle.write_text(json.dumps(exported))
    dst = tmp_path / "d.sqlite"
    with Store(dst) as store:
        first = store.import_bundle(bundle)
        again = store.import_bundle(bundle)
    assert (first.runs_added, again.runs_added, again.runs_skipped) == (1, 0, 1)


def test_sigkilled_run_is_marked_killed_by_the_next_listing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from edgefit.detect import host_fingerprint

    db = tmp_path / "k.sqlite"
    code = (
        "import dataclasses, sys, time\n"
        "from edgefit.bench.env import capture_environment\n"
        "from edgefit.store import Store\n"
        f"env = dataclasses.replace(capture_environment(threads=1), host_fingerprint={host_fingerprint()!r})\n"
        f"with Store({str(db)!r}) as s:\n"
        "    print(s.start_run(env, 'ladder:quick'), flush=True)\n"
        "    time.sleep(60)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, cwd=tmp_path)
    try:
        assert proc.stdout is not None
        run_id = proc.stdout.readline().strip()
        assert main(["results", "list", "--json", "--db", str(db)]) == 0
        (alive,) = json.loads(capsys.readouterr().out)["runs"]
        assert alive["status"] == "running"  # its process still runs: left alone
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    time.sleep(0.05)
    assert main(["results", "list", "--json", "--db", str(db)]) == 0
    (dead,) = json.loads(capsys.readouterr().out)["runs"]
    assert (dead["id"], dead["status"]) == (run_id, "killed")
    assert dead["finished_at"]


def test_a_running_run_of_another_host_is_not_reaped(tmp_path: Path) -> None:
    db = tmp_path / "o.sqlite"
    with Store(db) as store:
        rid = store.start_run(env_for("other-host"), "ladder")
        assert store.reap_dead_runs("this-host") == ()
        assert store.run(rid).status == "running"
