"""Memory this process may use, its own RSS, and the guard that refuses a model before it is loaded.

Available memory is the smallest of what the OS says is available (psutil) and what the process's cgroup
still allows (limit - usage). Inside a container or a systemd slice with a memory limit, the cgroup limit is
what triggers the OOM killer, not the host's free RAM, so a 2 GB Pi or a 1 GiB container is judged by that.

```
 /proc/self/cgroup ──> cgroup path ──┐
 /proc/self/mountinfo ─> mount point ┴─> dir ──> v2: memory.max, memory.current (walk up to the root: min)
                                             └─> v1: memory.limit_in_bytes / hierarchical_memory_limit,
                                                     memory.usage_in_bytes
 usage - inactive_file (reclaimable page cache, as docker stats / the kubelet's working set count it)
 available = min(psutil available, limit - usage)
```

Every reader is tolerant: a missing or unreadable file gives None, never an exception.
"""

from __future__ import annotations

import platform
from dataclasses import dataclass
from pathlib import Path

import psutil

from edgefit.errors import MemoryGuardError
from edgefit.units import GIB, MIB

# cgroup v1 writes "no limit" as LONG_MAX rounded down to a page (9223372036854771712); v2 writes "max".
_UNLIMITED_FROM_BYTES = 2**62

# The guard keeps 15 % on top of the estimate (allocator slack, estimate error) plus 128 MiB for the Python
# process, the OS page cache of the model file and whatever else starts meanwhile.
DEFAULT_MARGIN_FRACTION = 0.15
DEFAULT_RESERVE_BYTES = 128 * MIB


@dataclass(frozen=True, slots=True)
class CgroupMemory:
    version: int  # 1 or 2
    path: str  # the cgroup directory whose limit applies
    limit_bytes: int | None  # None: no limit set
    usage_bytes: int | None  # usage minus reclaimable inactive file cache

    @property
    def available_bytes(self) -> int | None:
        if self.limit_bytes is None or self.usage_bytes is None:
            return None
        return max(0, self.limit_bytes - self.usage_bytes)


@dataclass(frozen=True, slots=True)
class MemoryAvailability:
    available_bytes: int  # what this process may still allocate: min of the figures below
    system_available_bytes: int  # psutil.virtual_memory().available
    system_total_bytes: int
    cgroup: CgroupMemory | None

    @property
    def limited_by(self) -> str:
        cg = self.cgroup.available_bytes if self.cgroup is not None else None
        if cg is not None and self.cgroup is not None and cg <= self.system_available_bytes:
            return f"cgroup v{self.cgroup.version}"
        return "system"


# ---------------------------------------------------------------------------------------------- parsers


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except (OSError, ValueError):
        return None


def _parse_int(text: str | None) -> int | None:
    if text is None:
        return None
    s = text.strip()
    if s == "" or s == "max":
        return None
    try:
        value = int(s)
    except ValueError:
        return None
    if value < 0 or value >= _UNLIMITED_FROM_BYTES:
        return None
    return value


def parse_proc_cgroup(text: str) -> dict[str, str]:
    """``/proc/self/cgroup`` -> {controller: path}; the v2 unified hierarchy is under key ``""``."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.strip().split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        if controllers == "":
            out[""] = path
        for c in controllers.split(","):
            if c:
                out[c] = path
    return out


def parse_mountinfo(text: str) -> dict[str, tuple[str, str]]:
    """``/proc/self/mountinfo`` -> {"v2": (mount point, root), "v1:memory": (mount point, root)}."""
    out: dict[str, tuple[str, str]] = {}
    for line in text.splitlines():
        if " - " not in line:
            continue
        left, right = line.split(" - ", 1)
        lf, rf = left.split(), right.split()
        if len(lf) < 5 or len(rf) < 3:
            continue
        root, mount_point = lf[3], lf[4]
        fstype, super_opts = rf[0], rf[2]
        if fstype == "cgroup2" and "v2" not in out:
            out["v2"] = (mount_point, root)
        elif fstype == "cgroup" and "memory" in super_opts.split(","):
            out.setdefault("v1:memory", (mount_point, root))
    return out


def parse_memory_stat(text: str | None) -> dict[str, int]:
    out: dict[str, int] = {}
    for line in (text or "").splitlines():
        parts = line.split()
        if len(parts) == 2:
            try:
                out[parts[0]] = int(parts[1])
            except ValueError:
                continue
    return out


def _cgroup_dir(mount_point: str, root: str, cgroup_path: str) -> Path:
    # Inside a container the mount's root is the container's own cgroup and /proc/self/cgroup may show the
    # full host path: strip the root prefix. If the directory is not visible, the mount point itself is the
    # best there is (a cgroup namespace shows "/").
    rel = cgroup_path
    if root not in ("", "/") and (rel == root or rel.startswith(root.rstrip("/") + "/")):
        rel = rel[len(root.rstrip("/")) :]
    candidate = Path(mount_point) / rel.lstrip("/")
    return candidate if candidate.is_dir() else Path(mount_point)


def _read_v2(directory: Path, mount_point: Path) -> CgroupMemory | None:
    # The effective limit is the tightest memory.max on the way up to the mount point.
    limited: list[CgroupMemory] = []
    seen_any = False
    d = directory
    while True:
        max_text = _read_text(d / "memory.max")
        if max_text is not None:
            seen_any = True
            limit = _parse_int(max_text)
            if limit is not None:
                current = _parse_int(_read_text(d / "memory.current"))
                inactive = parse_memory_stat(_read_text(d / "memory.stat")).get("inactive_file", 0)
                usage = None if current is None else max(0, current - inactive)
                limited.append(CgroupMemory(2, str(d), limit, usage))
        if d == mount_point or d.parent == d or mount_point not in d.parents:
            break
        d = d.parent
    if limited:
        return min(limited, key=lambda c: c.available_bytes or 0)
    return CgroupMemory(2, str(directory), None, None) if seen_any else None


def _read_v1(directory: Path) -> CgroupMemory | None:
    limit_text = _read_text(directory / "memory.limit_in_bytes")
    stat = parse_memory_stat(_read_text(directory / "memory.stat"))
    if limit_text is None and not stat:
        return None
    limit = _parse_int(limit_text)
    # hierarchical_memory_limit already folds in every ancestor's limit.
    hier = stat.get("hierarchical_memory_limit")
    if hier is not None and hier < _UNLIMITED_FROM_BYTES:
        limit = hier if limit is None else min(limit, hier)
    usage_raw = _parse_int(_read_text(directory / "memory.usage_in_bytes"))
    inactive = stat.get("total_inactive_file", stat.get("inactive_file", 0))
    usage = None if usage_raw is None else max(0, usage_raw - inactive)
    return CgroupMemory(1, str(directory), limit, usage)


def read_cgroup_memory(
    proc_cgroup: Path = Path("/proc/self/cgroup"),
    mountinfo: Path = Path("/proc/self/mountinfo"),
) -> CgroupMemory | None:
    """The memory limit of this process's cgroup (v2 preferred, else v1), or None where there is none."""
    cg_text = _read_text(proc_cgroup)
    mi_text = _read_text(mountinfo)
    if cg_text is None or mi_text is None:
        return None
    paths = parse_proc_cgroup(cg_text)
    mounts = parse_mountinfo(mi_text)
    results: list[CgroupMemory] = []
    if "" in paths and "v2" in mounts:
        mp, root = mounts["v2"]
        v2 = _read_v2(_cgroup_dir(mp, root, paths[""]), Path(mp))
        if v2 is not None:
            results.append(v2)
    if "memory" in paths and "v1:memory" in mounts:
        mp, root = mounts["v1:memory"]
        v1 = _read_v1(_cgroup_dir(mp, root, paths["memory"]))
        if v1 is not None:
            results.append(v1)
    limited = [r for r in results if r.available_bytes is not None]
    if limited:
        return min(limited, key=lambda r: r.available_bytes or 0)
    return results[0] if results else None


# ---------------------------------------------------------------------------------------------- public API


def memory_availability() -> MemoryAvailability:
    vm = psutil.virtual_memory()
    cg = read_cgroup_memory()
    avail = int(vm.available)
    if cg is not None and cg.available_bytes is not None:
        avail = min(avail, cg.available_bytes)
    return MemoryAvailability(
        available_bytes=avail,
        system_available_bytes=int(vm.available),
        system_total_bytes=int(vm.total),
        cgroup=cg,
    )


def available_memory_bytes() -> int:
    """Bytes this process may still use: min(OS available, cgroup v2 / v1 limit - usage)."""
    return memory_availability().available_bytes


def maxrss_to_bytes(ru_maxrss: int, system: str | None = None) -> int:
    """``getrusage().ru_maxrss`` in bytes: macOS reports bytes, Linux and the BSDs KiB (getrusage(2))."""
    system = platform.system() if system is None else system
    if system == "Darwin":
        return int(ru_maxrss)
    return int(ru_maxrss) * 1024


def parse_status_bytes(text: str, field: str) -> int | None:
    """``FIELD:   123456 kB`` (VmHWM, RssFile, ...) from ``/proc/<pid>/status`` in bytes (the kernel writes kB
    meaning KiB)."""
    for line in text.splitlines():
        if line.startswith(f"{field}:"):
            parts = line.split()
            if len(parts) >= 2 and parts[1].isdigit():
                return int(parts[1]) * (1024 if len(parts) < 3 or parts[2].lower() == "kb" else 1)
    return None


def parse_status_hwm_bytes(text: str) -> int | None:
    """``VmHWM:   123456 kB`` from ``/proc/<pid>/status`` in bytes."""
    return parse_status_bytes(text, "VmHWM")


def self_status_bytes(field: str) -> int | None:
    """One field of this process's ``/proc/self/status`` in bytes; None where there is none (not Linux)."""
    text = _read_text(Path("/proc/self/status"))
    return parse_status_bytes(text, field) if text is not None else None


def peak_rss_bytes() -> int | None:
    """High-water resident set of this process in bytes (None where the platform cannot tell).

    Linux: ``VmHWM`` of /proc/self/status. Not ``ru_maxrss``: the kernel carries the pre-exec high-water mark
    into it, so a worker started by a parent holding 600 MiB reports 600 MiB before loading anything
    (tests/test_memory.py shows it). Elsewhere: ``ru_maxrss``, converted to bytes.
    """
    if platform.system() == "Linux":
        hwm = self_status_bytes("VmHWM")
        if hwm is not None:
            return hwm
    try:
        import resource
    except ImportError:  # Windows: no resource module; psutil knows the peak working set
        info = psutil.Process().memory_info()
        peak = getattr(info, "peak_wset", None)
        return int(peak) if peak is not None else None
    return maxrss_to_bytes(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def current_rss_bytes() -> int:
    return int(psutil.Process().memory_info().rss)


def format_bytes(n: float) -> str:
    """Human figure for messages: GiB with one decimal from 1 GiB, else MiB."""
    if abs(n) >= GIB:
        return f"{n / GIB:.1f} GiB"
    return f"{n / MIB:.0f} MiB"


def check_fits(
    estimated_peak_bytes: int,
    what: str,
    *,
    margin_fraction: float = DEFAULT_MARGIN_FRACTION,
    reserve_bytes: int = DEFAULT_RESERVE_BYTES,
    availability: MemoryAvailability | None = None,
) -> MemoryAvailability:
    """Refuse, before loading, anything whose estimated peak (plus margin) exceeds the memory available now.

    Returns the availability it judged against. Raises MemoryGuardError quoting the numbers.
    """
    if estimated_peak_bytes < 0:
        raise ValueError(f"estimated_peak_bytes must be >= 0, found {estimated_peak_bytes}")
    avail = memory_availability() if availability is None else availability
    needed = int(estimated_peak_bytes * (1.0 + margin_fraction)) + reserve_bytes
    if needed <= avail.available_bytes:
        return avail
    limit_note = ""
    if avail.cgroup is not None and avail.cgroup.limit_bytes is not None:
        limit_note = f" (cgroup limit {format_bytes(avail.cgroup.limit_bytes)})"
    raise MemoryGuardError(
        f"{what} needs ~{format_bytes(estimated_peak_bytes)} at peak "
        f"({format_bytes(needed)} with a {margin_fraction:.0%} margin and {format_bytes(reserve_bytes)} reserve), "
        f"{format_bytes(avail.available_bytes)} available{limit_note}; free memory or pick a smaller model"
    )
