from __future__ import annotations

import dataclasses
import json
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgefit.bench.env import Environment, capture_environment
from edgefit.bench.measurement import Measurement, Phase, QualityWarning, WarningCode
from edgefit.errors import StoreError
from edgefit.store import (
    BUNDLE_SCHEMA_VERSION,
    MIGRATIONS,
    SCHEMA_VERSION,
    Store,
    load_bundle,
    measurement_from_dict,
    measurement_to_dict,
)

REPO = Path(__file__).resolve().parents[1]


def env_for(host: str = "host-a", cpu: str = "Cortex-A76 x4") -> Environment:
    return dataclasses.replace(capture_environment(threads=2), host_fingerprint=host, cpu_model=cpu)


def make_measurement(run_id: str | None, **kw: Any) -> Measurement:
    base: dict[str, Any] = dict(
        model_id="llama-ladder-12m",
        model_hash="0123456789abcdef",
        precision="fp32",
        threads=2,
        provider="CPUExecutionProvider",
        phase=Phase.DECODE,
        prompt_tokens=1,
        context_tokens=128,
        samples_s=(0.0021, 0.0020, 0.0022, 0.0019, 0.0020, 0.0021),
        warmup_samples_s=(0.01, 0.003),
        params=12_000_000,
        weight_file_bytes=48_000_000,
        weight_read_bytes_per_token=40_000_000,
        peak_rss_bytes=120_000_000,
        steady_rss_bytes=100_000_000,
        load_s=0.12,
        stop_reason="target_precision",
        host_fingerprint="host-a",
        warnings=(QualityWarning(WarningCode.FITS_IN_CACHE, 48e6, 100e6, "weights fit in cache; faster per byte"),),
        probe_bandwidth_bytes_per_s=2.5e10,
        run_id=run_id,
        started_at="2026-11-26T12:00:00.000001+00:00",
        layers=4,
        hidden_size=256,
    )
    base.update(kw)
    return Measurement(**base)


def count(path: Path, table: str) -> int:
    with sqlite3.connect(path) as c:
        return int(c.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])


# ------------------------------------------------------------------------------------------- basics


def test_creates_parent_dirs_wal_and_schema_version(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "r.sqlite"
    with Store(path) as store:
        assert store.schema_version == SCHEMA_VERSION == len(MIGRATIONS)
    assert path.exists()
    with sqlite3.connect(path) as c:
        assert c.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_measurement_round_trip(tmp_path: Path) -> None:
    with Store(tmp_path / "r.sqlite") as store:
        rid = store.start_run(env_for(), "ladder")
        ms = [
            make_measurement(rid),
            make_measurement(
                rid, phase=Phase.PREFILL, prompt_tokens=64, context_tokens=0, peak_rss_bytes=None, load_s=None,
                warnings=(), probe_bandwidth_bytes_per_s=None, layers=None, hidden_size=None,
            ),
        ]  # fmt: skip
        ids = [store.add_measurement(m) for m in ms]
        assert ids[0] < ids[1]
        back = store.measurements()
    assert back == tuple(ms)
    assert isinstance(back[0].phase, Phase)
    assert isinstance(back[0].warnings[0].code, WarningCode)
    assert isinstance(back[0].samples_s, tuple)


def test_fields_without_a_column_survive_in_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A Measurement field added after this schema (simulated: `layers` loses its column) is kept in the
    # `extra` JSON column and comes back intact, so a new field never needs a migration to be stored.
    import edgefit.store as store_mod

    monkeypatch.setattr(store_mod, "_COLUMNS", tuple(c for c in store_mod._COLUMNS if c != "layers"))
    with Store(tmp_path / "r.sqlite") as store:
        rid = store.start_run(env_for(), "ladder")
        m = make_measurement(rid, layers=7)
        store.add_measurement(m)
        assert store.measurements() == (m,)
    with sqlite3.connect(tmp_path / "r.sqlite") as c:
        layers_col, extra = c.execute("SELECT layers, extra FROM measurements").fetchone()
    assert layers_col is None and json.loads(extra) == {"layers": 7}


def test_filters(tmp_path: Path) -> None:
    with Store(tmp_path / "r.sqlite") as store:
        r1 = store.start_run(env_for("host-a"), "ladder")
        r2 = store.start_run(env_for("host-b"), "ladder")
        store.add_measurement(make_measurement(r1))
        store.add_measurement(make_measurement(r1, precision="int8"))
        store.add_measurement(make_measurement(r2, host_fingerprint="host-b", model_id="other"))
        store.add_measurement(make_measurement(r2, host_fingerprint="host-b", phase=Phase.PREFILL))
        assert len(store.measurements()) == 4
        assert {m.precision for m in store.measurements(host_fingerprint="host-a")} == {"fp32", "int8"}
        assert len(store.measurements(precision="int8")) == 1
        assert [m.model_id for m in store.measurements(model_id="other")] == ["other"]
        assert all(m.run_id == r2 for m in store.measurements(run_id=r2))
        assert len(store.measurements(phase=Phase.PREFILL)) == len(store.measurements(phase="prefill")) == 1
        assert len(store.measurements(host_fingerprint="host-b", precision="fp32", phase="decode")) == 1
        assert store.measurements(host_fingerprint="nobody") == ()


def test_runs_lifecycle_and_hosts(tmp_path: Path) -> None:
    with Store(tmp_path / "r.sqlite") as store:
        r1 = store.start_run(env_for("host-a", "Cortex-A76 x4"), "ladder")
        store.add_measurement(make_measurement(r1))
        store.finish_run(r1, "finished")
        r2 = store.start_run(env_for("host-b", "Xeon"), "file")
        runs = store.runs()
        assert [r.id for r in runs] == [r1, r2]
        assert runs[0].status == "finished" and runs[0].finished_at is not None
        assert runs[1].status == "running" and runs[1].finished_at is None
        assert runs[0].measurement_count == 1 and runs[1].measurement_count == 0
        assert runs[0].environment.cpu_model == "Cortex-A76 x4"
        assert [r.id for r in store.runs(host_fingerprint="host-b")] == [r2]
        hosts = {h.host_fingerprint: h for h in store.hosts()}
        assert set(hosts) == {"host-a", "host-b"}
        assert hosts["host-a"].measurements == 1 and hosts["host-b"].cpu_model == "Xeon"
        with pytest.raises(ValueError, match="status"):
            store.finish_run(r2, "done-ish")
        with pytest.raises(StoreError, match="no run"):
            store.finish_run("not-a-run", "failed")


def test_run_id_prefixes(tmp_path: Path) -> None:
    with Store(tmp_path / "r.sqlite") as store:
        e = env_for()
        a = store.start_run(e, "ladder", run_id="aaaa1111-0000")
        store.start_run(e, "ladder", run_id="aaaa2222-0000")
        store.start_run(e, "ladder", run_id="b_c%-0000")
        assert store.resolve_run_id("aaaa1") == a
        assert store.resolve_run_id(a) == a
        assert store.run("b_c").id == "b_c%-0000"
        with pytest.raises(StoreError, match="ambiguous"):
            store.resolve_run_id("aaaa")
        with pytest.raises(StoreError, match="no run 'zzz'"):
            store.resolve_run_id("zzz")
        with pytest.raises(StoreError, match="no run"):
            store.resolve_run_id("b%")  # LIKE wildcards are escaped


def test_add_measurement_needs_a_started_run(tmp_path: Path) -> None:
    with Store(tmp_path / "r.sqlite") as store:
        with pytest.raises(ValueError, match="run_id"):
            store.add_measurement(make_measurement(None))
        with pytest.raises(StoreError, match="run"):
            store.add_measurement(make_measurement("never-started"))
        assert store.measurements() == ()


def test_repeats_of_one_configuration_are_kept(tmp_path: Path) -> None:
    # Interleaved repeats (same model, same settings) in one run are distinct rows: started_at fills in.
    with Store(tmp_path / "r.sqlite") as store:
        rid = store.start_run(env_for(), "ladder")
        store.add_measurement(make_measurement(rid, started_at=None))
        store.add_measurement(make_measurement(rid, started_at=None))
        stored = store.measurements()
        assert len(stored) == 2
        assert all(m.started_at for m in stored)
        with pytest.raises(StoreError, match="already stored"):
            store.add_measurement(stored[0])


def test_validations(tmp_path: Path) -> None:
    with Store(tmp_path / "r.sqlite") as store:
        assert store.latest_validation() is None
        store.save_validation({"mape": 0.12, "rungs": [1, 2]}, host_fingerprint="host-a")
        store.save_validation({"mape": 0.08}, host_fingerprint="host-b")
        assert store.latest_validation() == {"mape": 0.08}
        assert store.latest_validation("host-a") == {"mape": 0.12, "rungs": [1, 2]}
        with pytest.raises(ValueError, match="JSON"):
            store.save_validation({"x": object()})


# ------------------------------------------------------------------------------------------- bad files


def test_not_sqlite_file(tmp_path: Path) -> None:
    path = tmp_path / "notes.sqlite"
    path.write_text("these are my notes, not a database\n" * 100)
    before = path.read_bytes()
    with pytest.raises(StoreError) as exc:
        Store(path)
    assert str(path) in str(exc.value) and "not an SQLite" in str(exc.value)
    assert path.read_bytes() == before


def test_foreign_sqlite_database(tmp_path: Path) -> None:
    path = tmp_path / "other.sqlite"
    with sqlite3.connect(path) as c:
        c.execute("CREATE TABLE photos (id INTEGER)")
    with pytest.raises(StoreError, match="not edgefit's"):
        Store(path)


def test_newer_schema_refused(tmp_path: Path) -> None:
    path = tmp_path / "r.sqlite"
    Store(path).close()
    with sqlite3.connect(path) as c:
        c.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 5}")
    with pytest.raises(StoreError, match=r"newer than this edgefit.*upgrade edgefit"):
        Store(path)


def test_directory_as_db(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="is a directory"):
        Store(tmp_path)


def test_locked_database_is_a_store_error_and_nothing_half_written(tmp_path: Path) -> None:
    path = tmp_path / "r.sqlite"
    with Store(path) as store:
        rid = store.start_run(env_for(), "ladder")
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    try:
        with Store(path, timeout_s=0.05) as store:
            with pytest.raises(StoreError, match="could not write"):
                store.add_measurement(make_measurement(rid))
            assert store.measurements() == ()  # reads still work under WAL
    finally:
        other.execute("ROLLBACK")
        other.close()
    with Store(path) as store:
        store.add_measurement(make_measurement(rid))
        assert len(store.measurements()) == 1


def test_migration_from_v1(tmp_path: Path) -> None:
    # Build a version-1 database exactly as the first release did, with one run and one measurement.
    path = tmp_path / "v1.sqlite"
    env = env_for()
    with sqlite3.connect(path) as c:
        for statement in MIGRATIONS[0]:
            c.execute(statement)
        c.execute("PRAGMA user_version = 1")
        c.execute(
            "INSERT INTO runs VALUES ('r1', 'ladder', '2026-01-01T00:00:00+00:00', NULL, 'finished', 'host-a', ?, "
            "'0.0.9', '1.17.0')",
            (json.dumps(env.to_dict()),),
        )
        c.execute(
            "INSERT INTO measurements (run_id, host_fingerprint, model_id, model_hash, precision, threads, provider, "
            "phase, prompt_tokens, context_tokens, samples_s, warmup_samples_s, params, weight_file_bytes, "
            "weight_read_bytes_per_token, peak_rss_bytes, steady_rss_bytes, load_s, stop_reason, warnings, timer, "
            "started_at) VALUES ('r1', 'host-a', 'm', 'h', 'int8', 2, 'CPUExecutionProvider', 'decode', 1, 64, "
            "'[0.001, 0.002]', '[]', 10, 20, 30, NULL, NULL, NULL, 'max_samples', "
            '\'[{"code": "high_variance", "value": 0.2, "threshold": 0.05, "message": "noisy"}]\', '
            "'time.perf_counter', '')"
        )
    with Store(path) as store:
        assert store.schema_version == SCHEMA_VERSION
        (m,) = store.measurements()
        assert m.precision == "int8" and m.samples_s == (0.001, 0.002) and m.started_at is None
        assert m.layers is None and m.probe_bandwidth_bytes_per_s is None
        assert m.warnings[0].code is WarningCode.HIGH_VARIANCE
        assert store.runs()[0].edgefit_version == "0.0.9"
        store.save_validation({"ok": True})  # the table added by migration 2 exists
        rid = store.start_run(env, "ladder")
        store.add_measurement(make_measurement(rid))
    with Store(path) as store:  # reopening an up-to-date database migrates nothing
        assert len(store.measurements()) == 2


def test_killed_bench_keeps_finished_measurements(tmp_path: Path) -> None:
    path = tmp_path / "r.sqlite"
    script = textwrap.dedent(
        f"""
        import os, signal, sys
        sys.path.insert(0, {str(REPO)!r})
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from test_store import env_for, make_measurement
        from edgefit.store import Store
        store = Store({str(path)!r})
        rid = store.start_run(env_for(), "ladder")
        for i in range(3):
            store.add_measurement(make_measurement(rid, context_tokens=64 * (i + 1)))
        os.kill(os.getpid(), signal.SIGKILL)  # no close(), no finish_run(): as a killed bench
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert proc.returncode != 0, proc.stderr
    with Store(path) as store:
        assert [m.context_tokens for m in store.measurements()] == [64, 128, 192]
        assert store.runs()[0].status == "running"


# ------------------------------------------------------------------------------------------- bundles


def _two_host_db(path: Path) -> tuple[str, str]:
    with Store(path) as store:
        r1 = store.start_run(env_for("host-a"), "ladder")
        store.add_measurement(make_measurement(r1))
        store.add_measurement(make_measurement(r1, precision="int4"))
        store.finish_run(r1)
        r2 = store.start_run(env_for("host-b", "Xeon"), "ladder")
        store.add_measurement(make_measurement(r2, host_fingerprint="host-b"))
        store.finish_run(r2)
    return r1, r2


def test_export_import_round_trip_and_idempotent(tmp_path: Path) -> None:
    src, dst, bundle = tmp_path / "src.sqlite", tmp_path / "dst.sqlite", tmp_path / "b" / "bundle.json"
    _two_host_db(src)
    with Store(src) as store:
        ex = store.export_bundle(None, bundle)
        original = store.measurements()
        original_runs = store.runs()
    assert (ex.runs, ex.measurements, set(ex.hosts)) == (2, 3, {"host-a", "host-b"})
    data = json.loads(bundle.read_text())
    assert data["schema_version"] == BUNDLE_SCHEMA_VERSION
    assert data["edgefit_version"] and data["exported_at"]
    assert data["runs"][0]["environment"]["cpu_model"] == "Cortex-A76 x4"
    assert data["runs"][0]["measurements"][0]["samples_s"] == list(original[0].samples_s)

    with Store(dst) as store:
        s1 = store.import_bundle(bundle)
        assert (s1.runs_added, s1.runs_skipped, s1.measurements_added, s1.measurements_skipped) == (2, 0, 3, 0)
        s2 = store.import_bundle(bundle)
        assert (s2.runs_added, s2.runs_skipped, s2.measurements_added, s2.measurements_skipped) == (0, 2, 0, 3)
        assert store.measurements() == original
        assert [(r.id, r.status, r.environment) for r in store.runs()] == [
            (r.id, r.status, r.environment) for r in original_runs
        ]
        # mixing hosts is explicit: each measurement keeps its own host
        assert {h.host_fingerprint for h in store.hosts()} == {"host-a", "host-b"}
        assert len(store.measurements(host_fingerprint="host-a")) == 2


def test_export_selected_runs_by_prefix(tmp_path: Path) -> None:
    src = tmp_path / "src.sqlite"
    r1, _ = _two_host_db(src)
    with Store(src) as store:
        ex = store.export_bundle([r1[:8]], tmp_path / "one.json")
        assert (ex.runs, ex.measurements) == (1, 2)
        with pytest.raises(StoreError, match="no run"):
            store.export_bundle(["nope"], tmp_path / "x.json")
    assert not (tmp_path / "x.json").exists()


def test_import_partial_overlap_and_status_update(tmp_path: Path) -> None:
    # A run exported while still running, then again when finished with more measurements.
    src, dst = tmp_path / "src.sqlite", tmp_path / "dst.sqlite"
    with Store(src) as store:
        rid = store.start_run(env_for(), "ladder")
        store.add_measurement(make_measurement(rid))
        store.export_bundle(None, tmp_path / "early.json")
        store.add_measurement(make_measurement(rid, precision="int8"))
        store.finish_run(rid, "interrupted")
        store.export_bundle(None, tmp_path / "late.json")
    with Store(dst) as store:
        store.import_bundle(tmp_path / "early.json")
        s = store.import_bundle(tmp_path / "late.json")
        assert (s.runs_added, s.runs_skipped, s.measurements_added, s.measurements_skipped) == (0, 1, 1, 1)
        assert store.runs()[0].status == "interrupted"


def _bundle(tmp_path: Path) -> dict[str, Any]:
    src = tmp_path / "src.sqlite"
    _two_host_db(src)
    with Store(src) as store:
        store.export_bundle(None, tmp_path / "good.json")
    return dict(json.loads((tmp_path / "good.json").read_text()))


def _break(data: dict[str, Any], how: str) -> str:
    m = data["runs"][0]["measurements"][0]
    if how == "bad_json":
        return '{"format": "edgefit-results-bundle", "runs": ['
    if how == "wrong_format":
        data["format"] = "something-else"
    elif how == "newer_schema":
        data["schema_version"] = BUNDLE_SCHEMA_VERSION + 1
    elif how == "missing_field":
        del m["samples_s"]
    elif how == "bad_warning":
        m["warnings"][0]["code"] = "haunted"
    elif how == "bad_type":
        m["threads"] = "two"
    elif how == "empty_samples":
        m["samples_s"] = []
    elif how == "negative_sample":
        m["samples_s"][2] = -1.0
    elif how == "huge_sample":  # found by tests/test_hostile_inputs.py: its square overflowed `results show`
        m["samples_s"][2] = 1e200
    elif how == "missing_run_field":
        del data["runs"][1]["host_fingerprint"]
    elif how == "runs_not_list":
        data["runs"] = {"a": 1}
    return json.dumps(data)


@pytest.mark.parametrize(
    ("how", "needle"),
    [
        ("bad_json", "not a JSON results bundle"),
        ("wrong_format", "format: expected"),
        ("newer_schema", "newer than this edgefit"),
        ("missing_field", "runs[0].measurements[0]: missing field 'samples_s'"),
        ("bad_warning", "runs[0].measurements[0].warnings[0].code: unknown WarningCode 'haunted'"),
        ("bad_type", "runs[0].measurements[0].threads: expected an integer, found 'two'"),
        ("empty_samples", "samples_s: expected at least one sample"),
        ("negative_sample", "samples_s: expected latencies from 0 to 1e+06 s"),
        ("huge_sample", "samples_s: expected latencies from 0 to 1e+06 s, found 1e+200"),
        ("missing_run_field", "runs[1]: missing field 'host_fingerprint'"),
        ("runs_not_list", "runs: expected a list"),
    ],
)
def test_bad_bundles_are_refused_and_change_nothing(tmp_path: Path, how: str, needle: str) -> None:
    bad = tmp_path / f"{how}.json"
    bad.write_text(_break(_bundle(tmp_path), how))
    dst = tmp_path / "dst.sqlite"
    with Store(dst) as store:
        rid = store.start_run(env_for("host-z"), "ladder")
        store.add_measurement(make_measurement(rid, host_fingerprint="host-z"))
    with Store(dst) as store, pytest.raises(StoreError) as exc:
        store.import_bundle(bad)
    assert needle in str(exc.value)
    assert str(bad) in str(exc.value)
    assert "\n" not in str(exc.value)
    assert count(dst, "runs") == 1 and count(dst, "measurements") == 1


def test_missing_bundle_file(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="no such bundle"):
        load_bundle(tmp_path / "nope.json")


# ------------------------------------------------------------------------------------------- properties

finite = st.floats(min_value=0.0, max_value=1e3, allow_nan=False, allow_infinity=False)
text = st.text(min_size=1, max_size=20)
measurements = st.builds(
    make_measurement,
    run_id=st.just("run-1"),
    model_id=text,
    precision=st.sampled_from(["fp32", "fp16", "int8", "int4", "file"]),
    threads=st.integers(1, 256),
    phase=st.sampled_from(list(Phase)),
    prompt_tokens=st.integers(0, 1 << 20),
    context_tokens=st.integers(0, 1 << 20),
    samples_s=st.lists(finite, min_size=1, max_size=50).map(tuple),
    warmup_samples_s=st.lists(finite, max_size=5).map(tuple),
    params=st.integers(0, 1 << 50),
    peak_rss_bytes=st.none() | st.integers(0, 1 << 45),
    load_s=st.none() | finite,
    warnings=st.lists(
        st.builds(QualityWarning, code=st.sampled_from(list(WarningCode)), value=finite, threshold=finite,
                  message=text),
        max_size=3,
    ).map(tuple),
    started_at=st.none() | text,
)  # fmt: skip


@settings(max_examples=150, deadline=None)
@given(measurements)
def test_dict_round_trip_property(m: Measurement) -> None:
    back = measurement_from_dict(json.loads(json.dumps(measurement_to_dict(m))), where="t")
    assert back == m


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(measurements, min_size=1, max_size=4))
def test_db_and_bundle_round_trip_property(tmp_path: Path, ms: list[Measurement]) -> None:
    # distinct started_at so each is its own row (the natural key), as the bench writes them
    ms = [dataclasses.replace(m, started_at=f"t{i}") for i, m in enumerate(ms)]
    for f in tmp_path.glob("p*"):
        f.unlink()
    with Store(tmp_path / "p.sqlite") as a:
        a.start_run(env_for(), "ladder", run_id="run-1")
        for m in ms:
            a.add_measurement(m)
        assert a.measurements() == tuple(ms)
        a.export_bundle(None, tmp_path / "p.json")
    with Store(tmp_path / "p2.sqlite") as b:
        b.import_bundle(tmp_path / "p.json")
        assert b.measurements() == tuple(ms)
