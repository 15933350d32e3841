"""A DeviceProfile of the machine edgefit runs on: read what the OS tells, measure what it cannot.

    psutil, /proc/cpuinfo, sysfs (Linux) or sysctl (macOS)  ->  RAM, cores per cluster, CPU model, features,
                                                               max clock, last-level cache, cgroup memory limit
    edgefit.probes (~6 s)                                   ->  measured triad / GEMV bandwidth, fp32 GEMM
    what can be read nowhere (theoretical bandwidth, power) ->  `estimated = true` with a note saying how

The result has id ``host``; ``host_profile()`` caches it per machine (``host_fingerprint()``) in the cache dir,
so the predictor and the benchmarker probe once, not on every call.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import os
import platform
import re
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import psutil

from edgefit import __version__, memory, probes
from edgefit.errors import ProfileError
from edgefit.paths import cache_dir
from edgefit.profile_toml import profile_to_toml
from edgefit.profiles import (
    ComputeEngine,
    CpuCluster,
    DeviceProfile,
    Figure,
    with_id,
)
from edgefit.units import GB, GIB, MIB

HOST_ID = "host"
# A STREAM triad on a healthy DDR/LPDDR system reaches roughly 60-85 % of the theoretical peak; 0.75 is the
# middle, used only where the theoretical figure cannot be read (it needs root: DMI tables).
_STREAM_EFFICIENCY_GUESS = 0.75
_X86_FEATURES: tuple[str, ...] = ("sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl")
_X86_FEATURES += ("avx512_vnni", "avx512_bf16", "avx512_fp16", "avx_vnni", "amx_tile", "amx_int8", "amx_bf16")
_ARM_FEATURES = ("fp", "asimd", "asimdhp", "asimddp", "fphp", "i8mm", "bf16", "sve", "sve2", "sme")
# (implementer, part) from /proc/cpuinfo -> core name (Arm Ltd = 0x41; the TRMs list the part numbers)
ARM_PARTS: dict[str, str] = {
    "0xd03": "Cortex-A53",
    "0xd04": "Cortex-A35",
    "0xd05": "Cortex-A55",
    "0xd07": "Cortex-A57",
    "0xd08": "Cortex-A72",
    "0xd09": "Cortex-A73",
    "0xd0a": "Cortex-A75",
    "0xd0b": "Cortex-A76",
    "0xd0c": "Neoverse-N1",
    "0xd0d": "Cortex-A77",
    "0xd40": "Neoverse-V1",
    "0xd41": "Cortex-A78",
    "0xd42": "Cortex-A78AE",
    "0xd44": "Cortex-X1",
    "0xd46": "Cortex-A510",
    "0xd47": "Cortex-A710",
    "0xd48": "Cortex-X2",
    "0xd49": "Neoverse-N2",
    "0xd4d": "Cortex-A715",
    "0xd4e": "Cortex-X3",
    "0xd4f": "Neoverse-V2",
    "0xd80": "Cortex-A520",
    "0xd81": "Cortex-A720",
    "0xd82": "Cortex-X4",
}
_LITTLE_CORES = ("Cortex-A53", "Cortex-A55", "Cortex-A35", "Cortex-A510", "Cortex-A520")
# Power cannot be read on most machines; a coarse guess per kind: (base W, idle W/core, load W/core, max W/core)
_POWER_GUESS = {
    "sbc": (2.0, 0.1, 1.2, 2.0),
    "module": (3.0, 0.2, 1.5, 2.5),
    "phone": (0.5, 0.05, 1.0, 2.0),
    "laptop": (4.0, 0.2, 3.5, 7.0),
    "mini-pc": (5.0, 0.3, 2.5, 5.0),
    "desktop": (25.0, 1.0, 8.0, 14.0),
    "server": (0.0, 4.0, 10.0, 15.0),  # a share of a big host: per core only
}


@dataclass(frozen=True, slots=True)
class _CpuFacts:
    model: str
    features: tuple[str, ...]
    clusters: tuple[CpuCluster, ...]
    physical_cores: int
    logical_cores: int
    board: str | None  # /proc/device-tree/model (Raspberry Pi, Jetson, ...)
    hypervisor: bool


# --- small readers -------------------------------------------------------------------------------------------


def _read(path: str | Path) -> str | None:
    try:
        return Path(path).read_text(errors="replace").strip().strip("\x00")
    except OSError:
        return None


def _sysctl(key: str) -> str | None:
    try:
        out = subprocess.run(["sysctl", "-n", key], capture_output=True, text=True, timeout=2, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 and out.stdout.strip() else None


def _cpuinfo_blocks(text: str | None = None) -> list[dict[str, str]]:
    """/proc/cpuinfo as one dict per processor block (plus trailing global lines on aarch64)."""
    raw = text if text is not None else (_read("/proc/cpuinfo") or "")
    blocks: list[dict[str, str]] = []
    for chunk in raw.split("\n\n"):
        block = {}
        for line in chunk.splitlines():
            key, sep, value = line.partition(":")
            if sep:
                block[key.strip()] = value.strip()
        if block:
            blocks.append(block)
    return blocks


def _cpu_list(text: str | None) -> list[int]:
    """'0-3,8' -> [0, 1, 2, 3, 8]."""
    cpus: list[int] = []
    for part in (text or "").split(","):
        lo, _, hi = part.strip().partition("-")
        if lo.isdigit():
            cpus.extend(range(int(lo), int(hi or lo) + 1))
    return cpus


def _max_clock_hz(cpu: int) -> float | None:
    khz = _read(f"/sys/devices/system/cpu/cpu{cpu}/cpufreq/cpuinfo_max_freq")
    return float(khz) * 1e3 if khz and khz.isdigit() else None


# --- CPU -----------------------------------------------------------------------------------------------------


def _today() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d")


def _clock_figure(cpus: list[int], blocks: list[dict[str, str]], read_by: str) -> Figure:
    clocks = [c for c in (_max_clock_hz(i) for i in cpus) if c]
    if clocks:
        return Figure(max(clocks), "hz", source=f"{read_by} (sysfs cpufreq/cpuinfo_max_freq)")
    current = [float(b["cpu MHz"]) * 1e6 for b in blocks if b.get("cpu MHz", "").replace(".", "", 1).isdigit()]
    if current:
        return Figure(
            max(current),
            "hz",
            estimated=True,
            note="no cpufreq in sysfs (a VM?): the current clock from /proc/cpuinfo 'cpu MHz'; turbo may be higher",
        )
    freq = psutil.cpu_freq()
    value = freq.max or freq.current if freq else 0.0
    return Figure(
        value * 1e6 if value else 1e9,
        "hz",
        estimated=True,
        note="psutil.cpu_freq()" if value else "clock unreadable on this machine; 1 GHz placeholder",
    )


def arm_clusters(procs: list[dict[str, str]], read_by: str) -> tuple[CpuCluster, ...]:
    """Arm: group /proc/cpuinfo processor blocks by 'CPU part' into clusters, in the order they appear."""
    by_part: dict[str, list[int]] = {}
    for b in procs:
        by_part.setdefault(b.get("CPU part", "?"), []).append(int(b["processor"]))
    return tuple(
        CpuCluster(ARM_PARTS.get(part, f"Arm core {part}"), len(cpus), _clock_figure(cpus, procs, read_by))
        for part, cpus in sorted(by_part.items(), key=lambda kv: kv[1][0])
    )


def _linux_cpu(read_by: str, cpuinfo_text: str | None = None) -> _CpuFacts:
    blocks = _cpuinfo_blocks(cpuinfo_text)
    procs = [b for b in blocks if b.get("processor", "").isdigit()]
    logical = psutil.cpu_count(logical=True) or len(procs) or 1
    physical = psutil.cpu_count(logical=False) or logical
    flags = set((procs[0].get("flags") or procs[0].get("Features") or "").split()) if procs else set()
    board = _read("/proc/device-tree/model")
    hypervisor = "hypervisor" in flags or Path("/sys/hypervisor/type").exists()
    clusters: tuple[CpuCluster, ...]
    if any("CPU part" in b for b in procs):  # Arm: one cluster per core type
        clusters = arm_clusters(procs, read_by)
        logical = len(procs)
        physical = logical  # no SMT on the Arm cores edge boards use
        hardware = next((b["Hardware"] for b in blocks if "Hardware" in b), None)
        cores = ", ".join(f"{c.cores}x {c.name}" for c in clusters)
        model = f"{board or hardware or platform.machine()}, {cores}"
        features = tuple(f for f in _ARM_FEATURES if f in flags)
    else:
        model = procs[0].get("model name", platform.processor() or platform.machine()) if procs else "unknown CPU"
        features = tuple(f for f in _X86_FEATURES if f in flags)
        # Intel hybrid parts list their P- and E-cores in sysfs; otherwise one cluster of physical cores.
        hybrid = [
            (n, _cpu_list(_read(f"/sys/devices/cpu_{t}/cpus"))) for n, t in (("P-core", "core"), ("E-core", "atom"))
        ]
        hybrid = [(n, cpus) for n, cpus in hybrid if cpus]
        if len(hybrid) == 2:
            found = []
            for name, cpus in hybrid:
                n = len({(procs[i].get("physical id"), procs[i].get("core id")) for i in cpus if i < len(procs)})
                found.append(CpuCluster(name, n or len(cpus), _clock_figure(cpus, procs, read_by)))
            clusters = tuple(found)
        else:
            clusters = (CpuCluster(model, physical, _clock_figure(list(range(logical)), procs, read_by)),)
    return _CpuFacts(model, features, clusters, physical, logical, board, hypervisor)


def _macos_cpu(read_by: str) -> _CpuFacts:
    model = _sysctl("machdep.cpu.brand_string") or platform.processor() or "Apple CPU"
    logical = psutil.cpu_count(logical=True) or 1
    physical = psutil.cpu_count(logical=False) or logical
    clusters: list[CpuCluster] = []
    clock = Figure(
        3.2e9 if platform.machine() == "arm64" else 2.5e9,
        "hz",
        estimated=True,
        note="macOS does not report the max clock on this CPU; a typical figure for its class",
    )
    hz = _sysctl("hw.cpufrequency_max")
    if hz and hz.isdigit():
        clock = Figure(float(hz), "hz", source=f"{read_by} (sysctl hw.cpufrequency_max)")
    for level in ("0", "1"):
        count = _sysctl(f"hw.perflevel{level}.physicalcpu")
        if count and count.isdigit() and int(count) > 0:
            name = _sysctl(f"hw.perflevel{level}.name") or f"perflevel{level}"
            clusters.append(CpuCluster(name, int(count), clock))
    if not clusters:
        clusters.append(CpuCluster(model, physical, clock))
    names = {"arm64": ("FEAT_DotProd", "FEAT_I8MM", "FEAT_BF16", "FEAT_FP16"), "x86_64": ("AVX2_0", "AVX512F")}
    features = tuple(
        f.lower()
        for f in names.get(platform.machine(), ())
        if _sysctl(f"hw.optional.arm.{f}") == "1" or _sysctl(f"hw.optional.{f.lower()}") == "1"
    )
    return _CpuFacts(model, features, tuple(clusters), physical, logical, None, False)


def _isa() -> str:
    machine = platform.machine().lower()
    return {"arm64": "aarch64", "amd64": "x86_64", "x64": "x86_64"}.get(machine, machine)


def _read_cpu(read_by: str) -> _CpuFacts:
    if platform.system() == "Darwin":
        return _macos_cpu(read_by)
    return _linux_cpu(read_by)


def host_fingerprint() -> str:
    """Stable id of this machine (16 hex digits): CPU model, physical and logical cores, RAM to the GiB, OS,
    architecture and a hash of the hostname. Cheap: no probes run. Same formula as bench.env's fallback."""
    if platform.system() == "Darwin":
        model = _sysctl("machdep.cpu.brand_string")
    else:
        procs = _cpuinfo_blocks()
        model = next((b["model name"] for b in procs if "model name" in b), None)
        model = (
            model or _read("/proc/device-tree/model") or next((b["Hardware"] for b in procs if "Hardware" in b), None)
        )
    ram = psutil.virtual_memory().total
    parts = [
        model or "?",
        str(psutil.cpu_count(logical=False)),
        str(psutil.cpu_count(logical=True)),
        str(round(ram / GIB)),
        platform.system(),
        platform.machine(),
        hashlib.sha256(platform.node().encode()).hexdigest()[:8],
    ]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


# --- the profile ---------------------------------------------------------------------------------------------


def guess_kind(isa: str, board: str | None, hypervisor: bool, has_battery: bool, model: str) -> str:
    """sbc/module for Arm boards (Jetson modules), laptop with a battery, server for a VM, mini-pc for the
    low-power x86 parts sold in them, desktop otherwise."""
    if has_battery:
        return "laptop"
    if isa in ("aarch64", "armv7l", "riscv64") and platform.system() == "Linux":
        return "module" if board and re.search(r"jetson|nvidia", board, re.I) else "sbc"
    if hypervisor:
        return "server"
    if re.search(r"\b(N\d{2,3}|Celeron|Atom|Pentium Silver)\b", model):
        return "mini-pc"
    return "desktop"


def _flop_per_cycle(name: str, isa: str, features: tuple[str, ...]) -> tuple[int, str]:
    if isa == "x86_64":
        if "avx512f" in features:
            return 64, "AVX-512, 2 FMA units assumed (some parts have 1)"
        if "avx2" in features and "fma" in features:
            return 32, "AVX2 with 2 FMA units"
        return (16, "AVX without FMA") if "avx" in features else (8, "SSE")
    if name in _LITTLE_CORES:
        return 8, f"{name}: 1x 128-bit FMA"
    return 16, f"{name}: 2x 128-bit FMA (NEON)"


def _battery_figure(read_by: str) -> Figure | None:
    for bat in sorted(Path("/sys/class/power_supply").glob("BAT*")):
        energy = _read(bat / "energy_full")
        if energy and energy.isdigit() and int(energy) > 0:  # µWh
            return Figure(int(energy) / 1e6, "wh", source=f"{read_by} ({bat}/energy_full)")
    return None


def _rapl_energy_j() -> float | None:
    text = _read("/sys/class/powercap/intel-rapl:0/energy_uj")
    return int(text) / 1e6 if text and text.isdigit() else None


@dataclass(frozen=True, slots=True)
class Detection:
    """What ``edgefit detect`` found: the profile, each probe with its samples, and quality warnings."""

    profile: DeviceProfile
    probes: dict[str, probes.ProbeResult]
    warnings: tuple[str, ...] = ()


def detect_host(probe_seconds: float = 6.0, progress: Callable[[str], None] | None = None) -> DeviceProfile:
    """Profile this machine (id ``host``), probes included: about ``probe_seconds`` plus allocation time."""
    return detect_host_with_probes(probe_seconds, progress).profile


def busy_before_probing(interval_s: float = 0.25) -> float:
    """Percent of all CPUs busy over ``interval_s`` while this process sleeps: other processes' load."""
    return float(psutil.cpu_percent(interval=interval_s))


class _OthersLoad:
    """CPU seconds other processes used while this one probed (all CPUs' busy time minus this process's own)."""

    def __init__(self) -> None:
        self.wall0 = time.perf_counter()
        self.busy0 = self._busy()
        self.own0 = self._own()

    @staticmethod
    def _busy() -> float:
        t = psutil.cpu_times()
        return float(sum(t) - t.idle - getattr(t, "iowait", 0.0))

    @staticmethod
    def _own() -> float:
        t = psutil.Process().cpu_times()
        return float(t.user + t.system)

    def cores(self) -> float:
        wall = time.perf_counter() - self.wall0
        others = (self._busy() - self.busy0) - (self._own() - self.own0)
        return max(0.0, others / wall) if wall > 0 else 0.0


def detect_host_with_probes(probe_seconds: float = 6.0, progress: Callable[[str], None] | None = None) -> Detection:
    """``detect_host`` plus the probe results by name (triad, copy, gemv, gemm) and warnings."""
    say = progress or (lambda _msg: None)
    warnings: list[str] = []
    busy = busy_before_probing()
    if busy > 25.0:
        warnings.append(
            f"busy machine: {busy:.0f} % of the CPUs were in use by other processes just before probing; the "
            f"measured bandwidth and GEMM figures are lower and noisier than this machine can do; re-run "
            f"`edgefit detect` when it is idle"
        )
    date = _today()
    read_by = f"read by edgefit detect on {date}"
    measured_by = f"measured by edgefit detect on {date}"
    facts = _read_cpu(read_by)
    isa = _isa()
    vm = psutil.virtual_memory()
    avail = memory.memory_availability()
    usable = avail.available_bytes
    usable_how = "psutil.virtual_memory().available at detect time"
    limit = avail.cgroup.limit_bytes if avail.cgroup is not None else None
    if limit is not None:
        usable_how += f", capped by the cgroup memory limit ({limit / GIB:.2f} GiB) minus its current usage"
    usable = min(max(usable, 16 * MIB), int(vm.total))
    llc = probes.last_level_cache_bytes()

    others = _OthersLoad()
    say("memory bandwidth: STREAM-like triad and copy")
    results = probes.stream_probes(duration_s=0.4 * probe_seconds)
    say("memory bandwidth: fp32 GEMV read")
    results["gemv"] = probes.gemv_bandwidth(duration_s=0.25 * probe_seconds)
    say("compute: fp32 GEMM")
    energy0, t0 = _rapl_energy_j(), time.perf_counter()
    results["gemm"] = probes.gemm_flops(duration_s=0.35 * probe_seconds)
    energy1, t1 = _rapl_energy_j(), time.perf_counter()
    say("compute: int8 dot products (onnxruntime MatMulNBits 8-bit GEMM)")
    results["int8"] = probes.int8_gemm_ops(duration_s=0.1 * probe_seconds)
    ncpu = psutil.cpu_count() or 1
    others_cores = others.cores()
    if others_cores > 0.25 * ncpu:
        warnings.append(
            f"busy machine: other processes used {others_cores:.1f} of {ncpu} CPUs on average while probing; the "
            f"measured bandwidth and GEMM figures are lower and noisier than this machine can do; re-run "
            f"`edgefit detect` when it is idle"
        )

    battery = _battery_figure(read_by)
    has_battery = battery is not None or bool(getattr(psutil, "sensors_battery", lambda: None)())
    kind = guess_kind(isa, facts.board, facts.hypervisor, has_battery, facts.model)
    triad, gemm = results["triad"], results["gemm"]
    best_bw = max(r.value for k, r in results.items() if r.unit == "bytes_per_s")
    peak = 0.0
    peak_notes = []
    for c in facts.clusters:
        per_cycle, why = _flop_per_cycle(c.name, isa, facts.features)
        peak += c.cores * c.max_clock_hz.value * per_cycle
        peak_notes.append(f"{c.cores} cores x {c.max_clock_hz.value / 1e9:.2f} GHz x {per_cycle} FLOP/cycle ({why})")
    peak_note = " + ".join(peak_notes)
    if gemm.value > peak:
        peak_note += f"; raised to the measured GEMM {gemm.value / 1e9:.0f} GFLOP/s, which exceeded it"
        peak = gemm.value
    base, idle_c, load_c, max_c = _POWER_GUESS[kind]
    cores = facts.physical_cores
    power_note = f"not measurable here; a guess for a {kind}: {base:g} W + per core {{}} W x {cores} cores"
    idle_power = Figure(base + idle_c * cores, "w", estimated=True, note=power_note.format(f"{idle_c:g}"))
    load_power = Figure(base + load_c * cores, "w", estimated=True, note=power_note.format(f"{load_c:g}"))
    max_power = Figure(base + max_c * cores, "w", estimated=True, note=power_note.format(f"{max_c:g}"))
    if energy0 is not None and energy1 is not None and energy1 > energy0:  # the counter wraps: skip if it did
        load_power = Figure(
            (energy1 - energy0) / (t1 - t0),
            "w",
            source=measured_by,
            method="RAPL package energy (intel-rapl:0) over the GEMM probe: the CPU package only, not wall power",
        )
        # keep idle <= load <= max (the loader checks it) when the measurement disagrees with the guesses
        if idle_power.value > load_power.value:
            idle_power = replace(idle_power, value=load_power.value, note=f"{idle_power.note}; capped at measured load")
        if max_power.value < load_power.value:
            max_power = replace(max_power, value=load_power.value, note=f"{max_power.note}; raised to measured load")
    profile = DeviceProfile(
        id=HOST_ID,
        name=f"This machine ({platform.node() or 'host'})",
        kind=kind,
        cpu_model=facts.model,
        isa=isa,
        cpu_features=facts.features,
        clusters=facts.clusters,
        ram=Figure(float(vm.total), "bytes", source=f"{read_by} (psutil.virtual_memory().total)"),
        usable_ram=Figure(float(usable), "bytes", source=read_by, method=usable_how),
        memory_type="unknown (the DMI tables that name it need root)",
        bandwidth=Figure(
            best_bw / _STREAM_EFFICIENCY_GUESS,
            "bytes_per_s",
            estimated=True,
            note=(
                f"theoretical peak not readable (DMI needs root): the best measured probe "
                f"({best_bw / GB:.1f} GB/s) / {_STREAM_EFFICIENCY_GUESS}, a typical STREAM efficiency"
            ),
        ),
        engines=(
            ComputeEngine(
                kind="cpu",
                provider="CPUExecutionProvider",
                peak_fp32_flops_per_s=Figure(peak, "flops_per_s", estimated=True, note=peak_note),
                measured_fp32_flops_per_s=Figure(gemm.value, "flops_per_s", source=measured_by, method=gemm.method),
                measured_int8_ops_per_s=Figure(
                    results["int8"].value, "ops_per_s", source=measured_by, method=results["int8"].method
                ),
                name=facts.model,
            ),
        ),
        idle_power=idle_power,
        load_power=load_power,
        max_power=max_power,
        measured_bandwidth=Figure(triad.value, "bytes_per_s", source=measured_by, method=triad.method),
        measured_read_bandwidth=Figure(
            results["gemv"].value, "bytes_per_s", source=measured_by, method=results["gemv"].method
        ),
        last_level_cache=Figure(float(llc), "bytes", source=f"{read_by} (sysfs cpu0/cache or sysctl)") if llc else None,
        battery=battery,
        vendor=None,
        notes=(
            f"detected by edgefit {__version__} on {date}; {facts.logical_cores} logical / {facts.physical_cores} "
            f"physical cores; copy {results['copy'].value / GB:.1f} GB/s"
            + (
                "; running under a hypervisor: the cache and clock figures may be the host's"
                if facts.hypervisor
                else ""
            )
            + "".join(f"; WARNING {w}" for w in warnings)
        ),
    )
    return Detection(profile, results, tuple(warnings))


# --- writing and caching -------------------------------------------------------------------------------------


def save_profile(profile: DeviceProfile, path: str | Path) -> DeviceProfile:
    """Write ``profile`` to ``path`` under the id the file name gives (``my-box.toml`` -> ``my-box``), atomically.
    Returns the profile as written."""
    target = Path(path)
    if target.suffix != ".toml":
        raise ProfileError(f"{target}: expected a file name ending in .toml, found {target.suffix or 'no suffix'!r}")
    named = with_id(profile, target.stem)
    header = f"written by edgefit {__version__} detect on {_today()}; host fingerprint {host_fingerprint()}"
    if target.is_dir():
        raise ProfileError(f"{target}: is a directory; expected a .toml file path")
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(profile_to_toml(named, header), encoding="utf-8")
        os.replace(tmp, target)
    except OSError as exc:
        raise ProfileError(f"{target}: cannot write the profile ({exc.strerror or exc}); choose another path") from None
    finally:
        with contextlib.suppress(OSError):  # ENOTDIR when the folder is a file: the ProfileError above says it
            tmp.unlink(missing_ok=True)  # nothing left after a successful replace; a failed one leaves no .tmp
    return replace(named, path=str(target))


def host_cache_path() -> Path:
    return cache_dir() / f"host-{host_fingerprint()}.toml"


def host_profile(cached: bool = True, probe_seconds: float = 6.0) -> DeviceProfile:
    """This machine's profile (id ``host``): read from the cache when ``cached`` and present, else detected
    (probes included, ~10 s) and written to the cache (``cache_dir()/host-<fingerprint>.toml``)."""
    path = host_cache_path()
    if cached and path.is_file():
        try:
            return replace(DeviceProfile.from_toml(path), id=HOST_ID)
        except ProfileError:
            pass  # an old or damaged cache file: detect again and overwrite it
    profile = detect_host(probe_seconds)
    with contextlib.suppress(ProfileError):  # an unwritable cache (EDGEFIT_CACHE_DIR a file): detect again next time
        save_profile(profile, path)
    return profile
