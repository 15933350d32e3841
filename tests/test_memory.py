from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from edgefit import memory
from edgefit.errors import MemoryGuardError
from edgefit.memory import CgroupMemory, MemoryAvailability
from edgefit.units import GIB, MIB

# ------------------------------------------------------------------------------------------- RSS


def test_maxrss_units_linux_kib_macos_bytes() -> None:
    # getrusage(2): ru_maxrss is in kilobytes on Linux (and the BSDs), in bytes on macOS.
    assert memory.maxrss_to_bytes(1000, "Linux") == 1000 * 1024
    assert memory.maxrss_to_bytes(1000, "FreeBSD") == 1000 * 1024
    assert memory.maxrss_to_bytes(1000, "Darwin") == 1000


_ALLOC_SCRIPT = """
from edgefit.memory import current_rss_bytes, peak_rss_bytes
before = current_rss_bytes()
block = bytearray(128 * 2**20)
for i in range(0, len(block), 4096):
    block[i] = 1
print(before, current_rss_bytes(), peak_rss_bytes())
"""


def test_peak_rss_tracks_a_real_allocation() -> None:
    # A fresh interpreter, so the high-water mark is not an earlier test's. Touching 128 MiB must raise the
    # peak by about that: a unit mistake (KiB taken as bytes, or x1024 twice) would miss by 1000x.
    out = subprocess.run([sys.executable, "-c", _ALLOC_SCRIPT], capture_output=True, text=True, check=True)
    before, current, after = (int(x) for x in out.stdout.split())
    assert after >= current * 0.95
    assert 120 * MIB <= after - before <= 200 * MIB


_CHILD_SCRIPT = """
import resource
from edgefit.memory import maxrss_to_bytes, peak_rss_bytes
print(peak_rss_bytes(), maxrss_to_bytes(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss))
"""


@pytest.mark.skipif(sys.platform != "linux", reason="VmHWM is Linux's")
def test_peak_rss_of_a_child_is_its_own_not_its_parents() -> None:
    # ru_maxrss keeps the high-water mark from before exec: a child of a parent holding 300 MiB reports
    # >= 300 MiB there. peak_rss_bytes() must give the child's own (a fresh interpreter: well under 150 MiB).
    block = bytearray(300 * MIB)
    for i in range(0, len(block), 4096):
        block[i] = 1
    out = subprocess.run([sys.executable, "-c", _CHILD_SCRIPT], capture_output=True, text=True, check=True)
    own, ru_maxrss = (int(x) for x in out.stdout.split())
    del block
    assert own < 150 * MIB
    assert ru_maxrss >= 250 * MIB  # the kernel behaviour this works around (if it changes, this tells us)


def test_parse_status_hwm() -> None:
    status = "Name:\tpython\nVmPeak:\t  500000 kB\nVmHWM:\t   13568 kB\nVmRSS:\t   13000 kB\n"
    assert memory.parse_status_hwm_bytes(status) == 13568 * 1024
    assert memory.parse_status_hwm_bytes("Name: x\n") is None


# ------------------------------------------------------------------------------------------- cgroups


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _v2_tree(tmp_path: Path, cgroup: str = "/user.slice/app.scope", root: str = "/") -> tuple[Path, Path]:
    mount = tmp_path / "cgroup2"
    proc_cgroup = tmp_path / "proc_cgroup"
    mountinfo = tmp_path / "mountinfo"
    _write(proc_cgroup, f"0::{cgroup}\n")
    _write(
        mountinfo,
        "22 28 0:21 / /proc rw,nosuid - proc proc rw\n"
        f"30 22 0:26 {root} {mount} rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate\n",
    )
    return proc_cgroup, mountinfo


def test_cgroup_v2_limit_minus_usage_and_inactive_file(tmp_path: Path) -> None:
    proc_cgroup, mountinfo = _v2_tree(tmp_path)
    d = tmp_path / "cgroup2" / "user.slice" / "app.scope"
    _write(d / "memory.max", f"{2 * GIB}\n")
    _write(d / "memory.current", f"{1 * GIB}\n")
    _write(d / "memory.stat", f"anon 1000\nfile 5000\ninactive_file {100 * MIB}\n")
    _write(tmp_path / "cgroup2" / "user.slice" / "memory.max", "max\n")
    cg = memory.read_cgroup_memory(proc_cgroup, mountinfo)
    assert cg is not None
    assert cg.version == 2
    assert cg.limit_bytes == 2 * GIB
    assert cg.usage_bytes == 1 * GIB - 100 * MIB
    assert cg.available_bytes == 2 * GIB - (1 * GIB - 100 * MIB)


def test_cgroup_v2_tighter_parent_wins(tmp_path: Path) -> None:
    proc_cgroup, mountinfo = _v2_tree(tmp_path)
    leaf = tmp_path / "cgroup2" / "user.slice" / "app.scope"
    parent = leaf.parent
    _write(leaf / "memory.max", "max\n")
    _write(leaf / "memory.current", f"{200 * MIB}\n")
    _write(parent / "memory.max", f"{1 * GIB}\n")
    _write(parent / "memory.current", f"{700 * MIB}\n")
    cg = memory.read_cgroup_memory(proc_cgroup, mountinfo)
    assert cg is not None
    assert cg.limit_bytes == 1 * GIB
    assert cg.available_bytes == 1 * GIB - 700 * MIB
    assert cg.path == str(parent)


def test_cgroup_v2_unlimited(tmp_path: Path) -> None:
    proc_cgroup, mountinfo = _v2_tree(tmp_path)
    _write(tmp_path / "cgroup2" / "user.slice" / "app.scope" / "memory.max", "max\n")
    cg = memory.read_cgroup_memory(proc_cgroup, mountinfo)
    assert cg is not None and cg.limit_bytes is None and cg.available_bytes is None


def test_cgroup_v2_container_namespace(tmp_path: Path) -> None:
    # A container sees its own cgroup as the mount root and "/" (or its host path) in /proc/self/cgroup.
    proc_cgroup, mountinfo = _v2_tree(tmp_path, cgroup="/docker/abc123", root="/docker/abc123")
    _write(tmp_path / "cgroup2" / "memory.max", f"{512 * MIB}\n")
    _write(tmp_path / "cgroup2" / "memory.current", f"{12 * MIB}\n")
    cg = memory.read_cgroup_memory(proc_cgroup, mountinfo)
    assert cg is not None
    assert cg.limit_bytes == 512 * MIB
    assert cg.available_bytes == 500 * MIB


def _v1_tree(tmp_path: Path, limit: str, stat: str) -> tuple[Path, Path, Path]:
    mount = tmp_path / "memory"
    proc_cgroup = tmp_path / "proc_cgroup"
    mountinfo = tmp_path / "mountinfo"
    _write(proc_cgroup, "9:name=systemd:/\n4:memory:/process_api/job1\n3:cpuset:/\n0::/\n")
    _write(mountinfo, f"35 31 0:32 / {mount} rw,relatime - cgroup cgroup rw,memory\n")
    d = mount / "process_api" / "job1"
    _write(d / "memory.limit_in_bytes", limit)
    _write(d / "memory.usage_in_bytes", f"{300 * MIB}\n")
    _write(d / "memory.stat", stat)
    return proc_cgroup, mountinfo, d


def test_cgroup_v1_limit(tmp_path: Path) -> None:
    proc_cgroup, mountinfo, _ = _v1_tree(
        tmp_path,
        f"{1 * GIB}\n",
        f"cache 1000\ntotal_inactive_file {50 * MIB}\nhierarchical_memory_limit 9223372036854771712\n",
    )
    cg = memory.read_cgroup_memory(proc_cgroup, mountinfo)
    assert cg is not None
    assert cg.version == 1
    assert cg.limit_bytes == 1 * GIB
    assert cg.usage_bytes == 250 * MIB
    assert cg.available_bytes == 1 * GIB - 250 * MIB


def test_cgroup_v1_unlimited_but_hierarchical_limit(tmp_path: Path) -> None:
    # 9223372036854771712 = LONG_MAX rounded to a page: "no limit" here, but an ancestor sets 2 GiB
    proc_cgroup, mountinfo, _ = _v1_tree(
        tmp_path, "9223372036854771712\n", f"hierarchical_memory_limit {2 * GIB}\ntotal_inactive_file 0\n"
    )
    cg = memory.read_cgroup_memory(proc_cgroup, mountinfo)
    assert cg is not None and cg.limit_bytes == 2 * GIB


def test_cgroup_v1_no_limit_anywhere(tmp_path: Path) -> None:
    proc_cgroup, mountinfo, _ = _v1_tree(
        tmp_path, "9223372036854771712\n", "hierarchical_memory_limit 9223372036854771712\n"
    )
    cg = memory.read_cgroup_memory(proc_cgroup, mountinfo)
    assert cg is not None and cg.limit_bytes is None and cg.available_bytes is None


def test_missing_files_give_none(tmp_path: Path) -> None:
    assert memory.read_cgroup_memory(tmp_path / "nope", tmp_path / "nope2") is None
    _write(tmp_path / "c", "garbage\n")
    _write(tmp_path / "m", "not mountinfo\n")
    assert memory.read_cgroup_memory(tmp_path / "c", tmp_path / "m") is None


def test_parse_proc_cgroup_hybrid() -> None:
    paths = memory.parse_proc_cgroup("4:memory:/a/b\n2:cpu,cpuacct:/c\n0::/d\n")
    assert paths == {"memory": "/a/b", "cpu": "/c", "cpuacct": "/c", "": "/d"}


# ------------------------------------------------------------------------------------------- availability


def test_available_is_the_smaller_of_system_and_cgroup(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(memory, "read_cgroup_memory", lambda: CgroupMemory(2, "/x", 1 * GIB, 400 * MIB))
    avail = memory.memory_availability()
    assert avail.system_available_bytes > 0
    assert avail.available_bytes == min(avail.system_available_bytes, 1 * GIB - 400 * MIB)
    assert memory.available_memory_bytes() == avail.available_bytes


def test_available_on_this_host_is_positive_and_below_total() -> None:
    avail = memory.memory_availability()
    assert 0 < avail.available_bytes <= avail.system_total_bytes


def test_limited_by() -> None:
    cg = CgroupMemory(2, "/x", 2 * GIB, 1 * GIB)
    assert MemoryAvailability(1 * GIB, 20 * GIB, 24 * GIB, cg).limited_by == "cgroup v2"
    assert MemoryAvailability(1 * GIB, 1 * GIB - 1, 24 * GIB, cg).limited_by == "system"
    assert MemoryAvailability(5 * GIB, 5 * GIB, 24 * GIB, None).limited_by == "system"


# ------------------------------------------------------------------------------------------- guard


def test_check_fits_passes_when_there_is_room() -> None:
    avail = MemoryAvailability(8 * GIB, 8 * GIB, 16 * GIB, None)
    assert memory.check_fits(1 * GIB, "model.onnx", availability=avail) is avail


def test_check_fits_refuses_with_the_numbers() -> None:
    cg = CgroupMemory(2, "/x", 2 * GIB, int(0.9 * GIB))
    avail = MemoryAvailability(int(1.1 * GIB), 20 * GIB, 24 * GIB, cg)
    with pytest.raises(MemoryGuardError) as exc:
        memory.check_fits(int(3.2 * GIB), "model.onnx", availability=avail)
    msg = str(exc.value)
    assert "model.onnx needs ~3.2 GiB at peak" in msg
    assert "1.1 GiB available" in msg
    assert "cgroup limit 2.0 GiB" in msg
    assert "pick a smaller model" in msg
    assert "\n" not in msg


def test_check_fits_margin_matters() -> None:
    # 900 MiB fits 1 GiB bare, but not with a 15 % margin and a 128 MiB reserve
    avail = MemoryAvailability(1 * GIB, 1 * GIB, 2 * GIB, None)
    memory.check_fits(900 * MIB, "m", margin_fraction=0.0, reserve_bytes=0, availability=avail)
    with pytest.raises(MemoryGuardError):
        memory.check_fits(900 * MIB, "m", availability=avail)


def test_check_fits_real_host_refuses_absurd_model() -> None:
    with pytest.raises(MemoryGuardError, match="needs ~"):
        memory.check_fits(10_000 * GIB, "huge.onnx")
