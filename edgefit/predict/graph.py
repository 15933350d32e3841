"""Any user ONNX graph on any device: its nodes as onnxruntime runs them, each timed on this host on the fly
(``edgefit.graphs``), split into parts and translated to the device.

    node sum      = one session run + sum over nodes (count x single-node time, measured here)
    composition   = the whole file's back-to-back time / the node sum, both measured here in the same rounds
                    (a graph pays per node what single nodes timed alone do not show); host latency = the whole
                    file as measured; a device's = its translated node sum x composition
    per node on the host: fixed    = one no-work node's dispatch (measured in the same rounds)
                          memory   = (weights + activations in and out) / the host's STREAM triad rate
                          compute  = the rest (when the node ran at memory speed the rest is not observable:
                                     taken as UNOBSERVED_COMPUTE_SHARE of it; decoder kernels use their
                                     class's GEMM rate instead, which graph nodes of arbitrary ops lack)
    on a device:  node' = fixed x overhead + max(memory x memory ratio, compute x fp32 ratio (int8 ratio for
                  integer-dot-product ops))       ratios from ``translate.translation`` (bandwidth, GEMM, clock)
    memory        = runtime (the kernel table's empty-session RSS) + weights as loaded (the optimized graph's
                    initializers) + activations (peak of live intermediate tensors in execution order, or the RSS
                    growth of the first runs when more)
    energy        = the profile's load power x latency (spec)

Basis: the host figure is ``measured`` (the whole file, timed with its nodes; ``extrapolated`` from the node sum
for profiles without it); another device's is ``spec``; its interval adds the device's datasheet uncertainties as
``translate.predict`` does and half the composition ratio's own size (log), so a graph far from its node sum
carries a wider interval.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from edgefit.graphs.profile import GraphProfile, NodeCost
from edgefit.predict.calibration import Calibration
from edgefit.predict.memfit import fits_in_memory
from edgefit.predict.prediction import Basis, Estimate
from edgefit.predict.price import IDENTITY, MEMORY_BOUND_MARGIN, UNOBSERVED_COMPUTE_SHARE, Translation
from edgefit.predict.translate import FIT_FLOOR, device_uncertainty, translation
from edgefit.profiles import DeviceProfile

# Without a whole-file timing, a graph is the sum of its nodes timed alone: the sum came out low for all six real
# models of the back-test (benchmarks/graph_backtest.py: 6-27 % under the whole file's fastest run), so the interval
# reaches further up.
GRAPH_COMPOSITION_LOW = 0.10
GRAPH_COMPOSITION_HIGH = 0.30
COMPOSITION_PLAUSIBLE = (0.7, 3.0)  # whole file / sum of its nodes timed alone
COMPOSITION_FLOOR = 0.05
MEMORY_REL = 0.15  # arena from tensor lifetimes vs onnxruntime's allocator (it rounds, keeps freed blocks)


@dataclass(frozen=True, slots=True)
class NodePrice:
    op: str
    count: int
    shapes: str
    host_s: float  # per node, measured here (single-node session)
    target_s: float  # per node on the device
    fixed_s: float
    memory_s: float
    compute_s: float  # on the device
    bound: str  # memory | compute | dispatch


@dataclass(frozen=True, slots=True)
class GraphMemory:
    weights_bytes: int
    arena_bytes: int
    runtime_bytes: int
    total: Estimate
    usable_ram_bytes: int

    @property
    def fits(self) -> bool:
        return fits_in_memory(self.total.value, self.usable_ram_bytes)


@dataclass(frozen=True, slots=True)
class GraphPrediction:
    model_id: str
    device_id: str
    threads: int
    inputs: tuple[str, ...]
    latency_s: Estimate  # per inference
    throughput_per_s: Estimate  # inferences per second at batch 1
    memory: GraphMemory
    power_w: Estimate
    energy_per_inference_j: Estimate
    bound: str  # memory | compute | dispatch: what most of the time is
    nodes: tuple[NodePrice, ...]  # every distinct node, slowest (count x time) first
    measured_on_the_fly: tuple[str, ...]  # op types timed here in single-node sessions
    calibration: dict[str, float | str] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()


def split_node(node: NodeCost, dispatch_s: float, stream_bytes_per_s: float) -> tuple[float, float, float]:
    """(fixed, memory, compute) seconds of one node on the host (see module docstring)."""
    t = node.host_s
    fixed = min(dispatch_s, t)
    rest = t - fixed
    mem = node.bytes / stream_bytes_per_s if stream_bytes_per_s > 0 else 0.0
    if rest <= mem * MEMORY_BOUND_MARGIN:
        return fixed, rest, rest * UNOBSERVED_COMPUTE_SHARE
    return fixed, mem, rest


def price_node(node: NodeCost, dispatch_s: float, stream_bytes_per_s: float, tr: Translation) -> NodePrice:
    fixed, mem, comp = split_node(node, dispatch_s, stream_bytes_per_s)
    if tr.identity:
        f2, m2, c2, t = fixed, mem, comp, node.host_s
    else:
        f2, m2 = fixed * tr.overhead, mem * tr.kv_memory  # its memory part is bytes / the triad: x triad / bw
        c2 = comp * (tr.int8 if node.integer else tr.fp32)
        t = f2 + max(m2, c2)
    bound = "dispatch" if f2 >= max(m2, c2) else ("memory" if m2 >= c2 else "compute")
    return NodePrice(node.op, node.count, node.shapes, node.host_s, t, f2, m2, c2, bound)


def composition(profile: GraphProfile) -> tuple[float, str]:
    """(ratio, note): the whole file's back-to-back time over the sum of its nodes timed alone, both measured here
    in the same rounds. A graph pays per node what single-node sessions do not show (its intermediates allocated
    and freed, caches shared with the neighbours): measured on the back-test's six real models here, the sum came
    out 10-54 % under the file. Another device's node sum is scaled by the same ratio; one outside
    ``COMPOSITION_PLAUSIBLE`` is reported and not used (1.0, with the wider fixed interval)."""
    whole = profile.whole_back_to_back_s
    if whole is None or profile.host_s <= 0:
        return (
            1.0,
            "the whole file was not timed with its nodes: latency is the nodes' sum (interval 10 % down, 30 % up)",
        )
    ratio = whole / profile.host_s
    lo, hi = COMPOSITION_PLAUSIBLE
    text = (
        f"the whole file ran {whole * 1e3:.3g} ms here back to back; its nodes timed alone sum to "
        f"{profile.host_s * 1e3:.3g} ms (ratio {ratio:.2f}, measured in the same rounds)"
    )
    if not lo <= ratio <= hi:
        return 1.0, f"{text}: outside the plausible {lo}-{hi}, not used; latency is the nodes' sum"
    return ratio, f"{text}: a device's latency is its translated node sum x {ratio:.2f}"


def _est(value: float, rel_low: float, rel_high: float, basis: Basis) -> Estimate:
    low = value * (1.0 - min(rel_low, 0.6))
    return Estimate(value, min(low, value), max(value * (1.0 + rel_high), value), basis)


def _quad(*parts: float) -> float:
    return math.sqrt(sum(p * p for p in parts))


def predict_graph(
    profile: GraphProfile, device: DeviceProfile, cal: Calibration, *, threads: int | None = None
) -> GraphPrediction:
    """Predict one inference of ``profile``'s graph on ``device`` (this host's node times, translated)."""
    model = cal.host  # the nodes were timed on this host: its table's figures are the source side
    notes: list[str] = []
    figures: dict[str, float] = {}
    on_host = cal.is_host(device)
    if on_host:
        tr = IDENTITY
    else:
        tr, figures = translation(model, device, notes)
    n_threads = max(1, min(threads or device.cpu_cores, device.cpu_cores))
    if not on_host and n_threads < device.cpu_cores:
        share = device.cpu_cores / n_threads
        tr = Translation(tr.memory, tr.fp32 * share, tr.int8 * share, tr.overhead, kv_memory=tr.kv_memory)
    if on_host and n_threads != profile.threads:
        notes.append(f"nodes timed at {profile.threads} threads; --threads {n_threads} ignored on this host")
        n_threads = profile.threads
    stream = model.triad_bytes_per_s
    priced = [price_node(n, profile.dispatch_s, stream, tr) for n in profile.nodes]
    run_s = profile.run_s * (1.0 if tr.identity else tr.overhead)
    node_sum = run_s + sum(p.count * p.target_s for p in priced)
    ratio, comp_note = composition(profile)
    notes.append(comp_note)
    total = node_sum * ratio
    by_bound = {b: sum(p.count * p.target_s for p in priced if p.bound == b) for b in ("memory", "compute", "dispatch")}
    bound = max(by_bound, key=lambda b: by_bound[b])

    whole = profile.whole_back_to_back_s
    if ratio != 1.0 or whole is None:  # no whole-file timing (or an implausible one): the sum alone, wider
        comp_low, comp_high = GRAPH_COMPOSITION_LOW, GRAPH_COMPOSITION_HIGH
    else:  # the ratio carries to another device as measured here: half its own size either way
        comp_low = comp_high = max(COMPOSITION_FLOOR, 0.5 * abs(math.log(ratio)))
    fast = _quad(FIT_FLOOR, profile.noise_rel, model.noise_rel, comp_low)
    slow = _quad(FIT_FLOOR, profile.noise_rel, model.noise_rel, comp_high)
    if on_host and whole is not None and tr.identity:
        basis = Basis.MEASURED  # the file itself, timed here in the same rounds as its nodes
        total = whole
        fast = slow = _quad(FIT_FLOOR, profile.noise_rel)
    elif on_host:
        basis = Basis.EXTRAPOLATED
    else:
        basis = Basis.SPEC
        mem_share = by_bound["memory"] / total if total > 0 else 0.0
        dev_slow, dev_fast, _ = device_uncertainty(figures, device, model, mem_share, notes, timed="nodes timed")
        slow, fast = _quad(slow, dev_slow), _quad(fast, dev_fast)
    latency = _est(total, fast, slow, basis)
    rate = Estimate(1.0 / latency.value, 1.0 / latency.high, 1.0 / latency.low, basis)
    runtime = int(model.table.runtime_rss_bytes)
    # weights: the optimized graph's initializers (loading the file also grows RSS by onnxruntime's own session
    # structures, which the runtime term already holds: silero-vad's 1.2 MiB of weights grew RSS by 16 MiB);
    # activations: the lifetime peak, or the RSS growth of the first runs when more (onnxruntime keeps freed
    # arena blocks and adds kernel workspaces, e.g. im2col buffers, that no tensor shows: PP-OCRv4 det 44 vs 115 MiB)
    weights = profile.weights_bytes
    activations = max(profile.arena_bytes, profile.run_rss_bytes)
    notes.append(
        f"memory: weights {profile.weights_bytes / 2**20:.1f} MiB (the optimized graph's initializers); activations "
        f"{profile.arena_bytes / 2**20:.1f} MiB at the peak of live tensors, {profile.run_rss_bytes / 2**20:.1f} MiB "
        "of RSS growth measured over the first runs here (the larger counts)"
    )
    mem_total = weights + activations + runtime
    mem_basis = Basis.EXTRAPOLATED if on_host else Basis.SPEC
    memory = GraphMemory(
        weights,
        activations,
        runtime,
        _est(float(mem_total), MEMORY_REL, MEMORY_REL, mem_basis),
        device.usable_ram_bytes,
    )
    power = Estimate(
        device.load_power_w,
        min(device.idle_power_w, device.load_power_w),
        max(device.max_power_w, device.load_power_w),
        Basis.SPEC,
    )
    energy = Estimate(power.value * latency.value, power.low * latency.low, power.high * latency.high, Basis.SPEC)
    warnings = list(model.warnings)
    if not memory.fits:
        warnings.append(
            f"needs {mem_total / 2**20:.0f} MiB, more than the {device.usable_ram_bytes / 2**20:.0f} MiB usable on "
            f"{device.id}"
        )
    notes.extend(profile.notes)
    calib: dict[str, float | str] = {
        "host_fingerprint": cal.host_fingerprint,
        "table_host_id": model.table.host.host_id,
        "host_latency_s": profile.host_s,
        "host_whole_file_s": whole if whole is not None else math.nan,
        "composition_ratio": ratio,
        "run_s": profile.run_s,
        "dispatch_s": profile.dispatch_s,
        "host_triad_bytes_per_s": stream,
        "node_rounds": float(profile.rounds),
        "node_noise_rel": profile.noise_rel,
        "table_noise_rel": model.noise_rel,
        "translation_memory": tr.kv_memory,
        "translation_fp32": tr.fp32,
        "translation_int8": tr.int8,
        "translation_overhead": tr.overhead,
        **figures,
    }
    ordered = tuple(sorted(priced, key=lambda p: -p.count * p.target_s))
    return GraphPrediction(
        model_id=profile.model_id,
        device_id=device.id,
        threads=n_threads,
        inputs=profile.inputs,
        latency_s=latency,
        throughput_per_s=rate,
        memory=memory,
        power_w=power,
        energy_per_inference_j=energy,
        bound=bound,
        nodes=ordered,
        measured_on_the_fly=tuple(sorted({n.op for n in profile.nodes})),
        calibration=calib,
        notes=tuple(dict.fromkeys(notes)),
        warnings=tuple(dict.fromkeys(warnings)),
    )


def graph_prediction_to_dict(p: GraphPrediction) -> dict[str, object]:
    """JSON-able, base SI units, every figure with its basis and interval (`predict --model FILE.onnx --json`)."""

    def est(e: Estimate) -> dict[str, float | str]:
        return {"value": e.value, "low": e.low, "high": e.high, "basis": e.basis.value}

    m = p.memory
    return {
        "model_id": p.model_id,
        "device_id": p.device_id,
        "threads": p.threads,
        "inputs": list(p.inputs),
        "latency_s_per_inference": est(p.latency_s),
        "throughput_inferences_per_s": est(p.throughput_per_s),
        "memory": {
            "weights_bytes": m.weights_bytes,
            "activations_bytes": m.arena_bytes,
            "runtime_bytes": m.runtime_bytes,
            "total_bytes": est(m.total),
            "usable_ram_bytes": m.usable_ram_bytes,
        },
        "fits_in_memory": m.fits,
        "power_w": est(p.power_w),
        "energy_per_inference_j": est(p.energy_per_inference_j),
        "bound": p.bound,
        "nodes": [
            {
                "op": n.op,
                "count": n.count,
                "shapes": n.shapes,
                "host_s": n.host_s,
                "target_s": n.target_s,
                "fixed_s": n.fixed_s,
                "memory_s": n.memory_s,
                "compute_s": n.compute_s,
                "bound": n.bound,
                "host_basis": "measured",
            }
            for n in p.nodes
        ],
        "measured_on_the_fly": list(p.measured_on_the_fly),
        "calibration": dict(p.calibration),
        "notes": list(p.notes),
        "warnings": list(p.warnings),
    }
