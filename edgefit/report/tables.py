"""Tables every renderer shares: plain-text cells plus a verdict kind per cell for colour (terminal, html).

Cells carry words and symbols that read without colour ("✓ fits 12 tok/s"); colour is only an extra.
"""

from __future__ import annotations

from dataclasses import dataclass

from edgefit.procurement import cheapest_meeting, devices_needed, pareto_front, rank_by_energy
from edgefit.report import fmt
from edgefit.report.data import ReportData
from edgefit.verdict import Verdict, VerdictKind, model_params, naive_weight_bytes

# Energy per token in procurement tables: which of its two factors (draw, decode time) were measured on the device.
ENERGY_MARK: dict[str, str] = {"measured": "M", "measured_power": "MP", "spec": "S"}
ENERGY_LEGEND = (
    "energy: M = the device's measured draw x its measured decode time, MP = its measured draw (power sensor, "
    "this host or an imported bundle) x predicted decode time, S = the profile's load power x decode time"
)


@dataclass(frozen=True, slots=True)
class Cell:
    text: str
    kind: VerdictKind | None = None


@dataclass(frozen=True, slots=True)
class Table:
    title: str
    header: tuple[str, ...]
    rows: tuple[tuple[Cell, ...], ...]
    note: str = ""


def _c(text: str) -> Cell:
    return Cell(text)


def model_label(data: ReportData, model_id: str) -> str:
    spec = data.spec(model_id)
    return f"{spec.name} ({fmt.params(model_params(spec))})"


def verdict_matrix(data: ReportData, precision: str) -> Table:
    """Models x devices for one precision: symbol + word + decode speed."""
    header = ("model", *(d.id for d in data.devices))
    rows = []
    for spec in data.specs_by_size():
        cells = [_c(model_label(data, spec.id))]
        for device in data.devices:
            v = data.verdict(spec.id, precision, device.id)
            if v is None:
                cells.append(Cell("n/a"))
                continue
            tps = v.prediction.decode_tokens_per_s
            cells.append(Cell(f"{v.kind.symbol} {fmt.tps(tps.value)} {fmt.mark(tps)}", v.kind))
        rows.append(tuple(cells))
    return Table(
        f"Verdicts at {precision}",
        header,
        tuple(rows),
        note=(
            f"cells: verdict and predicted decode speed [tok/s] at {precision} with its basis; columns are device ids "
            f"(see Devices); {fmt.BASIS_LEGEND}"
        ),
    )


def best_precision_table(data: ReportData) -> Table:
    """Per model and device: the least-quantized precision meeting the workload."""
    header = ("model", *(d.id for d in data.devices))
    rows = []
    for spec in data.specs_by_size():
        cells = [_c(model_label(data, spec.id))]
        for device in data.devices:
            best = data.best_precision(spec.id, device.id)
            if best is None:
                cells.append(Cell("✗ none", VerdictKind.DOES_NOT_FIT))
            else:
                p = best.prediction
                tps = p.decode_tokens_per_s
                cells.append(Cell(f"{p.precision} {fmt.tps(tps.value)} {fmt.mark(tps)}", best.kind))
        rows.append(tuple(cells))
    return Table(
        "Best precision that meets the workload",
        header,
        tuple(rows),
        note="least quantization (most bits per weight) that meets the workload, with its decode speed [tok/s]",
    )


def largest_model_table(data: ReportData) -> Table:
    header = (
        "device",
        "usable RAM [GiB]",
        "price [USD]",
        "largest model meeting the workload",
        "precision",
        "decode [tok/s]",
        "memory [GiB]",
    )
    rows = []
    for device in data.devices:
        v = data.largest_model(device.id)
        if v is None:
            rows.append(
                (
                    _c(device.name),
                    _c(fmt.gib(device.usable_ram_bytes)),
                    _c(fmt.usd(device.price_usd)),
                    Cell("✗ none", VerdictKind.DOES_NOT_FIT),
                    _c("-"),
                    _c("-"),
                    _c("-"),
                )
            )
            continue
        p = v.prediction
        rows.append(
            (
                _c(device.name),
                _c(fmt.gib(device.usable_ram_bytes)),
                _c(fmt.usd(device.price_usd)),
                Cell(f"{v.kind.symbol} {model_label(data, p.model_id)}", v.kind),
                _c(p.precision),
                _c(fmt.interval_tps(p.decode_tokens_per_s)),
                _c(f"{fmt.gib(v.memory_bytes)} {fmt.mark(p.memory.total)}"),
            )
        )
    return Table("Largest model per device", header, tuple(rows), note=fmt.BASIS_LEGEND)


def memory_table(data: ReportData, precision: str) -> Table:
    """Why memory is more than params x bits: naive figure against what the runtime holds."""
    header = (
        "model",
        "params x bits [GB]",
        "weights held [GiB]",
        "KV cache [GiB]",
        "runtime + activations [GiB]",
        "total [GiB]",
        "ratio to params x bits",
    )
    rows = []
    ctx = data.workload.context_tokens
    for spec in data.specs_by_size():
        any_v = next((v for v in data.verdicts_for(model_id=spec.id) if v.prediction.precision == precision), None)
        if any_v is None:
            continue
        m = any_v.prediction.memory
        naive = naive_weight_bytes(spec, precision)
        rows.append(
            (
                _c(model_label(data, spec.id)),
                _c(fmt.gb(naive)),
                _c(fmt.gib(m.weights_bytes)),
                _c(fmt.gib(m.kv_cache_bytes)),
                _c(fmt.gib(m.runtime_bytes + m.activations_bytes)),
                _c(f"{fmt.gib(any_v.memory_bytes)} {fmt.mark(m.total)}" + _floor_flag(any_v)),
                _c(f"{any_v.memory_bytes / naive:.2f}x" if naive > 0 else "-"),
            )
        )
    return Table(
        f"Memory at {precision}, context {ctx} tokens: what the runtime holds",
        header,
        tuple(rows),
        note=(
            "params x bits is what a user computes in their head (GB = 10^9 B); onnxruntime holds more: "
            "quantization scales, prepacked int4 copies, the embedding table kept in fp32, the KV cache at the "
            "full context and its own working memory. (floor): the predicted total was below the weights as "
            "onnxruntime holds them (prepacked) + KV cache, so that floor is shown and judged."
        ),
    )


def _floor_flag(v: Verdict) -> str:
    """Marks a total judged on the weights' own size because the predicted total was below it."""
    return " (floor)" if v.memory_bytes > v.prediction.memory.total.value else ""


def procurement_table(data: ReportData, model_id: str) -> Table:
    options = data.options(model_id)
    front_ids = {o.device_id for o in pareto_front(options)}
    cheapest = cheapest_meeting(options, data.workload)
    header = (
        "device",
        "verdict",
        "precision",
        "energy [J per 1k tokens]",
        "price [USD]",
        "decode [tok/s]",
        "USD per tok/s",
        "Pareto",
        f"devices for {data.demand_tokens_per_s:g} tok/s",
    )
    rows = []
    # devices meeting the workload first (procurement.rank_by_energy's order), then the others the same way
    met = rank_by_energy(options)
    rest = sorted((o for o in options if not o.meets), key=lambda o: (o.energy_per_1k_tokens_j, o.device_id))
    for o in (*met, *rest):
        fleet = devices_needed(o, data.demand_tokens_per_s) if o.meets and o.decode_tokens_per_s > 0 else None
        fleet_text = "-"
        if fleet is not None:
            fleet_text = f"{fleet.devices}" + (f" ({fmt.usd(fleet.total_price_usd)})" if fleet.total_price_usd else "")
        rows.append(
            (
                _c(
                    o.device_name
                    + (" (cheapest)" if cheapest is not None and o.device_id == cheapest.device_id else "")
                ),
                Cell(o.kind.symbol, o.kind),
                _c(o.precision),
                _c(f"{o.energy_per_1k_tokens_j:,.0f} {ENERGY_MARK.get(o.energy_basis, '?')}"),
                _c(fmt.usd(o.price_usd)),
                _c(f"{fmt.tps(o.decode_tokens_per_s)} {fmt.BASIS_MARK.get(o.basis, '?')}"),
                _c("-" if o.usd_per_token_per_s is None else f"{o.usd_per_token_per_s:,.1f}"),
                _c("yes" if o.device_id in front_ids else ""),
                _c(fleet_text),
            )
        )
    if cheapest is not None:
        note = f"cheapest device meeting the workload: {cheapest.device_name} ({fmt.usd(cheapest.price_usd)})"
    else:
        note = "no priced device meets the workload for this model"
    note += (
        "; ranked by energy per 1000 generated tokens, devices meeting the workload first; " + ENERGY_LEGEND
        + "; decode: " + fmt.BASIS_LEGEND
        + "; Pareto = not beaten on price, speed and energy together by any other device; "
        "fleet sizes assume one batch-1 stream per device"
    )  # fmt: skip
    return Table(f"Procurement for {model_label(data, model_id)}", header, tuple(rows), note=note)


def procurement_models(data: ReportData, limit: int = 3) -> tuple[str, ...]:
    """Models worth a procurement table: open-weight models meeting the workload on some priced device, the
    largest, the smallest and one in the middle."""
    candidates = []
    for spec in data.specs_by_size():
        if not spec.open_weights:
            continue
        if any(o.meets and o.price_usd is not None for o in data.options(spec.id)):
            candidates.append(spec.id)
    if len(candidates) <= limit:
        return tuple(reversed(candidates))
    picks = [candidates[-1], candidates[len(candidates) // 2], candidates[0]]
    return tuple(dict.fromkeys(picks))[:limit]


def pareto_model(data: ReportData) -> tuple[str, ...]:
    """The model the Pareto chart shows: the largest open-weight model that at least a third of the priced
    devices (and at least 3) run within the workload, so the chart has a real choice on it."""
    priced = sum(1 for d in data.devices if d.price_usd is not None)
    need = max(3, priced // 3)
    best: tuple[str, ...] = ()
    for spec in data.specs_by_size():
        if not spec.open_weights:
            continue
        meeting = sum(1 for o in data.options(spec.id) if o.meets and o.price_usd is not None)
        if meeting >= min(need, priced):
            best = (spec.id,)
    return best or procurement_models(data, limit=1)


def scaling_table(data: ReportData) -> Table:
    header = ("rung", "precision", "params", "bytes read per token [MiB]", "decode [ms/token]", "basis")
    rows = []
    for p in sorted(data.scaling, key=lambda p: (p.basis, p.precision, p.weight_read_bytes_per_token)):
        if p.basis != "measured":
            continue
        rows.append(
            (
                _c(p.label),
                _c(p.precision),
                _c(fmt.params(p.params)),
                _c(f"{p.weight_read_bytes_per_token / 2**20:.1f}"),
                _c(f"{p.decode_s_per_token * 1000:.2f}"),
                _c(p.basis),
            )
        )
    return Table("Measured on this host (the ladder)", header, tuple(rows))


def validation_table(data: ReportData) -> Table:
    """``edgefit validate``'s summary: one row per kind/figure/precision group."""
    header = ("group", "n", "median |error| [%]", "max |error| [%]", "inside interval [%]", "target met")
    rows = []
    summary = (data.validation or {}).get("summary")
    if isinstance(summary, dict):
        for key, e in sorted(summary.items()):
            if not isinstance(e, dict) or "median_abs_error" not in e:
                continue
            met = e.get("meets_target")
            rows.append(
                (
                    _c(key),
                    _c(str(e.get("n", "-"))),
                    _c(f"{float(e['median_abs_error']) * 100:.1f}"),
                    _c(f"{float(e.get('max_abs_error', 0.0)) * 100:.1f}"),
                    _c(f"{float(e['within_interval']) * 100:.0f}" if "within_interval" in e else "-"),
                    _c("-" if met is None else ("yes" if met else "no")),
                )
            )
    kernels = (data.validation or {}).get("kernel_errors")
    if isinstance(kernels, dict):
        curves = [e for e in kernels.values() if isinstance(e, dict) and "median_abs_error" in e]
        if curves:
            n = sum(int(e.get("n", 0)) for e in curves)
            med = sorted(float(e["median_abs_error"]) for e in curves)[len(curves) // 2]
            worst = max(float(e.get("max_abs_error", 0.0)) for e in curves)
            rows.append((_c("kernels (leave-one-out)"), _c(str(n)), _c(f"{med * 100:.1f}"),
                         _c(f"{worst * 100:.1f}"), _c("-"), _c("-")))  # fmt: skip
    return Table(
        "Back-test on this host (`edgefit validate`)",
        header,
        tuple(rows),
        note="group = kind/figure/precision; every model is priced from the kernel table, none was fitted on: "
        "rung = quick-ladder rungs, held_out = catalog shapes outside the ladder, random = architectures drawn "
        "at random; kernels = each GEMV/GEMM grid point predicted from its neighbours; error = predicted / "
        "measured (median of its samples) - 1",
    )


def device_table(data: ReportData) -> Table:
    header = (
        "device",
        "id",
        "RAM [GiB]",
        "usable [GiB]",
        "bandwidth [GB/s]",
        "load power [W]",
        "price [USD]",
    )
    rows = []
    for d in data.devices:
        bw = d.measured_bandwidth_bytes_per_s or d.bandwidth_bytes_per_s
        bw_mark = "M" if d.measured_bandwidth_bytes_per_s else "S"
        rows.append(
            (
                _c(d.name),
                _c(d.id),
                _c(fmt.gib(d.ram_bytes)),
                _c(fmt.gib(d.usable_ram_bytes)),
                _c(f"{bw / 1e9:.1f} {bw_mark}"),
                _c(fmt.watts(d.load_power_w)),
                _c(fmt.usd(d.price_usd) + (f" ({d.price_date})" if d.price_date else "")),
            )
        )
    return Table(
        "Devices",
        header,
        tuple(rows),
        note="bandwidth: M = measured (STREAM-like, from the profile's source or `edgefit detect`), S = datasheet",
    )
