"""The environment a measurement ran in: host, CPU, OS, runtime versions, clocks, heat, load, memory limit.

Captured on every run (DESIGN.md: every result carries where it came from). Each reader is tolerant: a file the
OS does not have, a command that is not installed, or an unparsable value gives None / empty, never an
exception, so capture works the same on an x86 laptop, a Raspberry Pi, macOS and inside a container.
Parsers take text so tests feed them fixture files (a Pi's cpuinfo, a vcgencmd line).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import glob
import os
import platform
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import psutil

from edgefit import __version__
from edgefit.detect import ARM_PARTS, host_fingerprint
from edgefit.memory import memory_availability

# `vcgencmd get_throttled` bits, from the Raspberry Pi documentation
# (https://www.raspberrypi.com/documentation/computers/os.html#get_throttled).
THROTTLE_BITS: dict[int, str] = {
    0: "under_voltage",
    1: "arm_frequency_capped",
    2: "throttled",
    3: "soft_temperature_limit",
    16: "under_voltage_occurred",
    17: "arm_frequency_capping_occurred",
    18: "throttling_occurred",
    19: "soft_temperature_limit_occurred",
}


# Environment variables that change how many threads onnxruntime / BLAS libraries use.
THREAD_ENV_VARS = ("OMP_NUM_THREADS", "OMP_WAIT_POLICY", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "ORT_NUM_THREADS")


@dataclass(frozen=True, slots=True)
class Throttling:
    raw: int  # the bit field `vcgencmd get_throttled` prints
    flags: tuple[str, ...]  # names of the set bits (THROTTLE_BITS), in bit order

    @property
    def now(self) -> bool:
        """Throttled, capped or under-voltage right now (bits 0-3)."""
        return bool(self.raw & 0xF)

    @property
    def since_boot(self) -> bool:
        return bool(self.raw & 0xF000F)


@dataclass(frozen=True, slots=True)
class CpuInfo:
    model: str | None
    flags: tuple[str, ...]
    board: str | None  # e.g. "Raspberry Pi 5 Model B Rev 1.0" (device tree / cpuinfo "Model")


@dataclass(frozen=True, slots=True)
class Environment:
    host_fingerprint: str
    captured_at: str  # ISO 8601 UTC
    os_name: str  # platform.system(): Linux, Darwin, Windows
    os_release: str  # kernel release
    os_pretty: str | None  # /etc/os-release PRETTY_NAME, macOS product version
    machine: str  # x86_64, aarch64, arm64
    cpu_model: str | None
    cpu_flags: tuple[str, ...]  # ISA feature flags as the OS names them (sorted)
    board: str | None
    physical_cores: int | None
    logical_cores: int | None
    cpus_allowed: int | None  # CPUs this process may run on (affinity / container cpuset)
    ram_bytes: int | None
    available_memory_bytes: int | None  # edgefit.memory: min(OS available, cgroup limit - usage)
    cgroup_memory_limit_bytes: int | None
    python_version: str
    onnxruntime_version: str | None
    onnxruntime_providers: tuple[str, ...]
    edgefit_version: str
    threads: int | None  # intra-op threads the bench asked onnxruntime for (None: onnxruntime's default)
    thread_env: tuple[tuple[str, str], ...]  # (name, value) of THREAD_ENV_VARS that are set
    cpu_governor: str | None  # cpu0's scaling governor; "a,b" when CPUs differ
    cpu_freq_hz: tuple[float, ...]  # current clock per CPU, as readable
    cpu_max_freq_hz: float | None
    temperatures_c: tuple[tuple[str, float], ...]  # (thermal zone type, degrees Celsius)
    throttling: Throttling | None  # Raspberry Pi only (vcgencmd)
    load_avg: tuple[float, float, float] | None  # 1, 5, 15 min
    timer_resolution_s: float | None = None  # time.perf_counter's resolution, as the OS reports it

    def to_dict(self) -> dict[str, Any]:
        """JSON-able, base units; tuples of pairs become objects."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in ("thread_env", "temperatures_c"):
                value = dict(value)
            elif f.name == "throttling":
                value = None if value is None else {"raw": value.raw, "flags": list(value.flags)}
            elif isinstance(value, tuple):
                value = list(value)
            out[f.name] = value
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Environment:
        """Rebuild from ``to_dict`` output. Tolerant, since bundles come from other hosts and other edgefit
        versions: a missing key or a value of the wrong type becomes None / empty; unknown keys are ignored."""

        def s(name: str) -> str:
            v = data.get(name)
            return v if isinstance(v, str) else ""

        def opt_s(name: str) -> str | None:
            v = data.get(name)
            return v if isinstance(v, str) else None

        def opt_i(name: str) -> int | None:
            v = data.get(name)
            return v if isinstance(v, int) and not isinstance(v, bool) else None

        def opt_f(name: str) -> float | None:
            v = data.get(name)
            return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None

        def seq(name: str) -> list[Any]:
            v = data.get(name)
            return list(v) if isinstance(v, (list, tuple)) else []

        def pairs(name: str) -> dict[Any, Any]:
            v = data.get(name)
            return dict(v) if isinstance(v, Mapping) else {}

        thr = data.get("throttling")
        raw = thr.get("raw") if isinstance(thr, Mapping) else None
        load = seq("load_avg")
        return cls(
            host_fingerprint=s("host_fingerprint"),
            captured_at=s("captured_at"),
            os_name=s("os_name"),
            os_release=s("os_release"),
            os_pretty=opt_s("os_pretty"),
            machine=s("machine"),
            cpu_model=opt_s("cpu_model"),
            cpu_flags=tuple(str(x) for x in seq("cpu_flags")),
            board=opt_s("board"),
            physical_cores=opt_i("physical_cores"),
            logical_cores=opt_i("logical_cores"),
            cpus_allowed=opt_i("cpus_allowed"),
            ram_bytes=opt_i("ram_bytes"),
            available_memory_bytes=opt_i("available_memory_bytes"),
            cgroup_memory_limit_bytes=opt_i("cgroup_memory_limit_bytes"),
            python_version=s("python_version"),
            onnxruntime_version=opt_s("onnxruntime_version"),
            onnxruntime_providers=tuple(str(x) for x in seq("onnxruntime_providers")),
            edgefit_version=s("edgefit_version"),
            threads=opt_i("threads"),
            thread_env=tuple((str(k), str(v)) for k, v in pairs("thread_env").items()),
            cpu_governor=opt_s("cpu_governor"),
            cpu_freq_hz=tuple(float(x) for x in seq("cpu_freq_hz") if _is_num(x)),
            cpu_max_freq_hz=opt_f("cpu_max_freq_hz"),
            temperatures_c=tuple((str(k), float(v)) for k, v in pairs("temperatures_c").items() if _is_num(v)),
            throttling=decode_throttled(raw) if isinstance(raw, int) and not isinstance(raw, bool) else None,
            load_avg=(float(load[0]), float(load[1]), float(load[2]))
            if len(load) == 3 and all(_is_num(x) for x in load)
            else None,
            timer_resolution_s=opt_f("timer_resolution_s"),
        )


def _is_num(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


# ---------------------------------------------------------------------------------------------- parsers


def _read(path: str | Path) -> str | None:
    try:
        return Path(path).read_text(encoding="utf-8", errors="replace")
    except (OSError, ValueError):
        return None


def _run(cmd: list[str]) -> str | None:
    if shutil.which(cmd[0]) is None:
        return None
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=3, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout if out.returncode == 0 else None


def parse_cpuinfo(text: str) -> CpuInfo:
    """``/proc/cpuinfo`` on x86 ("model name", "flags") and aarch64 ("CPU part", "Features", Pi "Model")."""
    model: str | None = None
    flags: set[str] = set()
    board: str | None = None
    implementer: str | None = None
    parts: list[str] = []
    hardware: str | None = None
    for line in text.splitlines():
        if ":" not in line:
            continue
        key, _, value = line.partition(":")
        key, value = key.strip().lower(), value.strip()
        if key == "model name" and model is None and value:
            model = value
        elif key in ("flags", "features"):
            flags.update(value.split())
        elif key == "model" and not value.isdigit() and value:
            board = value  # x86 has "model : 207" (a number); a Pi has "Model : Raspberry Pi 5 ..."
        elif key == "cpu implementer":
            implementer = value
        elif key == "cpu part":
            parts.append(value.lower())
        elif key == "hardware" and value:
            hardware = value
    if model is None and parts:
        names = [ARM_PARTS.get(p, f"part {p}") if implementer in (None, "0x41") else f"part {p}" for p in parts]
        counts: dict[str, int] = {}
        for n in names:
            counts[n] = counts.get(n, 0) + 1
        model = " + ".join(f"{n} x{c}" for n, c in counts.items())
    if model is None and hardware is not None:
        model = hardware
    return CpuInfo(model=model, flags=tuple(sorted(flags)), board=board)


def parse_sysctl_features(text: str) -> tuple[str, ...]:
    """macOS feature flags from ``sysctl machdep.cpu.features machdep.cpu.leaf7_features hw.optional``."""
    flags: set[str] = set()
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if not sep:
            continue
        key, value = key.strip(), value.strip()
        if key.startswith("machdep.cpu.") and key.endswith("features"):
            flags.update(v.lower() for v in value.split())
        elif key.startswith("hw.optional.") and value == "1":
            name = key.rsplit(".", 1)[-1]
            flags.add(name.removeprefix("FEAT_").lower())
    return tuple(sorted(flags))


def decode_throttled(raw: int) -> Throttling:
    return Throttling(raw=raw, flags=tuple(name for bit, name in sorted(THROTTLE_BITS.items()) if raw & (1 << bit)))


def parse_vcgencmd_throttled(text: str) -> Throttling | None:
    """``throttled=0x50005`` -> Throttling; None if the text is not that."""
    _, sep, value = text.strip().partition("=")
    if not sep:
        return None
    try:
        return decode_throttled(int(value.strip(), 0))
    except ValueError:
        return None


def parse_os_release(text: str) -> str | None:
    for line in text.splitlines():
        if line.startswith("PRETTY_NAME="):
            return line.split("=", 1)[1].strip().strip('"') or None
    return None


def _khz_to_hz(text: str | None) -> float | None:
    try:
        return float(text.strip()) * 1000.0 if text is not None else None
    except ValueError:
        return None


def read_cpufreq(sys_cpu: str = "/sys/devices/system/cpu") -> tuple[str | None, tuple[float, ...], float | None]:
    """(governor, current clock per CPU [Hz], max clock [Hz]) from cpufreq; Nones where not exposed (VMs)."""
    governors: list[str] = []
    current: list[float] = []
    max_hz: float | None = None
    cpu_dirs = sorted(glob.glob(os.path.join(sys_cpu, "cpu[0-9]*")), key=lambda p: int(p.rsplit("cpu", 1)[1]))
    for d in cpu_dirs:
        freq = os.path.join(d, "cpufreq")
        gov = _read(os.path.join(freq, "scaling_governor"))
        if gov is not None and gov.strip() and gov.strip() not in governors:
            governors.append(gov.strip())
        cur = _khz_to_hz(_read(os.path.join(freq, "scaling_cur_freq")))
        if cur is not None:
            current.append(cur)
        mx = _khz_to_hz(_read(os.path.join(freq, "cpuinfo_max_freq")))
        if mx is not None:
            max_hz = mx if max_hz is None else max(max_hz, mx)
    return (",".join(governors) or None), tuple(current), max_hz


def read_thermal(sys_thermal: str = "/sys/class/thermal") -> tuple[tuple[str, float], ...]:
    out: list[tuple[str, float]] = []
    for d in sorted(glob.glob(os.path.join(sys_thermal, "thermal_zone*"))):
        temp = _read(os.path.join(d, "temp"))
        if temp is None:
            continue
        try:
            celsius = int(temp.strip()) / 1000.0  # millidegrees Celsius
        except ValueError:
            continue
        name = (_read(os.path.join(d, "type")) or os.path.basename(d)).strip() or os.path.basename(d)
        if any(n == name for n, _ in out):
            name = f"{name}:{os.path.basename(d)}"
        out.append((name, celsius))
    return tuple(out)


# ---------------------------------------------------------------------------------------------- capture


def _cpu_info() -> CpuInfo:
    system = platform.system()
    if system == "Linux":
        text = _read("/proc/cpuinfo")
        info = parse_cpuinfo(text) if text is not None else CpuInfo(None, (), None)
        if info.board is None:
            dt_model = _read("/proc/device-tree/model")
            if dt_model:
                info = CpuInfo(info.model, info.flags, dt_model.strip("\x00\n "))
        return info
    if system == "Darwin":
        brand = _run(["sysctl", "-n", "machdep.cpu.brand_string"])
        feats = _run(["sysctl", "machdep.cpu.features", "machdep.cpu.leaf7_features", "hw.optional"]) or ""
        return CpuInfo((brand or "").strip() or None, parse_sysctl_features(feats), None)
    return CpuInfo(platform.processor() or None, (), None)


def _os_pretty() -> str | None:
    if platform.system() == "Darwin":
        ver = platform.mac_ver()[0]
        return f"macOS {ver}" if ver else None
    text = _read("/etc/os-release")
    return parse_os_release(text) if text is not None else None


def _onnxruntime() -> tuple[str | None, tuple[str, ...]]:
    try:
        import onnxruntime as ort
    except ImportError:
        return None, ()
    try:
        return str(ort.__version__), tuple(ort.get_available_providers())
    except Exception:  # a broken install must not stop the capture
        return str(getattr(ort, "__version__", None)), ()


def _cpus_allowed() -> int | None:
    getaff = getattr(os, "sched_getaffinity", None)
    if getaff is None:
        return None
    try:
        return len(getaff(0))
    except OSError:
        return None


def capture_environment(threads: int | None = None) -> Environment:
    """Snapshot of this host now. ``threads``: the intra-op thread count the bench will use."""
    cpu = _cpu_info()
    physical = psutil.cpu_count(logical=False)
    logical = psutil.cpu_count(logical=True)
    ram = int(psutil.virtual_memory().total)
    mem = memory_availability()
    governor, clocks, max_hz = read_cpufreq()
    load: tuple[float, float, float] | None = None
    with contextlib.suppress(OSError, AttributeError):
        load = os.getloadavg()
    throttled_text = _run(["vcgencmd", "get_throttled"])
    ort_version, providers = _onnxruntime()
    return Environment(
        host_fingerprint=host_fingerprint(),
        captured_at=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        os_name=platform.system(),
        os_release=platform.release(),
        os_pretty=_os_pretty(),
        machine=platform.machine(),
        cpu_model=cpu.model,
        cpu_flags=cpu.flags,
        board=cpu.board,
        physical_cores=physical,
        logical_cores=logical,
        cpus_allowed=_cpus_allowed(),
        ram_bytes=ram,
        available_memory_bytes=mem.available_bytes,
        cgroup_memory_limit_bytes=mem.cgroup.limit_bytes if mem.cgroup is not None else None,
        python_version=sys.version.split()[0],
        onnxruntime_version=ort_version,
        onnxruntime_providers=providers,
        edgefit_version=__version__,
        threads=threads,
        thread_env=tuple((k, os.environ[k]) for k in THREAD_ENV_VARS if k in os.environ),
        cpu_governor=governor,
        cpu_freq_hz=clocks,
        cpu_max_freq_hz=max_hz,
        temperatures_c=read_thermal(),
        throttling=parse_vcgencmd_throttled(throttled_text) if throttled_text else None,
        load_avg=load,
        timer_resolution_s=time.get_clock_info("perf_counter").resolution,
    )
