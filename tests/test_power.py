"""Power sensors on fake sysfs trees and a fake vcgencmd (formats: tests/data/power/README.md), and the sampling
thread against a fake clock: wrap-around, a sensor that vanishes mid-run, garbage values."""

from __future__ import annotations

import math
import os
import stat
import threading
import time
from pathlib import Path

import pytest

from edgefit.errors import StoreError
from edgefit.power import PowerReading, PowerSampler, discover, energy_per_unit, primary, with_idle
from edgefit.power.sensors import Sensor, parse_pmic_read_adc, parse_powermetrics

DATA = Path(__file__).parent / "data" / "power"


def write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text + "\n")


def fake_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, script: str) -> Path:
    bindir = tmp_path / "bin"
    bindir.mkdir(exist_ok=True)
    exe = bindir / name
    exe.write_text("#!/bin/sh\n" + script)
    exe.chmod(exe.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}")
    return exe


class FakeTime:
    """A clock that moves only when the sampler sleeps; after ``ticks`` sleeps it waits for ``stop()``."""

    def __init__(self, ticks: int, on_tick: object = None) -> None:
        self.t = 100.0
        self.ticks = ticks
        self.done = 0
        self.on_tick = on_tick
        self.reached = threading.Event()
        self.sampler: PowerSampler | None = None

    def clock(self) -> float:
        return self.t

    def sleep(self, dt: float) -> None:
        if self.done >= self.ticks:
            self.reached.set()
            while self.sampler is not None and not self.sampler.stopping:
                time.sleep(0.001)
            return
        self.t += dt
        self.done += 1
        if callable(self.on_tick):
            self.on_tick(self.done)


def run_sampler(sensors: list[Sensor], fake: FakeTime, interval_s: float = 0.5) -> PowerSampler:
    sampler = PowerSampler(sensors, interval_s, clock=fake.clock, sleep=fake.sleep)
    fake.sampler = sampler
    sampler.start()
    assert fake.reached.wait(10)
    return sampler


# ---------------------------------------------------------------------------------------------- RAPL


def rapl_tree(root: Path, energy_uj: int, range_uj: int = 262143328850) -> None:
    write(
        root,
        {
            "class/powercap/intel-rapl:0/name": "package-0",
            "class/powercap/intel-rapl:0/energy_uj": str(energy_uj),
            "class/powercap/intel-rapl:0/max_energy_range_uj": str(range_uj),
            "class/powercap/intel-rapl:0:0/name": "core",  # a sub-zone: part of the package, not added again
            "class/powercap/intel-rapl:0:0/energy_uj": "5",
            "class/powercap/intel-rapl:1/name": "psys",
            "class/powercap/intel-rapl:1/energy_uj": "1000",
            "class/powercap/intel-rapl:1/max_energy_range_uj": str(range_uj),
        },
    )


def test_rapl_package_and_psys_are_found(tmp_path: Path) -> None:
    rapl_tree(tmp_path, 1_000_000)
    d = discover(tmp_path, run=lambda cmd: None, platform="linux")
    assert [(s.name, s.covers, s.method) for s in d.sensors] == [
        ("rapl:package-0", "package", "energy_counter"),
        ("rapl:psys", "platform", "energy_counter"),
    ]
    assert "rapl:package-0 (package)" in d.describe()


def test_rapl_counter_that_wraps_gives_the_right_energy(tmp_path: Path) -> None:
    # 8 W for 4 ticks of 0.5 s = 16 J, with the counter passing max_energy_range_uj (and restarting at 0) midway
    range_uj = 10_000_000
    rapl_tree(tmp_path, range_uj - 5_000_000, range_uj)
    path = tmp_path / "class/powercap/intel-rapl:0/energy_uj"
    d = discover(tmp_path, run=lambda cmd: None, platform="linux")
    pkg = d.sensors[0]

    def tick(n: int) -> None:
        path.write_text(str((range_uj - 5_000_000 + n * 4_000_000) % range_uj))

    fake = FakeTime(4, tick)
    r = run_sampler([pkg], fake).stop()[0]
    assert r.samples == 6  # start, 4 ticks, stop
    assert r.window_s == pytest.approx(2.0)
    assert r.energy_j == pytest.approx(16.0)
    assert r.mean_w == pytest.approx(8.0)
    assert r.uncertainty_rel == pytest.approx(math.sqrt(2) * 0.001 / 2.0)
    assert r.warnings == ()


def test_rapl_readable_by_root_only_is_a_note(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rapl_tree(tmp_path, 1000)
    real_read_text = Path.read_text

    def read_text(self: Path, *a: object, **k: object) -> str:
        if self.name == "energy_uj":
            raise PermissionError(13, "Permission denied")
        return real_read_text(self)

    monkeypatch.setattr(Path, "read_text", read_text)
    d = discover(tmp_path, run=lambda cmd: None, platform="linux")
    assert d.sensors == ()
    assert any("root only" in n for n in d.notes)
    assert d.describe().startswith("no power sensor found")


# ---------------------------------------------------------------------------------------------- hwmon


def test_jetson_ina3221_vdd_in_is_the_module_total(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "class/hwmon/hwmon1/name": "ina3221",
            "class/hwmon/hwmon1/in1_label": "VDD_IN",
            "class/hwmon/hwmon1/in1_input": "5072",  # mV
            "class/hwmon/hwmon1/curr1_input": "1184",  # mA
            "class/hwmon/hwmon1/in2_label": "VDD_CPU_GPU_CV",
            "class/hwmon/hwmon1/in2_input": "5064",
            "class/hwmon/hwmon1/curr2_input": "320",
            "class/hwmon/hwmon1/in3_label": "VDD_SOC",
            "class/hwmon/hwmon1/in3_input": "5064",
            "class/hwmon/hwmon1/curr3_input": "560",
            "class/hwmon/hwmon1/in4_input": "11840",  # shunt µV: not a rail
        },
    )
    d = discover(tmp_path, run=lambda cmd: None, platform="linux")
    (s,) = d.sensors
    assert (s.name, s.covers) == ("ina3221:VDD_IN", "board")
    assert s.read() == pytest.approx(5.072 * 1.184)


def test_ina3221_without_vdd_in_sums_its_rails_as_soc(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "class/hwmon/hwmon0/name": "ina3221",
            "class/hwmon/hwmon0/in1_label": "VDD_GPU_SOC",
            "class/hwmon/hwmon0/in1_input": "5000",
            "class/hwmon/hwmon0/curr1_input": "1000",
            "class/hwmon/hwmon0/in2_label": "VDD_CPU_CV",
            "class/hwmon/hwmon0/in2_input": "5000",
            "class/hwmon/hwmon0/curr2_input": "400",
        },
    )
    (s,) = discover(tmp_path, run=lambda cmd: None, platform="linux").sensors
    assert s.covers == "soc"
    assert s.read() == pytest.approx(5.0 + 2.0)


def test_hwmon_power_meter_and_gpu_left_out(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "class/hwmon/hwmon0/name": "amdgpu",
            "class/hwmon/hwmon0/power1_average": "42000000",
            "class/hwmon/hwmon2/name": "ina219",
            "class/hwmon/hwmon2/power1_input": "3200000",  # µW
        },
    )
    (s,) = discover(tmp_path, run=lambda cmd: None, platform="linux").sensors
    assert s.name == "hwmon:ina219"
    assert s.read() == pytest.approx(3.2)


# ---------------------------------------------------------------------------------------------- Pi 5 PMIC


def test_parse_pmic_sums_rails_with_current_and_voltage() -> None:
    rails = parse_pmic_read_adc((DATA / "pi5_pmic_read_adc.txt").read_text())
    assert len(rails) == 12  # EXT5V_V and BATT_V have no current line
    assert rails["VDD_CORE"] == (0.9, 4.0)
    assert "EXT5V" not in rails
    assert parse_pmic_read_adc('error=1 error_msg="Command not registered"') == {}


def test_pi5_pmic_through_a_fake_vcgencmd_on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fixture = DATA / "pi5_pmic_read_adc.txt"
    fake_command(tmp_path, monkeypatch, "vcgencmd", f'[ "$1" = pmic_read_adc ] && cat "{fixture}" && exit 0\nexit 1\n')
    (s,) = discover(tmp_path / "sys", platform="linux").sensors
    # the fixture's rails, V x A by hand: 0.148 + 0.33 + 0.27 + 0.132 + 0.006 + 0.22 + 0.24 + 3.6 + 0.00033
    # + 0.00165 + 0.004 + 0.102
    assert (s.name, s.covers) == ("pi5-pmic", "board")
    assert s.read() == pytest.approx(5.05398, abs=1e-6)
    assert s.min_interval_s >= 0.2  # vcgencmd costs CPU: never sampled faster than 5 Hz


# ---------------------------------------------------------------------------------------------- batteries


def test_battery_counts_only_while_discharging(tmp_path: Path) -> None:
    bat = {
        "class/power_supply/AC/type": "Mains",
        "class/power_supply/AC/online": "0",
        "class/power_supply/BAT0/type": "Battery",
        "class/power_supply/BAT0/status": "Discharging",
        "class/power_supply/BAT0/power_now": "11520000",  # µW
    }
    write(tmp_path, bat)
    (s,) = discover(tmp_path, run=lambda cmd: None, platform="linux").sensors
    assert (s.name, s.covers, s.read()) == ("battery:BAT0", "battery", pytest.approx(11.52))
    (tmp_path / "class/power_supply/BAT0/status").write_text("Charging\n")
    d = discover(tmp_path, run=lambda cmd: None, platform="linux")
    assert d.sensors == ()
    assert any("charging, not discharging" in n for n in d.notes)


def test_battery_current_times_voltage(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "class/power_supply/BAT1/type": "Battery",
            "class/power_supply/BAT1/status": "Discharging",
            "class/power_supply/BAT1/current_now": "-1500000",  # µA, negative while discharging on some drivers
            "class/power_supply/BAT1/voltage_now": "7600000",  # µV
        },
    )
    (s,) = discover(tmp_path, run=lambda cmd: None, platform="linux").sensors
    assert s.read() == pytest.approx(1.5 * 7.6)


# ---------------------------------------------------------------------------------------------- macOS


def test_powermetrics_parse_and_root_rule(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = (DATA / "powermetrics_cpu_power.txt").read_text()
    assert parse_powermetrics(text) == pytest.approx(5.228)
    fixture = DATA / "powermetrics_cpu_power.txt"
    fake_command(tmp_path, monkeypatch, "powermetrics", f'cat "{fixture}"\n')
    d = discover(tmp_path, platform="darwin", is_root=False)
    assert d.sensors == ()
    assert any("needs root" in n for n in d.notes)
    (s,) = discover(tmp_path, platform="darwin", is_root=True).sensors
    assert (s.name, s.covers, s.read()) == ("powermetrics", "soc", pytest.approx(5.228))


def test_nothing_readable_says_so(tmp_path: Path) -> None:
    d = discover(tmp_path, run=lambda cmd: None, platform="linux")
    assert d.sensors == ()
    assert d.describe().startswith("no power sensor found (checked powercap RAPL")


# ---------------------------------------------------------------------------------------------- the sampler


class RampSensor(Sensor):
    """Watts = 2 + t - t0 on the fake clock: trapezoids integrate a line exactly."""

    def __init__(self, fake: FakeTime) -> None:
        super().__init__("ramp", "board", "power")
        self.fake = fake
        self.t0 = fake.t

    def read(self) -> float:
        return 2.0 + (self.fake.t - self.t0)


def test_sampling_thread_on_a_fake_clock_integrates_power() -> None:
    fake = FakeTime(6)
    r = run_sampler([RampSensor(fake)], fake, interval_s=0.5).stop()[0]
    # 6 ticks of 0.5 s: 3 s from 2 W to 5 W, 10.5 J, mean 3.5 W; start + 6 + stop samples (stop at the same t)
    assert r.samples == 8
    assert r.window_s == pytest.approx(3.0)
    assert r.energy_j == pytest.approx(10.5)
    assert r.mean_w == pytest.approx(3.5)
    assert r.interval_s == 0.5
    assert 0.5 / 3.0 <= r.uncertainty_rel < 1.0  # at least one interval over the window


def test_sensor_that_vanishes_mid_run_keeps_the_reading(tmp_path: Path) -> None:
    write(tmp_path, {"class/hwmon/hwmon0/name": "ina226", "class/hwmon/hwmon0/power1_input": "4000000"})
    (s,) = discover(tmp_path, run=lambda cmd: None, platform="linux").sensors

    def tick(n: int) -> None:
        if n == 3:
            (tmp_path / "class/hwmon/hwmon0/power1_input").unlink()  # the device went away

    fake = FakeTime(6, tick)
    sampler = run_sampler([s], fake)
    (r,) = sampler.stop()
    assert r.samples == 3  # start and ticks 1, 2; nothing after
    assert r.mean_w == pytest.approx(4.0)
    assert any("vanished" in w for w in r.warnings)


def test_garbage_values_are_skipped_with_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "class/hwmon/hwmon0/power1_input"
    write(tmp_path, {"class/hwmon/hwmon0/name": "ina226", "class/hwmon/hwmon0/power1_input": "4000000"})
    (s,) = discover(tmp_path, run=lambda cmd: None, platform="linux").sensors
    bad = {2: "garbage", 3: "-5000000", 4: "99999999999999"}

    def tick(n: int) -> None:
        path.write_text(bad.get(n, "4000000") + "\n")

    fake = FakeTime(6, tick)
    (r,) = run_sampler([s], fake).stop()
    assert r.samples == 5  # start, ticks 1, 5, 6, stop
    assert r.mean_w == pytest.approx(4.0)
    assert sum("bad reading" in w for w in r.warnings) == 3


def test_counter_jump_is_left_out(tmp_path: Path) -> None:
    rapl_tree(tmp_path, 0)
    path = tmp_path / "class/powercap/intel-rapl:0/energy_uj"
    (pkg, _) = discover(tmp_path, run=lambda cmd: None, platform="linux").sensors
    values = {1: 2_000_000, 2: 4_000_000, 3: 4_000_000_000_000, 4: 4_000_002_000_000}

    def tick(n: int) -> None:
        path.write_text(str(values.get(n, 4_000_002_000_000)))

    fake = FakeTime(4, tick)
    (r,) = run_sampler([pkg], fake).stop()
    assert r.energy_j == pytest.approx(6.0)  # 2 + 2 + (jump left out) + 2
    assert any("jumped" in w for w in r.warnings)


def test_no_sensors_no_thread() -> None:
    sampler = PowerSampler([], 0.1)
    sampler.start()
    assert sampler.stop() == ()


# ---------------------------------------------------------------------------------------------- readings


def reading(**kw: object) -> PowerReading:
    base: dict[str, object] = dict(sensor="s", covers="board", method="power", interval_s=0.1, window_s=2.0,
                                   samples=21, mean_w=6.0, energy_j=12.0, uncertainty_rel=0.05)  # fmt: skip
    base.update(kw)
    return PowerReading(**base)  # type: ignore[arg-type]


def test_reading_round_trips_and_refuses_bad_fields() -> None:
    r = with_idle([reading()], [reading(mean_w=2.5, uncertainty_rel=0.02)])[0]
    assert r.idle_w == 2.5 and r.above_idle_w == pytest.approx(3.5)
    assert PowerReading.from_dict(r.to_dict()) == r
    with pytest.raises(StoreError, match="mean_w"):
        PowerReading.from_dict({**r.to_dict(), "mean_w": "hot"})
    with pytest.raises(StoreError, match="covers"):
        PowerReading.from_dict({**r.to_dict(), "covers": "moon"})


def test_energy_per_token_total_and_above_idle() -> None:
    r = with_idle([reading(mean_w=6.0)], [reading(mean_w=2.0)])[0]
    e = energy_per_unit(r, latency_s=0.05)
    assert e.energy_j == pytest.approx(0.3)
    assert e.energy_above_idle_j == pytest.approx(0.2)
    assert energy_per_unit(r, latency_s=0.8, units=16).energy_j == pytest.approx(0.3)
    assert primary([reading(covers="package"), reading(sensor="b", covers="board")]).sensor == "b"  # type: ignore[union-attr]
