"""Power during bench measurements: readings stored with each measurement (total and above idle), carried by
bundles, and "no sensor found" said once when there is none."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgefit import stats
from edgefit.bench import run_ladder
from edgefit.bench.executor import InProcessExecutor, ModelJob
from edgefit.bench.measurement import Phase
from edgefit.bench.powerhook import OFF, setup_power
from edgefit.bench.runner import ScriptedRunner
from edgefit.power import PowerSampler, energy_per_unit, primary
from edgefit.power.sensors import Discovery, FuncPowerSensor
from edgefit.store import Store
from tests.test_bench_campaign import RUNGS, _fake_build


def _runner(job: ModelJob) -> ScriptedRunner:
    return ScriptedRunner(lambda ph, p, c: 0.002 if ph == Phase.DECODE else 0.0002 * p, load_s=0.01)


class Board:
    """A fake board sensor: 3 W idle, 7.5 W while a measurement runs."""

    def __init__(self) -> None:
        self.busy = False
        self.sensor = FuncPowerSensor("fake:board", "board", lambda: 7.5 if self.busy else 3.0, note="test")

    def sampler(self) -> PowerSampler:
        self.busy = True
        return _BusySampler(self, [self.sensor], 0.001)


class _BusySampler(PowerSampler):
    def __init__(self, board: Board, *a: object, **k: object) -> None:
        super().__init__(*a, **k)  # type: ignore[arg-type]
        self.board = board

    def stop(self):  # type: ignore[no-untyped-def]
        out = super().stop()
        self.board.busy = False
        return out


def _ladder(tmp_path: Path, **kw):  # type: ignore[no-untyped-def]
    args = dict(rungs=RUNGS[:1], guard=lambda e, w: None, build=_fake_build(tmp_path), progress=False, threads=2,
                budget_s=0.02, precisions=("fp32",))  # fmt: skip
    args.update(kw)
    return run_ladder("quick", db_path=tmp_path / "db.sqlite", **args)


def test_measurements_carry_power_total_and_above_idle(tmp_path: Path) -> None:
    board = Board()
    setup = setup_power(Discovery((board.sensor,)), idle_s=0.05)
    assert setup.enabled and setup.idle[0].mean_w == pytest.approx(3.0)
    s = _ladder(tmp_path, executor=InProcessExecutor(_runner, power=board.sampler), power=setup)
    decode = [m for m in s.measurements if m.phase == Phase.DECODE]
    assert decode and all(m.power for m in decode)
    r = primary(decode[0].power)
    assert r is not None
    assert (r.sensor, r.covers, r.mean_w, r.idle_w) == ("fake:board", "board", pytest.approx(7.5), 3.0)
    e = energy_per_unit(r, stats.median(decode[0].samples_s))
    assert e.energy_j == pytest.approx(7.5 * 0.002)
    assert e.energy_above_idle_j == pytest.approx(4.5 * 0.002)
    assert any(n.startswith("power sensors: fake:board (board); idle 3.00 W") for n in s.notes)
    js = s.to_dict()["measurements"]
    dec_js = next(d for d in js if d["phase"] == "decode")
    assert dec_js["energy"]["energy_j"] == pytest.approx(0.015) and dec_js["power"][0]["sensor"] == "fake:board"
    # stored and read back intact, and carried by a bundle to another database
    with Store(tmp_path / "db.sqlite") as st:
        assert st.measurements(run_id=s.run_id) == s.measurements
        st.export_bundle([s.run_id], tmp_path / "b.json")
    with Store(tmp_path / "other.sqlite") as other:
        other.import_bundle(tmp_path / "b.json")
        back = [m for m in other.measurements() if m.phase == Phase.DECODE]
        assert back[0].power == decode[0].power


def test_no_sensor_is_said_once(tmp_path: Path) -> None:
    setup = setup_power(Discovery((), (), ("powercap RAPL",)))
    assert not setup.enabled
    s = _ladder(tmp_path, executor=InProcessExecutor(_runner), power=setup)
    assert all(m.power == () for m in s.measurements)
    said = [n for n in s.notes if "no power sensor found" in n]
    assert len(said) == 1 and "profile's estimates" in said[0]


def test_injected_executor_measures_no_power_by_default(tmp_path: Path) -> None:
    s = _ladder(tmp_path, executor=InProcessExecutor(_runner))
    assert OFF.note == "" and not any("power" in n for n in s.notes)
    assert all(m.power == () for m in s.measurements)


def test_results_show_gives_measured_watts_and_joules_per_token(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from edgefit.cli import main

    board = Board()
    setup = setup_power(Discovery((board.sensor,)), idle_s=0.05)
    s = _ladder(tmp_path, executor=InProcessExecutor(_runner, power=board.sampler), power=setup)
    capsys.readouterr()
    assert main(["results", "show", s.run_id[:8], "--db", str(tmp_path / "db.sqlite")]) == 0
    out = capsys.readouterr().out
    assert "power [W]" in out and "energy [mJ/unit]" in out and "fake:board (board)" in out
    assert "15" in out  # 7.5 W x 2 ms = 15 mJ per decoded token
    assert main(["results", "show", s.run_id[:8], "--json", "--db", str(tmp_path / "db.sqlite")]) == 0
    import json

    rows = json.loads(capsys.readouterr().out)["measurements"]
    dec = next(r for r in rows if r["phase"] == "decode")
    assert dec["energy"]["energy_j"] == pytest.approx(0.015) and dec["energy"]["basis"] == "measured"
    assert dec["energy"]["energy_above_idle_j"] == pytest.approx(0.009)
