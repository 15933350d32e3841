"""What a prediction is calibrated with: kernel tables (this host's and any imported), the memory model, and the
host's own ladder measurements; and which table answers for which device.

    device is this host                       -> this host's table, no translation        basis extrapolated
    a table's host is linked to the device    -> that table, no translation               basis measured
    (edgefit profiles link / fleet)
    a calibrated host of the device's ISA     -> the nearest such table, translated        basis spec
    otherwise                                 -> this host's table, translated             basis spec
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from edgefit.errors import PredictError
from edgefit.kernels.table import KernelModel
from edgefit.predict.memfit import MemoryCalibration, prior_memory
from edgefit.profiles import DeviceProfile


@dataclass(frozen=True, slots=True)
class TableChoice:
    model: KernelModel
    role: str  # "host" | "device" (the device's own table) | "same_isa" (borrowed) | "translated"
    note: str


@dataclass(frozen=True, slots=True)
class Calibration:
    host_fingerprint: str
    host_id: str  # the id `--device host` resolves to
    host: KernelModel  # this host's kernel table, fitted
    memory: Mapping[str, MemoryCalibration]  # precision -> peak-RSS model
    measured: Mapping[tuple[str, str], Mapping[str, float]]  # (model id, precision) -> {"decode@N": s, ...}
    device_tables: Mapping[str, KernelModel]  # device id -> its own imported table (linked fingerprints)
    other_tables: tuple[KernelModel, ...] = ()  # imported tables of hosts linked to no device
    warnings: tuple[str, ...] = ()
    # how far this host's own kernel tables disagree, per figure and kernel precision ("decode/int4": max/min - 1
    # over its latest tables, ``pipeline.host_drift``): the host drifts between calibrations, so its own answers
    # carry this in their interval
    host_drift_rel: Mapping[str, float] = field(default_factory=dict)
    # which of this host's tables answer and how (``pipeline.pooled_table``); "" for its latest table alone
    host_table_note: str = ""
    # a whole model vs the sum of its kernels, per figure ("decode", "prefill"): the largest per-precision median
    # |error| of the latest `edgefit validate` on held-out and random architectures (empty: none stored)
    composition_rel: Mapping[str, float] = field(default_factory=dict)
    # the same against `edgefit bench` (``pipeline.bench_errors``): this host's answers' intervals cover it
    host_bench_rel: Mapping[str, float] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    def memory_for(self, precision: str) -> MemoryCalibration:
        if precision in self.memory:
            return self.memory[precision]
        return prior_memory(precision, float(self.host.table.runtime_rss_bytes), self.host.table.host.mapped_granules)

    def is_host(self, device: DeviceProfile) -> bool:
        return device.id in ("host", self.host_id)

    def table_for(self, device: DeviceProfile) -> TableChoice:
        if self.is_host(device):
            return TableChoice(self.host, "host", self.host_table_note or "this host's kernel table")
        own = self.device_tables.get(device.id)
        if own is not None:
            fp = own.table.host.host_fingerprint
            return TableChoice(own, "device", f"{device.id}'s own kernel table (measured on host {fp})")
        same = [
            m for m in (*self.device_tables.values(), *self.other_tables, self.host) if m.table.host.isa == device.isa
        ]
        if same:
            target = device.measured_bandwidth_bytes_per_s or device.bandwidth_bytes_per_s
            best = min(same, key=lambda m: abs(math.log(max(m.triad_bytes_per_s, 1.0) / max(target, 1.0))))
            if best is not self.host:
                return TableChoice(best, "same_isa", f"kernel table of {best.table.host.host_id} ({device.isa})")
        return TableChoice(self.host, "translated", "this host's kernel table, translated by the device's figures")


def require_precision(precision: str, model: KernelModel) -> None:
    have = sorted({p for p, _ in model.gemv})
    if precision not in have:
        raise PredictError(
            f"the kernel table has no {precision} kernels (calibrated: {', '.join(have) or 'none'}); "
            f"run `edgefit calibrate --precision {precision}`"
        )
