"""Power and energy sensors this machine offers, found by looking (sysfs, commands on PATH), never assumed.

    discover(sysfs_root="/sys") ──> Discovery(sensors, notes)
        /sys/class/powercap/intel-rapl:N        RAPL package-N / psys energy counters (Intel; AMD Zen too)
        /sys/class/hwmon/hwmonN  name=ina3221   Jetson INA3221 rails: VDD_IN = module input, else sum of rails
        /sys/class/hwmon/hwmonN  power*/energy* other hwmon power meters (INA2xx on a Pi 4 HAT, AMD energy, ...)
        vcgencmd pmic_read_adc                  Raspberry Pi 5 PMIC: sum over rails of V x A
        /sys/class/power_supply/*  Battery      only while discharging: power_now, or current x voltage, or
                                                energy_now differences
        powermetrics (macOS)                    only as root; otherwise skipped with a note

A sensor's ``read()`` returns watts (method "power") or cumulative joules (method "energy_counter", unwrapped:
a counter that passes ``max_energy_range_uj`` and restarts at 0 keeps counting up). It raises
``SensorError`` when the sensor vanished (its file is gone: the sampler stops asking) or returned garbage (not a
number, negative, beyond ``MAX_PLAUSIBLE_W``: that sample is skipped). File layouts and units:
- powercap: https://docs.kernel.org/power/powercap/powercap.html (energy_uj, max_energy_range_uj in microjoules)
- hwmon: https://docs.kernel.org/hwmon/sysfs-interface.html (power*_input microwatts, energy*_input microjoules,
  in*_input millivolts, curr*_input milliamperes) and https://docs.kernel.org/hwmon/ina3221.html
- power_supply: https://docs.kernel.org/admin-guide/abi-testing.html#abi-sys-class-power (uW, uWh, uA, uV)
- Jetson: https://docs.nvidia.com/jetson/archives/r36.3/DeveloperGuide/SD/PlatformPowerAndPerformance/
  JetsonOrinNanoSeriesJetsonOrinNxSeriesAndJetsonAgxOrinSeries.html (INA3221 channels VDD_IN, VDD_CPU_GPU_CV,
  VDD_SOC under /sys/bus/i2c/drivers/ina3221/1-0040/hwmon/hwmon*)
"""

from __future__ import annotations

import math
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

# A reading above this is garbage on anything edgefit measures (a 2-socket server draws < 1 kW).
MAX_PLAUSIBLE_W = 5000.0
# RAPL's energy status counters update about every millisecond (Intel SDM vol. 3B, "Package RAPL Domain").
RAPL_UPDATE_S = 0.001

CommandRunner = Callable[[Sequence[str]], "str | None"]


class SensorError(Exception):
    """A sensor read failed. ``vanished``: gone for good (stop asking); otherwise one bad sample (skip it)."""

    def __init__(self, message: str, *, vanished: bool = False) -> None:
        super().__init__(message)
        self.vanished = vanished


def run_command(cmd: Sequence[str], timeout_s: float = 3.0) -> str | None:
    """stdout of a command found on PATH, or None (not installed, failed, timed out)."""
    exe = shutil.which(cmd[0])
    if exe is None:
        return None
    try:
        proc = subprocess.run([exe, *cmd[1:]], capture_output=True, text=True, timeout=timeout_s, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return proc.stdout if proc.returncode == 0 else None


def _read_text(path: Path) -> str:
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        raise SensorError(f"{path} is gone", vanished=True) from None
    except OSError as exc:  # ENODEV / ENXIO: the device went away; EIO etc.: one failed read
        import errno

        gone = exc.errno in (errno.ENODEV, errno.ENXIO, errno.ENOENT)
        raise SensorError(f"{path}: {exc.strerror or exc}", vanished=gone) from None


def _read_number(path: Path) -> float:
    text = _read_text(path)
    try:
        value = float(int(text))
    except ValueError:
        raise SensorError(f"{path}: expected an integer, found {text[:40]!r}") from None
    return value


def _plausible_w(value: float, where: str) -> float:
    if not math.isfinite(value) or value < 0 or value > MAX_PLAUSIBLE_W:
        raise SensorError(f"{where}: {value!r} W is not a plausible power draw")
    return value


@dataclass
class Sensor:
    """Base: name, coverage and sampling facts. Subclasses implement ``read``."""

    name: str
    covers: str
    method: str  # "power" | "energy_counter"
    note: str = ""
    resolution_s: float = 0.0  # energy counters: update period (uncertainty at each end of a window)
    min_interval_s: float = 0.05  # do not sample faster than this (a command-based sensor costs CPU)

    def read(self) -> float:
        raise NotImplementedError


@dataclass
class _Counter:
    path: Path
    range_j: float | None  # the counter restarts at 0 after this many joules (None: unknown)
    scale_j: float  # joules per raw unit (1e-6 for microjoules)
    last_raw: float | None = None


class EnergyCounterSensor(Sensor):
    """Cumulative energy from one or more counters (summed), each unwrapped at its own range."""

    def __init__(
        self, name: str, covers: str, counters: list[_Counter], *, note: str = "", resolution_s: float = RAPL_UPDATE_S
    ) -> None:
        super().__init__(name, covers, "energy_counter", note, resolution_s)
        self.counters = counters
        self.total_j = 0.0
        self._last_t: float | None = None

    def read(self) -> float:
        bad: str | None = None
        for c in self.counters:
            raw = _read_number(c.path)
            if raw < 0:
                raise SensorError(f"{c.path}: negative counter {raw!r}")
            if c.last_raw is not None:
                delta = raw - c.last_raw
                if delta < 0:
                    if c.range_j is None:
                        bad = f"{c.path}: counter went backwards ({c.last_raw:.0f} -> {raw:.0f}) with no known range"
                        delta = 0.0
                    else:  # wrapped past max_energy_range_uj and restarted at 0
                        delta += c.range_j / c.scale_j
                self.total_j += delta * c.scale_j
            c.last_raw = raw
        if bad is not None:
            raise SensorError(bad)
        return self.total_j


class FuncPowerSensor(Sensor):
    """Instantaneous watts from a function (files or a command)."""

    def __init__(
        self, name: str, covers: str, fn: Callable[[], float], *, note: str = "", min_interval_s: float = 0.05
    ) -> None:
        super().__init__(name, covers, "power", note, 0.0, min_interval_s)
        self._fn = fn

    def read(self) -> float:
        return _plausible_w(self._fn(), self.name)


class FuncEnergySensor(Sensor):
    """Cumulative joules from a function (a battery's falling energy_now)."""

    def __init__(
        self, name: str, covers: str, fn: Callable[[], float], *, note: str = "", resolution_s: float = 1.0
    ) -> None:
        super().__init__(name, covers, "energy_counter", note, resolution_s)
        self._fn = fn

    def read(self) -> float:
        return self._fn()


@dataclass(frozen=True)
class Discovery:
    sensors: tuple[Sensor, ...]
    notes: tuple[str, ...] = ()  # what was found but cannot be read, and why (permissions, not discharging)
    checked: tuple[str, ...] = field(default_factory=tuple)

    def describe(self) -> str:
        """One line for a bench summary."""
        if self.sensors:
            found = ", ".join(f"{s.name} ({s.covers})" for s in self.sensors)
            return f"power sensors: {found}"
        why = "; ".join(self.notes)
        return "no power sensor found (checked " + ", ".join(self.checked) + ")" + (f": {why}" if why else "")


# ---------------------------------------------------------------------------------------------- RAPL


def _rapl(root: Path, notes: list[str]) -> list[Sensor]:
    """Top-level powercap zones ``intel-rapl:N`` (AMD Zen packages appear under the same control type)."""
    base = root / "class" / "powercap"
    zones = sorted(p for p in base.glob("intel-rapl:*") if re.fullmatch(r"intel-rapl:\d+", p.name))
    packages: list[_Counter] = []
    names: list[str] = []
    out: list[Sensor] = []
    denied = False
    for z in zones:
        try:
            zname = (z / "name").read_text().strip()
        except OSError:
            continue
        try:
            range_uj: float | None = float(int((z / "max_energy_range_uj").read_text().strip()))
        except (OSError, ValueError):
            range_uj = None
        try:
            int((z / "energy_uj").read_text().strip())
        except PermissionError:
            denied = True
            continue
        except (OSError, ValueError):
            continue
        counter = _Counter(z / "energy_uj", None if range_uj is None else range_uj * 1e-6, 1e-6)
        if zname.startswith("package"):
            packages.append(counter)
            names.append(zname)
        elif zname == "psys":
            out.append(
                EnergyCounterSensor(
                    "rapl:psys",
                    "platform",
                    [counter],
                    note="RAPL psys: SoC and platform rails, as the firmware reports them",
                )
            )
    if packages:
        out.insert(
            0,
            EnergyCounterSensor(
                "rapl:" + "+".join(names),
                "package",
                packages,
                note="RAPL package: cores, caches, memory controller; not DRAM, not the rest of the board",
            ),
        )
    if denied and not out:
        notes.append(
            "RAPL energy counters exist but energy_uj is readable by root only (Linux >= 5.10, CVE-2020-8694): run "
            "as root, or `sudo chmod o+r /sys/class/powercap/intel-rapl:*/energy_uj`"
        )
    return out


# ---------------------------------------------------------------------------------------------- hwmon

_PACKAGE_CHIPS = ("amd_energy", "zenpower", "fam15h_power", "k10temp")
_GPU_CHIPS = ("amdgpu", "radeon", "nouveau", "i915", "xe")  # a graphics card's own draw: not what edgefit runs


def _ina3221(d: Path, idx: int) -> list[Sensor]:
    """Jetson INA3221: in{n}_input bus mV x curr{n}_input mA per labelled channel (kernel ina3221 docs)."""
    channels: list[tuple[str, Path, Path]] = []
    for n in (1, 2, 3):
        vin, cur = d / f"in{n}_input", d / f"curr{n}_input"
        if not (vin.exists() and cur.exists()):
            continue
        try:
            label = (d / f"in{n}_label").read_text().strip()
        except OSError:
            label = f"ch{n}"
        channels.append((label, vin, cur))
    if not channels:
        return []

    def rail_w(vin: Path, cur: Path) -> float:
        return _read_number(vin) * 1e-3 * _read_number(cur) * 1e-3

    total = [c for c in channels if c[0].upper() == "VDD_IN" or c[0].upper().startswith("VIN")]
    if total:
        label, vin, cur = total[0]
        return [
            FuncPowerSensor(
                f"ina3221:{label}",
                "board",
                lambda: rail_w(vin, cur),
                note="Jetson module input (INA3221 VDD_IN): the whole module, not the carrier board",
            )
        ]
    rails = list(channels)
    return [
        FuncPowerSensor(
            f"ina3221:hwmon{idx}:" + "+".join(c[0] for c in rails),
            "soc",
            lambda: sum(rail_w(v, c) for _, v, c in rails),
            note="sum of INA3221 rails (no VDD_IN channel on this chip): a lower bound of the module's draw",
        )
    ]


def _hwmon(root: Path) -> list[Sensor]:
    out: list[Sensor] = []
    base = root / "class" / "hwmon"
    dirs = sorted(base.glob("hwmon*"), key=lambda p: int(re.sub(r"\D", "", p.name) or 0))
    for d in dirs:
        try:
            chip = (d / "name").read_text().strip()
        except OSError:
            continue
        idx = int(re.sub(r"\D", "", d.name) or 0)
        if chip.startswith("ina3221"):
            out.extend(_ina3221(d, idx))
            continue
        if chip in _GPU_CHIPS:
            continue
        covers = "package" if chip in _PACKAGE_CHIPS else "board"
        note = (
            f"hwmon {chip}: CPU package"
            if covers == "package"
            else f"hwmon {chip}: coverage as wired on this board (assumed the board's input)"
        )
        energy = sorted(d.glob("energy*_input"))
        power = sorted(d.glob("power*_input")) or sorted(d.glob("power*_average"))
        if energy:
            # amd_energy: per-core and per-socket counters; the socket ones ("Esocket*") hold the package total
            labels = {p: _label(p) for p in energy}
            sockets = [p for p in energy if labels[p].lower().startswith("esocket")]
            chosen = sockets or energy[:1]
            counters = [_Counter(p, None, 1e-6) for p in chosen]
            out.append(EnergyCounterSensor(f"hwmon:{chip}", covers, counters, note=note, resolution_s=0.001))
        elif power:
            p = power[0]
            label = _label(p)
            name = f"hwmon:{chip}" + (f":{label}" if label else "")
            out.append(FuncPowerSensor(name, covers, _microwatts(p), note=note))
    return out


def _microwatts(p: Path) -> Callable[[], float]:
    return lambda: _read_number(p) * 1e-6


def _label(p: Path) -> str:
    lab = p.with_name(p.name.rsplit("_", 1)[0] + "_label")
    try:
        return lab.read_text().strip()
    except OSError:
        return ""


# ---------------------------------------------------------------------------------------------- Pi 5 PMIC

_PMIC_LINE = re.compile(r"^\s*(?P<rail>\S+)_(?P<kind>[AV])\s+(?:current|volt)\(\d+\)=(?P<value>[-+0-9.eE]+)[AV]\s*$")


def parse_pmic_read_adc(text: str) -> dict[str, tuple[float, float]]:
    """``vcgencmd pmic_read_adc`` -> {rail: (volts, amperes)} for rails with both a current and a voltage line.

    Lines look like ``   VDD_CORE_A current(7)=2.53000000A`` and ``   VDD_CORE_V volt(15)=0.72070740V``;
    EXT5V_V and BATT_V have no current line and are left out (their power is not metered)."""
    amps: dict[str, float] = {}
    volts: dict[str, float] = {}
    for line in text.splitlines():
        m = _PMIC_LINE.match(line)
        if not m:
            continue
        try:
            value = float(m.group("value"))
        except ValueError:
            continue
        (amps if m.group("kind") == "A" else volts)[m.group("rail")] = value
    return {r: (volts[r], amps[r]) for r in amps if r in volts}


def _pmic(run: CommandRunner) -> list[Sensor]:
    out = run(["vcgencmd", "pmic_read_adc"])
    if out is None or not parse_pmic_read_adc(out):
        return []

    def read() -> float:
        text = run(["vcgencmd", "pmic_read_adc"])
        if text is None:
            raise SensorError("vcgencmd pmic_read_adc failed")
        rails = parse_pmic_read_adc(text)
        if not rails:
            raise SensorError(f"vcgencmd pmic_read_adc: no rails in {text[:60]!r}")
        return sum(v * a for v, a in rails.values())

    return [
        FuncPowerSensor(
            "pi5-pmic",
            "board",
            read,
            min_interval_s=0.2,
            note="Raspberry Pi 5 PMIC: sum of its rails' V x A; excludes the PMIC's conversion "
            "losses and 5 V loads (USB, fan)",
        )
    ]


# ---------------------------------------------------------------------------------------------- batteries


def _battery(root: Path, notes: list[str]) -> list[Sensor]:
    out: list[Sensor] = []
    for d in sorted((root / "class" / "power_supply").glob("*")):
        try:
            kind = (d / "type").read_text().strip()
            status = (d / "status").read_text().strip()
        except OSError:
            continue
        if kind != "Battery":
            continue
        if status != "Discharging":
            notes.append(f"battery {d.name} is {status.lower()}, not discharging: its draw is not the machine's")
            continue

        def check_discharging(d: Path = d) -> None:
            st = _read_text(d / "status")
            if st != "Discharging":
                raise SensorError(f"battery {d.name} now {st.lower()} (charger plugged in?)", vanished=True)

        name = f"battery:{d.name}"
        note = "battery discharge: the whole machine, screen and radios included"
        if (d / "power_now").exists():

            def power_now(d: Path = d) -> float:
                check_discharging(d)
                return abs(_read_number(d / "power_now")) * 1e-6  # µW; some drivers report it negative

            out.append(FuncPowerSensor(name, "battery", power_now, note=note))
        elif (d / "current_now").exists() and (d / "voltage_now").exists():

            def cur_x_volt(d: Path = d) -> float:
                check_discharging(d)
                return abs(_read_number(d / "current_now")) * 1e-6 * _read_number(d / "voltage_now") * 1e-6

            out.append(FuncPowerSensor(name, "battery", cur_x_volt, note=note + " (current_now x voltage_now)"))
        elif (d / "energy_now").exists():
            start: dict[str, float | None] = {"uwh": None}

            def used_j(d: Path = d, start: dict[str, float | None] = start) -> float:
                check_discharging(d)
                now_uwh = _read_number(d / "energy_now")
                first = start["uwh"]
                if first is None:
                    start["uwh"] = first = now_uwh
                return max(0.0, (first - now_uwh) * 3.6e-3)  # µWh -> J

            out.append(
                FuncEnergySensor(
                    name,
                    "battery",
                    used_j,
                    resolution_s=5.0,
                    note=note + " (energy_now differences: the gauge updates every few "
                    "seconds, so short windows read 0)",
                )
            )
    return out


# ---------------------------------------------------------------------------------------------- macOS

_PM_COMBINED = re.compile(r"Combined Power \(CPU \+ GPU \+ ANE\):\s*([0-9.]+)\s*mW")
_PM_CPU = re.compile(r"^CPU Power:\s*([0-9.]+)\s*mW", re.M)


def parse_powermetrics(text: str) -> float | None:
    """Watts from ``powermetrics --samplers cpu_power`` text: the combined figure, else the CPU one."""
    m = _PM_COMBINED.search(text) or _PM_CPU.search(text)
    return None if m is None else float(m.group(1)) * 1e-3


def _powermetrics(run: CommandRunner, is_root: bool, notes: list[str]) -> list[Sensor]:
    if shutil.which("powermetrics") is None:
        return []
    if not is_root:
        notes.append("macOS powermetrics needs root: run `sudo edgefit bench` to measure power (skipped)")
        return []
    cmd = ["powermetrics", "-n", "1", "-i", "200", "--samplers", "cpu_power"]

    def read() -> float:
        text = run(cmd)
        w = None if text is None else parse_powermetrics(text)
        if w is None:
            raise SensorError("powermetrics printed no power figure")
        return w

    return [
        FuncPowerSensor(
            "powermetrics",
            "soc",
            read,
            min_interval_s=0.25,
            note="macOS powermetrics: CPU + GPU + ANE, not the rest of the machine",
        )
    ]


# ---------------------------------------------------------------------------------------------- discovery


def discover(
    sysfs_root: str | os.PathLike[str] = "/sys",
    *,
    run: CommandRunner = run_command,
    platform: str | None = None,
    is_root: bool | None = None,
) -> Discovery:
    """Every power sensor this machine exposes and can be read by this process. Never raises: a sensor that
    cannot be read is left out (with a note when the reason is actionable)."""
    root = Path(sysfs_root)
    plat = platform or sys.platform
    notes: list[str] = []
    sensors: list[Sensor] = []
    checked: list[str] = []
    if plat.startswith("linux"):
        checked += ["powercap RAPL", "hwmon (INA3221, power meters)", "Pi 5 PMIC (vcgencmd)", "batteries"]
        for finder in (
            lambda: _rapl(root, notes),
            lambda: _hwmon(root),
            lambda: _pmic(run),
            lambda: _battery(root, notes),
        ):
            try:
                sensors.extend(finder())
            except OSError as exc:  # a sysfs tree that changes while we look: skip that family
                notes.append(f"power sensor discovery: {exc}")
    elif plat == "darwin":
        checked.append("powermetrics")
        root_user = is_root if is_root is not None else (hasattr(os, "geteuid") and os.geteuid() == 0)
        sensors.extend(_powermetrics(run, bool(root_user), notes))
    else:
        checked.append(f"nothing on {plat}")
    working: list[Sensor] = []
    for s in sensors:  # one read now: a sensor that fails at once is not offered
        try:
            s.read()
            working.append(s)
        except SensorError as exc:
            notes.append(f"{s.name}: {exc}")
    return Discovery(tuple(working), tuple(notes), tuple(checked))
