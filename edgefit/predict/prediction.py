"""Prediction: what edgefit expects a model to do on a device, every figure with its basis and interval."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum


class Basis(str, Enum):
    MEASURED = "measured"  # measured on this host
    EXTRAPOLATED = "extrapolated"  # priced from this host's kernel table
    SPEC = "spec"  # from the profile's datasheet figures (plus this host's efficiencies)


@dataclass(frozen=True, slots=True)
class Estimate:
    """A point value with a prediction interval [low, high] in the same base unit, and its basis."""

    value: float
    low: float
    high: float
    basis: Basis

    def __post_init__(self) -> None:
        if not (self.low <= self.value <= self.high):
            raise ValueError(f"interval [{self.low}, {self.high}] must contain {self.value}")


@dataclass(frozen=True, slots=True)
class MemoryBreakdown:
    weights_bytes: int  # as the runtime holds them (prepacked copies included)
    kv_cache_bytes: int  # at the workload's context
    activations_bytes: int
    runtime_bytes: int  # onnxruntime + Python base RSS
    total: Estimate  # bytes
    usable_ram_bytes: int


@dataclass(frozen=True, slots=True)
class Prediction:
    model_id: str
    precision: str
    device_id: str
    context_tokens: int
    prompt_tokens: int
    threads: int
    decode_s_per_token: Estimate
    decode_tokens_per_s: Estimate
    prefill_s: Estimate
    time_to_first_token_s: Estimate
    memory: MemoryBreakdown
    power_w: Estimate
    energy_per_token_j: Estimate
    bound: str  # "memory" or "compute": which term sets decode speed
    calibration: dict[str, float | str] = field(default_factory=dict)  # efficiencies, source host, etc.
    notes: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()


def estimate_to_dict(e: Estimate) -> dict[str, float | str]:
    return {"value": e.value, "low": e.low, "high": e.high, "basis": e.basis.value}


def prediction_to_dict(p: Prediction) -> dict[str, object]:
    """JSON-able, base SI units, every figure with its basis and interval (the `predict --json` schema)."""
    m = p.memory
    return {
        "model_id": p.model_id,
        "precision": p.precision,
        "device_id": p.device_id,
        "context_tokens": p.context_tokens,
        "prompt_tokens": p.prompt_tokens,
        "threads": p.threads,
        "decode_s_per_token": estimate_to_dict(p.decode_s_per_token),
        "decode_tokens_per_s": estimate_to_dict(p.decode_tokens_per_s),
        "prefill_s": estimate_to_dict(p.prefill_s),
        "time_to_first_token_s": estimate_to_dict(p.time_to_first_token_s),
        "memory": {
            "weights_bytes": m.weights_bytes,
            "kv_cache_bytes": m.kv_cache_bytes,
            "activations_bytes": m.activations_bytes,
            "runtime_bytes": m.runtime_bytes,
            "total_bytes": estimate_to_dict(m.total),
            "usable_ram_bytes": m.usable_ram_bytes,
        },
        "power_w": estimate_to_dict(p.power_w),
        "energy_per_token_j": estimate_to_dict(p.energy_per_token_j),
        "bound": p.bound,
        "calibration": dict(p.calibration),
        "notes": list(p.notes),
        "warnings": list(p.warnings),
    }
