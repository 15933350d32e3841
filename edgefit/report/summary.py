"""The plain-language opening of a report, for a reader who is not an engineer.

Every sentence is computed from the report's own numbers; nothing here is a canned figure.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from edgefit.report import fmt
from edgefit.report.data import ReportData
from edgefit.verdict import model_params, naive_weight_bytes

# ~5 tokens/s is about reading speed (a token is ~0.75 English words; people read ~200-300 words a minute).
READING_SPEED_TOKENS_PER_S = 5.0


@dataclass(frozen=True, slots=True)
class Paragraph:
    """Plain text, optionally followed by a list of items (renderers decide the markup)."""

    text: str
    items: tuple[str, ...] = ()


def summary_paragraphs(data: ReportData) -> tuple[Paragraph, ...]:
    paras = [Paragraph(_numbers_game(data)), Paragraph(_fits_nowhere(data)), _reading_speed(data)]
    paras.append(_your_files(data))
    paras.append(Paragraph(_trust(data)))
    return tuple(p for p in paras if p.text)


def _your_files(data: ReportData) -> Paragraph:
    """Per .onnx file of ``report --model``: on how many devices it meets its target, the cheapest of them."""
    if not data.user_graphs:
        return Paragraph("")
    names = {d.id: d.name for d in data.devices}
    items = []
    for g in data.user_graphs:
        goal = (
            f"runs at {g.max_latency_s * 1e3:.3g} ms per inference or faster"
            if g.max_latency_s is not None
            else "fits in memory (no speed target was given)"
        )
        meeting, cheapest = g.meeting(), g.cheapest()
        head = f"{g.model_id.removeprefix('file:')} {goal} on {len(meeting)} of {len(g.rows)} devices"
        if cheapest is not None:
            p = cheapest.prediction
            items.append(
                f"{head}; the cheapest of them is {names.get(p.device_id, p.device_id)} "
                f"({fmt.usd(cheapest.price_usd) if cheapest.price_usd is not None else 'no list price'}), about "
                f"{p.latency_s.value * 1e3:.3g} ms per inference"
            )
        elif g.rows:
            fastest = min(g.rows, key=lambda r: r.prediction.latency_s.value).prediction
            items.append(
                f"{head}; the fastest is {names.get(fastest.device_id, fastest.device_id)} at about "
                f"{fastest.latency_s.value * 1e3:.3g} ms per inference"
            )
    return Paragraph("Your own model files (each priced on every device, see \"Your models on every device\"):",
                     tuple(items))  # fmt: skip


def _reference_spec_id(data: ReportData) -> str | None:
    """The open-weight model closest to 8B parameters: the size people ask about most."""
    specs = [s for s in data.specs if s.open_weights] or list(data.specs)
    if not specs:
        return None
    return min(specs, key=lambda s: abs(model_params(s) - 8e9)).id


def _numbers_game(data: ReportData) -> str:
    ref = _reference_spec_id(data)
    if ref is None:
        return ""
    spec = data.spec(ref)
    n = model_params(spec)
    sizes = []
    for precision in ("fp32", "int8", "int4"):
        held = next((v for v in data.verdicts_for(model_id=ref) if v.prediction.precision == precision), None)
        naive = naive_weight_bytes(spec, precision)
        text = f"{precision} {fmt.gb(naive)} GB"
        if held is not None:
            text += f" (the runtime really holds {fmt.gib_unit(held.memory_bytes)})"
        sizes.append(text)
    return (
        f"A model's size is its parameter count: {spec.name} has {fmt.params(n)} parameters, and every one of "
        f"them must sit in memory while it runs. Stored as 32-bit floats (fp32) a parameter takes 4 bytes, as "
        f"int8 about 1 byte, as int4 about half a byte, so {spec.name} needs: " + "; ".join(sizes) + ". "
        f"The runtime needs more than the bare weights: quantization scales, the embedding table kept at full "
        f"precision, prepacked copies for fast kernels, and the conversation memory (KV cache) for "
        f"{data.workload.context_tokens} tokens of context."
    )


def _fits_nowhere(data: ReportData) -> str:
    if not data.devices:
        return ""
    roomiest = max(data.devices, key=lambda d: d.usable_ram_bytes)
    nowhere = []
    for spec in data.specs_by_size():
        vs = data.verdicts_for(model_id=spec.id)
        if vs and all(v.memory_bytes > v.prediction.memory.usable_ram_bytes for v in vs):
            smallest = min(vs, key=lambda v: v.memory_bytes)
            nowhere.append((spec, smallest))
    if not nowhere:
        return ""
    biggest_spec, smallest_v = nowhere[-1]
    names = ", ".join(s.name for s, _ in nowhere)
    return (
        f"Some models fit on no device here at any precision: {names}. {biggest_spec.name} needs at least "
        f"{fmt.gib_unit(smallest_v.memory_bytes)} even at {smallest_v.prediction.precision}, "
        f"while the roomiest device, {roomiest.name}, has {fmt.gib_unit(roomiest.usable_ram_bytes)} usable. "
        f"No amount of waiting fixes that: a model that does not fit in memory does not run at all "
        f"(or swaps to storage and becomes thousands of times slower)."
    )


def _reading_speed(data: ReportData) -> Paragraph:
    """Per device, the largest model meeting the workload; devices with the same answer share one line."""
    floor = data.workload.min_decode_tokens_per_s
    answers: dict[tuple[str, str], list[tuple[str, float]]] = {}
    for device in data.devices:
        if device.id == data.host_device_id:
            continue
        best = data.largest_model(device.id)
        if best is None:
            continue
        p = best.prediction
        answers.setdefault((p.model_id, p.precision), []).append((device.name, p.decode_tokens_per_s.value))
    floor_words = "about reading speed" if floor <= READING_SPEED_TOKENS_PER_S * 1.2 else "the speed you asked for"
    if not answers:
        return Paragraph(
            f"No model in this report reaches {fmt.tps(floor)} tokens/s ({floor_words}) within memory on any "
            f"device profiled here."
        )
    order = sorted(answers, key=lambda k: (-model_params(data.spec(k[0])), k[1]))
    items = []
    for model_id, precision in order:
        devs = answers[(model_id, precision)]
        speeds = sorted(t for _, t in devs)
        lo, hi = fmt.tps(speeds[0]), fmt.tps(speeds[-1])
        speed = lo if lo == hi else f"{lo}-{hi}"
        names = ", ".join(n for n, _ in devs)
        items.append(f"{data.spec(model_id).name} at {precision} ({speed} tok/s): {names}")
    return Paragraph(
        f"The largest model that answers at {fmt.tps(floor)} tokens/s or more ({floor_words}) with room in memory, "
        f"by device (onnxruntime on the CPU, precisions fp32/int8/int4):",
        tuple(items),
    )


_FIGURE_WORDS = {"decode": "decode time", "prefill": "prefill time", "peak_rss": "peak memory"}


def validation_sentence(validation: Mapping[str, Any] | None) -> str:
    """One sentence on this host's back-test error (``edgefit validate``'s stored result), or how to get one."""
    if not validation:
        return (
            "`edgefit validate` has not been run on this host, so the prediction error is unknown: run "
            "`edgefit validate` (it refits on the small rungs and predicts the larger ones measured here, plus "
            "held-out architectures), then rebuild this report."
        )
    summary = validation.get("summary")
    parts = []
    if isinstance(summary, Mapping):
        for figure, words in _FIGURE_WORDS.items():
            part = _figure_error(summary, figure)
            if part:
                parts.append(f"{words} {part}")
    when = validation.get("created_at")
    head = "Back-test on this host (`edgefit validate`" + (f", {when}" if isinstance(when, str) else "") + ")"
    if not parts:
        notes = [n for n in validation.get("notes", ()) if isinstance(n, str)]
        why = f" ({notes[0]})" if notes else ""
        return (
            head + f" ran but compared nothing{why}, so the prediction error is unknown: run `edgefit validate` "
            "again on a quiet machine (it measures the ladder and held-out models)."
        )
    interleaved = []
    if isinstance(summary, Mapping):
        for figure in ("decode", "prefill"):
            part = _figure_error(summary, figure, prefix="interleaved/")
            if part:
                interleaved.append(f"{_FIGURE_WORDS[figure]} {part}")
    among = (
        " Timed among the table's own kernels in the same rounds (the pricing alone, without the machine's drift "
        "between measurements): " + "; ".join(interleaved) + "."
        if interleaved
        else ""
    )
    return (
        head + ": predicting whole models from the kernel table, the error is " + "; ".join(parts) + "." + among
        + " Other devices add the uncertainty of their datasheet figures on top."
    )  # fmt: skip


def _figure_error(summary: Mapping[str, Any], figure: str, *, prefix: str = "") -> str:
    """``median up to 6.1 %, worst 12 % (8 comparisons on held-out models)`` for one figure: held-out and random
    architectures preferred, else the larger ladder rungs. ``prefix``: "interleaved/" for the models timed among the
    kernel table's chains."""
    groups = (
        (("held_out", "random"), "held-out and random architectures"),
        (("rung",), "larger ladder rungs"),
    )
    for kinds, words in groups:
        entries = [
            e
            for key, e in summary.items()
            if isinstance(e, Mapping)
            and any(key.startswith(f"{prefix}{kind}/{figure}/") for kind in kinds)
            and _is_num(e.get("median_abs_error"))
        ]
        if not entries:
            continue
        n = sum(int(e.get("n", 1)) for e in entries)
        worst = max(float(e.get("max_abs_error", e["median_abs_error"])) for e in entries)
        med = max(float(e["median_abs_error"]) for e in entries)
        return f"median up to {med * 100:.1f} %, worst {worst * 100:.1f} % ({n} comparisons on {words})"
    return ""


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _trust(data: ReportData) -> str:
    return (
        validation_sentence(data.validation) + " Every figure is marked: M measured (on this host, or on the device by "
        "its own kernel table), E priced from this host's kernel table, S this host's kernel table translated with a "
        "device's datasheet figures."
    )
