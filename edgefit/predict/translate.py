"""A Prediction for any ModelSpec, precision and DeviceProfile: the model's ops priced with a kernel table.

    ModelSpec ──ops (as onnxruntime runs them)──> price with the table chosen for the device (calibration.py)
        decode  = one call on 1 token with `context` cached        (regime: warm when the weights fit the
        prefill = one call on `prompt` tokens, empty cache           host's cache, else cold = from DRAM)
    memory  = runtime + weights as held (prepack) + max(KV + activations, load transient)   (memfit.py)
    power   = profile load_w [idle_w .. max_w]; energy/token = power x decode s/token

Translation to a device other than the table's host (``Translation``): a memory part (bytes read once / this
host's streaming rate) becomes bytes / the device's STREAM bandwidth (its measured figure, else
STREAM_OF_THEORETICAL x its datasheet figure), fp32 compute scales with the
device's fp32 figure (measured GEMM, else GEMM_OF_PEAK x peak), MatMulNBits' int8 dot products with its int8
figure (measured, else INT8_OF_PEAK x peak; else its fp32 figure x the host's int8/fp32 ratio), fixed per-node
costs with the clock. The references on the host side are measured in the same rounds as the kernels.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from edgefit.catalog import ModelSpec
from edgefit.kernels.ops import Op, decoder_ops
from edgefit.kernels.table import KernelModel
from edgefit.predict import accounting
from edgefit.predict.calibration import Calibration, TableChoice, require_precision
from edgefit.predict.memfit import fits_in_memory, memory_terms
from edgefit.predict.prediction import Basis, Estimate, MemoryBreakdown, Prediction
from edgefit.predict.price import IDENTITY, PricedCall, Translation, price_call
from edgefit.profiles import DeviceProfile

__all__ = ["fits_in_memory", "max_context_that_fits", "predict"]

# Priors (stated in every prediction's notes when used):
STREAM_OF_THEORETICAL = 0.65  # STREAM-measured / theoretical DRAM bandwidth on LPDDR4/5 boards: ~0.55-0.8
GEMM_OF_PEAK = 0.6  # achievable fp32 GEMM / theoretical peak when the profile has no measured GEMM
INT8_OF_PEAK = 0.5  # achievable int8 dot-product GEMM / theoretical peak when the profile has no measurement
KNEE_OF_LLC = 0.5  # weights up to this share of the last-level cache stay resident between tokens (host only)
COLD_OF_LLC = 1.0  # ... and none of them from the cache's size on
# interval half-widths (relative)
FIT_FLOOR = 0.04  # repeat-to-repeat noise of a whole model within a window on this VM is 1-5 %
COMPOSITION = 0.08  # a model as the sum of its kernels: what `edgefit validate` measures on the ladder
EXTRAPOLATION_PER_E = 0.03  # per factor e of weights beyond the largest chain node
# attention (GroupQueryAttention) on a head layout or cache depth the table did not time, x its share of the time:
# the table's fit predicted six other layouts' chains at depths 0-4096 with median |error| 3-10 %, worst 11-31 % per
# depth (benchmarks/gqa_depth.py, two runs); no growth with depth beyond the table's deepest chain (1024) was seen
ATTENTION_LAYOUT = 0.15
DEVICE_MEASURED = 0.15  # another device with a measured bandwidth
DEVICE_THEORETICAL_SLOW = 0.45  # ... with only a datasheet bandwidth: may be this much slower
DEVICE_THEORETICAL_FAST = 0.2  # ... or this much faster
COMPUTE_SPEC = 0.35  # compute from a peak figure
OTHER_ISA = 0.3  # a kernel path on another ISA (AVX-512 VNNI here vs NEON dotprod there) than any table


def _clock(profile_clusters: DeviceProfile) -> float:
    return max((c.max_clock_hz.value for c in profile_clusters.clusters), default=0.0)


def _device_int8(device: DeviceProfile) -> tuple[float | None, bool]:
    cpu = device.cpu
    measured = cpu.measured_int8_ops_per_s
    if measured is not None:
        return float(measured.value), True
    if cpu.peak_int8_ops_per_s is not None:
        return float(cpu.peak_int8_ops_per_s.value) * INT8_OF_PEAK, False
    return None, False


def translation(model: KernelModel, device: DeviceProfile, notes: list[str]) -> tuple[Translation, dict[str, float]]:
    """Multipliers from ``model``'s host to ``device``; appends the priors it used to ``notes``."""
    mbw = device.measured_bandwidth_bytes_per_s
    bw = mbw if mbw else device.bandwidth_bytes_per_s * STREAM_OF_THEORETICAL
    if not mbw:
        notes.append(
            f"no measured bandwidth for {device.id}: assumed {STREAM_OF_THEORETICAL:.0%} of its datasheet figure"
        )
    cpu = device.cpu
    if cpu.measured_fp32_flops_per_s is not None:
        fp32, fp32_measured = cpu.measured_fp32_flops_per_s.value, True
    elif cpu.peak_fp32_flops_per_s is not None:
        fp32, fp32_measured = cpu.peak_fp32_flops_per_s.value * GEMM_OF_PEAK, False
        notes.append(f"no measured GEMM for {device.id}: assumed {GEMM_OF_PEAK:.0%} of its peak fp32 figure")
    else:
        clock = _clock(device) or model.table.host.clock_hz
        fp32 = 2 * model.fp32_gemm_macs_per_s * device.cpu_cores / max(model.table.host.cores, 1)
        fp32 *= clock / max(model.table.host.clock_hz, 1.0)
        fp32_measured = False
        notes.append(f"no compute figure for {device.id}: fp32 scaled from this host by cores x clock")
    src_fp32 = 2 * model.fp32_gemm_macs_per_s
    src_int8 = 2 * model.int8_gemm_macs_per_s
    int8, int8_measured = _device_int8(device)
    if int8 is None and device.isa == "aarch64" and not {"asimddp", "dotprod", "i8mm"} & set(device.cpu_features):
        # MLAS runs MatMulNBits' int8 path only with Arm dot-product instructions; without them it computes in fp32
        int8 = fp32
        notes.append(
            f"{device.id} has no Arm dot-product instructions (asimddp): onnxruntime's MatMulNBits computes in fp32 "
            "there, so int8/int4 compute is translated by its fp32 rate"
        )
    if int8 is None:
        int8 = fp32 * (src_int8 / src_fp32) if src_fp32 > 0 else fp32
        notes.append(
            f"no int8 figure for {device.id}: its int8 dot-product rate assumed {src_int8 / max(src_fp32, 1):.2f}x "
            "its fp32 rate, as on the calibrating host"
        )
    elif not int8_measured:
        notes.append(f"no measured int8 rate for {device.id}: assumed {INT8_OF_PEAK:.0%} of its peak int8 figure")
    clock = _clock(device)
    src_clock = model.table.host.clock_hz
    overhead = src_clock / clock if clock > 0 and src_clock > 0 else 1.0
    tr = Translation(
        # a weight read once takes bytes / stream on the host (price.py's memory part): x stream / bw makes it
        # bytes / the device's bandwidth, whatever this host's GEMV-to-triad efficiency (it drifted 25 % between
        # two calibrations here while the triad stayed put, and differs between CPU vendors)
        memory=model.stream_bytes_per_s / bw if bw > 0 and model.stream_bytes_per_s > 0 else 1.0,
        fp32=src_fp32 / fp32 if fp32 > 0 and src_fp32 > 0 else 1.0,
        int8=src_int8 / int8 if int8 > 0 and src_int8 > 0 else 1.0,
        overhead=overhead,
        kv_memory=model.triad_bytes_per_s / bw if bw > 0 and model.triad_bytes_per_s > 0 else 1.0,
    )
    figures = {
        "device_bandwidth_bytes_per_s": bw,
        "device_bandwidth_measured": float(bool(mbw)),
        "device_fp32_flops_per_s": fp32,
        "device_fp32_measured": float(fp32_measured),
        "device_int8_ops_per_s": int8,
        "device_int8_measured": float(int8_measured),
    }
    return tr, figures


def device_uncertainty(
    figures: Mapping[str, float],
    device: DeviceProfile,
    model: KernelModel,
    memory_share: float,
    notes: list[str],
    *,
    timed: str,
) -> tuple[float, float, float]:
    """(slow, fast, compute) relative uncertainty a translation to ``device`` adds: bandwidth from a measured or a
    datasheet figure for the memory-bound share, compute from a measured or a peak figure (wider on another ISA,
    said in ``notes``) for the rest. ``timed``: what was measured on the host, for the note."""
    if figures.get("device_bandwidth_measured"):
        dev_slow = dev_fast = DEVICE_MEASURED
    else:
        dev_slow, dev_fast = DEVICE_THEORETICAL_SLOW, DEVICE_THEORETICAL_FAST
    compute_rel = DEVICE_MEASURED if figures.get("device_fp32_measured") else COMPUTE_SPEC
    if device.isa != model.table.host.isa:
        compute_rel = _quad(compute_rel, OTHER_ISA)
        notes.append(
            f"{timed} on {model.table.host.isa}; {device.id} is {device.isa}: its kernel paths "
            "(e.g. NEON dot products instead of VNNI) may differ, interval widened"
        )
    slow = memory_share * dev_slow + (1 - memory_share) * compute_rel
    fast = memory_share * dev_fast + (1 - memory_share) * compute_rel
    return slow, fast, compute_rel


def _warm_share(model: KernelModel, spec: ModelSpec, precision: str, translated: bool) -> float:
    """How much of the weights stay in the host's last-level cache between tokens: all of them up to KNEE_OF_LLC
    of it, none from COLD_OF_LLC on, log-linear between (a 19.5 MB model ran at cache speed in a 32 MB L3 here,
    where a hard knee at half the cache priced it 3.7x too slow). Other devices: cold."""
    llc = model.table.host.llc_bytes
    if translated or llc <= 0:
        return 0.0
    b = accounting.read_bytes_per_token(spec, precision)
    lo, hi = llc * KNEE_OF_LLC, llc * COLD_OF_LLC
    if b <= lo:
        return 1.0
    if b >= hi:
        return 0.0
    return math.log(hi / b) / math.log(hi / lo)


def _price(model: KernelModel, ops: tuple[Op, ...], warm: float, tr: Translation) -> PricedCall:
    """Priced cold and warm, blended by the share of the weights that stays cached."""
    if warm >= 1.0:
        return price_call(model, ops, regime="warm", tr=tr)
    cold = price_call(model, ops, regime="cold", tr=tr)
    if warm <= 0.0:
        return cold
    hot = price_call(model, ops, regime="warm", tr=tr)

    def mix(x: float, y: float) -> float:
        return warm * y + (1.0 - warm) * x

    kinds = {k: mix(cold.by_kind.get(k, 0.0), hot.by_kind.get(k, 0.0)) for k in {*cold.by_kind, *hot.by_kind}}
    return PricedCall(mix(cold.total_s, hot.total_s), mix(cold.fixed_s, hot.fixed_s),
                      mix(cold.memory_s, hot.memory_s), mix(cold.compute_s, hot.compute_s), kinds,
                      mix(cold.memory_bound_share, hot.memory_bound_share))  # fmt: skip


def _est(value: float, rel_low: float, rel_high: float, basis: Basis) -> Estimate:
    low = value * (1.0 - min(rel_low, 0.6))
    return Estimate(value=value, low=min(low, value), high=max(value * (1.0 + rel_high), value), basis=basis)


def _quad(*parts: float) -> float:
    return math.sqrt(sum(p * p for p in parts))


def _attention(call: PricedCall) -> float:
    """The attention term's uncertainty, in proportion to its share of the call (deep caches: most of it)."""
    return ATTENTION_LAYOUT * call.by_kind.get("gqa", 0.0) / call.total_s if call.total_s > 0 else 0.0


def _extrapolation(spec: ModelSpec, precision: str, model: KernelModel) -> float:
    biggest = max((s for (p, _), c in model.gemv.items() if p == precision for s in c.sizes), default=0.0)
    largest_op = max(
        (accounting.read_bytes_per_token(spec, precision) / max(spec.num_layers, 1) / 7.0, 1.0)
    )  # a typical projection
    if biggest <= 0 or largest_op <= biggest:
        return 0.0
    return EXTRAPOLATION_PER_E * math.log(largest_op / biggest)


def predict(
    spec: ModelSpec,
    precision: str,
    device: DeviceProfile,
    calibration: Calibration,
    *,
    context_tokens: int = 2048,
    prompt_tokens: int = 256,
    threads: int | None = None,
    use_measurements: bool = True,
    embedded_tokens: int | None = None,
) -> Prediction:
    """Predict ``spec`` at ``precision`` on ``device``. ``use_measurements``: quote this host's own measurement of
    exactly this model and workload when there is one (``validate`` turns it off to test the prediction).
    ``embedded_tokens``: see ``memfit.memory_terms`` (default: the whole context went through the embedding)."""
    cal = calibration
    choice: TableChoice = cal.table_for(device)
    model = choice.model
    pchoice = accounting.choose_precision(precision, sorted({p for p, _ in model.gemv}))
    run_as = pchoice.calibration
    require_precision(run_as, model)
    notes: list[str] = [pchoice.note] if pchoice.note else []
    translated = choice.role in ("translated", "same_isa")
    figures: dict[str, float] = {}
    if translated:
        tr, figures = translation(model, device, notes)
    else:
        tr = IDENTITY
    n_threads = max(1, min(threads if threads else device.cpu_cores, device.cpu_cores))
    table_threads = model.table.threads
    if not translated and n_threads != table_threads:
        share = table_threads / n_threads
        tr = Translation(1.0, share, share, 1.0, identity=False)
        notes.append(f"kernel table measured at {table_threads} threads: compute scaled to {n_threads}")
    elif translated and n_threads < device.cpu_cores:
        share = device.cpu_cores / n_threads
        tr = Translation(tr.memory, tr.fp32 * share, tr.int8 * share, tr.overhead, kv_memory=tr.kv_memory)
    warm = _warm_share(model, spec, run_as, translated)
    regime = "warm" if warm >= 1.0 else "cold" if warm <= 0.0 else f"{warm:.0%} of the weights cached"
    dec = _price(model, decoder_ops(spec, run_as, tokens=1, past=context_tokens), warm, tr)
    pre: PricedCall | None = None
    if prompt_tokens > 0:
        pre = _price(model, decoder_ops(spec, run_as, tokens=prompt_tokens, past=0), warm, tr)
    mc = cal.memory_for(run_as)
    mem = memory_terms(spec, mc, pchoice.bytes_precision, context_tokens=context_tokens, prompt_tokens=prompt_tokens,
                       on_host=choice.role == "host", embedded_tokens=embedded_tokens)  # fmt: skip

    # --- intervals and bases ---
    # how far whole models land from the sum of their kernels: this host's latest `edgefit validate`, else a prior
    composition = cal.composition_rel.get("decode", COMPOSITION)
    pre_composition = cal.composition_rel.get("prefill", COMPOSITION)
    bench_dec = cal.host_bench_rel.get("decode", 0.0)
    bench_pre = cal.host_bench_rel.get("prefill", 0.0)
    if choice.role == "host" and (bench_dec > composition or bench_pre > pre_composition):
        # this host's answer is compared with `edgefit bench`, which adds the gap between the benchmark's process
        # and the kernel worker's: the interval covers what validate measured against the benchmark
        composition, pre_composition = max(composition, bench_dec), max(pre_composition, bench_pre)
        notes.append(
            f"this host's latest `edgefit validate` found held-out models a median {bench_dec:.0%} (decode) and "
            f"{bench_pre:.0%} (prefill) from `edgefit bench`: intervals widened to match"
        )
    extrapolation = _extrapolation(spec, run_as, model)
    fit = _quad(FIT_FLOOR, model.noise_rel, composition, extrapolation, _attention(dec))
    pre_fit = _quad(FIT_FLOOR, model.noise_rel, pre_composition, extrapolation,
                    _attention(pre) if pre else 0.0)  # fmt: skip
    slow = fast = fit
    pre_rel = pre_fit
    if choice.role == "host":
        basis = Basis.EXTRAPOLATED
        if cal.host_table_note:
            notes.append(cal.host_table_note)
        drift_dec = cal.host_drift_rel.get(f"decode/{run_as}", 0.0)
        drift_pre = cal.host_drift_rel.get(f"prefill/{run_as}", 0.0)
        if drift_dec > 0 or drift_pre > 0:
            slow = fast = _quad(fit, drift_dec)
            pre_rel = _quad(pre_fit, drift_pre)
            notes.append(
                f"this host's kernel tables differ by {drift_dec:.0%} in {run_as} GEMV and {drift_pre:.0%} in "
                f"{run_as} GEMM between calibrations (the machine drifts): intervals widened to match"
            )
    elif choice.role == "device":
        basis = Basis.MEASURED
        notes.append(choice.note)
    else:
        basis = Basis.SPEC
        notes.append(choice.note)
        dev_slow, dev_fast, compute_rel = device_uncertainty(
            figures, device, model, dec.memory_bound_share, notes, timed="kernels calibrated"
        )
        slow, fast = _quad(fit, dev_slow), _quad(fit, dev_fast)
        pre_rel = _quad(pre_fit, compute_rel)
    decode = _est(dec.total_s, fast, slow, basis)
    prefill = _est(pre.total_s if pre else 0.0, pre_rel, pre_rel, basis)
    mem_rel = max(2.0 * mc.rss_rms_rel, FIT_FLOOR / 2)
    mem_basis = Basis.EXTRAPOLATED if choice.role == "host" else Basis.SPEC
    mem_total = _est(float(mem.total_bytes), mem_rel, mem_rel, mem_basis)
    below = float(mem.mapped_embedding_bytes - mem.mapped_cold_bytes)
    if below > 0:  # the embedding rows' RSS depends on the page cache: the interval reaches down to the dropped state
        mem_total = Estimate(mem_total.value, mem_total.low - below, mem_total.high, mem_basis)
        if below >= 0.05 * mem_total.value:
            notes.append(
                f"the embedding rows a run reads through the model file's mapping hold "
                f"{mem.mapped_embedding_bytes / 2**20:.0f} MiB when the file's pages are cached (right after a "
                f"download or build; counted), {mem.mapped_cold_bytes / 2**20:.0f} MiB when they were dropped (the "
                "interval reaches down to that)"
            )
    if use_measurements and choice.role == "host" and run_as == precision:
        measured = cal.measured.get((spec.id, precision))
        if measured:
            decode, prefill = _measured_overrides(measured, context_tokens, prompt_tokens, decode, prefill)

    tps = Estimate(1.0 / decode.value, 1.0 / decode.high, 1.0 / decode.low, decode.basis)
    power = Estimate(device.load_power_w, min(device.idle_power_w, device.load_power_w),
                     max(device.max_power_w, device.load_power_w), Basis.SPEC)  # fmt: skip
    energy = Estimate(power.value * decode.value, power.low * decode.low, power.high * decode.high, Basis.SPEC)
    warnings = list(cal.warnings) + list(model.warnings)
    if not fits_in_memory(mem_total.value, device.usable_ram_bytes):
        warnings.append(
            f"needs {mem_total.value / 2**30:.2f} GiB, more than the {device.usable_ram_bytes / 2**30:.2f} GiB "
            f"usable on {device.id}"
        )
    bound = "memory" if dec.memory_bound_share >= 0.5 else "compute"
    calib: dict[str, float | str] = {
        "host_fingerprint": cal.host_fingerprint,
        "table_host_fingerprint": model.table.host.host_fingerprint,
        "table_host_id": model.table.host.host_id,
        "table_role": choice.role,
        "calibration_precision": run_as,
        "regime": regime,
        "table_noise_rel": model.noise_rel,
        "decode_fixed_s": dec.fixed_s,
        "decode_memory_s": dec.memory_s,
        "decode_compute_s": dec.compute_s,
        "decode_linear_s": dec.by_kind.get("linear", 0.0),
        "decode_attention_s": dec.by_kind.get("gqa", 0.0),
        "memory_model": mc.source,
        "memory_weight_factor": mc.rss_weight_factor,
        "translation_memory": tr.memory,
        "translation_fp32": tr.fp32,
        "translation_int8": tr.int8,
        "translation_overhead": tr.overhead,
        "translation_kv_memory": tr.kv_memory,
        **figures,
    }
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
            weights_bytes=mem.weights_bytes + mem.mapped_embedding_bytes,  # rows read through the mapping count
            kv_cache_bytes=mem.kv_cache_bytes,
            activations_bytes=max(
                mem.activations_bytes, mem.load_transient_bytes - mem.kv_cache_bytes - mem.mapped_embedding_bytes, 0
            ),
            runtime_bytes=mem.runtime_bytes,
            total=mem_total,
            usable_ram_bytes=device.usable_ram_bytes,
        ),
        power_w=power,
        energy_per_token_j=energy,
        bound=bound,
        calibration=calib,
        notes=tuple(dict.fromkeys(notes)),
        warnings=tuple(dict.fromkeys(warnings)),
    )


def _measured_overrides(
    vals: Mapping[str, float], context: int, prompt: int, decode: Estimate, prefill: Estimate
) -> tuple[Estimate, Estimate]:
    """This exact model and precision was measured here: quote the measurement where the workload matches."""
    if f"decode@{context}" in vals:
        decode = _est(vals[f"decode@{context}"], FIT_FLOOR, FIT_FLOOR, Basis.MEASURED)
    if f"prefill@{prompt}" in vals:
        prefill = _est(vals[f"prefill@{prompt}"], FIT_FLOOR, FIT_FLOOR, Basis.MEASURED)
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
    pchoice = accounting.choose_precision(precision, sorted({p for p, _ in calibration.host.gemv}))
    mc = calibration.memory_for(pchoice.calibration)
    usable = device.usable_ram_bytes

    def fits(ctx: int) -> bool:
        p = min(prompt_tokens, ctx) if ctx > 0 else prompt_tokens
        t = memory_terms(spec, mc, pchoice.bytes_precision, context_tokens=ctx, prompt_tokens=p,
                         on_host=calibration.is_host(device))  # fmt: skip
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
