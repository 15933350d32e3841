"""Translate a host calibration to any DeviceProfile: decode, prefill, memory, power, with bases and intervals.

    device figures ─┐  bandwidth: measured (STREAM) or theoretical x STREAM_OF_THEORETICAL (wider interval)
                    │  compute:   measured GEMM, or peak fp32 x host's GEMM/peak (or GEMM_OF_PEAK)
                    v
    decode  = max(weight_bytes / (bw_eff * bw),  2*weights / (compute_eff * gemm))
              + kv_bytes / (kv_eff * bw) + overheads * cpu_ratio
    prefill = flops / (prefill_eff * gemm) * prompt_shape + overheads * cpu_ratio
    memory  = base + k_prepack * weights (+ tied-float embedding x2) + max(KV + activations, load transient)
    power   = load_w [idle_w .. max_w];  energy/token = power * decode s/token

On the host itself the same formula is used with the host's probe figures, so it reproduces the fit; models
below the cache knee use the fitted cache slope instead (other devices: DRAM regime always).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass

from edgefit import catalog
from edgefit.catalog import ModelSpec
from edgefit.predict import accounting
from edgefit.predict.calibrate import Calibration, PrecisionCalibration
from edgefit.predict.prediction import Basis, Estimate, MemoryBreakdown, Prediction
from edgefit.profiles import DeviceProfile

# Priors (stated in every prediction's notes when used):
STREAM_OF_THEORETICAL = 0.65  # STREAM-measured / theoretical DRAM bandwidth on LPDDR4/5 boards: ~0.55-0.8
GEMM_OF_PEAK = 0.6  # achievable fp32 GEMM / theoretical peak when the profile has no measured GEMM
# interval half-widths (relative)
FIT_FLOOR = 0.04  # repeat-to-repeat noise within a window on this VM is 1-5 %
EXTRAPOLATION_PER_E = 0.04  # per factor e beyond the largest rung
DEVICE_MEASURED = 0.15  # another device with a measured bandwidth
DEVICE_THEORETICAL_SLOW = 0.45  # ... with only a datasheet bandwidth: may be this much slower
DEVICE_THEORETICAL_FAST = 0.2  # ... or this much faster
COMPUTE_SPEC = 0.35  # compute from a peak figure
OTHER_ISA_QUANTIZED = 0.4  # int8/int4 kernels on another ISA (VNNI/AMX here vs dotprod/i8mm there)
ACTIVATION_BYTES_PER_FLOAT = 4


@dataclass(frozen=True, slots=True)
class _Device:
    """The target's figures the formulas need, with where they came from."""

    is_host: bool
    bandwidth_bytes_per_s: float
    bandwidth_measured: bool
    gemm_flops_per_s: float
    gemm_measured: bool
    cores: int
    cpu_ratio: float  # host clock / target clock: overheads scale by it
    same_isa: bool


def _device_figures(device: DeviceProfile, cal: Calibration) -> _Device:
    is_host = device.id == "host" or device.id == cal.host_id
    if is_host:
        return _Device(
            True, cal.host_stream_bytes_per_s, True, cal.host_gemm_flops_per_s, True, cal.host_cores, 1.0, True
        )
    mbw = device.measured_bandwidth_bytes_per_s
    bw = mbw if mbw else device.bandwidth_bytes_per_s * STREAM_OF_THEORETICAL
    cpu = device.cpu
    if cpu.measured_fp32_flops_per_s is not None:
        gemm, gemm_measured = cpu.measured_fp32_flops_per_s.value, True
    elif cpu.peak_fp32_flops_per_s is not None:
        gemm, gemm_measured = cpu.peak_fp32_flops_per_s.value * GEMM_OF_PEAK, False
    else:  # no compute figure at all: scale the host's GEMM by cores x clock
        clock = max((c.max_clock_hz.value for c in device.clusters), default=cal.host_clock_hz)
        gemm = cal.host_gemm_flops_per_s * device.cpu_cores / max(cal.host_cores, 1) * clock / max(cal.host_clock_hz, 1)
        gemm_measured = False
    clock = max((c.max_clock_hz.value for c in device.clusters), default=0.0)
    ratio = cal.host_clock_hz / clock if clock > 0 and cal.host_clock_hz > 0 else 1.0
    # the fitted overheads are at the ladder's (possibly busy) conditions: bring them to a quiet host first
    ratio *= cal.contention_ratio
    return _Device(False, bw, bool(mbw), gemm, gemm_measured, device.cpu_cores, ratio, device.isa == cal.host_isa)


def _threads(threads: int | None, dev: _Device) -> int:
    return max(1, min(threads if threads else dev.cores, dev.cores))


def _est(value: float, rel_low: float, rel_high: float, basis: Basis) -> Estimate:
    """``value`` with the interval [value*(1-rel_low), value*(1+rel_high)]; rel_low capped below 1."""
    low = value * (1.0 - min(rel_low, 0.6))  # a relative error e on the slow side is 1/(1+e) on the fast side
    return Estimate(value=value, low=min(low, value), high=max(value * (1.0 + rel_high), value), basis=basis)


def _extrapolation(size: float, largest: float) -> float:
    if largest <= 0 or size <= largest:
        return 0.0
    return EXTRAPOLATION_PER_E * math.log(size / largest)


@dataclass(frozen=True, slots=True)
class DecodeTerms:
    memory_s: float  # weights
    compute_s: float  # weights (dequantisation + multiply-adds)
    kv_s: float  # attention streaming the KV cache
    overhead_s: float
    total_s: float
    bound: str


def decode_terms(
    spec: ModelSpec, pc: PrecisionCalibration, bytes_precision: str, dev: _Device, cal: Calibration, *,
    context_tokens: int, threads: int,
) -> DecodeTerms:  # fmt: skip
    weights_read = accounting.read_bytes_per_token(spec, bytes_precision)
    kv = accounting.kv_bytes(spec, context_tokens, bytes_precision)
    share = threads / dev.cores  # bandwidth and compute both scale ~linearly with threads (1->2: 1.9x here)
    host_share = pc.threads / max(cal.host_cores, 1)
    n_weights = catalog.matmul_params(spec)  # multiply-adds per token (the compute term's work)
    overhead = (pc.decode_call_s + pc.decode_layer_s * spec.num_layers) * dev.cpu_ratio
    bw_share = dev.bandwidth_bytes_per_s * share / host_share
    kv_s = kv / (pc.kv_bandwidth_efficiency * bw_share)
    in_cache = dev.is_host and pc.knee_bytes is not None and pc.decode_s_per_byte_cache is not None
    if in_cache and weights_read < (pc.knee_bytes or 0.0):
        cache_s = (pc.decode_s_per_byte_cache or 0.0) * weights_read * host_share / share
        return DecodeTerms(cache_s, 0.0, kv_s, overhead, cache_s + kv_s + overhead, "memory")
    memory_s = weights_read / (pc.bandwidth_efficiency * bw_share)
    compute = pc.compute_efficiency * dev.gemm_flops_per_s * share / host_share
    compute_s = 2.0 * n_weights / compute
    bound = "compute" if compute_s > memory_s else "memory"
    return DecodeTerms(memory_s, compute_s, kv_s, overhead, max(memory_s, compute_s) + kv_s + overhead, bound)


def prefill_seconds(
    spec: ModelSpec, pc: PrecisionCalibration, dev: _Device, cal: Calibration, *, prompt_tokens: int, threads: int
) -> float:
    if prompt_tokens <= 0:
        return 0.0
    flops = accounting.prompt_flops(spec, prompt_tokens)
    share = threads / dev.cores
    host_share = pc.threads / max(cal.host_cores, 1)
    s_per_flop = pc.prefill_s_per_flop * (cal.host_gemm_flops_per_s / dev.gemm_flops_per_s) * host_share / share
    overhead = (pc.prefill_call_s + pc.prefill_layer_s * spec.num_layers) * dev.cpu_ratio
    return flops * s_per_flop * (1.0 + pc.prefill_half_tokens / prompt_tokens) + overhead


@dataclass(frozen=True, slots=True)
class MemoryTerms:
    weights_bytes: int
    kv_cache_bytes: int
    activations_bytes: int
    runtime_bytes: int
    load_transient_bytes: int  # while loading: the largest weight being prepacked

    @property
    def total_bytes(self) -> int:
        # peak = resident weights + runtime + the larger of the load transient and the run's activations + KV
        run = self.activations_bytes + self.kv_cache_bytes
        return self.weights_bytes + self.runtime_bytes + max(run, self.load_transient_bytes)


def memory_terms(
    spec: ModelSpec, pc: PrecisionCalibration, bytes_precision: str, *, context_tokens: int, prompt_tokens: int
) -> MemoryTerms:
    total = accounting.weight_bytes(spec, bytes_precision)
    if accounting.is_gguf(bytes_precision):
        # llama.cpp memory-maps the GGUF file as is (embedding quantized too, no prepacked copy)
        weights = float(total)
    else:
        rest = max(total - accounting.embedding_bytes(spec), 0)
        weights = accounting.known_resident_bytes(spec, bytes_precision) + pc.rss_weight_factor * rest
    act = accounting.activation_bytes(spec, bytes_precision, prompt_tokens=prompt_tokens, context_tokens=context_tokens)
    return MemoryTerms(
        weights_bytes=int(weights),
        kv_cache_bytes=accounting.kv_bytes(spec, context_tokens, bytes_precision),
        activations_bytes=int(act),
        runtime_bytes=int(pc.rss_base_bytes),
        load_transient_bytes=0
        if accounting.is_gguf(bytes_precision)
        else accounting.load_transient_bytes(spec, bytes_precision),
    )


def fits_in_memory(total_bytes: float, usable_ram_bytes: float) -> bool:
    """The one rule: the predicted peak (point estimate) must not exceed usable RAM."""
    return total_bytes <= usable_ram_bytes


def predict(
    spec: ModelSpec,
    precision: str,
    device: DeviceProfile,
    calibration: Calibration,
    *,
    context_tokens: int = 2048,
    prompt_tokens: int = 256,
    threads: int | None = None,
) -> Prediction:
    """Predict ``spec`` at ``precision`` on ``device`` from this host's ``calibration``."""
    cal = calibration
    choice = accounting.choose_precision(precision, cal.precisions)
    pc = cal.precisions[choice.calibration]
    dev = _device_figures(device, cal)
    n_threads = _threads(threads, dev)
    notes: list[str] = [choice.note] if choice.note else []
    if accounting.is_gguf(choice.bytes_precision):
        # llama.cpp's block-quantized dot kernels are not onnxruntime's MatMulNBits: take the fastest integer
        # kernel measured here for the compute term (this host's 8-bit MatMulNBits can be far slower than 4-bit)
        ints = [q for name, q in cal.precisions.items() if name in ("int8", "int4")]
        best = max(ints, key=lambda q: q.compute_efficiency)
        if best.compute_efficiency > pc.compute_efficiency:
            pc = dataclasses.replace(pc, compute_efficiency=best.compute_efficiency)
            notes.append(f"compute term uses the fastest integer kernel measured here ({best.precision})")
    terms = decode_terms(spec, pc, choice.bytes_precision, dev, cal, context_tokens=context_tokens, threads=n_threads)
    prefill_s = prefill_seconds(spec, pc, dev, cal, prompt_tokens=prompt_tokens, threads=n_threads)
    mem = memory_terms(spec, pc, choice.bytes_precision, context_tokens=context_tokens, prompt_tokens=prompt_tokens)

    # --- intervals and bases ---
    read = accounting.read_bytes_per_token(spec, choice.bytes_precision)
    ext_dec = _extrapolation(read, pc.max_read_bytes)
    ext_pre = _extrapolation(accounting.prompt_flops(spec, max(prompt_tokens, 1)), pc.max_prompt_flops)
    ext_mem = _extrapolation(accounting.weight_bytes(spec, choice.bytes_precision), pc.max_weight_bytes)
    fit_dec = max(2.0 * pc.decode_rms_rel, FIT_FLOOR)
    fit_pre = max(2.0 * pc.prefill_rms_rel, FIT_FLOOR)
    fit_mem = max(2.0 * pc.rss_rms_rel, FIT_FLOOR / 2)
    if choice.calibration != choice.requested and choice.bytes_precision != choice.calibration:
        fit_dec, fit_pre = fit_dec + 0.15, fit_pre + 0.3  # borrowed calibration (GGUF): different kernels
    dev_slow = dev_fast = 0.0
    pre_dev = 0.0
    if dev.is_host:
        basis = Basis.EXTRAPOLATED
    else:
        basis = Basis.SPEC
        if dev.bandwidth_measured:
            dev_slow = dev_fast = DEVICE_MEASURED
        else:
            dev_slow, dev_fast = DEVICE_THEORETICAL_SLOW, DEVICE_THEORETICAL_FAST
            notes.append(
                f"no measured bandwidth for {device.id}: assumed {STREAM_OF_THEORETICAL:.0%} of the datasheet figure"
            )
        pre_dev = DEVICE_MEASURED if dev.gemm_measured else COMPUTE_SPEC
        if not dev.gemm_measured:
            notes.append(f"no measured GEMM for {device.id}: assumed {GEMM_OF_PEAK:.0%} of its peak fp32 figure")
        if choice.calibration in ("int8", "int4") and not dev.same_isa:
            pre_dev = _quad(pre_dev, OTHER_ISA_QUANTIZED)
            notes.append("int8/int4 prefill calibrated on x86 VNNI/AMX: another ISA's integer dot products differ")
        if terms.bound == "compute":
            dev_slow, dev_fast = max(dev_slow, pre_dev), max(dev_fast, pre_dev)
        notes.append("cache-resident speed-up of small models is not applied on other devices (DRAM regime)")
    # time interval: the device may be slower (dev_slow) or faster (dev_fast) than its figures say
    decode = _est(terms.total_s, _quad(fit_dec, ext_dec, dev_fast), _quad(fit_dec, ext_dec, dev_slow), basis)
    pre_rel = _quad(fit_pre, ext_pre, pre_dev)
    prefill = _est(prefill_s, pre_rel, pre_rel, basis)
    mem_rel = _quad(fit_mem, ext_mem)
    mem_total = _est(float(mem.total_bytes), mem_rel, mem_rel, Basis.EXTRAPOLATED if dev.is_host else Basis.SPEC)

    measured = pc.measured.get(spec.id) if dev.is_host and choice.calibration == choice.requested else None
    if measured is not None:
        decode, prefill = _measured_overrides(measured, context_tokens, prompt_tokens, decode, prefill)

    tps = Estimate(1.0 / decode.value, 1.0 / decode.high, 1.0 / decode.low, decode.basis)
    power = Estimate(device.load_power_w, min(device.idle_power_w, device.load_power_w),
                     max(device.max_power_w, device.load_power_w), Basis.SPEC)  # fmt: skip
    energy = Estimate(power.value * decode.value, power.low * decode.low, power.high * decode.high, Basis.SPEC)
    warnings = list(cal.warnings)
    if not fits_in_memory(mem_total.value, device.usable_ram_bytes):
        warnings.append(
            f"needs {mem_total.value / 2**30:.2f} GiB, more than the {device.usable_ram_bytes / 2**30:.2f} GiB "
            f"usable on {device.id}"
        )
    calib: dict[str, float | str] = {
        "host_fingerprint": cal.host_fingerprint,
        "calibration_precision": choice.calibration,
        "bandwidth_efficiency": pc.bandwidth_efficiency,
        "compute_efficiency": pc.compute_efficiency,
        "prefill_efficiency": pc.prefill_efficiency,
        "host_bound": pc.bound_on_host,
        "drift_ratio": cal.drift_ratio,
        "knee_bytes": pc.knee_bytes if pc.knee_bytes is not None else "none",
        "dram_rungs": ",".join(pc.dram_rungs),
        "decode_rms_rel": pc.decode_rms_rel,
        "device_bandwidth_bytes_per_s": dev.bandwidth_bytes_per_s,
        "device_bandwidth_basis": "measured" if dev.bandwidth_measured else "theoretical",
        "device_gemm_flops_per_s": dev.gemm_flops_per_s,
        "device_gemm_basis": "measured" if dev.gemm_measured else "peak",
        "decode_memory_s": terms.memory_s,
        "decode_compute_s": terms.compute_s,
        "decode_kv_s": terms.kv_s,
        "decode_overhead_s": terms.overhead_s,
        "extrapolation_log_ratio": math.log(read / pc.max_read_bytes) if pc.max_read_bytes > 0 else 0.0,
    }
    if dev.is_host and pc.load_bytes_per_s > 0:  # storage differs too much between devices to translate
        calib["load_s"] = pc.load_base_s + accounting.weight_bytes(spec, choice.bytes_precision) / pc.load_bytes_per_s
    return Prediction(
        model_id=spec.id,
        precision=precision,
        device_id=device.id,
        context_tokens=context_tokens,
        prompt_tokens=prompt_tokens,
        threads=n_threads,
        decode_s_per_token=decode,
        decode_tokens_per_s=tps,
        prefill_s=prefill,
        time_to_first_token_s=prefill,
        memory=MemoryBreakdown(
            weights_bytes=mem.weights_bytes,
            kv_cache_bytes=mem.kv_cache_bytes,
            activations_bytes=max(mem.activations_bytes, mem.load_transient_bytes - mem.kv_cache_bytes, 0),
            runtime_bytes=mem.runtime_bytes,
            total=mem_total,
            usable_ram_bytes=device.usable_ram_bytes,
        ),
        power_w=power,
        energy_per_token_j=energy,
        bound=terms.bound,
        calibration=calib,
        notes=tuple(notes),
        warnings=tuple(warnings),
    )


def _quad(*parts: float) -> float:
    return math.sqrt(sum(p * p for p in parts))


def _measured_overrides(
    m: Mapping[str, float], context: int, prompt: int, decode: Estimate, prefill: Estimate
) -> tuple[Estimate, Estimate]:
    """This exact model and precision was measured here: quote the measurement where the workload matches."""
    if f"decode@{context}" in m:
        decode = _est(m[f"decode@{context}"], FIT_FLOOR, FIT_FLOOR, Basis.MEASURED)
    if f"prefill@{prompt}" in m:
        prefill = _est(m[f"prefill@{prompt}"], FIT_FLOOR, FIT_FLOOR, Basis.MEASURED)
    return decode, prefill


def max_context_that_fits(
    spec: ModelSpec,
    precision: str,
    device: DeviceProfile,
    calibration: Calibration,
    *,
    prompt_tokens: int = 256,
) -> int:
    """Largest context (<= the card's max_context) whose predicted peak memory fits the device's usable RAM;
    0 when even an empty context does not fit."""
    choice = accounting.choose_precision(precision, calibration.precisions)
    pc = calibration.precisions[choice.calibration]
    usable = device.usable_ram_bytes

    def fits(ctx: int) -> bool:
        p = min(prompt_tokens, ctx) if ctx > 0 else prompt_tokens
        t = memory_terms(spec, pc, choice.bytes_precision, context_tokens=ctx, prompt_tokens=p)
        return fits_in_memory(t.total_bytes, usable)

    if not fits(0):
        return 0
    lo, hi = 0, spec.max_context
    if fits(hi):
        return hi
    while hi - lo > 1:  # memory is monotone in context: bisect
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if fits(mid) else (lo, mid)
    return lo
