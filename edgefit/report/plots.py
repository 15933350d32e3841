"""Plots (matplotlib, Agg backend): verdict heat map, scaling (log-log), memory vs usable RAM, Pareto chart.

Each ``*_figure`` draws one figure from ``ReportData``; ``render_plots`` returns every plot as SVG and PNG bytes.
matplotlib is imported lazily so that ``edgefit fit`` does not pay for it.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from edgefit.procurement import pareto_front
from edgefit.profiles import DeviceProfile
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
    plt.rcParams["svg.fonttype"] = "none"  # text stays text: 10x faster to write, smaller, searchable
    plt.rcParams["font.size"] = 8
    return plt


def verdict_heatmap_figure(data: ReportData) -> Figure:
    plt = _plt()
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    kinds = list(VerdictKind)
    specs = data.specs_by_size()
    precisions = data.runnable_precisions or data.precisions
    n_prec = max(1, len(precisions))
    width = 3.5 + 0.3 * len(data.devices)
    height = 1.6 + n_prec * (0.6 + 0.2 * len(specs))
    fig, axes = plt.subplots(n_prec, 1, figsize=(width, height), squeeze=False, sharex=True)
    cmap = ListedColormap([KIND_COLOURS[k] for k in kinds] + ["#ffffff"])
    for ax, precision in zip(axes[:, 0], precisions, strict=False):
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
                    ax.text(j, i, _SHORT[kinds[k]], ha="center", va="center", color="white", fontsize=6)
        ax.set_title(precision, fontsize=8, loc="left")
        ax.set_yticks(range(len(specs)))
        ax.set_yticklabels([f"{s.name} ({fmt.params(model_params(s))})" for s in specs], fontsize=6)
    last = axes[-1, 0]
    last.set_xticks(range(len(data.devices)))
    last.set_xticklabels([d.id for d in data.devices], rotation=60, ha="right", fontsize=6)
    handles = [Patch(color=KIND_COLOURS[k], label=k.symbol) for k in kinds]
    fig.legend(handles=handles, loc="upper center", ncol=len(kinds), frameon=False, fontsize=7)
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    return fig


def scaling_figure(data: ReportData) -> Figure:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7.5, 5))
    precisions = sorted({p.precision for p in data.scaling})
    labelled = "int8" if "int8" in precisions else (precisions[0] if precisions else "")
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
            if precision == labelled:  # one series labelled: the others share its model order
                for p in extrap:
                    ax.annotate(
                        p.label, (p.weight_read_bytes_per_token, p.decode_s_per_token), fontsize=5, rotation=-30
                    )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("weight bytes read per decoded token [B]")
    ax.set_ylabel("decode time per token on this host [s]")
    ax.set_title(
        f"Scaling on this host: measured rungs (o), catalog models extrapolated (x, labelled at {labelled})", fontsize=8
    )
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
    for ram, label in _ram_lines(data):
        ax.axhline(ram / 2**30, color="#c62828", lw=0.7, ls="--")
        ax.text(len(names) - 0.4, ram / 2**30, f" {label}", fontsize=6, va="bottom", ha="right")
    ax.set_ylim(bottom=0.05)
    ax.set_yscale("log")
    ax.set_xticks(list(xs))
    ax.set_xticklabels(names, rotation=60, ha="right", fontsize=6)
    ax.set_ylabel("memory [GiB] (log)")
    ax.set_title(f"Memory at {precision} against usable RAM (dashed lines)")
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    return fig


def _ram_lines(data: ReportData, ratio: float = 1.15) -> list[tuple[int, str]]:
    """Usable-RAM lines, devices within ``ratio`` of each other merged into one labelled line."""
    devices = sorted(data.devices, key=lambda d: d.usable_ram_bytes)
    groups: list[list[DeviceProfile]] = []
    for d in devices:
        if groups and d.usable_ram_bytes <= groups[-1][0].usable_ram_bytes * ratio:
            groups[-1].append(d)
        else:
            groups.append([d])
    lines = []
    for g in groups:
        lo, hi = g[0].usable_ram_bytes, g[-1].usable_ram_bytes
        span = f"{fmt.gib(lo)} GiB" if fmt.gib(lo) == fmt.gib(hi) else f"{fmt.gib(lo)}-{fmt.gib(hi)} GiB"
        more = f" +{len(g) - 1} more" if len(g) > 1 else ""
        lines.append((lo, f"{g[0].id}{more}: {span}"))
    return lines


def pareto_figure(data: ReportData) -> Figure:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7.5, 5))
    models = tables.pareto_model(data)
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
        ax.scatter(
            [o.price_usd for o in front],
            [o.decode_tokens_per_s for o in front],
            s=160,
            facecolors="none",
            edgecolors="#c62828",
            linewidths=1.2,
            zorder=4,
            label="Pareto front (price, speed, energy)",
        )
    for o in options:
        ax.annotate(f"{o.device_id} ({o.precision})", (o.price_usd, o.decode_tokens_per_s), fontsize=5)
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


def sustained_figure(data: ReportData) -> Figure:
    from edgefit.report.energy import draw_sustained

    return draw_sustained(_plt(), data)


PLOTS: dict[str, Callable[[ReportData], Figure]] = {
    "verdicts": verdict_heatmap_figure,
    "scaling": scaling_figure,
    "memory": memory_figure,
    "pareto": pareto_figure,
    "sustained": sustained_figure,
}


def render_plots(data: ReportData) -> dict[str, dict[str, bytes]]:
    """``{name: {"svg": bytes, "png": bytes}}`` for every plot."""
    plt = _plt()
    out: dict[str, dict[str, bytes]] = {}
    for name, draw in PLOTS.items():
        if name == "sustained" and not data.sustained:
            continue  # drawn only when this host has a sustained run
        fig = draw(data)
        try:
            svg, png = io.BytesIO(), io.BytesIO()
            fig.savefig(svg, format="svg", metadata={"Date": None})
            fig.savefig(png, format="png", dpi=110)
            out[name] = {"svg": svg.getvalue(), "png": png.getvalue()}
        finally:
            plt.close(fig)
    return out
