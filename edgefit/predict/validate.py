"""The self-check: predict from the kernel table what whole models measured here, none of which it was fitted on.

    (a) kernel level:  every GEMV chain of the table predicted from the curve of its class without it
                       (leave-one-out interpolation error)
    (b) ladder rungs:  decode, prefill and peak RSS of every measured rung (peak RSS is in-sample: the memory
                       model is fitted on the rungs)
    (c) held out:      catalog architectures not in the ladder (qwen2.5-0.5b, tinyllama-1.1b) and randomly
                       generated ones (width, depth, heads, kv heads, head_dim, MLP width, vocab, tied, biases,
                       4 norms), built and measured in the same run as the ladder

    (d) interleaved:   the same built files timed twice per round among the chains of a kernel table measured right
                       after them (``KernelTable.calls``), each priced with that table: model and kernels meet the
                       same drift, so this isolates the pricing (a whole model vs the sum of its kernels) from the
                       host's drift between a calibration and a benchmark minutes apart, which (b) and (c) include

Every (b)/(c) comparison is ``predicted / measured - 1`` against the median of the measurement's raw samples (what
a user sees); ``error_low_rel`` compares with the 10th percentile instead (the kernel table's estimator targets the
undisturbed cost). (d) compares with the lower quartile of the call's rounds, the estimator the table's chains use
(``measured_median`` keeps the median), taking in each round the call's second run, as `edgefit bench` repeats a call
back to back (the first runs after the chains evicted the weights: a model that fits the last-level cache was 1.7x
slower then). The result is a plain dict for ``Store.save_validation`` so reports can quote it.
"""

from __future__ import annotations

import math
import random
import statistics
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgefit import catalog
from edgefit.bench.measurement import Measurement, Phase
from edgefit.catalog import ModelSpec
from edgefit.errors import PredictError
from edgefit.kernels.table import CallSamples, Curve, KernelModel, estimate
from edgefit.predict import accounting
from edgefit.predict.calibration import Calibration
from edgefit.predict.translate import predict
from edgefit.profiles import DeviceProfile

if TYPE_CHECKING:
    from edgefit.kernels.calibrate import ModelCall

TARGETS: dict[str, tuple[float, float]] = {  # held-out architectures: median |error| / none beyond (issue 10)
    "decode": (0.10, 0.20),
    "peak_rss": (0.10, 0.20),
    "prefill": (0.15, 0.30),
}
DEFAULT_HELD_OUT = ("qwen2.5-0.5b", "tinyllama-1.1b")
DEFAULT_PRECISIONS = ("fp32", "int4")
DEFAULT_RANDOM = 3


@dataclass(frozen=True, slots=True)
class Comparison:
    kind: str  # "rung" | "held_out" | "random"
    model_id: str
    precision: str
    figure: str  # decode | prefill | peak_rss
    workload_tokens: int  # decode: KV depth; prefill: prompt length; peak_rss: 0
    predicted: float  # s or bytes
    low: float
    high: float
    measured: float  # median of the raw samples (peak RSS: the highest)
    measured_low: float  # 10th percentile of the raw samples
    error_rel: float  # predicted / measured - 1
    error_low_rel: float  # predicted / measured_low - 1
    timing: str = "bench"  # "bench": measured by the benchmarker; "interleaved": in the kernel table's rounds
    measured_median: float | None = None  # interleaved: the median of the call's rounds

    @property
    def within_interval(self) -> bool:
        return self.low <= self.measured <= self.high


@dataclass(frozen=True, slots=True)
class ValidationResult:
    comparisons: tuple[Comparison, ...]
    kernel_errors: Mapping[str, Mapping[str, float]]  # class -> n, median/max |leave-one-out error|
    held_out_models: tuple[str, ...]
    run_ids: tuple[str, ...]
    created_at: str
    table_noise_rel: float
    notes: tuple[str, ...] = ()
    summary: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": 2,
            "created_at": self.created_at,
            "run_ids": list(self.run_ids),
            "table_noise_rel": self.table_noise_rel,
            "held_out_models": list(self.held_out_models),
            "kernel_errors": {k: dict(v) for k, v in self.kernel_errors.items()},
            "summary": dict(self.summary),
            "comparisons": [asdict(c) | {"within_interval": c.within_interval} for c in self.comparisons],
            "notes": list(self.notes),
        }


def _q(samples: Sequence[float], q: float) -> float:
    xs = sorted(samples)
    return float(xs[min(len(xs) - 1, int(q * (len(xs) - 1) + 0.5))])


def _cmp(kind: str, m: Measurement, figure: str, tokens: int, est: Any, meas: float, low: float) -> Comparison:
    return Comparison(
        kind=kind, model_id=m.model_id, precision=m.precision, figure=figure, workload_tokens=tokens,
        predicted=est.value, low=est.low, high=est.high, measured=meas, measured_low=low,
        error_rel=est.value / meas - 1.0 if meas > 0 else math.nan,
        error_low_rel=est.value / low - 1.0 if low > 0 else math.nan,
    )  # fmt: skip


def compare(
    kind: str,
    measurements: Sequence[Measurement],
    calibration: Calibration,
    host: DeviceProfile,
    specs: Mapping[str, ModelSpec],
) -> list[Comparison]:
    """Predict every decode/prefill measurement (and each model's peak RSS) on the host, without quoting them."""
    out: list[Comparison] = []
    peaks: dict[tuple[str, str], list[Measurement]] = {}
    for m in measurements:
        spec = specs.get(m.model_id)
        if spec is None or m.precision not in ("fp32", "int8", "int4") or not m.samples_s:
            continue
        if m.peak_rss_bytes:
            peaks.setdefault((m.model_id, m.precision), []).append(m)
        med, low = float(statistics.median(m.samples_s)), _q(m.samples_s, 0.1)
        if m.phase == Phase.DECODE:
            p = predict(spec, m.precision, host, calibration, context_tokens=m.context_tokens, prompt_tokens=0,
                        threads=m.threads, use_measurements=False)  # fmt: skip
            out.append(_cmp(kind, m, "decode", m.context_tokens, p.decode_s_per_token, med, low))
        elif m.phase == Phase.PREFILL and m.prompt_tokens > 0:
            p = predict(spec, m.precision, host, calibration, context_tokens=0, prompt_tokens=m.prompt_tokens,
                        threads=m.threads, use_measurements=False)  # fmt: skip
            out.append(_cmp(kind, m, "prefill", m.prompt_tokens, p.prefill_s, med, low))
    for (mid, prec), ms in sorted(peaks.items()):
        depth = max(m.context_tokens for m in ms)
        prompt = max((m.prompt_tokens for m in ms if m.phase == Phase.PREFILL), default=1)
        # the ladder's benchmark fills deeper caches with noise: only its prompts went through the embedding
        p = predict(specs[mid], prec, host, calibration, context_tokens=depth, prompt_tokens=prompt,
                    use_measurements=False, embedded_tokens=prompt)  # fmt: skip
        peak = float(max(m.peak_rss_bytes or 0 for m in ms))
        out.append(_cmp(kind, ms[0], "peak_rss", 0, p.memory.total, peak, peak))
    return out


def compare_calls(
    calls: Sequence[CallSamples],
    calibration: Calibration,
    host: DeviceProfile,
    specs: Mapping[str, ModelSpec],
    kind_of: Callable[[str], str],
) -> list[Comparison]:
    """Whole-model calls timed in the rounds of ``calibration``'s own table, predicted from that table: decode
    (1 token on a cache of ``past``) and prefill (``tokens`` on an empty cache)."""
    out: list[Comparison] = []
    for c in calls:
        spec = specs.get(c.model_id)
        if spec is None or not c.samples_s:
            continue
        runs = c.compared_s
        q25, low, med = estimate(runs), _q(runs, 0.1), float(statistics.median(runs))
        if c.tokens == 1:
            p = predict(spec, c.precision, host, calibration, context_tokens=c.past, prompt_tokens=0,
                        use_measurements=False)  # fmt: skip
            figure, tokens, est = "decode", c.past, p.decode_s_per_token
        else:
            p = predict(spec, c.precision, host, calibration, context_tokens=0, prompt_tokens=c.tokens,
                        use_measurements=False)  # fmt: skip
            figure, tokens, est = "prefill", c.tokens, p.prefill_s
        out.append(
            Comparison(
                kind=kind_of(c.model_id),
                model_id=c.model_id,
                precision=c.precision,
                figure=figure,
                workload_tokens=tokens,
                predicted=est.value,
                low=est.low,
                high=est.high,
                measured=q25,
                measured_low=low,
                error_rel=est.value / q25 - 1.0,
                error_low_rel=est.value / low - 1.0,
                timing="interleaved",
                measured_median=med,
            )
        )
    return out


# the interleaved models' sessions stay within this share of available RAM (largest left out): with the chains'
# quarter (kernels.plan) and the lead's eighth (kernels.calibrate.default_lead_bytes), the worker holds 3/4 at most
CALLS_RAM_SHARE = 0.375
CALL_BYTES_PER_FILE_BYTE = (
    1.5  # a loaded session's RSS per byte of weights (prepacked copies, arena), measured ~1.1-1.4
)
CALL_ROUNDS = 40  # rounds the interleaved calls' budget aims at


def model_calls(
    measurements: Sequence[Measurement],
    specs: Mapping[str, ModelSpec],
    available_bytes: int,
    rungs: Iterable[str] = (),
) -> tuple[list[ModelCall], float, list[str]]:
    """The built files of ``measurements`` as calls for the kernel worker: decode at the shallowest and deepest
    measured cache, prefill at the longest measured prompt. Returns (calls, seconds one round of them takes,
    notes). Files no longer in the build cache are skipped; the largest are left out beyond ``CALLS_RAM_SHARE``
    of ``available_bytes``."""
    from edgefit.kernels.calibrate import ModelCall
    from edgefit.onnxbuild.build import default_path  # the builder's own cache paths

    rungs = set(rungs)
    by_model: dict[tuple[str, str], list[Measurement]] = {}
    for m in measurements:
        if m.model_id in specs and m.precision in ("fp32", "int8", "int4") and m.samples_s:
            by_model.setdefault((m.model_id, m.precision), []).append(m)
    notes: list[str] = []
    chosen: list[tuple[int, int, list[ModelCall], float]] = []
    for (mid, prec), ms in sorted(by_model.items()):
        path = default_path(specs[mid], prec, layers=None, seed=0)
        if not path.exists():
            notes.append(f"interleaved check: {mid} {prec} skipped (its built file is no longer in the cache)")
            continue
        calls: list[ModelCall] = []
        decode = sorted((m for m in ms if m.phase == Phase.DECODE), key=lambda m: m.context_tokens)
        for past in sorted({decode[0].context_tokens, decode[-1].context_tokens} if decode else set()):
            calls.append(ModelCall(mid, prec, 1, past, path))
        prefill = sorted(
            (m for m in ms if m.phase == Phase.PREFILL and m.prompt_tokens > 1), key=lambda m: m.prompt_tokens
        )
        if prefill:
            calls.append(ModelCall(mid, prec, prefill[-1].prompt_tokens, 0, path))
        # each call runs twice per round (first run, then the one compared)
        round_s = 2 * float(sum(statistics.median(m.samples_s) for m in decode[:1] + decode[-1:] + prefill[-1:]))
        rank = 1 if mid in rungs else 0  # held-out and random architectures first: the check is about them
        chosen.append((rank, max(m.weight_file_bytes for m in ms), calls, round_s))
    chosen.sort(key=lambda x: x[:2])
    kept: list[ModelCall] = []
    total_bytes, total_s, left = 0.0, 0.0, 0
    for _rank, size, calls, round_s in chosen:
        need = CALL_BYTES_PER_FILE_BYTE * size
        if total_bytes + need > CALLS_RAM_SHARE * available_bytes:
            left += 1
            continue
        total_bytes += need
        total_s += round_s
        kept += calls
    if left:
        notes.append(f"interleaved check: {left} model files left out (the largest) to stay within "
                     f"{CALLS_RAM_SHARE:.0%} of available RAM")  # fmt: skip
    return kept, total_s, notes


def bracket_drift(before: KernelModel, after: KernelModel) -> tuple[dict[str, float], str]:
    """How far the host moved between the kernel table measured just before the models and the one just after:
    after / before - 1 of the fp32 GEMV streaming rate and the fp32 and int8 GEMM rates (the rates a prediction
    rests on), and a sentence saying so. The benchmark's rows carry drift of this size; the interleaved rows do
    not (their model calls ran in the after table's own rounds)."""
    rates = {
        "fp32 GEMV streaming": (before.stream_bytes_per_s, after.stream_bytes_per_s),
        "fp32 GEMM": (before.fp32_gemm_macs_per_s, after.fp32_gemm_macs_per_s),
        "int8 GEMM": (before.int8_gemm_macs_per_s, after.int8_gemm_macs_per_s),
    }
    moved = {name: b / a - 1.0 for name, (a, b) in rates.items() if a > 0 and b > 0}
    if not moved:
        return {}, ""
    parts = ", ".join(f"{name} {100 * m:+.0f} %" for name, m in moved.items())
    return moved, (
        f"this host moved between the kernel tables just before and just after the models ({parts}): the "
        "benchmark's rows carry drift of this size, the interleaved rows do not"
    )


def kernel_errors(model: KernelModel) -> dict[str, dict[str, float]]:
    """Leave-one-out: each interior point of every GEMV/GEMM curve predicted from its neighbours."""
    out: dict[str, dict[str, float]] = {}
    curves = [(f"gemv/{p}/{r}", c) for (p, r), c in model.gemv.items() if r == "cold"]
    curves += [(f"gemm/{p}/m{m}", c) for (p, m), c in model.gemm.items()]
    for name, c in curves:
        errs = []
        for i in range(1, len(c.sizes) - 1):
            rest = Curve(c.sizes[:i] + c.sizes[i + 1 :], c.seconds[:i] + c.seconds[i + 1 :])
            errs.append(abs(rest(c.sizes[i]) / c.seconds[i] - 1.0))
        if errs:
            out[name] = {"n": float(len(errs)), "median_abs_error": statistics.median(errs), "max_abs_error": max(errs)}
    return out


def summarize(comparisons: Sequence[Comparison]) -> dict[str, Any]:
    """Per kind, figure and precision: n, median and max |error| (vs median and vs 10th percentile), share
    inside the interval, and for held-out and random architectures whether the issue's targets are met."""
    groups: dict[tuple[str, str, str, str], list[Comparison]] = {}
    for c in comparisons:
        groups.setdefault((c.timing, c.kind, c.figure, c.precision), []).append(c)
    out: dict[str, Any] = {}
    for (timing, kind, fig, prec), cs in sorted(groups.items()):
        errs = [abs(c.error_rel) for c in cs]
        entry: dict[str, Any] = {
            "n": len(cs),
            "median_abs_error": float(statistics.median(errs)),
            "max_abs_error": max(errs),
            "median_abs_error_low": float(statistics.median(abs(c.error_low_rel) for c in cs)),
            "median_error": float(statistics.median(c.error_rel for c in cs)),
            "within_interval": sum(c.within_interval for c in cs) / len(cs),
        }
        medians = [abs(c.predicted / c.measured_median - 1.0) for c in cs if c.measured_median]
        if medians:
            entry["median_abs_error_vs_median"] = float(statistics.median(medians))
        if kind in ("held_out", "random") and fig in TARGETS:
            med_t, max_t = TARGETS[fig]
            entry["target_median_abs_error"] = med_t
            entry["target_max_abs_error"] = max_t
            entry["meets_target"] = entry["median_abs_error"] <= med_t and entry["max_abs_error"] <= max_t
        out[f"interleaved/{kind}/{fig}/{prec}" if timing == "interleaved" else f"{kind}/{fig}/{prec}"] = entry
    return out


def validate(
    calibration: Calibration,
    host: DeviceProfile,
    *,
    ladder_measurements: Sequence[Measurement] = (),
    held_out_measurements: Sequence[Measurement] = (),
    specs: Mapping[str, ModelSpec] | None = None,
    run_ids: Sequence[str] = (),
    interleaved: Calibration | None = None,
) -> ValidationResult:
    """Compare the table's predictions with the ladder and held-out measurements, and ``interleaved``'s own
    table's calls with its predictions (see module docstring)."""
    if not ladder_measurements and not held_out_measurements:
        raise PredictError("nothing to validate: no measurements; run `edgefit validate` (it measures them)")
    ids = {m.model_id for m in (*ladder_measurements, *held_out_measurements)}
    spec_map = accounting.resolve_specs(ids, given=specs)
    comparisons = compare("rung", ladder_measurements, calibration, host, spec_map)
    held = [m for m in held_out_measurements if not m.model_id.startswith("random-")]
    rnd = [m for m in held_out_measurements if m.model_id.startswith("random-")]
    comparisons += compare("held_out", held, calibration, host, spec_map)
    comparisons += compare("random", rnd, calibration, host, spec_map)
    if interleaved is not None:
        rungs = {m.model_id for m in ladder_measurements}
        calls = interleaved.host.table.calls
        call_specs = accounting.resolve_specs({c.model_id for c in calls}, given={**spec_map, **(specs or {})})

        def kind_of(model_id: str) -> str:
            return "rung" if model_id in rungs else ("random" if model_id.startswith("random-") else "held_out")

        comparisons += compare_calls(calls, interleaved, host, call_specs, kind_of)
    notes = list(calibration.warnings) + list(calibration.host.warnings)
    if any(c.figure == "peak_rss" and c.kind == "rung" for c in comparisons):
        notes.append("peak RSS of the rungs is in-sample (the memory model is fitted on them)")
    return ValidationResult(
        comparisons=tuple(comparisons),
        kernel_errors=kernel_errors(calibration.host),
        held_out_models=tuple(sorted({m.model_id for m in held_out_measurements})),
        run_ids=tuple(run_ids),
        created_at=datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        table_noise_rel=calibration.host.noise_rel,
        notes=tuple(notes),
        summary=summarize(comparisons),
    )


def random_specs(n: int, seed: int, *, max_params: float = 6e8) -> tuple[ModelSpec, ...]:
    """``n`` Llama-family architectures drawn at random (reproducible from ``seed``), 50M-``max_params``
    parameters: head_dim 64/96/128, 4-24 query heads, kv heads any divisor, hidden = heads x head_dim or not,
    MLP 2-4x hidden, 4-28 layers, vocab 8k-100k, tied or not, q/k/v and MLP biases, 2 or 4 norms a layer."""
    rng = random.Random(seed)
    out: list[ModelSpec] = []
    tries = 0
    while len(out) < n and tries < 10_000:
        tries += 1
        hd = rng.choice((64, 64, 96, 128))
        heads = rng.randint(4, 24)
        kvh = rng.choice([d for d in range(1, heads + 1) if heads % d == 0])
        hidden = heads * hd if rng.random() < 0.75 else rng.randrange(512, 3073, 64)
        inter = int(hidden * rng.uniform(2.0, 4.0)) // 64 * 64
        layers = rng.randint(4, 28)
        spec = ModelSpec(
            id=f"random-{seed}-{len(out)}",
            name=f"random architecture {seed}/{len(out)}",
            family="random",
            hidden_size=hidden,
            num_layers=layers,
            num_heads=heads,
            num_kv_heads=kvh,
            head_dim=hd,
            intermediate_size=max(inter, 256),
            vocab_size=rng.randrange(8000, 100_001, 8),
            tied_embeddings=rng.random() < 0.5,
            attention_bias=rng.random() < 0.3,
            mlp_bias=rng.random() < 0.1,
            norms_per_layer=4 if rng.random() < 0.2 else 2,
            max_context=4096,
            notes="randomly generated held-out architecture (edgefit validate)",
        )
        if 5e7 <= catalog.param_counts(spec).total <= max_params:
            out.append(spec)
    return tuple(out)


@dataclass(frozen=True, slots=True)
class HeldOutRung:
    """What ``bench.run_ladder(rungs=...)`` needs: a spec and the precisions to measure it at."""

    spec: ModelSpec
    precisions: tuple[str, ...]


def measure_fresh(
    db: Path,
    *,
    models: Sequence[str] = DEFAULT_HELD_OUT,
    random_n: int = DEFAULT_RANDOM,
    seed: int | None = None,
    precisions: Sequence[str] = DEFAULT_PRECISIONS,
    threads: int | None = None,
    progress: bool = False,
    budget_s: float = 1.0,
    ladder: bool = True,
) -> tuple[list[Measurement], list[Measurement], dict[str, ModelSpec], list[str], list[str]]:
    """The quick ladder (when ``ladder``), the held-out catalog models and ``random_n`` random architectures in
    ONE benchmark run, ordered by size, with the benchmarker's worker. Returns (ladder, held-out, specs of the
    held-out ones, run ids, notes)."""
    import importlib

    from edgefit import bench

    rungs = list(importlib.import_module("edgefit.ladder").load_ladder("quick")) if ladder else []
    ladder_ids = {r.spec.id for r in rungs}
    clash = [m for m in models if m in ladder_ids]
    if clash:
        raise PredictError(f"held-out models must not be ladder rungs: {', '.join(clash)}")
    drawn = random_specs(random_n, seed if seed is not None else random.SystemRandom().randrange(1, 10**6))
    held_specs = [catalog.load_spec(m) for m in models] + list(drawn)
    held = [HeldOutRung(s, tuple(precisions)) for s in held_specs]

    def size(r: Any) -> int:
        return catalog.param_counts(r.spec).total

    order: list[Any] = sorted([*rungs, *held], key=size)
    summary = bench.run_ladder("quick", precisions=precisions, threads=threads, db_path=db, progress=progress,
                               rungs=order, budget_s=budget_s)  # fmt: skip
    held_ids = {s.id for s in held_specs}
    lad = [m for m in summary.measurements if m.model_id not in held_ids]
    out = [m for m in summary.measurements if m.model_id in held_ids]
    notes = list(summary.notes)
    notes += [f"{o.model_id} {o.precision}: {o.status} {o.message}" for o in summary.outcomes if o.status != "measured"]
    return lad, out, {s.id: s for s in held_specs}, [summary.run_id] if summary.run_id else [], notes


def _median(xs: Iterable[float]) -> float:
    return float(statistics.median(list(xs)))
