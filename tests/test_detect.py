"""`edgefit detect` and the host profile: what is read from the OS, what is measured, what is estimated."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import psutil
import pytest

from edgefit import detect, memory, probes
from edgefit.cli import main
from edgefit.errors import ProfileError
from edgefit.profiles import DeviceProfile, iter_figures
from tests.test_profiles import write_profile

RK3588_CPUINFO = "\n\n".join(
    f"processor\t: {i}\nBogoMIPS\t: 48.00\nFeatures\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp "
    f"asimdhp cpuid asimdrdm lrcpc dcpop asimddp\nCPU implementer\t: 0x41\nCPU architecture: 8\n"
    f"CPU variant\t: 0x{'2' if i < 4 else '4'}\nCPU part\t: {'0xd05' if i < 4 else '0xd0b'}\nCPU revision\t: 0"
    for i in range(8)
)


def test_detect_json_measures_this_host_and_saves_a_valid_profile(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    saved = tmp_path / "my-box.toml"
    assert main(["detect", "--json", "--probe-seconds", "0.6", "--save", str(saved)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["id"] == "host" and data["fingerprint"] == detect.host_fingerprint()
    mem = data["memory"]
    assert mem["ram_bytes"]["value"] == psutil.virtual_memory().total
    assert 0 < mem["usable_ram_bytes"]["value"] <= mem["ram_bytes"]["value"]
    triad = mem["measured_bandwidth_bytes_per_s"]
    assert 1e8 < triad["value"] < 1e13 and triad["source"].startswith("measured by edgefit detect on ")
    assert "triad" in triad["method"]
    assert mem["bandwidth_bytes_per_s"]["estimated"] and mem["bandwidth_bytes_per_s"]["value"] >= triad["value"]
    cpu = data["compute"]["cpu"]
    gemm = cpu["measured_fp32_flops_per_s"]["value"]
    assert 1e8 < gemm < 1e15 and cpu["peak_fp32_flops_per_s"]["value"] >= gemm
    assert data["cpu"]["cores"] == (psutil.cpu_count(logical=False) or psutil.cpu_count())
    assert set(data["probes"]) == {"triad", "copy", "gemv", "gemm", "int8"}
    int8 = cpu["measured_int8_ops_per_s"]
    assert 1e8 < int8["value"] < 1e16 and "MatMulNBits bits=8" in int8["method"]
    for probe in data["probes"].values():
        assert len(probe["samples"]) >= 3 and probe["min"] <= probe["value"] <= probe["max"]
    assert data["saved_to"] == str(saved)
    assert isinstance(data["warnings"], list)
    # the saved file validates and reads back the same figures, under the file's name
    assert main(["profiles", "validate", str(saved)]) == 0
    back = DeviceProfile.from_toml(saved)
    assert back.id == "my-box" and back.ram_bytes == psutil.virtual_memory().total
    assert back.measured_bandwidth_bytes_per_s == pytest.approx(triad["value"], rel=1e-6)
    for name, fig in iter_figures(back):
        assert fig.source or (fig.estimated and fig.note), name
    # detect refreshed the cache that `--device host` reads: no probing the second time
    assert detect.host_cache_path().is_file()


def _fake_host(tmp_path: Path) -> DeviceProfile:
    return dataclasses.replace(DeviceProfile.from_toml(write_profile(tmp_path)), id="host", path=None)


def test_host_profile_is_cached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[float] = []

    def fake_detect(probe_seconds: float = 6.0) -> DeviceProfile:
        calls.append(probe_seconds)
        return _fake_host(tmp_path)

    monkeypatch.setattr(detect, "detect_host", fake_detect)
    first = detect.host_profile()
    second = detect.host_profile()
    assert calls == [6.0]
    assert first.id == second.id == "host" and second.ram_bytes == first.ram_bytes
    assert second.path == str(detect.host_cache_path())
    assert re.fullmatch(r"host-[0-9a-f]{16}\.toml", detect.host_cache_path().name)
    detect.host_profile(cached=False)
    assert len(calls) == 2


def test_damaged_cache_is_redetected(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(detect, "detect_host", lambda probe_seconds=6.0: _fake_host(tmp_path))
    path = detect.host_cache_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("schema_version = [")
    assert detect.host_profile().id == "host"
    assert DeviceProfile.from_toml(path).id == path.stem


def test_detect_human_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    result = probes.ProbeResult(1.5e10, "bytes_per_s", (1.4e10, 1.5e10, 1.6e10), "STREAM-like triad test")
    fake = detect.Detection(_fake_host(tmp_path), {"triad": result}, ("busy machine: test",))
    monkeypatch.setattr(detect, "detect_host_with_probes", lambda s, progress=None: fake)
    assert main(["detect"]) == 0
    out, err = capsys.readouterr()
    assert "Test board (8 GB) (host)" in out and "15.0 GB/s (min 14.0, max 16.0, 3 passes)" in out
    assert "warning: busy machine: test" in err


def test_detect_rejects_bad_arguments(tmp_path: Path) -> None:
    assert main(["detect", "--probe-seconds", "0"]) == 2
    with pytest.raises(ProfileError, match=r"ending in \.toml"):
        detect.save_profile(_fake_host(tmp_path), tmp_path / "box.json")
    with pytest.raises(ProfileError, match="lowercase"):
        detect.save_profile(_fake_host(tmp_path), tmp_path / "My Box.toml")


def test_fingerprint_is_stable_hex() -> None:
    fp = detect.host_fingerprint()
    assert re.fullmatch(r"[0-9a-f]{16}", fp) and fp == detect.host_fingerprint()


def test_arm_big_little_clusters_from_cpuinfo() -> None:
    facts = detect._linux_cpu("read by test", RK3588_CPUINFO)
    assert [(c.name, c.cores) for c in facts.clusters] == [("Cortex-A55", 4), ("Cortex-A76", 4)]
    assert facts.logical_cores == 8
    assert "asimddp" in facts.features and "fphp" in facts.features and "i8mm" not in facts.features
    assert "4x Cortex-A55, 4x Cortex-A76" in facts.model


def test_x86_features_are_filtered() -> None:
    text = "processor\t: 0\nmodel name\t: Test CPU\nflags\t\t: fpu sse4_2 avx avx2 fma avx512f amx_int8 vmx\n"
    facts = detect._linux_cpu("read by test", text)
    assert facts.model == "Test CPU"
    assert facts.features == ("sse4_2", "avx", "avx2", "fma", "avx512f", "amx_int8")


@pytest.mark.parametrize(
    ("isa", "board", "hypervisor", "battery", "model", "kind"),
    [
        ("aarch64", "Raspberry Pi 5 Model B Rev 1.0", False, False, "", "sbc"),
        ("aarch64", "NVIDIA Jetson Orin Nano Developer Kit", False, False, "", "module"),
        ("x86_64", None, False, True, "Intel Core i7", "laptop"),
        ("x86_64", None, True, False, "Intel Xeon", "server"),
        ("x86_64", None, False, False, "Intel(R) N100", "mini-pc"),
        ("x86_64", None, False, False, "AMD Ryzen 9 7950X", "desktop"),
    ],
)
def test_guess_kind(isa: str, board: str | None, hypervisor: bool, battery: bool, model: str, kind: str) -> None:
    if isa == "aarch64" and detect.platform.system() != "Linux":
        pytest.skip("Arm boards are guessed on Linux only")
    assert detect.guess_kind(isa, board, hypervisor, battery, model) == kind


def test_usable_ram_is_capped_by_the_cgroup_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    # inside a container with a 2 GiB limit of which 0.5 GiB is used, usable RAM is 1.5 GiB, not the host's free RAM
    fake = probes.ProbeResult(1e10, "bytes_per_s", (1e10, 1e10, 1e10), "fake")
    monkeypatch.setattr(detect, "busy_before_probing", lambda: 0.0)
    monkeypatch.setattr(probes, "stream_probes", lambda duration_s: {"triad": fake, "copy": fake})
    monkeypatch.setattr(probes, "gemv_bandwidth", lambda duration_s: fake)
    monkeypatch.setattr(probes, "gemm_flops", lambda duration_s: dataclasses.replace(fake, unit="flops_per_s"))
    cg = memory.CgroupMemory(version=2, path="/sys/fs/cgroup/x", limit_bytes=2 * 2**30, usage_bytes=2**29)
    monkeypatch.setattr(memory, "read_cgroup_memory", lambda *a, **k: cg)
    p = detect.detect_host_with_probes(0.1).profile
    assert p.usable_ram_bytes == int(1.5 * 2**30)
    assert "cgroup memory limit (2.00 GiB)" in (p.usable_ram.method or "")


def test_profile_figures_come_from_the_probes_and_a_busy_machine_is_flagged(monkeypatch: pytest.MonkeyPatch) -> None:
    def fake(value: float, unit: str) -> probes.ProbeResult:
        return probes.ProbeResult(value, unit, (value * 0.9, value, value * 1.1), f"fake {unit}")

    monkeypatch.setattr(detect, "busy_before_probing", lambda: 90.0)
    monkeypatch.setattr(
        probes,
        "stream_probes",
        lambda duration_s: {"triad": fake(1e10, "bytes_per_s"), "copy": fake(2e10, "bytes_per_s")},
    )
    monkeypatch.setattr(probes, "gemv_bandwidth", lambda duration_s: fake(1.5e10, "bytes_per_s"))
    monkeypatch.setattr(probes, "gemm_flops", lambda duration_s: fake(1e15, "flops_per_s"))
    found = detect.detect_host_with_probes(0.1)
    p = found.profile
    assert found.warnings and "busy machine: 90 %" in found.warnings[0] and "WARNING busy machine" in (p.notes or "")
    assert p.measured_bandwidth_bytes_per_s == 1e10 and p.measured_read_bandwidth_bytes_per_s == 1.5e10
    assert p.bandwidth.estimated and p.bandwidth_bytes_per_s == pytest.approx(2e10 / 0.75)  # best probe / 0.75
    gemm = p.cpu.measured_fp32_flops_per_s
    peak = p.cpu.peak_fp32_flops_per_s
    assert gemm is not None and peak is not None and gemm.value == 1e15
    assert peak.value == 1e15 and "raised to the measured GEMM" in (peak.note or "")  # never below what was measured
    assert p.ram_bytes == psutil.virtual_memory().total


def test_load_from_other_processes_during_probing_is_flagged(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = probes.ProbeResult(1e10, "bytes_per_s", (1e10, 1e10, 1e10), "fake")
    monkeypatch.setattr(detect, "busy_before_probing", lambda: 0.0)
    monkeypatch.setattr(probes, "stream_probes", lambda duration_s: {"triad": fake, "copy": fake})
    monkeypatch.setattr(probes, "gemv_bandwidth", lambda duration_s: fake)
    monkeypatch.setattr(probes, "gemm_flops", lambda duration_s: dataclasses.replace(fake, unit="flops_per_s"))
    monkeypatch.setattr(detect._OthersLoad, "cores", lambda self: 1.5 * (psutil.cpu_count() or 1))
    found = detect.detect_host_with_probes(0.1)
    assert len(found.warnings) == 1 and "while probing" in found.warnings[0]
    monkeypatch.setattr(detect._OthersLoad, "cores", lambda self: 0.0)
    assert detect.detect_host_with_probes(0.1).warnings == ()
