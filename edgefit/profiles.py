"""Device profiles: one TOML file per device, loaded into a frozen ``DeviceProfile``.

Every figure in a profile is a ``Figure``: a value in base SI units with the source it came from, or an
explicit ``estimated = true`` with a note saying how it was estimated. The TOML format is documented in
``device_profiles/README.md``.
"""

from __future__ import annotations

from dataclasses import dataclass

# --- data model (the contract other stages rely on) ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Figure:
    """One sourced number. ``value`` is in the base unit named by ``unit`` (bytes, bytes_per_s, w, wh, hz,
    flops_per_s, ops_per_s, usd). Exactly one of: ``source`` set, or ``estimated`` True with a ``note``."""

    value: float
    unit: str
    source: str | None = None
    estimated: bool = False
    note: str | None = None
    method: str | None = None  # how a measured figure was measured (e.g. "STREAM triad, 4 threads")

    def __post_init__(self) -> None:
        if self.source is None and not self.estimated:
            raise ValueError("a Figure needs a source or estimated=True")


@dataclass(frozen=True, slots=True)
class CpuCluster:
    name: str  # core type, e.g. "Cortex-A76"
    cores: int
    max_clock_hz: Figure


@dataclass(frozen=True, slots=True)
class ComputeEngine:
    """Peak compute of one engine. ``kind`` is cpu, gpu or npu; ``provider`` the onnxruntime execution
    provider that would drive it (CPUExecutionProvider for the CPU)."""

    kind: str
    provider: str
    peak_fp32_flops_per_s: Figure | None = None
    peak_fp16_flops_per_s: Figure | None = None
    peak_int8_ops_per_s: Figure | None = None
    measured_fp32_flops_per_s: Figure | None = None  # e.g. a GEMM probe from `edgefit detect`
    name: str | None = None


@dataclass(frozen=True, slots=True)
class DeviceProfile:
    id: str
    name: str
    kind: str  # sbc, module, laptop, desktop, phone, mini-pc, host
    cpu_model: str
    isa: str  # aarch64, x86_64, ...
    cpu_features: tuple[str, ...]
    clusters: tuple[CpuCluster, ...]
    ram: Figure  # bytes
    usable_ram: Figure  # bytes, after OS, display carve-out, etc.
    memory_type: str
    bandwidth: Figure  # theoretical peak DRAM bandwidth, bytes_per_s
    engines: tuple[ComputeEngine, ...]  # engines[0] is the CPU
    idle_power: Figure  # w
    load_power: Figure  # w, typical sustained all-core load
    max_power: Figure  # w
    measured_bandwidth: Figure | None = None  # bytes_per_s, STREAM-like, from a source or `edgefit detect`
    last_level_cache: Figure | None = None  # bytes
    power_budget: Figure | None = None  # w
    battery: Figure | None = None  # wh
    price: Figure | None = None  # usd
    price_date: str | None = None  # "2025-06"
    vendor: str | None = None
    notes: str | None = None
    path: str | None = None  # file it was loaded from, for messages

    # --- base-unit accessors (names carry units) ---
    @property
    def ram_bytes(self) -> int:
        return int(self.ram.value)

    @property
    def usable_ram_bytes(self) -> int:
        return int(self.usable_ram.value)

    @property
    def bandwidth_bytes_per_s(self) -> float:
        return self.bandwidth.value

    @property
    def measured_bandwidth_bytes_per_s(self) -> float | None:
        return self.measured_bandwidth.value if self.measured_bandwidth else None

    @property
    def cpu_cores(self) -> int:
        return sum(c.cores for c in self.clusters)

    @property
    def cpu(self) -> ComputeEngine:
        return self.engines[0]

    @property
    def idle_power_w(self) -> float:
        return self.idle_power.value

    @property
    def load_power_w(self) -> float:
        return self.load_power.value

    @property
    def max_power_w(self) -> float:
        return self.max_power.value

    @property
    def power_budget_w(self) -> float | None:
        return self.power_budget.value if self.power_budget else None

    @property
    def price_usd(self) -> float | None:
        return self.price.value if self.price else None
