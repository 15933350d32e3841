"""What this host's answers are priced with (``pipeline.pooled_table``: each kernel's median over its last three
kernel tables that pool with each other) and how far its tables disagree per kernel class (``pipeline.host_drift``).
Synthetic tables with known physics: a table ``f`` x faster has every rate x ``f`` and every fixed cost / ``f``."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import pytest

from edgefit import catalog, detect, pipeline
from edgefit.errors import PredictError
from edgefit.kernels.table import KernelTable, fit_model, median_table, merge_tables
from edgefit.predict import predict, synthetic
from edgefit.store import Store
from tests.test_report_fakes import save_synthetic_table, seed_synthetic_db


def _phys(speed: float, **kw: float) -> synthetic.KernelPhysics:
    base = synthetic.KernelPhysics()
    names = ("bandwidth_bytes_per_s", "triad_bytes_per_s", "fp32_macs_per_s", "int8_macs_per_s",
             "int4_gemv_macs_per_s", "int8_gemv_macs_per_s")  # fmt: skip
    rates = {f: getattr(base, f) * speed for f in names}
    return dataclasses.replace(base, **{**rates, "node_s": base.node_s / speed, "run_s": base.run_s / speed, **kw})


def _table(speed: float, *, at: str = "2026-01-01T00:00:00Z", threads: int = 2, **kw: float) -> KernelTable:
    t = synthetic.kernel_table(_phys(speed, **kw), host_fingerprint="h")
    return dataclasses.replace(t, measured_at=at, threads=threads, lead_bytes=512 * 2**20)


def _pool(*speeds: float) -> list[tuple[str, KernelTable]]:
    return [(f"run-{i}", _table(s)) for i, s in enumerate(speeds)]


@pytest.mark.parametrize(
    ("speeds", "middle"),
    [((2.0, 1.0, 1.3, 1.1), 1.1), ((1.0, 1.3, 1.1, 0.5), 1.1), ((1.1, 1.3, 1.0), 1.1), ((1.0, 1.0, 1.5), 1.0)],
)
def test_this_hosts_answers_take_each_kernels_median_over_its_last_three_tables(
    speeds: tuple[float, ...], middle: float
) -> None:
    """Every rate and fixed cost of the synthetic tables scales with their speed, so the chain-by-chain median is
    the middle table's chains; a fourth table back is left out, and one outlier does not move the answer."""
    pool = _pool(*speeds)
    table, note = pipeline.pooled_table(pool)
    want = _table(middle)
    assert {k.spec: (k.cold_s, k.warm_s) for k in table.kernels} == {k.spec: (k.cold_s, k.warm_s) for k in want.kernels}
    assert table.triad_bytes_per_s == want.triad_bytes_per_s
    assert fit_model(table).stream_bytes_per_s == pytest.approx(fit_model(want).stream_bytes_per_s)
    runs = ", ".join(rid for rid, _ in pool[-3:])
    assert note.startswith(f"this host's answers take each kernel's median over its last 3 kernel tables (runs {runs}")


def test_the_median_is_taken_chain_by_chain() -> None:
    """Two tables each slow in a different class: the median takes each class from the table in its middle."""
    a = _table(1.0)
    b = _table(1.0, int8_macs_per_s=100e9, int4_gemv_macs_per_s=8e9, int8_gemv_macs_per_s=13e9)  # integer slow
    c = _table(1.0, bandwidth_bytes_per_s=15e9)  # memory slow
    m = median_table([b, c, a])
    fa, fm = fit_model(a), fit_model(m)
    assert fm.stream_bytes_per_s == pytest.approx(fa.stream_bytes_per_s)
    assert fm.int8_gemm_macs_per_s == pytest.approx(fa.int8_gemm_macs_per_s)
    with pytest.raises(PredictError, match="two different hosts"):
        median_table([a, dataclasses.replace(a, host=dataclasses.replace(a.host, host_fingerprint="other"))])


def test_with_fewer_than_three_tables_the_latest_answers_alone() -> None:
    for pool in (_pool(1.0), _pool(1.3, 1.0)):
        table, note = pipeline.pooled_table(pool)
        assert table is pool[-1][1] and note == ""


def test_chains_of_another_length_do_not_merge() -> None:
    """A chain's samples are whole-chain times: the same shape timed with fewer nodes (a plan shortened for memory)
    must not share its rounds."""
    a, b = _table(1.0), _table(1.0)
    first = next(i for i, k in enumerate(b.kernels) if k.spec.kind == "linear" and k.spec.nodes > 1)
    k = b.kernels[first]
    shorter = dataclasses.replace(k, spec=dataclasses.replace(k.spec, nodes=k.spec.nodes - 1))
    b = dataclasses.replace(b, kernels=(*b.kernels[:first], shorter, *b.kernels[first + 1 :]))
    specs = {x.spec for x in merge_tables(a, b).kernels}
    assert k.spec not in specs and shorter.spec not in specs and len(specs) == len(a.kernels) - 1
    assert not pipeline.pooled_with(a, b)


def test_tables_pool_only_when_they_measure_the_same_thing() -> None:
    a = _table(1.0)
    assert pipeline.pooled_with(a, _table(1.3, at="2026-01-01T23:00:00Z"))
    assert not pipeline.pooled_with(a, _table(1.0, at="2026-01-02T01:00:00Z"))  # more than a day apart
    assert not pipeline.pooled_with(a, _table(1.0, threads=1))
    assert not pipeline.pooled_with(a, dataclasses.replace(_table(1.0), lead_bytes=0))
    assert not pipeline.pooled_with(a, dataclasses.replace(_table(1.0), kernels=a.kernels[1:]))
    assert not pipeline.pooled_with(a, dataclasses.replace(_table(1.0), measured_at="yesterday"))


def test_the_drift_is_per_kernel_class() -> None:
    """Only the integer rates differ: int4/int8 decode and prefill drift, fp32 (memory-bound) does not."""
    slow, fast = (fit_model(_table(1.0, int8_macs_per_s=r, int4_gemv_macs_per_s=r / 12.5)) for r in (150e9, 200e9))
    drift = pipeline.host_drift([slow, fast])
    assert drift["decode/fp32"] == pytest.approx(0.0, abs=1e-9)
    assert drift["prefill/fp32"] == pytest.approx(0.0, abs=1e-9)
    assert drift["decode/int4"] == pytest.approx(200 / 150 - 1, rel=0.05)
    assert drift["prefill/int8"] == pytest.approx(200 / 150 - 1, rel=0.05)
    assert pipeline.host_drift([slow]) == {}


def _store_tables(db: Path, fingerprint: str, speeds: tuple[float, ...]) -> list[str]:
    out = []
    for s in speeds:
        t = _table(s)
        host = dataclasses.replace(t.host, host_fingerprint=fingerprint)
        out.append(save_synthetic_table(db, fingerprint, dataclasses.replace(t, host=host)))
    return out


def _fake_calibrations(speeds: tuple[float, ...]) -> Callable[..., tuple[str, KernelTable]]:
    """A stand-in for ``calibrate_and_store``: each call stores the next synthetic table of ``speeds``."""
    left = iter(speeds)

    def fake(db_path: Path, host: object, fingerprint: str, **kw: object) -> tuple[str, KernelTable]:
        (run,) = _store_tables(db_path, fingerprint, (next(left),))
        with Store(db_path) as store:
            return run, KernelTable.from_dict(store.kernel_tables()[-1][2])

    return fake


def test_host_state_pools_the_last_three_tables_and_widens_by_the_drift(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "e.sqlite"
    fp = seed_synthetic_db(db, monkeypatch, ladder=False)  # one table of its own (no lead: does not pool)
    assert fp == detect.host_fingerprint()
    ids = _store_tables(db, fp, (1.0, 1.25))
    spec = catalog.load_spec("qwen2.5-0.5b")
    two = pipeline.host_state(db, calibrate_if_missing=False)
    assert two.kernel_run_id == ids[1] and two.calibration.host_table_note == ""
    ids += _store_tables(db, fp, (1.1,))
    state = pipeline.host_state(db, calibrate_if_missing=False)
    assert state.kernel_run_id == ids[2]
    p = predict(spec, "int4", state.host, state.calibration, use_measurements=False)
    p_two = predict(spec, "int4", two.host, two.calibration, use_measurements=False)
    # the middle table (1.1 x) answers: 1.25 / 1.1 of the 1.25 x table's time
    assert p.decode_s_per_token.value == pytest.approx(p_two.decode_s_per_token.value * 1.25 / 1.1, rel=1e-6)
    assert any(n.startswith("this host's answers take each kernel's median over its last 3") for n in p.notes)
    assert any("intervals widened to match" in n for n in p.notes)
    assert p.decode_s_per_token.high / p.decode_s_per_token.value - 1 > 0.2  # the 25 % spread is in the interval
    assert p.prefill_s.high / p.prefill_s.value - 1 > 0.2


def test_calibrate_says_which_tables_the_answers_use(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`edgefit calibrate` (the measurement replaced by synthetic tables): the first two runs answer alone, the
    third says the answers take the median of the three, in its JSON and in its human summary."""
    import json

    from edgefit.cli import main
    from edgefit.commands import calibrate as calibrate_cmd

    db = tmp_path / "c.sqlite"
    fp = seed_synthetic_db(db, monkeypatch, ladder=False)
    monkeypatch.setattr(calibrate_cmd, "calibrate_and_store", _fake_calibrations((1.0, 1.2, 0.9, 1.1)))
    docs = []
    for _ in range(3):
        capsys.readouterr()
        assert main(["calibrate", "--json", "--db", str(db)]) == 0
        docs.append(json.loads(capsys.readouterr().out))
    assert [d["answers_note"] for d in docs[:2]] == ["", ""]
    assert docs[2]["answers_run_id"] == docs[2]["run_id"]
    assert docs[2]["answers_note"].startswith("this host's answers take each kernel's median over its last 3")
    assert main(["calibrate", "--db", str(db)]) == 0
    out = capsys.readouterr().out
    assert "note: this host's answers take each kernel's median over its last 3" in " ".join(out.split())
    assert fp == detect.host_fingerprint()


def test_calibrate_repeat_runs_back_to_back_and_refuses_bad_counts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    from edgefit.cli import main
    from edgefit.commands import calibrate as calibrate_cmd

    db = tmp_path / "r.sqlite"
    seed_synthetic_db(db, monkeypatch, ladder=False)
    monkeypatch.setattr(calibrate_cmd, "calibrate_and_store", _fake_calibrations((1.0, 1.2, 0.9)))
    capsys.readouterr()
    assert main(["calibrate", "--repeat", "3", "--json", "--db", str(db)]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert len(doc["run_ids"]) == 3 and doc["run_ids"][-1] == doc["run_id"]
    assert all(r[:8] in doc["answers_note"] for r in doc["run_ids"])
    for bad in ("0", "11", "x"):  # out of range: edgefit's own check; not a number: argparse's
        try:
            code = main(["calibrate", "--repeat", bad, "--db", str(db)])
        except SystemExit as e:
            code = e.code
        assert code == 2
        err = capsys.readouterr().err
        assert "--repeat" in err and "Traceback" not in err


def test_this_hosts_interval_covers_validates_error_against_the_benchmark(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A validation whose interleaved rows agree (3 %) but whose rows against `edgefit bench` miss by 20 %: this
    host's intervals reach 20 %, a device's keep the interleaved composition term."""
    from edgefit import profiles

    db = tmp_path / "v.sqlite"
    seed_synthetic_db(db, monkeypatch, ladder=False)
    spec = catalog.load_spec("qwen2.5-0.5b")
    pi = profiles.get_profile("raspberry-pi-5-8gb")

    def answers() -> tuple[object, object]:
        st = pipeline.host_state(db, calibrate_if_missing=False)
        return (predict(spec, "int4", st.host, st.calibration, use_measurements=False),
                predict(spec, "int4", pi, st.calibration, use_measurements=False))  # fmt: skip

    summary = {"interleaved/held_out/decode/int4": {"median_abs_error": 0.03},
               "interleaved/random/prefill/int4": {"median_abs_error": 0.03},
               "held_out/decode/int4": {"median_abs_error": 0.2},
               "random/prefill/fp32": {"median_abs_error": 0.25}}  # fmt: skip
    with Store(db) as store:
        store.save_validation({"summary": summary, "comparisons": []}, host_fingerprint=detect.host_fingerprint())
    host, dev = answers()
    assert host.decode_s_per_token.high / host.decode_s_per_token.value - 1 >= 0.2
    assert host.prefill_s.high / host.prefill_s.value - 1 >= 0.25
    assert any("a median 20% (decode) and 25% (prefill) from `edgefit bench`" in n for n in host.notes)
    assert not any("from `edgefit bench`" in n for n in dev.notes)
    summary = {k: v for k, v in summary.items() if k.startswith("interleaved/")}
    with Store(db) as store:  # the same validation without the benchmark's rows: the device's answer is unchanged
        store.save_validation({"summary": summary, "comparisons": []}, host_fingerprint=detect.host_fingerprint())
    host2, dev2 = answers()
    assert dev2.decode_s_per_token == dev.decode_s_per_token
    assert host2.decode_s_per_token.high / host2.decode_s_per_token.value - 1 < 0.15


def test_validate_checks_the_latest_table_not_the_pooled_answer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """validate's bracket merges the table just before the models with the one just after (whose rounds timed the
    calls), even when three tables now pool for this host's answers: 8 rounds before, 12 after."""
    import json

    from edgefit import ladder as ladders
    from edgefit.cli import main
    from edgefit.commands import validate as validate_cmd
    from edgefit.kernels import calibrate as kcal

    db = tmp_path / "val.sqlite"
    seed_synthetic_db(db, monkeypatch, ladder=False)  # 8 rounds, like the table before the models
    rounds = iter((8, 12))

    def fake_calibrate(db_path: Path, host: object, fingerprint: str, **kw: object) -> tuple[str, KernelTable]:
        table = synthetic.kernel_table(host_fingerprint=fingerprint, rounds=next(rounds))
        return save_synthetic_table(db_path, fingerprint, table), table

    def fake_measure(db_path: Path, **kw: object) -> tuple[list, list, dict, list, list]:
        specs = [r.spec for r in ladders.load_ladder("quick")]
        return synthetic.kernel_measurements(specs, ("fp32",), synthetic.KernelPhysics()), [], {}, [], []

    monkeypatch.setattr(kcal, "calibrate_and_store", fake_calibrate)
    monkeypatch.setattr(validate_cmd, "measure_fresh", fake_measure)
    capsys.readouterr()
    assert main(["validate", "--json", "--random", "0", "--precision", "fp32", "--db", str(db)]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert "kernel table: 8 rounds just before and 12 just after the models, merged" in doc["notes"]
    assert pipeline.host_state(db, calibrate_if_missing=False).calibration.host_table_note  # the answers pool three
