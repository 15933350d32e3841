"""The report's outline, shared by report.md and report.html: title, plain-words summary, sections of
paragraphs, tables and plots, provenance. Renderers only decide markup."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from edgefit.report import fmt, tables
from edgefit.report.data import ReportData
from edgefit.report.summary import Paragraph, summary_paragraphs
from edgefit.report.tables import Table

PLOT_TITLES: dict[str, str] = {
    "verdicts": "Verdict heat map: models x devices per precision",
    "scaling": "Decode time per token against bytes read per token on this host (log-log)",
    "memory": "Memory the runtime holds against each device's usable RAM",
    "pareto": "Procurement: price against decode speed, energy per 1k tokens as colour",
    "sustained": "Sustained run on this host: rate, temperature, CPU clock and power over time",
}


@dataclass(frozen=True, slots=True)
class Section:
    title: str
    paragraphs: tuple[str, ...] = ()
    tables: tuple[Table, ...] = ()
    plots: tuple[str, ...] = ()
    bullets: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Document:
    title: str
    byline: str
    summary: tuple[Paragraph, ...]
    sections: tuple[Section, ...]
    provenance_items: tuple[tuple[str, Any], ...]


def build(data: ReportData) -> Document:
    w = data.workload
    prov = data.provenance
    workload_text = (
        f"context {w.context_tokens} tokens, prompt {w.prompt_tokens}, generate {w.generate_tokens}, "
        f"at least {fmt.tps(w.min_decode_tokens_per_s)} tok/s decode"
    )
    if w.max_ttft_s is not None:
        workload_text += f", first token within {fmt.seconds(w.max_ttft_s)}"
    if w.power_cap_w is not None:
        workload_text += f", power cap {fmt.watts(w.power_cap_w)} W"
    if w.price_cap_usd is not None:
        workload_text += f", price cap {fmt.usd(w.price_cap_usd)}"
    byline = (
        f"Generated {prov.get('generated_at', 'at an unknown time')} by edgefit {prov.get('edgefit_version', '?')} "
        f"(onnxruntime {prov.get('onnxruntime_version', '?')}). Workload: {workload_text}. "
        f"{len(data.specs)} models x {len(data.precisions)} precisions x {len(data.devices)} devices."
    )
    counts = Counter(v.kind.value for v in data.verdicts)
    count_text = ", ".join(f"{k}: {n}" for k, n in sorted(counts.items()))

    validation = tables.validation_table(data)
    out: list[Section] = [
        Section(
            "How far to trust these numbers",
            tables=(validation,) if validation.rows else (),
            paragraphs=(
                "Marks: " + fmt.BASIS_LEGEND + ". Speeds are batch-1 decode on the CPU with onnxruntime; a GPU "
                "or NPU runtime would differ. Intervals are the predictor's; a device profile whose figures are "
                "estimated widens them.",
            ),
        ),
        Section(
            "Verdicts",
            paragraphs=(
                "✓ fits: meets the workload with room; ~ tight: fits with < 15 % memory headroom or within "
                "20 % of the speed floor or the first-token limit; ✗ slow: decode below the floor or first token "
                "too late; "
                "✗ power: over the power budget; ✗ no-fit: needs more memory than the device has usable; "
                "- closed: weights not public (numbers shown for what it would need). "
                f"Counts over all combinations: {count_text}.",
                "q8_0 and q4_k_m are llama.cpp GGUF formats, not onnxruntime ones: their memory is their own, "
                "their speed is borrowed from the nearest measured precision (int8/int4), so they are left out "
                "of the best-precision, largest-model and procurement answers.",
            ),
            tables=tuple(tables.verdict_matrix(data, p) for p in data.precisions),
            plots=("verdicts",),
        ),
        Section("Best precision per model and device", tables=(tables.best_precision_table(data),)),
        Section("Largest model per device", tables=(tables.largest_model_table(data),)),
        Section(
            "Memory: why it is more than parameters x bits",
            tables=tuple(tables.memory_table(data, p) for p in data.precisions if p in ("int4", "int8")),
            plots=("memory",),
            bullets=_memory_notes(data),
        ),
    ]
    proc_models = tables.procurement_models(data)
    if proc_models:
        out.append(
            Section(
                "Procurement",
                paragraphs=(
                    "Devices ranked by energy per 1000 generated tokens, those meeting the workload first: the "
                    "device's own measured draw where one of its measurements carries a power reading (M, MP), "
                    "else the profile's load power (S), times decode time. Prices are list prices with their "
                    "date in the device table.",
                ),
                tables=tuple(tables.procurement_table(data, m) for m in proc_models),
                plots=("pareto",),
            )
        )
    scaling = tables.scaling_table(data)
    out.append(
        Section(
            "Scaling on this host",
            paragraphs=(
                "Measured rungs of the benchmark ladder (real onnxruntime runs on this machine) and the "
                "catalog models extrapolated from the fit, with their intervals.",
            ),
            tables=(scaling,) if scaling.rows else (),
            plots=("scaling",),
        )
    )
    from edgefit.report.energy import energy_section, facts_section  # measured power, sustained speed

    energy = energy_section(data)
    if energy is not None:
        out.append(energy)
    facts = facts_section(data)
    if facts is not None:
        out.append(facts)
    from edgefit.report.devicecheck import device_check_section  # linked devices' own figures vs datasheets

    checks = device_check_section(data.device_checks)
    if checks is not None:
        out.append(checks)
    from edgefit.report.usermodels import user_models_section  # the user's own .onnx files measured here

    mine = user_models_section(data.user_models)
    if mine is not None:
        out.append(mine)
    from edgefit.report.usergraphs import user_graphs_section  # the user's .onnx files on every device

    graphs = user_graphs_section(data.user_graphs, data.user_models)
    if graphs is not None:
        out.append(graphs)
    out.append(Section("Devices", tables=(tables.device_table(data),)))
    if data.skipped:
        out.append(Section("Not predicted", bullets=_skipped(data)))
    return Document(
        title="edgefit report: which models run on which device",
        byline=byline,
        summary=summary_paragraphs(data),
        sections=tuple(out),
        provenance_items=_provenance_items(data),
    )


def _memory_notes(data: ReportData) -> tuple[str, ...]:
    """One "more than params x bits" note per model (int4's when it has one: the case that surprises most), then
    one line for predictions whose total was raised to the weights' own size."""
    surprise: dict[str, str] = {}
    floored = 0
    for v in sorted(data.verdicts, key=lambda v: v.prediction.precision != "int4"):
        for note in v.notes:
            if " bits would be " in note and v.prediction.model_id not in surprise:
                surprise[v.prediction.model_id] = note
        floored += v.memory_bytes > v.prediction.memory.total.value
    out = [f"{data.spec(s.id).name}: {surprise[s.id]}" for s in data.specs_by_size() if s.id in surprise]
    if floored:
        out.append(
            f"{floored} of {len(data.verdicts)} predicted totals were below what onnxruntime holds for the weights "
            "(prepacked) + KV cache and were judged on that floor instead: the memory calibration of this host "
            "needs a rerun of `edgefit bench` on a quiet machine"
        )
    return tuple(out)


def _skipped(data: ReportData) -> tuple[str, ...]:
    grouped: dict[tuple[str, str], int] = Counter((s.precision, s.reason) for s in data.skipped)
    return tuple(f"{precision}: {n} combinations, {reason}" for (precision, reason), n in sorted(grouped.items()))


def _provenance_items(data: ReportData) -> tuple[tuple[str, Any], ...]:
    prov = data.provenance
    items: list[tuple[str, Any]] = []
    for key in ("edgefit_version", "onnxruntime_version", "python_version", "host_fingerprint", "host_cpu"):
        if key in prov:
            items.append((key, prov[key]))
    if "measurements" in prov:
        items.append(("measurements used", prov["measurements"]))
    calib = prov.get("calibration")
    if isinstance(calib, dict):
        for precision, values in sorted(calib.items()):
            if isinstance(values, dict):
                shown = ", ".join(f"{k}={_short(v)}" for k, v in sorted(values.items()) if not isinstance(v, dict))
                items.append((f"calibration {precision}", shown))
    by_device = prov.get("calibration_by_device")
    if isinstance(by_device, dict):
        for device_id, how in sorted(by_device.items()):
            items.append((f"calibration used for {device_id}", str(how)))
    items.append(("schema", "results.json carries every figure in base SI units with its sources"))
    return tuple(items)


def _short(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)
