"""results.json and results.csv: machine output in base SI units, every figure with its basis.

``results_document(data)`` is also what ``edgefit fit --json`` and ``edgefit report --json`` print.
"""

from __future__ import annotations

import csv
import io
import math
from typing import Any

from edgefit.predict.prediction import Estimate, Prediction
from edgefit.procurement import cheapest_meeting, energy_basis, pareto_front
from edgefit.report.data import SCHEMA_VERSION, ReportData, figure_sources
from edgefit.report.tables import procurement_models
from edgefit.verdict import Verdict, model_params, naive_weight_bytes


def estimate_dict(e: Estimate) -> dict[str, Any]:
    return {"value": _num(e.value), "low": _num(e.low), "high": _num(e.high), "basis": e.basis.value}


def verdict_dict(v: Verdict, generate_tokens: int | None = None) -> dict[str, Any]:
    """One result; with ``generate_tokens``, also the time and energy of a whole response (first token, then
    ``generate_tokens`` decoded tokens)."""
    p: Prediction = v.prediction
    m = p.memory
    out: dict[str, Any] = {
        "model_id": p.model_id,
        "precision": p.precision,
        "device_id": p.device_id,
        "verdict": v.kind.value,
        "reasons": list(v.reasons),
        "notes": list(v.notes),
        "context_tokens": p.context_tokens,
        "prompt_tokens": p.prompt_tokens,
        "threads": p.threads,
        "bound": p.bound,
        "decode_s_per_token": estimate_dict(p.decode_s_per_token),
        "decode_tokens_per_s": estimate_dict(p.decode_tokens_per_s),
        "prefill_s": estimate_dict(p.prefill_s),
        "time_to_first_token_s": estimate_dict(p.time_to_first_token_s),
        "memory": {
            "weights_bytes": m.weights_bytes,
            "kv_cache_bytes": m.kv_cache_bytes,
            "activations_bytes": m.activations_bytes,
            "runtime_bytes": m.runtime_bytes,
            "total_bytes": estimate_dict(m.total),
            "judged_bytes": _num(v.memory_bytes),
            "usable_ram_bytes": m.usable_ram_bytes,
        },
        "power_w": estimate_dict(p.power_w),
        "energy_per_token_j": estimate_dict(p.energy_per_token_j),
        "warnings": list(p.warnings),
        "prediction_notes": list(p.notes),
        # the factor decode was scaled by (a sustained workload), and the device's own measured draw; null when none
        "sustained": v.sustained.to_dict() if v.sustained is not None else None,
        "measured_power": v.measured_draw.to_dict() if v.measured_draw is not None else None,
    }
    if generate_tokens is not None:
        response_s = p.time_to_first_token_s.value + generate_tokens * p.decode_s_per_token.value
        out["generate_tokens"] = generate_tokens
        out["response_s"] = _num(response_s)
        out["energy_per_response_j"] = _num(response_s * p.power_w.value)
    return out


def device_facts_dict(data: ReportData) -> list[dict[str, Any]]:
    """Per device: the sustained factor a sustained workload uses (with its basis) and its measured draws."""
    out = []
    for f in data.facts:
        out.append(
            {
                "device_id": f.device_id,
                "sustained": f.sustained.to_dict(),
                "measured_power": [d.to_dict() for d in f.draws],
                "notes": list(f.notes),
            }
        )
    return out


def results_document(data: ReportData) -> dict[str, Any]:
    """Warnings every prediction shares (they come from the calibration) are listed once, as
    ``common_warnings``; each result keeps only its own."""
    common = _common_warnings(data)
    results = []
    for v in data.verdicts:
        r = verdict_dict(v, data.workload.generate_tokens)
        r["warnings"] = [w for w in r["warnings"] if w not in common]
        results.append(r)
    return {
        "schema_version": SCHEMA_VERSION,
        "kind": "edgefit.results",
        "provenance": dict(data.provenance),
        "validation": dict(data.validation) if data.validation else None,
        "workload": data.workload.to_dict(),
        "precisions": list(data.precisions),
        "devices": [_device_dict(d) for d in data.devices],
        "models": [_model_dict(data, s.id) for s in data.specs],
        "common_warnings": sorted(common),
        "results": results,
        "answers": answers(data),
        "procurement": _procurement(data),
        "device_facts": device_facts_dict(data),
        **({"device_checks": [c.to_dict() for c in data.device_checks]} if data.device_checks else {}),
        **({"user_models": [r.to_dict() for r in data.user_models]} if data.user_models else {}),
        **(_user_graphs(data) if data.user_graphs else {}),
        "scaling": [
            {
                "label": p.label,
                "precision": p.precision,
                "params": p.params,
                "weight_read_bytes_per_token": p.weight_read_bytes_per_token,
                "decode_s_per_token": _num(p.decode_s_per_token),
                "low_s": _num(p.low_s),
                "high_s": _num(p.high_s),
                "basis": p.basis,
            }
            for p in data.scaling
        ],
        "skipped": [
            {"model_id": s.model_id, "precision": s.precision, "device_id": s.device_id, "reason": s.reason}
            for s in data.skipped
        ],
    }


def _user_graphs(data: ReportData) -> dict[str, Any]:
    """`report --model FILE.onnx`: every file x device prediction with its verdict, and per file the answers."""
    return {
        "user_model_predictions": [r.to_dict(g.max_latency_s) for g in data.user_graphs for r in g.rows],
        "user_model_answers": [g.answer_dict() for g in data.user_graphs],
    }


def _common_warnings(data: ReportData) -> set[str]:
    sets = [set(v.prediction.warnings) for v in data.verdicts]
    return set.intersection(*sets) if sets else set()


def _device_dict(d: Any) -> dict[str, Any]:
    return {
        "id": d.id,
        "name": d.name,
        "kind": d.kind,
        "ram_bytes": d.ram_bytes,
        "usable_ram_bytes": d.usable_ram_bytes,
        "bandwidth_bytes_per_s": _num(d.bandwidth_bytes_per_s),
        "measured_bandwidth_bytes_per_s": _num(d.measured_bandwidth_bytes_per_s),
        "load_power_w": _num(d.load_power_w),
        "power_budget_w": _num(d.power_budget_w),
        "price_usd": _num(d.price_usd),
        "price_date": d.price_date,
        "sources": figure_sources(d),
    }


def _model_dict(data: ReportData, model_id: str) -> dict[str, Any]:
    s = data.spec(model_id)
    return {
        "id": s.id,
        "name": s.name,
        "family": s.family,
        "params": model_params(s),
        "published_params": s.published_params,
        "published_params_source": s.published_params_source,
        "config_source": s.config_source,
        "open_weights": s.open_weights,
        "naive_weight_bytes": {p: _num(naive_weight_bytes(s, p)) for p in data.precisions},
    }


def answers(data: ReportData) -> dict[str, Any]:
    """Per model x device the best precision (least quantized meeting the workload); per device the largest model."""
    best = []
    for s in data.specs:
        for d in data.devices:
            v = data.best_precision(s.id, d.id)
            best.append(
                {
                    "model_id": s.id,
                    "device_id": d.id,
                    "precision": v.prediction.precision if v else None,
                    "verdict": v.kind.value if v else None,
                }
            )
    largest = []
    for d in data.devices:
        v = data.largest_model(d.id)
        largest.append(
            {
                "device_id": d.id,
                "model_id": v.prediction.model_id if v else None,
                "precision": v.prediction.precision if v else None,
                "decode_tokens_per_s": _num(v.prediction.decode_tokens_per_s.value) if v else None,
            }
        )
    return {"best_precision": best, "largest_model": largest}


def _procurement(data: ReportData) -> list[dict[str, Any]]:
    out = []
    for model_id in procurement_models(data):
        options = data.options(model_id)
        cheapest = cheapest_meeting(options, data.workload)
        out.append(
            {
                "model_id": model_id,
                "fleet_demand_tokens_per_s": data.demand_tokens_per_s,
                "options": [o.to_dict() for o in options],
                "cheapest_device_id": cheapest.device_id if cheapest else None,
                "pareto_device_ids": [o.device_id for o in pareto_front(options)],
            }
        )
    return out


CSV_COLUMNS: tuple[str, ...] = (
    "model_id",
    "params",
    "precision",
    "device_id",
    "verdict",
    "decode_tokens_per_s",
    "decode_tokens_per_s_low",
    "decode_tokens_per_s_high",
    "decode_basis",
    "time_to_first_token_s",
    "memory_total_bytes",
    "memory_judged_bytes",
    "memory_weights_bytes",
    "memory_kv_cache_bytes",
    "memory_runtime_and_activations_bytes",
    "usable_ram_bytes",
    "memory_basis",
    "power_w",
    "power_basis",
    "energy_per_token_j",
    "energy_basis",
    "sustained_factor",
    "price_usd",
    "reasons",
)


def results_csv(data: ReportData) -> str:
    """One row per model x precision x device, base SI units."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    params = {s.id: model_params(s) for s in data.specs}
    prices = {d.id: d.price_usd for d in data.devices}
    for v in data.verdicts:
        p = v.prediction
        writer.writerow(
            (
                p.model_id,
                params.get(p.model_id, ""),
                p.precision,
                p.device_id,
                v.kind.value,
                _g(p.decode_tokens_per_s.value),
                _g(p.decode_tokens_per_s.low),
                _g(p.decode_tokens_per_s.high),
                p.decode_tokens_per_s.basis.value,
                _g(p.time_to_first_token_s.value),
                _g(p.memory.total.value),
                _g(v.memory_bytes),
                p.memory.weights_bytes,
                p.memory.kv_cache_bytes,
                p.memory.runtime_bytes + p.memory.activations_bytes,
                p.memory.usable_ram_bytes,
                p.memory.total.basis.value,
                _g(p.power_w.value),
                p.power_w.basis.value,
                _g(p.energy_per_token_j.value),
                energy_basis(v),
                "" if v.sustained is None else _g(v.sustained.factor),
                "" if prices.get(p.device_id) is None else _g(prices[p.device_id] or 0.0),
                "; ".join(v.reasons),
            )
        )
    return buf.getvalue()


def _num(x: float | None) -> float | None:
    """JSON has no inf/nan: map them to None. Round to 6 significant digits so goldens are stable."""
    if x is None or not math.isfinite(x):
        return None
    return float(f"{x:.6g}")


def _g(x: float) -> str:
    return f"{x:.6g}"
