"""Plots (matplotlib, Agg backend): verdict heat map, scaling (log-log), memory vs usable RAM, Pareto chart.

Each ``*_figure`` draws one figure from ``ReportData``; ``render_plots`` returns every plot as SVG and PNG bytes.
matplotlib is imported lazily so that ``edgefit fit`` does not pay for it.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from edgefit.procurement import pareto_front
from edgefit.report import fmt, tables
from edgefit.report.data import ReportData
from edgefit.verdict import VerdictKind, model_params

if TYPE_CHECKING:
    from matplotlib.figure import Figure

KIND_COLOURS: dict[VerdictKind, str] = {
    VerdictKind.FITS: "#2e7d32",
    VerdictKind.TIGHT: "#f9a825",
    VerdictKind.TOO_SLOW: "#ef6c00",
    VerdictKind.OVER_POWER_BUDGET: "#6a1b9a",
    VerdictKind.DOES_NOT_FIT: "#c62828",
    VerdictKind.WEIGHTS_NOT_PUBLIC: "#9e9e9e",
}
_SHORT: dict[VerdictKind, str] = {
    VerdictKind.FITS: "✓",
    VerdictKind.TIGHT: "~",
    VerdictKind.TOO_SLOW: "S",
    VerdictKind.OVER_POWER_BUDGET: "P",
    VerdictKind.DOES_NOT_FIT: "✗",
    VerdictKind.WEIGHTS_NOT_PUBLIC: "-",
}
_PRECISION_COLOURS = ("#1565c0", "#2e7d32", "#c62828", "#6a1b9a", "#ef6c00", "#00838f")


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams["svg.hashsalt"] = "edgefit"  # stable SVG ids from run to run
    plt.rcParams["font.size"] = 8
    return plt


def verdict_heatmap_figure(data: ReportData) -> Figure:
    plt = _plt()
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    kinds = list(VerdictKind)
    specs = data.specs_by_size()
    n_prec = max(1, len(data.precisions))
    width = 2.5 + n_prec * (0.38 * len(data.devices) + 0.6)
    height = 1.8 + 0.28 * len(specs)
    fig, axes = plt.subplots(1, n_prec, figsize=(width, height), squeeze=False, sharey=True)
    cmap = ListedColormap([KIND_COLOURS[k] for k in kinds] + ["#ffffff"])
    for ax, precision in zip(axes[0], data.precisions, strict=False):
        grid = []
        for spec in specs:
            row = []
            for device in data.devices:
                v = data.verdict(spec.id, precision, device.id)
                row.append(len(kinds) if v is None else kinds.index(v.kind))
            grid.append(row)
        ax.imshow(grid, cmap=cmap, vmin=-0.5, vmax=len(kinds) + 0.5, aspect="auto")
        for i, row in enumerate(grid):
            for j, k in enumerate(row):
                if k < len(kinds):
                    ax.text(j, i, _SHORT[kinds[k]], ha="center", va="center", color="white", fontsize=7)
        ax.set_title(precision)
        ax.set_xticks(range(len(data.devices)))
        ax.set_xticklabels([d.name for d in data.devices], rotation=60, ha="right", fontsize=6)
        ax.set_yticks(range(len(specs)))
        ax.set_yticklabels([f"{s.name} ({fmt.params(model_params(s))})" for s in specs], fontsize=6)
    handles = [Patch(color=KIND_COLOURS[k], label=k.symbol) for k in kinds]
    fig.legend(handles=handles, loc="upper center", ncol=len(kinds), frameon=False, fontsize=7)
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    return fig


def scaling_figure(data: ReportData) -> Figure:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7.5, 5))
    precisions = sorted({p.precision for p in data.scaling})
    for i, precision in enumerate(precisions):
        colour = _PRECISION_COLOURS[i % len(_PRECISION_COLOURS)]
        measured = [p for p in data.scaling if p.precision == precision and p.basis == "measured"]
        extrap = sorted(
            (p for p in data.scaling if p.precision == precision and p.basis != "measured"),
            key=lambda p: p.weight_read_bytes_per_token,
        )
        if measured:
            ax.scatter(
                [p.weight_read_bytes_per_token for p in measured],
                [p.decode_s_per_token for p in measured],
                color=colour,
                marker="o",
                zorder=3,
                label=f"{precision} measured",
            )
        if extrap:
            xs = [p.weight_read_bytes_per_token for p in extrap]
            ax.plot(xs, [p.decode_s_per_token for p in extrap], color=colour, lw=1, label=f"{precision} fit")
            ax.fill_between(xs, [p.low_s for p in extrap], [p.high_s for p in extrap], color=colour, alpha=0.15)
            ax.scatter(xs, [p.decode_s_per_token for p in extrap], color=colour, marker="x", zorder=3)
            for p in extrap:
                ax.annotate(p.label, (p.weight_read_bytes_per_token, p.decode_s_per_token), fontsize=5, alpha=0.8)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("weight bytes read per decoded token [B]")
    ax.set_ylabel("decode time per token on this host [s]")
    ax.set_title("Scaling on this host: measured rungs (o), extrapolated catalog models (x) with intervals")
    ax.grid(True, which="both", alpha=0.3)
    if precisions:
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def memory_figure(data: ReportData) -> Figure:
    plt = _plt()
    preferred = [p for p in ("int4", "int8", "fp32") if p in data.precisions]
    precision: str = preferred[0] if preferred else (data.precisions[0] if data.precisions else "")
    specs = data.specs_by_size()
    names, weights, kv, rest = [], [], [], []
    for spec in specs:
        v = next((v for v in data.verdicts_for(model_id=spec.id) if v.prediction.precision == precision), None)
        if v is None:
            continue
        m = v.prediction.memory
        names.append(f"{spec.name} ({fmt.params(model_params(spec))})")
        weights.append(m.weights_bytes / 2**30)
        kv.append(m.kv_cache_bytes / 2**30)
        rest.append((m.runtime_bytes + m.activations_bytes) / 2**30)
    fig, ax = plt.subplots(figsize=(max(6.0, 0.45 * len(names) + 3.5), 5))
    xs = range(len(names))
    ax.bar(xs, weights, label="weights as held", color="#1565c0")
    ax.bar(xs, kv, bottom=weights, label=f"KV cache at {data.workload.context_tokens} tokens", color="#90caf9")
    bottoms = [a + b for a, b in zip(weights, kv, strict=True)]
    ax.bar(xs, rest, bottom=bottoms, label="runtime + activations", color="#bdbdbd")
    by_ram: dict[int, list[str]] = {}
    for d in data.devices:
        by_ram.setdefault(d.usable_ram_bytes, []).append(d.name)
    for ram, devs in sorted(by_ram.items()):
        label = devs[0] if len(devs) == 1 else f"{devs[0]} +{len(devs) - 1}"
        ax.axhline(ram / 2**30, color="#c62828", lw=0.7, ls="--")
        ax.text(len(names) - 0.4, ram / 2**30, f" {label}: {fmt.gib(ram)} GiB", fontsize=6, va="bottom", ha="right")
    ax.set_yscale("log")
    ax.set_xticks(list(xs))
    ax.set_xticklabels(names, rotation=60, ha="right", fontsize=6)
    ax.set_ylabel("memory [GiB] (log)")
    ax.set_title(f"Memory at {precision} against usable RAM (dashed lines)")
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    return fig


def pareto_figure(data: ReportData) -> Figure:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7.5, 5))
    models = tables.procurement_models(data, limit=1)
    if not models:
        ax.text(0.5, 0.5, "no priced device meets the workload for any model", ha="center", transform=ax.transAxes)
        ax.set_axis_off()
        return fig
    model_id = models[0]
    options = [o for o in data.options(model_id) if o.price_usd is not None]
    front = pareto_front(options)
    energies = [o.energy_per_1k_tokens_j for o in options]
    sc = ax.scatter(
        [o.price_usd for o in options],
        [o.decode_tokens_per_s for o in options],
        c=energies,
        cmap="viridis",
        marker="o",
        s=[50 if o.meets else 20 for o in options],
        edgecolors=["black" if o.meets else "none" for o in options],
        zorder=3,
    )
    fig.colorbar(sc, ax=ax, label="energy [J per 1k tokens]")
    if front:
        ax.plot(
            [o.price_usd for o in front],
            [o.decode_tokens_per_s for o in front],
            color="#c62828",
            lw=1,
            ls="--",
            label="Pareto front (price, speed, energy)",
        )
    for o in options:
        ax.annotate(f"{o.device_name} ({o.precision})", (o.price_usd, o.decode_tokens_per_s), fontsize=6)
    ax.axhline(data.workload.min_decode_tokens_per_s, color="grey", lw=0.7, label="speed floor")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("device price [USD] (log)")
    ax.set_ylabel("decode [tok/s] (log)")
    ax.set_title(f"Procurement for {data.spec(model_id).name}: outlined = meets the workload")
    ax.legend(fontsize=7)
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    return fig


PLOTS: dict[str, Callable[[ReportData], Figure]] = {
    "verdicts": verdict_heatmap_figure,
    "scaling": scaling_figure,
    "memory": memory_figure,
    "pareto": pareto_figure,
}


def render_plots(data: ReportData) -> dict[str, dict[str, bytes]]:
    """``{name: {"svg": bytes, "png": bytes}}`` for every plot."""
    plt = _plt()
    out: dict[str, dict[str, bytes]] = {}
    for name, draw in PLOTS.items():
        fig = draw(data)
        try:
            svg, png = io.BytesIO(), io.BytesIO()
            fig.savefig(svg, format="svg", metadata={"Date": None})
            fig.savefig(png, format="png", dpi=110)
            out[name] = {"svg": svg.getvalue(), "png": png.getvalue()}
        finally:
            plt.close(fig)
    return out
