"""Synthetic measurements from known physics: the fake seam for the prediction stage.

Tests (and the validate benchmark) build a ladder of Measurement objects whose times and RSS follow given
parameters exactly (optionally with noise and probe drift), then check that calibration recovers them. Nothing
here is ever stored as a measurement: ``model_hash`` is "synthetic" and ``timer`` says so.
"""

from __future__ import annotations

import random
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from edgefit.bench.measurement import Measurement, Phase
from edgefit.catalog import ModelSpec
from edgefit.predict import accounting
from edgefit.profiles import ComputeEngine, CpuCluster, DeviceProfile, Figure

_EST = {"estimated": True, "note": "synthetic"}


@dataclass(frozen=True, slots=True)
class Physics:
    """Ground truth for one precision. Decode: call + layer*L + weights/bandwidth (cache_speedup x faster per
    byte below knee_bytes of weights) + KV bytes/kv_bandwidth. Prefill: call + flops/flops_per_s (less efficient
    for short prompts). Peak RSS: base + k*(non-embedding weights) + embedding (+ its packed copy when tied
    float) + activations of the KV-fill prefill + KV cache."""

    bandwidth_bytes_per_s: float
    kv_bandwidth_bytes_per_s: float = 25e9  # attention streaming the KV cache
    call_s: float = 3e-4
    layer_s: float = 0.0
    cache_speedup: float = 1.0
    knee_bytes: float = 0.0
    prefill_flops_per_s: float = 1e11  # at a long prompt
    prefill_half_tokens: float = 16.0  # efficiency x P / (P + half)
    prefill_call_s: float = 2e-3
    rss_base_bytes: float = 50 * 2**20
    rss_k: float = 1.0


def ladder_specs(n: int = 6, *, start_hidden: int = 256) -> tuple[ModelSpec, ...]:
    """A geometric ladder of Llama-shaped specs (hidden x1.41 per rung, layers 4..)."""
    out = []
    for i in range(n):
        h = int(start_hidden * 1.41**i) // 256 * 256
        out.append(
            ModelSpec(
                id=f"synth-{i}",
                name=f"synthetic rung {i}",
                family="ladder",
                hidden_size=h,
                num_layers=4 + 2 * i,
                num_heads=h // 64,
                num_kv_heads=max(1, h // 256),
                head_dim=64,
                intermediate_size=h * 8 // 3 // 64 * 64,
                vocab_size=32000,
                tied_embeddings=False,
            )
        )
    return tuple(out)


def decode_seconds(spec: ModelSpec, precision: str, phys: Physics, context_tokens: int) -> float:
    read = accounting.read_bytes_per_token(spec, precision)
    kv = accounting.kv_bytes(spec, context_tokens)
    speed = phys.cache_speedup if read < phys.knee_bytes else 1.0
    weights_s = read / (phys.bandwidth_bytes_per_s * speed)
    return phys.call_s + phys.layer_s * spec.num_layers + weights_s + kv / phys.kv_bandwidth_bytes_per_s


def prefill_seconds(spec: ModelSpec, phys: Physics, prompt_tokens: int) -> float:
    flops = accounting.prompt_flops(spec, prompt_tokens)
    return phys.prefill_call_s + flops * (1 + phys.prefill_half_tokens / prompt_tokens) / phys.prefill_flops_per_s


def peak_rss_bytes(
    spec: ModelSpec, precision: str, phys: Physics, *, prompt_tokens: int = 128, depth: int = 512
) -> int:
    rest = accounting.weight_bytes(spec, precision) - accounting.embedding_bytes(spec)
    known = accounting.known_resident_bytes(spec, precision)
    run = accounting.activation_bytes(spec, precision, prompt_tokens=prompt_tokens, context_tokens=0)
    run += accounting.kv_bytes(spec, depth)
    return int(
        phys.rss_base_bytes + known + phys.rss_k * rest + max(run, accounting.load_transient_bytes(spec, precision))
    )


def measurements(
    specs: Sequence[ModelSpec],
    physics: dict[str, Physics],
    *,
    depths: Sequence[int] = (0, 128, 512),
    prompts: Sequence[int] = (16, 64, 128),
    noise_rel: float = 0.0,
    probes: Sequence[float] | None = None,
    reference_probe: float = 25e9,
    seed: int = 0,
    threads: int = 2,
) -> list[Measurement]:
    """Decode (at each depth) and prefill (at each prompt) Measurements for every spec x precision, the plan
    ``edgefit bench`` uses. With ``probes`` (cycled, one per decode measurement), each decode time is scaled by
    reference_probe / probe: a busier host (lower probe) is slower; prefill by the model's last decode probe."""
    rng = random.Random(seed)
    out: list[Measurement] = []
    k = 0
    for prec, phys in physics.items():
        for spec in specs:
            rss = peak_rss_bytes(spec, prec, phys, prompt_tokens=max(prompts), depth=max(depths))
            common = {
                "model_id": spec.id,
                "model_hash": "synthetic",
                "precision": prec,
                "threads": threads,
                "provider": "CPUExecutionProvider",
                "warmup_samples_s": (),
                "params": 0,
                "weight_file_bytes": accounting.weight_bytes(spec, prec),
                "weight_read_bytes_per_token": accounting.read_bytes_per_token(spec, prec),
                "peak_rss_bytes": rss,
                "steady_rss_bytes": rss,
                "load_s": 0.05 + accounting.weight_bytes(spec, prec) / 1e9,
                "stop_reason": "max_samples",
                "host_fingerprint": "synthetic-host",
                "timer": "synthetic",
                "layers": spec.num_layers,
                "hidden_size": spec.hidden_size,
            }
            seen: list[float] = []
            for depth in depths:
                probe = probes[k % len(probes)] if probes else None
                k += 1
                slow = reference_probe / probe if probe else 1.0
                if probe:
                    seen.append(probe)
                base = decode_seconds(spec, prec, phys, depth) * slow
                dec = tuple(base * (1 + rng.gauss(0, noise_rel)) for _ in range(9))
                out.append(
                    Measurement(
                        phase=Phase.DECODE, prompt_tokens=1, context_tokens=depth, samples_s=dec,
                        probe_bandwidth_bytes_per_s=probe, **common,  # type: ignore[arg-type]
                    )
                )  # fmt: skip
            model_slow = reference_probe / statistics.median(seen) if seen else 1.0
            for prompt in prompts:
                # a busy host slows prefill too; like `edgefit bench`, no probe is taken beside prefill
                pre_base = prefill_seconds(spec, phys, prompt) * model_slow
                pre = tuple(pre_base * (1 + rng.gauss(0, noise_rel)) for _ in range(5))
                out.append(
                    Measurement(
                        phase=Phase.PREFILL, prompt_tokens=prompt, context_tokens=0, samples_s=pre,
                        **common,  # type: ignore[arg-type]
                    )
                )  # fmt: skip
    return out


def device(
    id: str = "host",
    *,
    bandwidth_bytes_per_s: float = 25e9,
    measured_bandwidth_bytes_per_s: float | None = 25e9,
    gemm_flops_per_s: float | None = 150e9,
    peak_fp32_flops_per_s: float | None = None,
    cores: int = 2,
    clock_hz: float = 3.0e9,
    ram_bytes: float = 24 * 2**30,
    usable_ram_bytes: float | None = None,
    power_w: tuple[float, float, float] = (5.0, 20.0, 40.0),
    isa: str = "x86_64",
) -> DeviceProfile:
    """A DeviceProfile with the given figures (all marked estimated/synthetic)."""

    def fig(v: float, unit: str) -> Figure:
        return Figure(value=float(v), unit=unit, **_EST)  # type: ignore[arg-type]

    engine = ComputeEngine(
        kind="cpu",
        provider="CPUExecutionProvider",
        peak_fp32_flops_per_s=fig(peak_fp32_flops_per_s, "flops_per_s") if peak_fp32_flops_per_s else None,
        measured_fp32_flops_per_s=fig(gemm_flops_per_s, "flops_per_s") if gemm_flops_per_s else None,
    )
    return DeviceProfile(
        id=id,
        name=f"synthetic {id}",
        kind="host" if id == "host" else "sbc",
        cpu_model="synthetic",
        isa=isa,
        cpu_features=(),
        clusters=(CpuCluster("core", cores, fig(clock_hz, "hz")),),
        ram=fig(ram_bytes, "bytes"),
        usable_ram=fig(usable_ram_bytes if usable_ram_bytes is not None else ram_bytes * 0.9, "bytes"),
        memory_type="synthetic",
        bandwidth=fig(bandwidth_bytes_per_s, "bytes_per_s"),
        engines=(engine,),
        idle_power=fig(power_w[0], "w"),
        load_power=fig(power_w[1], "w"),
        max_power=fig(power_w[2], "w"),
        measured_bandwidth=fig(measured_bandwidth_bytes_per_s, "bytes_per_s")
        if measured_bandwidth_bytes_per_s
        else None,
    )


@dataclass(frozen=True, slots=True)
class KernelPhysics:
    """Ground truth for a synthetic kernel table: each node costs a fixed ``node_s`` plus the larger of its
    memory time (bytes / ``bandwidth``) and its compute time (MACs / the rate of its class); a session run
    costs ``run_s``. Cold runs read weights from DRAM; warm runs ``cache_speedup`` x faster per byte."""

    bandwidth_bytes_per_s: float = 22e9
    triad_bytes_per_s: float = 20e9
    fp32_macs_per_s: float = 75e9
    int8_macs_per_s: float = 150e9
    int4_gemv_macs_per_s: float = 12e9  # MatMulNBits 4-bit unpacking at M = 1 (compute-bound on 2 cores)
    int8_gemv_macs_per_s: float = 20e9
    node_s: float = 5e-6
    run_s: float = 2e-5
    cache_speedup: float = 1.4


def _chain_seconds(spec: Any, phys: KernelPhysics, cold: bool) -> float:
    from edgefit.kernels.table import gqa_features

    s = spec
    bw = phys.bandwidth_bytes_per_s * (1.0 if cold else phys.cache_speedup)
    if s.kind == "linear":
        macs = s.m * s.k * s.n
        if s.m == 1:
            rate = {"fp32": phys.fp32_macs_per_s, "int8": phys.int8_gemv_macs_per_s,
                    "int4": phys.int4_gemv_macs_per_s}[s.precision]  # fmt: skip
        else:
            rate = phys.fp32_macs_per_s if s.precision == "fp32" else phys.int8_macs_per_s
        node = phys.node_s + max(s.weight_bytes_per_node() / bw, macs / rate)
    elif s.kind == "gqa":
        x = gqa_features(s=s.m, past=s.past, heads=s.heads, kv_heads=s.kv_heads, head_dim=s.head_dim)
        node = phys.node_s + x["kv_bytes"] / bw + x["macs"] / phys.fp32_macs_per_s
    elif s.kind in ("rotary", "norm", "eltwise", "mul"):
        elements = s.m * (s.heads * s.head_dim if s.kind == "rotary" else s.k)
        node = phys.node_s + elements * 8 / (bw * 4)
    elif s.kind == "tiny":
        node = phys.node_s / 5
    else:
        node = 0.0
    return phys.run_s + node * s.nodes


def kernel_table(
    phys: KernelPhysics | None = None,
    *,
    host_fingerprint: str = "synthetic-host",
    host_id: str = "host",
    isa: str = "x86_64",
    cores: int = 2,
    clock_hz: float = 3.0e9,
    llc_bytes: int = 32 * 2**20,
    rounds: int = 8,
    noise_rel: float = 0.0,
    seed: int = 0,
) -> Any:
    """A KernelTable of the default plan whose samples follow ``phys`` exactly (times x (1 + |noise|): noise only
    ever adds time, as interference does)."""
    from edgefit.kernels.plan import default_plan
    from edgefit.kernels.table import HostFacts, KernelSamples, KernelTable

    phys = phys or KernelPhysics()
    rng = random.Random(seed)
    plan = default_plan(64 * 2**30)

    def samples(t: float) -> tuple[float, ...]:
        return tuple(t * (1.0 + abs(rng.gauss(0.0, noise_rel))) for _ in range(rounds))

    kernels = tuple(
        KernelSamples(k, samples(_chain_seconds(k, phys, True)), samples(_chain_seconds(k, phys, False)))
        for k in plan.kernels
    )
    return KernelTable(
        host=HostFacts(host_fingerprint, host_id, "synthetic", isa, cores, clock_hz, llc_bytes, "synthetic"),
        threads=cores,
        rounds=rounds,
        kernels=kernels,
        triad_bytes_per_s=samples(phys.triad_bytes_per_s),
        runtime_rss_bytes=60 * 2**20,
        measured_at="2026-01-01T00:00:00Z",
        seconds=1.0,
    )


def op_seconds(op: Any, phys: KernelPhysics, cold: bool) -> float:
    """Ground-truth seconds of ONE node of ``op`` (an ``edgefit.kernels.ops.Op``) under ``phys``: the same
    physics as the synthetic kernel table's chains."""
    from edgefit.kernels.spec import KernelSpec

    if op.kind == "linear":
        spec = KernelSpec("linear", 1, precision=op.precision, m=op.m, k=op.k, n=op.n)
    elif op.kind == "gqa":
        spec = KernelSpec("gqa", 1, m=op.m, heads=op.heads, kv_heads=op.kv_heads, head_dim=op.head_dim, past=op.past)
    elif op.kind == "tiny":
        spec = KernelSpec("tiny", 1)
    else:  # rotary | norm | eltwise | mul: elements touched
        spec = KernelSpec("eltwise", 1, m=1, k=max(int(op.elements), 1))
    return _chain_seconds(spec, phys, cold) - phys.run_s


def model_call_seconds(
    spec: ModelSpec, precision: str, phys: KernelPhysics, *, tokens: int, past: int, llc_bytes: int = 32 * 2**20
) -> float:
    """Ground truth for one session run of a decoder: its ops (as onnxruntime runs them) under ``phys``; weights
    stay in the last-level cache up to half its size, none from its size on, partly between (log-linear, as a
    32 MB L3 held a 19.5 MB model on the project's VM)."""
    import math

    from edgefit.kernels.ops import decoder_ops

    b = accounting.read_bytes_per_token(spec, precision)
    lo, hi = llc_bytes * 0.5, float(llc_bytes)
    warm = 1.0 if b <= lo else 0.0 if b >= hi else math.log(hi / b) / math.log(hi / lo)
    ops = decoder_ops(spec, precision, tokens=tokens, past=past)
    cold_s = sum(op.count * op_seconds(op, phys, True) for op in ops)
    warm_s = sum(op.count * op_seconds(op, phys, False) for op in ops)
    return phys.run_s + warm * warm_s + (1.0 - warm) * cold_s


def kernel_measurements(
    specs: Sequence[ModelSpec],
    precisions: Sequence[str],
    phys: KernelPhysics,
    *,
    depths: Sequence[int] = (0, 128, 512),
    prompts: Sequence[int] = (16, 64, 128),
    noise_rel: float = 0.0,
    slow: float = 1.0,
    rss_k: float = 1.0,
    seed: int = 0,
    threads: int = 2,
) -> list[Measurement]:
    """Decode and prefill Measurements whose times follow ``phys`` through the models' ops (x ``slow``: a host
    busier than when its table was measured), peak RSS following ``peak_rss_bytes`` with ``rss_k``."""
    rng = random.Random(seed)
    rss_phys = Physics(1.0, rss_k=rss_k)
    out: list[Measurement] = []
    for prec in precisions:
        for spec in specs:
            rss = peak_rss_bytes(spec, prec, rss_phys, prompt_tokens=max(prompts), depth=max(depths))
            common: dict[str, Any] = {
                "model_id": spec.id, "model_hash": "synthetic", "precision": prec, "threads": threads,
                "provider": "CPUExecutionProvider", "warmup_samples_s": (), "params": 0,
                "weight_file_bytes": accounting.weight_bytes(spec, prec),
                "weight_read_bytes_per_token": accounting.read_bytes_per_token(spec, prec),
                "peak_rss_bytes": rss, "steady_rss_bytes": rss, "load_s": 0.1, "stop_reason": "max_samples",
                "host_fingerprint": "synthetic-host", "timer": "synthetic", "layers": spec.num_layers,
                "hidden_size": spec.hidden_size,
            }  # fmt: skip
            for depth in depths:
                t = model_call_seconds(spec, prec, phys, tokens=1, past=depth) * slow
                dec = tuple(t * (1 + abs(rng.gauss(0, noise_rel))) for _ in range(9))
                out.append(Measurement(phase=Phase.DECODE, prompt_tokens=1, context_tokens=depth, samples_s=dec,
                                       **common))  # fmt: skip
            for prompt in prompts:
                t = model_call_seconds(spec, prec, phys, tokens=prompt, past=0) * slow
                pre = tuple(t * (1 + abs(rng.gauss(0, noise_rel))) for _ in range(5))
                out.append(Measurement(phase=Phase.PREFILL, prompt_tokens=prompt, context_tokens=0, samples_s=pre,
                                       **common))  # fmt: skip
    return out
