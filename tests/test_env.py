from __future__ import annotations

import json
from pathlib import Path

import pytest

from edgefit import __version__, detect
from edgefit.bench import env as envmod
from edgefit.bench.env import Environment, capture_environment

# /proc/cpuinfo of a Raspberry Pi 5 (Cortex-A76, Linux 6.6, Raspberry Pi OS), trimmed to two of four cores
PI5_CPUINFO = """\
processor\t: 0
BogoMIPS\t: 108.00
Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp
CPU implementer\t: 0x41
CPU architecture: 8
CPU variant\t: 0x4
CPU part\t: 0xd0b
CPU revision\t: 1

processor\t: 1
BogoMIPS\t: 108.00
Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp
CPU implementer\t: 0x41
CPU architecture: 8
CPU variant\t: 0x4
CPU part\t: 0xd0b
CPU revision\t: 1

Revision\t: d04170
Serial\t\t: 0000000000000000
Model\t\t: Raspberry Pi 5 Model B Rev 1.0
"""

# Raspberry Pi 4 (Cortex-A72), one core shown
PI4_CPUINFO = """\
processor\t: 0
BogoMIPS\t: 108.00
Features\t: fp asimd evtstrm crc32 cpuid
CPU implementer\t: 0x41
CPU architecture: 8
CPU variant\t: 0x0
CPU part\t: 0xd08
CPU revision\t: 3

Hardware\t: BCM2835
Revision\t: c03114
Model\t\t: Raspberry Pi 4 Model B Rev 1.4
"""

# a big.LITTLE phone-class SoC: 2 Cortex-A55 + 2 Cortex-A76 (RK3588-like, trimmed)
BIG_LITTLE_CPUINFO = "".join(
    f"processor\t: {i}\nFeatures\t: fp asimd asimddp\nCPU implementer\t: 0x41\nCPU part\t: {part}\n\n"
    for i, part in enumerate(["0xd05", "0xd05", "0xd0b", "0xd0b"])
)

X86_CPUINFO = """\
processor\t: 0
vendor_id\t: GenuineIntel
cpu family\t: 6
model\t\t: 207
model name\t: Intel(R) Xeon(R) Processor
flags\t\t: fpu sse sse2 avx avx2 fma avx512f avx512_vnni amx_tile amx_int8
"""


def test_cpuinfo_pi5() -> None:
    info = envmod.parse_cpuinfo(PI5_CPUINFO)
    assert info.model == "Cortex-A76 x2"
    assert info.board == "Raspberry Pi 5 Model B Rev 1.0"
    assert "asimddp" in info.flags and "fphp" in info.flags
    assert list(info.flags) == sorted(info.flags)


def test_cpuinfo_pi4() -> None:
    info = envmod.parse_cpuinfo(PI4_CPUINFO)
    assert info.model == "Cortex-A72 x1"
    assert info.board == "Raspberry Pi 4 Model B Rev 1.4"
    assert "asimddp" not in info.flags  # the A72 has no dot product: int8 speed differs from a Pi 5
    assert set(info.flags) == {"fp", "asimd", "evtstrm", "crc32", "cpuid"}


def test_cpuinfo_big_little() -> None:
    assert envmod.parse_cpuinfo(BIG_LITTLE_CPUINFO).model == "Cortex-A55 x2 + Cortex-A76 x2"


def test_cpuinfo_x86() -> None:
    info = envmod.parse_cpuinfo(X86_CPUINFO)
    assert info.model == "Intel(R) Xeon(R) Processor"
    assert info.board is None  # "model : 207" is a number, not a board name
    assert {"avx2", "avx512_vnni", "amx_int8"} <= set(info.flags)


def test_cpuinfo_unknown_part_and_empty() -> None:
    assert envmod.parse_cpuinfo("CPU implementer : 0x61\nCPU part : 0x022\n").model == "part 0x022 x1"
    empty = envmod.parse_cpuinfo("")
    assert empty.model is None and empty.flags == () and empty.board is None


def test_sysctl_features_macos() -> None:
    text = (
        "machdep.cpu.features: FPU VME SSE SSE2 AVX1.0\n"
        "machdep.cpu.leaf7_features: AVX2 BMI1\n"
        "hw.optional.arm.FEAT_DotProd: 1\n"
        "hw.optional.arm.FEAT_I8MM: 0\n"
        "hw.optional.neon: 1\n"
    )
    flags = envmod.parse_sysctl_features(text)
    assert {"sse2", "avx1.0", "avx2", "dotprod", "neon"} <= set(flags)
    assert "i8mm" not in flags


@pytest.mark.parametrize(
    ("text", "flags", "now"),
    [
        ("throttled=0x0\n", (), False),
        ("throttled=0x50000\n", ("under_voltage_occurred", "throttling_occurred"), False),
        (
            "throttled=0x50005\n",
            ("under_voltage", "throttled", "under_voltage_occurred", "throttling_occurred"),
            True,
        ),
        ("throttled=0x80008", ("soft_temperature_limit", "soft_temperature_limit_occurred"), True),
    ],
)
def test_vcgencmd_throttled(text: str, flags: tuple[str, ...], now: bool) -> None:
    t = envmod.parse_vcgencmd_throttled(text)
    assert t is not None
    assert t.flags == flags
    assert t.now is now
    assert t.since_boot is bool(flags)


@pytest.mark.parametrize("text", ["", 'error=1 error_msg="Command not registered"', "throttled=zz"])
def test_vcgencmd_garbage(text: str) -> None:
    assert envmod.parse_vcgencmd_throttled(text) is None


def test_os_release() -> None:
    text = 'NAME="Debian GNU/Linux"\nPRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\n'
    assert envmod.parse_os_release(text) == "Debian GNU/Linux 12 (bookworm)"
    assert envmod.parse_os_release("ID=x\n") is None


def test_cpufreq_and_thermal_from_sysfs(tmp_path: Path) -> None:
    cpu = tmp_path / "cpu"
    for i, (gov, khz) in enumerate([("ondemand", "1500000"), ("ondemand", "2400000"), ("performance", "600000")]):
        d = cpu / f"cpu{i if i < 2 else 10}" / "cpufreq"
        d.mkdir(parents=True)
        (d / "scaling_governor").write_text(gov + "\n")
        (d / "scaling_cur_freq").write_text(khz + "\n")
        (d / "cpuinfo_max_freq").write_text("2400000\n")
    (cpu / "cpufreq").mkdir()  # not a cpuN directory: ignored
    governor, clocks, max_hz = envmod.read_cpufreq(str(cpu))
    assert governor == "ondemand,performance"
    assert clocks == (1.5e9, 2.4e9, 0.6e9)  # kHz -> Hz, cpu10 after cpu1
    assert max_hz == 2.4e9

    thermal = tmp_path / "thermal"
    for i, (typ, milli) in enumerate([("cpu-thermal", "61850"), ("gpu", "bad")]):
        d = thermal / f"thermal_zone{i}"
        d.mkdir(parents=True)
        (d / "type").write_text(typ + "\n")
        (d / "temp").write_text(milli + "\n")
    assert envmod.read_thermal(str(thermal)) == (("cpu-thermal", 61.85),)


def test_sysfs_missing_gives_none(tmp_path: Path) -> None:
    assert envmod.read_cpufreq(str(tmp_path / "none")) == (None, (), None)
    assert envmod.read_thermal(str(tmp_path / "none")) == ()


def test_capture_on_this_host() -> None:
    e = capture_environment(threads=2)
    assert e.threads == 2
    assert e.edgefit_version == __version__
    assert e.onnxruntime_version is not None and "CPUExecutionProvider" in e.onnxruntime_providers
    assert e.logical_cores is not None and e.logical_cores >= 1
    assert e.ram_bytes is not None and e.available_memory_bytes is not None
    assert 0 < e.available_memory_bytes <= e.ram_bytes
    assert len(e.host_fingerprint) >= 8
    assert e.timer_resolution_s is not None and 0 < e.timer_resolution_s < 1e-3
    # stable: a second capture names the same host
    assert capture_environment().host_fingerprint == e.host_fingerprint


def test_round_trip_through_json() -> None:
    e = capture_environment(threads=1)
    e = Environment.from_dict({**e.to_dict(), "throttling": {"raw": 0x50005, "flags": []}})
    text = json.dumps(e.to_dict())
    back = Environment.from_dict(json.loads(text))
    assert back == e
    assert back.throttling is not None and "under_voltage" in back.throttling.flags


def test_from_dict_tolerates_old_and_new_keys() -> None:
    e = Environment.from_dict({"host_fingerprint": "abc", "some_future_field": 1})
    assert e.host_fingerprint == "abc"
    assert e.cpu_model is None and e.cpu_flags == () and e.load_avg is None and e.throttling is None


def test_from_dict_tolerates_wrong_types() -> None:
    # a hand-edited or foreign bundle must not break `edgefit results list`
    e = Environment.from_dict(
        {
            "host_fingerprint": 7,
            "physical_cores": "two",
            "load_avg": ["high", 1, 2],
            "temperatures_c": {"cpu": "hot", "gpu": 50},
            "cpu_freq_hz": [1e9, None],
            "throttling": {"raw": "0x5"},
            "thread_env": ["not", "a", "mapping"],
            "cpu_flags": "avx2",
        }
    )
    assert e.host_fingerprint == "" and e.physical_cores is None and e.load_avg is None
    assert e.temperatures_c == (("gpu", 50.0),) and e.cpu_freq_hz == (1e9,)
    assert e.throttling is None and e.thread_env == () and e.cpu_flags == ()


def test_capture_tolerates_a_bare_system(monkeypatch: pytest.MonkeyPatch) -> None:
    # No /proc, no /sys, no vcgencmd, no load average: capture still returns, with Nones.
    monkeypatch.setattr(envmod, "_read", lambda path: None)
    monkeypatch.setattr(envmod, "_run", lambda cmd: None)

    def no_loadavg() -> tuple[float, float, float]:
        raise OSError("not available")

    monkeypatch.setattr(envmod.os, "getloadavg", no_loadavg)
    e = capture_environment()
    assert e.load_avg is None
    assert e.cpu_governor is None and e.cpu_freq_hz == () and e.temperatures_c == ()
    assert e.throttling is None
    assert e.host_fingerprint


def test_capture_reads_vcgencmd_when_present(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[list[str]] = []

    def fake_run(cmd: list[str]) -> str | None:
        calls.append(cmd)
        return "throttled=0x50000\n" if cmd[0] == "vcgencmd" else None

    monkeypatch.setattr(envmod, "_run", fake_run)
    e = capture_environment()
    assert ["vcgencmd", "get_throttled"] in calls
    assert e.throttling is not None and e.throttling.flags == ("under_voltage_occurred", "throttling_occurred")


def test_thread_env_recorded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert ("OMP_NUM_THREADS", "3") in capture_environment().thread_env


def test_fingerprint_is_detects() -> None:
    # predict and report look this host's measurements up by detect.host_fingerprint(): they must agree
    assert capture_environment().host_fingerprint == detect.host_fingerprint()
