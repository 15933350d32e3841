"""Sustained mode on a ScriptedRunner: a fake thermal zone that heats up, a fake `vcgencmd get_throttled` whose
flag flips midway (formats: tests/data/power/README.md), a device that slows down once hot, and the stored series."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgefit.bench import sustained as sustained_mod
from edgefit.bench.executor import InProcessExecutor, ModelJob
from edgefit.bench.measurement import Phase
from edgefit.bench.runner import ScriptedRunner
from edgefit.bench.sustained_run import bench_sustained, sustained_factor
from edgefit.errors import CatalogError, UsageError
from edgefit.store import Store
from tests.test_bench_campaign import _fake_build
from tests.test_power import fake_command, write

HOT_AFTER_STEPS = 400


@pytest.fixture
def hot_board(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "sys"
    write(
        root,
        {
            "class/thermal/thermal_zone0/type": "cpu-thermal",
            "class/thermal/thermal_zone0/temp": "45000",
            "devices/system/cpu/cpu0/cpufreq/scaling_cur_freq": "2400000",
        },
    )
    flag = tmp_path / "throttled.txt"
    flag.write_text("throttled=0x0\n")
    fake_command(tmp_path, monkeypatch, "vcgencmd", f'[ "$1" = get_throttled ] && cat "{flag}" && exit 0\nexit 1\n')
    monkeypatch.setattr(sustained_mod, "SYSFS_ROOT", root)
    return root


def _runner(root: Path, flag: Path):  # type: ignore[no-untyped-def]
    def make(job: ModelJob) -> ScriptedRunner:
        state = {"steps": 0}

        def latency(ph: Phase, p: int, c: int) -> float:
            # 2 ms per token cold; 2.5 ms once the board is hot and throttled (the sustained state)
            return 0.0025 if state["steps"] >= HOT_AFTER_STEPS else 0.002

        def on_step(n: int) -> None:
            state["steps"] = n
            (root / "class/thermal/thermal_zone0/temp").write_text(f"{45000 + 40 * n}\n")  # heats up
            if n == HOT_AFTER_STEPS:
                flag.write_text("throttled=0x50005\n")  # throttled now (bit 2) and since boot (bit 18)
                (root / "devices/system/cpu/cpu0/cpufreq/scaling_cur_freq").write_text("1500000\n")

        return ScriptedRunner(latency, on_step=on_step)

    return make


def test_short_sustained_run_records_heat_flags_and_slowdown(tmp_path: Path, hot_board: Path) -> None:
    s = bench_sustained(
        "ladder-7m",
        1.5,
        "fp32",
        threads=2,
        db_path=tmp_path / "db.sqlite",
        executor=InProcessExecutor(_runner(hot_board, tmp_path / "throttled.txt")),
        guard=lambda e, w: None,
        build=_fake_build(tmp_path),
    )
    (m,) = [m for m in s.measurements if m.phase == Phase.SUSTAINED]
    ser = m.sustained
    assert ser is not None and ser.unit == "tokens" and m.context_tokens == 128
    assert sum(m.samples_s) == pytest.approx(1.5, abs=0.003)  # ran for the asked seconds of steps
    assert 18 <= len(ser.t_s) <= 22  # one point per duration / 20
    temps = [row[0] for row in ser.temperatures_c]
    assert ser.zones == ("cpu-thermal",) and temps == sorted(temps) and temps[-1] > temps[0] + 10
    assert ser.throttled[0] == 0 and ser.throttled[-1] == 0x50005 and ser.throttled_points() > 0
    assert ser.cpu_freq_hz[0] == 2.4e9 and ser.cpu_freq_hz[-1] == 1.5e9
    assert ser.burst_rate_per_s == pytest.approx(500.0)
    assert ser.sustained_rate_per_s == pytest.approx(400.0)
    assert ser.sustained_ratio == pytest.approx(0.8)
    assert ser.rate_per_s[0] == pytest.approx(500.0, rel=0.05) and ser.rate_per_s[-1] == pytest.approx(400, rel=0.05)
    assert ser.power_w == (None,) * len(ser.t_s)
    assert any("no power sensor" in n for n in ser.notes)
    assert not any("thermal" in n for n in ser.notes)
    with Store(tmp_path / "db.sqlite") as st:
        (back,) = st.measurements(phase=Phase.SUSTAINED)
        assert back.sustained == ser
        assert sustained_factor(st.measurements()) == pytest.approx(0.8)
        assert st.run(s.run_id).kind == "sustained"


def test_a_machine_without_sensors_says_what_is_absent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sustained_mod, "SYSFS_ROOT", tmp_path / "empty")
    monkeypatch.setenv("PATH", str(tmp_path / "nobin"))
    s = bench_sustained(
        "ladder-7m", 0.2, db_path=tmp_path / "db.sqlite", executor=InProcessExecutor(
            lambda job: ScriptedRunner(lambda ph, p, c: 0.001)), guard=lambda e, w: None,
        build=_fake_build(tmp_path),
    )  # fmt: skip
    (m,) = [m for m in s.measurements if m.phase == Phase.SUSTAINED]
    assert m.sustained is not None
    notes = " ".join(m.sustained.notes)
    assert "no thermal zones" in notes and "no CPU clocks" in notes and "vcgencmd" in notes
    assert all(row == () for row in m.sustained.temperatures_c)


def test_bad_input_is_refused_before_the_database(tmp_path: Path) -> None:
    with pytest.raises(CatalogError):
        bench_sustained("no-such-model", 1.0, db_path=tmp_path / "db.sqlite", guard=lambda e, w: None)
    with pytest.raises(UsageError, match="--sustained"):
        bench_sustained("ladder-7m", 0, db_path=tmp_path / "db.sqlite")
    assert not (tmp_path / "db.sqlite").exists()


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["bench", "--sustained", "10"], "--model"),
        (["bench", "--model", "ladder-7m"], "--sustained"),
        (["bench", "--sustained", "-1", "--model", "ladder-7m"], "--sustained"),
        (["bench", "--sustained", "5", "--model", "ladder-7m", "--precision", "fp32,int8"], "one precision"),
        (["bench", "--sustained", "5", "--model", "no-such-model"], "no-such-model"),
        (["bench", "--sustained", "5", "--model", "missing.onnx"], "missing.onnx"),
    ],
)
def test_cli_bad_sustained_input_exits_2_without_a_database(
    argv: list[str], says: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from edgefit.cli import main

    db = tmp_path / "db.sqlite"
    assert main([*argv, "--db", str(db)]) == 2
    err = capsys.readouterr().err
    assert says in err and "Traceback" not in err
    assert not db.exists()
