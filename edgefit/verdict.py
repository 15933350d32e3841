"""Verdicts: a workload plus a prediction becomes an answer a user can act on.

```
 Prediction (memory, speed, power) ─┐
 ModelSpec (open weights?)          ├─> judge() ─> Verdict(kind, reasons, notes, prediction)
 DeviceProfile (usable RAM, budget) │
 Workload (context, floors, caps)  ─┘
```

The kind is the first problem found, in this order: ``weights_not_public`` (the numbers are still computed and
shown), ``does_not_fit`` (memory > usable RAM), ``over_power_budget`` (the device's measured draw when one of
its own measurements carries a power reading, quoted as measured; else the profile's load power), ``too_slow``
(decode below the floor, or time to first token above the maximum), ``tight`` (fits, but with < 15 % memory
headroom or within 20 % of a speed limit), ``fits``. Every reason quotes the numbers with their units.

With ``DeviceFacts`` (edgefit.devicepower) a whole-device power reading replaces the profile's load power in the
prediction (energy per token = measured draw x decode time), and a ``sustained`` workload scales decode speed by
the device's sustained/burst factor before judging, the factor and its basis said in the notes.

Memory is what the runtime holds (prepacked int4, fp32 embedding table, KV cache, runtime), as the predictor
reports it; where that is far above ``params x bits / 8`` a note says why, because users are surprised by it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from enum import Enum

from edgefit import catalog
from edgefit.catalog import ModelSpec
from edgefit.devicepower import NO_SUSTAINED, DeviceFacts, MeasuredDraw, SustainedFactor, given_factor
from edgefit.errors import UsageError
from edgefit.predict.prediction import Basis, Estimate, Prediction
from edgefit.profiles import DeviceProfile
from edgefit.units import GB, GIB

# Why 15 % and 20 %: below 15 % headroom a longer context, a browser tab or a second process tips the device
# into swap; a predicted speed within 20 % of the floor is inside this predictor's typical error band.
TIGHT_MEMORY_HEADROOM = 0.15
TIGHT_SPEED_MARGIN = 0.20
# A note is added when the runtime holds this many times more than params x nominal bits / 8.
SURPRISE_RATIO = 1.25

# Nominal bits per weight a user has in mind for a precision name ("int4 is half a byte").
_NOMINAL_BITS: dict[str, float] = {
    "fp32": 32.0,
    "fp16": 16.0,
    "bf16": 16.0,
    "int8": 8.0,
    "int4": 4.0,
    "q8_0": 8.0,
    "q6_k": 6.0,
    "q5_k_m": 5.0,
    "q4_k_m": 4.0,
    "q4_0": 4.0,
}


class VerdictKind(str, Enum):
    FITS = "fits"
    TIGHT = "tight"
    TOO_SLOW = "too_slow"
    OVER_POWER_BUDGET = "over_power_budget"
    DOES_NOT_FIT = "does_not_fit"
    WEIGHTS_NOT_PUBLIC = "weights_not_public"

    @property
    def ok(self) -> bool:
        """True when the workload can run: ``fits`` or ``tight``."""
        return self in (VerdictKind.FITS, VerdictKind.TIGHT)

    @property
    def symbol(self) -> str:
        """Symbol + word that reads without colour (terminal tables, Markdown)."""
        return _SYMBOLS[self]


_SYMBOLS: dict[VerdictKind, str] = {
    VerdictKind.FITS: "✓ fits",
    VerdictKind.TIGHT: "~ tight",
    VerdictKind.TOO_SLOW: "✗ slow",
    VerdictKind.OVER_POWER_BUDGET: "✗ power",
    VerdictKind.DOES_NOT_FIT: "✗ no-fit",
    VerdictKind.WEIGHTS_NOT_PUBLIC: "- closed",
}


@dataclass(frozen=True, slots=True)
class Workload:
    """What the user wants to run. ``power_cap_w`` applies on top of a device's own budget;
    ``price_cap_usd`` filters devices (procurement, ``edgefit fit``), it does not change a verdict.
    ``sustained``: judge decode at each device's sustained/burst factor (``sustained_ratio``: one given factor
    for every device instead)."""

    context_tokens: int = 4096
    prompt_tokens: int = 512
    generate_tokens: int = 256
    min_decode_tokens_per_s: float = 5.0
    max_ttft_s: float | None = None
    power_cap_w: float | None = None
    price_cap_usd: float | None = None
    sustained: bool = False
    sustained_ratio: float | None = None

    def __post_init__(self) -> None:
        for name in ("context_tokens", "prompt_tokens", "generate_tokens"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise UsageError(f"workload {name}: expected a positive integer, found {value!r}")
        if self.prompt_tokens > self.context_tokens:
            raise UsageError(
                f"workload: prompt_tokens ({self.prompt_tokens}) must not exceed context_tokens "
                f"({self.context_tokens}); raise --context or lower --prompt"
            )
        if not (self.min_decode_tokens_per_s >= 0 and math.isfinite(self.min_decode_tokens_per_s)):
            raise UsageError(
                f"workload min_decode_tokens_per_s: expected a number >= 0, found {self.min_decode_tokens_per_s!r}"
            )
        for name in ("max_ttft_s", "power_cap_w", "price_cap_usd"):
            value = getattr(self, name)
            if value is not None and not (value > 0 and math.isfinite(value)):
                raise UsageError(f"workload {name}: expected a positive number or nothing, found {value!r}")
        if self.sustained_ratio is not None:
            given_factor(self.sustained_ratio)  # UsageError unless in (0, 1]
            if not self.sustained:
                raise UsageError("workload sustained_ratio: given without sustained = true")

    def to_dict(self) -> dict[str, float | int | None]:
        return {
            "context_tokens": self.context_tokens,
            "prompt_tokens": self.prompt_tokens,
            "generate_tokens": self.generate_tokens,
            "min_decode_tokens_per_s": self.min_decode_tokens_per_s,
            "max_ttft_s": self.max_ttft_s,
            "power_cap_w": self.power_cap_w,
            "price_cap_usd": self.price_cap_usd,
            "sustained": self.sustained,
            "sustained_ratio": self.sustained_ratio,
        }


@dataclass(frozen=True, slots=True)
class Verdict:
    kind: VerdictKind
    reasons: tuple[str, ...]  # why this kind (all problems found, numbers quoted)
    prediction: Prediction
    notes: tuple[str, ...] = ()  # things a user would be surprised by (memory far above params x bits)
    memory_bytes: float = 0.0  # what was judged: the predicted total, never below the stored weights + KV cache
    sustained: SustainedFactor | None = None  # the factor decode was scaled by (a sustained workload only)
    measured_draw: MeasuredDraw | None = None  # the device's own measured draw, when one of its measurements has one

    @property
    def ok(self) -> bool:
        return self.kind.ok

    @property
    def memory_headroom(self) -> float:
        """Fraction of usable RAM left free (negative when it does not fit)."""
        usable = self.prediction.memory.usable_ram_bytes
        return (usable - self.memory_bytes) / usable if usable > 0 else -math.inf


def memory_floor_bytes(spec: ModelSpec, prediction: Prediction) -> int:
    """The least onnxruntime can hold for this model: the weights as stored, quantized matrices times the
    catalog's prepack factor (int4 x1.27, int8 x1.05: ONNXRUNTIME-NOTES.md), plus the KV cache at the context.
    A predicted total below it means a calibration went wrong (e.g. RSS read while weights were still
    memory-mapped); the verdict then uses this floor and says so. GGUF and fp16 count their stored bytes."""
    precision = catalog.get_precision(prediction.precision)
    kv = prediction.memory.kv_cache_bytes
    if precision.kind != "onnx_int":
        return int(catalog.weight_bytes(spec, precision)) + kv
    parts = catalog.weight_bytes_by_part(spec, precision)
    quantized = parts.layers + parts.lm_head  # MatMulNBits weights get prepacked; the fp32 embedding does not
    return int(parts.embeddings + parts.final_norm + quantized * precision.prepack_factor) + kv


def judge(
    prediction: Prediction,
    spec: ModelSpec,
    device: DeviceProfile,
    workload: Workload,
    facts: DeviceFacts | None = None,
) -> Verdict:
    """The verdict for one (model, precision, device) under ``workload``; ``facts``: the device's own measured
    draw and sustained factor (edgefit.devicepower). See the module docstring."""
    sustained = sustained_factor(workload, facts)
    draw = facts.draw_for(prediction.model_id, prediction.precision) if facts is not None else None
    prediction = with_measured_draw(prediction, draw)
    if sustained is not None:
        prediction = scale_decode(prediction, sustained.factor)
    mem = prediction.memory
    floor_bytes = memory_floor_bytes(spec, prediction)
    total_bytes = max(mem.total.value, floor_bytes)
    usable_bytes = mem.usable_ram_bytes if mem.usable_ram_bytes > 0 else device.usable_ram_bytes
    tps = prediction.decode_tokens_per_s.value
    ttft_s = prediction.time_to_first_token_s.value
    power_w = prediction.power_w.value
    power_cap_w = _power_cap(device, workload)

    problems: list[tuple[VerdictKind, str]] = []
    if not spec.open_weights:
        problems.append(
            (VerdictKind.WEIGHTS_NOT_PUBLIC, f"{spec.name} weights are not public: figures are what it would need")
        )
    if total_bytes > usable_bytes:
        problems.append(
            (VerdictKind.DOES_NOT_FIT, f"needs {_gib(total_bytes)}, {_gib(usable_bytes)} usable on {device.name}")
        )
    if power_cap_w is not None and draw is not None and draw.power_w > power_cap_w:
        problems.append(
            (VerdictKind.OVER_POWER_BUDGET, f"measured draw {draw.describe()} > {power_cap_w:.1f} W budget")
        )
    elif power_cap_w is not None and power_w > power_cap_w and not (draw is not None and draw.whole_device):
        # without a whole-device reading the profile's load power is the figure (a package reading is only part)
        problems.append((VerdictKind.OVER_POWER_BUDGET, f"draws {power_w:.1f} W > {power_cap_w:.1f} W budget"))
    if tps < workload.min_decode_tokens_per_s:
        problems.append(
            (VerdictKind.TOO_SLOW, f"{_tps(tps)} tok/s < {_tps(workload.min_decode_tokens_per_s)} tok/s floor")
        )
    if workload.max_ttft_s is not None and ttft_s > workload.max_ttft_s:
        problems.append(
            (VerdictKind.TOO_SLOW, f"first token after {_secs(ttft_s)} > {_secs(workload.max_ttft_s)} maximum")
        )

    notes = _memory_notes(prediction, spec, total_bytes)
    if sustained is not None:
        notes += (f"sustained: decode x{sustained.factor:.3g} ({sustained.basis}): {sustained.detail}",)
    if draw is not None and not draw.whole_device:
        notes += (
            f"measured draw {draw.power_w:.1f} W covers the {draw.covers} only; power and energy stay the "
            f"profile's {prediction.power_w.value:.1f} W estimate for the whole device",
        )
    if spec.max_context < workload.context_tokens:
        notes += (
            f"{spec.name} supports {spec.max_context} tokens of context, fewer than the {workload.context_tokens} "
            f"asked: judged at {prediction.context_tokens}",
        )
    if floor_bytes > mem.total.value:
        notes += (
            f"the predicted total ({_gib(mem.total.value)}) is below what onnxruntime holds for these weights "
            f"(prepacked) + KV cache ({_gib(floor_bytes)}); judged on the latter: re-run `edgefit bench` on a quiet "
            "machine to recalibrate",
        )
    if problems:
        order = list(VerdictKind)[::-1]  # weights_not_public first ... fits last
        kind = min((k for k, _ in problems), key=order.index)
        return Verdict(kind, tuple(r for _, r in problems), prediction, notes, total_bytes, sustained, draw)

    tight: list[str] = []
    headroom = (usable_bytes - total_bytes) / usable_bytes
    if headroom < TIGHT_MEMORY_HEADROOM:
        tight.append(
            f"needs {_gib(total_bytes)} of {_gib(usable_bytes)} usable: {headroom:.0%} headroom "
            f"< {TIGHT_MEMORY_HEADROOM:.0%}"
        )
    if tps < workload.min_decode_tokens_per_s * (1 + TIGHT_SPEED_MARGIN):
        tight.append(
            f"{_tps(tps)} tok/s is within {TIGHT_SPEED_MARGIN:.0%} of the "
            f"{_tps(workload.min_decode_tokens_per_s)} tok/s floor"
        )
    if workload.max_ttft_s is not None and ttft_s > workload.max_ttft_s * (1 - TIGHT_SPEED_MARGIN):
        tight.append(
            f"first token after {_secs(ttft_s)} is within {TIGHT_SPEED_MARGIN:.0%} of the "
            f"{_secs(workload.max_ttft_s)} maximum"
        )
    if tight:
        return Verdict(VerdictKind.TIGHT, tuple(tight), prediction, notes, total_bytes, sustained, draw)
    reason = (
        f"needs {_gib(total_bytes)} of {_gib(usable_bytes)} usable, "
        f"{_tps(tps)} tok/s >= {_tps(workload.min_decode_tokens_per_s)} tok/s floor"
    )
    return Verdict(VerdictKind.FITS, (reason,), prediction, notes, total_bytes, sustained, draw)


def sustained_factor(workload: Workload, facts: DeviceFacts | None) -> SustainedFactor | None:
    """The factor a sustained workload applies on this device: the given ratio, else the device's own measured
    one, else 1.0 with a note that none exists. None when the workload is not sustained."""
    if not workload.sustained:
        return None
    if workload.sustained_ratio is not None:
        return given_factor(workload.sustained_ratio)
    return facts.sustained if facts is not None else NO_SUSTAINED


def scale_decode(prediction: Prediction, factor: float) -> Prediction:
    """Decode at ``factor`` x the predicted tokens/s: time per token and energy per token grow by 1/factor (the
    draw stays). Time to first token is left alone: a prompt is a burst."""
    if factor == 1.0:
        return prediction

    def times(e: Estimate, k: float) -> Estimate:
        return Estimate(e.value * k, e.low * k, e.high * k, e.basis)

    return replace(
        prediction,
        decode_tokens_per_s=times(prediction.decode_tokens_per_s, factor),
        decode_s_per_token=times(prediction.decode_s_per_token, 1.0 / factor),
        energy_per_token_j=times(prediction.energy_per_token_j, 1.0 / factor),
    )


def with_measured_draw(prediction: Prediction, draw: MeasuredDraw | None) -> Prediction:
    """A whole-device reading replaces the profile's load power (basis measured, interval from the sensor's
    uncertainty), and energy per token becomes that draw x predicted decode time: basis measured only when the
    decode time was measured too, else the time's basis. Partial readings (package, SoC) change nothing here."""
    if draw is None or not draw.whole_device:
        return prediction
    u = draw.uncertainty_rel
    power = Estimate(draw.power_w, draw.power_w * max(0.0, 1 - u), draw.power_w * (1 + u), Basis.MEASURED)
    t = prediction.decode_s_per_token
    energy = Estimate(draw.power_w * t.value, power.low * t.low, power.high * t.high, t.basis)
    return replace(prediction, power_w=power, energy_per_token_j=energy)


def naive_weight_bytes(spec: ModelSpec, precision: str) -> float:
    """``params x nominal bits / 8``: the figure a user computes in their head (8e9 x 0.5 B for 8B int4)."""
    return model_params(spec) * nominal_bits(precision) / 8


def nominal_bits(precision: str) -> float:
    key = precision.lower()
    if key in _NOMINAL_BITS:
        return _NOMINAL_BITS[key]
    return float(catalog.get_precision(precision).bits_per_weight)


def model_params(spec: ModelSpec) -> int:
    """Exact parameter count from the catalog's accounting (embeddings counted once when tied)."""
    return int(catalog.param_counts(spec).total)


def _memory_notes(prediction: Prediction, spec: ModelSpec, total_bytes: float) -> tuple[str, ...]:
    """Explain why the runtime needs far more than params x bits / 8, where it does."""
    try:
        naive = naive_weight_bytes(spec, prediction.precision)
    except Exception:  # an unknown precision name: no note rather than no verdict
        return ()
    mem = prediction.memory
    if naive <= 0 or total_bytes < naive * SURPRISE_RATIO:
        return ()
    n_params = model_params(spec)
    params_text = f"{n_params / 1e9:.1f}B" if n_params >= 1e9 else f"{n_params / 1e6:.0f}M"
    parts = [f"weights as held {_gib(mem.weights_bytes)}"]
    embedding_bytes = spec.vocab_size * spec.hidden_size * 4
    if prediction.precision.lower() not in ("fp32",) and mem.weights_bytes > embedding_bytes:
        parts.append(f"incl. the fp32 embedding table {_gib(embedding_bytes)}")
    parts.append(f"KV cache {_gib(mem.kv_cache_bytes)} at {prediction.context_tokens} tokens")
    parts.append(f"runtime and activations {_gib(mem.runtime_bytes + mem.activations_bytes)}")
    return (
        f"{params_text} params x {nominal_bits(prediction.precision):g} bits would be "
        f"{naive / GB:.1f} GB, but the runtime holds {_gib(total_bytes)}: " + ", ".join(parts),
    )


def _power_cap(device: DeviceProfile, workload: Workload) -> float | None:
    caps = [c for c in (workload.power_cap_w, device.power_budget_w) if c is not None]
    return min(caps) if caps else None


# --- answers over many verdicts -----------------------------------------------------------------------------


def best_fitting_precision(verdicts: Iterable[Verdict]) -> Verdict | None:
    """Per (model, device): the least-quantized precision (most bits per weight) that meets the workload,
    i.e. the smallest step down in precision the device forces. ``None`` when no precision meets it."""
    ok = [v for v in verdicts if v.ok]
    if not ok:
        return None
    return max(ok, key=lambda v: (nominal_bits(v.prediction.precision), v.prediction.decode_tokens_per_s.value))


def largest_model_meeting(verdicts: Iterable[Verdict], specs: Sequence[ModelSpec]) -> Verdict | None:
    """Per device: the model with the most parameters that meets the workload at some precision (the fastest
    such precision when several do). ``verdicts`` are for one device."""
    by_id = {s.id: s for s in specs}
    ok = [v for v in verdicts if v.ok and v.prediction.model_id in by_id]
    if not ok:
        return None
    return max(ok, key=lambda v: (model_params(by_id[v.prediction.model_id]), v.prediction.decode_tokens_per_s.value))


# --- formatting for reasons (kept here: verdict is an earlier stage than report) ------------------------------


def _gib(n_bytes: float) -> str:
    value = n_bytes / GIB
    return f"{value:.1f} GiB" if value >= 0.95 else f"{n_bytes / 2**20:.0f} MiB"


def _tps(value: float) -> str:
    if value < 1:
        return f"{value:.2g}"  # 0.023, not 0.0
    return f"{value:.1f}" if value < 100 else f"{value:.0f}"


def _secs(value: float) -> str:
    return f"{value:.2f} s" if value < 10 else f"{value:.0f} s"
