"""The report's "Measured energy and sustained speed on this host" section and its plot (pure: ReportData in).

Energy rows come from this host's own power sensors (edgefit.power) and are marked M (measured); where no
measurement carries a reading the section says "no power sensor found" and that every energy figure elsewhere
in the report is the profile's estimate. Sustained runs get a table (burst, sustained, ratio, heat, throttling)
and the "sustained" plot.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from edgefit.report import fmt
from edgefit.report.data import ReportData
from edgefit.report.sections import Section
from edgefit.report.tables import Cell, Table

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def energy_section(data: ReportData) -> Section | None:
    if not (data.measured_energy or data.sustained or data.power_note):
        return None
    paragraphs: list[str] = []
    tables: list[Table] = []
    if data.measured_energy:
        tables.append(energy_table(data))
        sensors = sorted({(e.sensor, e.covers) for e in data.measured_energy})
        paragraphs.append(
            "M = measured on this host by "
            + ", ".join(f"{s} ({c})" for s, c in sensors)
            + ": mean draw during the timed samples x median latency, per unit; above idle subtracts the draw "
            "measured just before the run. ± is the sensor's sampling uncertainty (interval against window). "
            "Energy figures for other devices are their own measured draw where a bundle imported for them "
            "carries one (MP/M in the procurement tables), else estimates from their profiles (S)."
        )
    elif data.power_note:
        paragraphs.append(data.power_note + ".")
    plots: tuple[str, ...] = ()
    if data.sustained:
        tables.append(sustained_table(data))
        plots = ("sustained",)
        notes = sorted({n for run in data.sustained for n in run.series.notes})
        if notes:
            paragraphs.append("Sustained runs: " + "; ".join(notes) + ".")
    return Section(
        "Measured energy and sustained speed on this host",
        paragraphs=tuple(paragraphs),
        tables=tuple(tables),
        plots=plots,
    )


def facts_section(data: ReportData) -> Section | None:
    """Per device: the sustained factor a sustained workload applied (and its basis) and the device's own measured
    draw that power budgets and energy were judged on. None when the workload is not sustained and no device
    has a power reading."""
    applied = {v.prediction.device_id: v.sustained for v in data.verdicts if v.sustained is not None}
    facts = {f.device_id: f for f in data.facts}
    if not applied and not any(f.draws for f in data.facts):
        return None
    rows = []
    for d in data.devices:
        s = applied.get(d.id)
        f = facts.get(d.id)
        top = max(f.draws, key=lambda x: x.power_w) if f is not None and f.draws else None
        rows.append(
            tuple(
                Cell(t)
                for t in (
                    d.id,
                    "-" if s is None else f"x{s.factor:.3g} {_FACTOR_MARK.get(s.basis, '?')}",
                    "-" if top is None else f"M {top.power_w:.2f} ±{top.uncertainty_rel:.0%}",
                    "-" if top is None else f"{top.sensor} ({top.covers}), {top.where}",
                    fmt.watts(d.load_power_w) + " S",
                    "-" if d.power_budget_w is None else fmt.watts(d.power_budget_w),
                )
            )
        )
    paragraphs = []
    if applied:
        paragraphs.append(
            "Sustained workload (`--sustained`): every device's predicted decode speed is multiplied by its "
            "sustained/burst factor before judging. M = from a `bench --sustained` run on this host, D = measured on "
            "the device (imported bundle of a linked host), G = given on the command line, N = no sustained figure "
            "exists for the device: 1.0 (burst speed)."
        )
        paragraphs.extend(sorted({f"{d}: {s.detail}" for d, s in applied.items() if s.basis != "none"}))
    paragraphs.append(
        "Measured draw: the highest mean power of the device's own decode, run or sustained measurements (M); a "
        "budget is judged on it where there is one, else on the profile's load power (S). A reading covering only "
        "the CPU package or SoC is judged against the budget but does not replace the whole-board figure."
    )
    notes = sorted({f"{f.device_id}: {n}" for f in data.facts for n in f.notes})
    return Section(
        "Sustained factors and measured power per device",
        paragraphs=tuple(paragraphs) + tuple(notes),
        tables=(
            Table(
                "Per device: sustained factor and measured draw",
                ("device", "sustained factor", "measured [W]", "sensor, where", "load [W]", "budget [W]"),
                tuple(rows),
            ),
        ),
    )


_FACTOR_MARK = {"measured": "M", "measured_on_device": "D", "given": "G", "none": "N"}


def energy_table(data: ReportData) -> Table:
    rows = []
    for e in data.measured_energy:
        above = "-" if e.energy_above_idle_j is None else f"{e.energy_above_idle_j * 1e3:.3g}"
        rows.append(
            tuple(
                Cell(t)
                for t in (
                    e.model_id,
                    e.precision,
                    e.phase + (f" d{e.context_tokens}" if e.phase in ("decode", "sustained") else ""),
                    e.unit,
                    f"{e.sensor} ({e.covers})",
                    f"{e.mean_w:.2f}",
                    f"M {e.energy_j * 1e3:.3g} ±{e.uncertainty_rel:.0%}",
                    above,
                )
            )
        )
    return Table(
        "Measured energy per unit on this host",
        ("model", "precision", "phase", "unit", "sensor", "power [W]", "energy [mJ/unit]", "above idle [mJ/unit]"),
        tuple(rows),
    )


def sustained_table(data: ReportData) -> Table:
    rows = []
    for run in data.sustained:
        s = run.series
        unit = "tok/s" if s.unit == "tokens" else "inf/s"
        ratio = s.sustained_ratio
        tmax = s.max_temperature_c()
        throttled = "-" if all(b is None for b in s.throttled) else f"{s.throttled_points()} of {len(s.t_s)}"
        rows.append(
            tuple(
                Cell(t)
                for t in (
                    run.model_id,
                    run.precision,
                    f"{s.t_s[-1]:.0f}" if s.t_s else "0",
                    f"M {fmt.tps(s.burst_rate_per_s)} {unit}",
                    f"M {fmt.tps(s.sustained_rate_per_s)} {unit}",
                    "-" if ratio is None else f"{ratio:.3f}",
                    "-" if tmax is None else f"{tmax:.1f}",
                    throttled,
                )
            )
        )
    return Table(
        "Sustained runs on this host (edgefit bench --sustained): burst = first 10 %, sustained = last 25 %",
        ("model", "precision", "duration [s]", "burst", "sustained", "sustained/burst", "max temp [°C]", "throttled"),
        tuple(rows),
    )


def draw_sustained(plt: Any, data: ReportData) -> Figure:
    """Rate over time for every sustained run; temperature, clock and power on extra panels when recorded."""
    runs = data.sustained
    has_temp = any(run.series.max_temperature_c() is not None for run in runs)
    has_clock = any(c is not None for run in runs for c in run.series.cpu_freq_hz)
    has_power = any(w is not None for run in runs for w in run.series.power_w)
    panels = 1 + has_temp + has_clock + has_power
    fig, axes = plt.subplots(panels, 1, figsize=(7.0, 1.9 + 1.6 * panels), sharex=True, squeeze=False)
    axes = [a[0] for a in axes]
    for run in runs:
        s = run.series
        label = f"{run.model_id} {run.precision}"
        axes[0].plot(s.t_s, s.rate_per_s, label=label, linewidth=1)
        i = 1
        if has_temp:
            hottest = [max((v for v in row if v is not None), default=float("nan")) for row in s.temperatures_c]
            axes[i].plot(s.t_s, hottest, label=label, linewidth=1)
            throttled = [t for t, b in zip(s.t_s, s.throttled, strict=True) if b is not None and b & 0x6]
            if throttled:
                axes[i].plot(throttled, [max(hottest)] * len(throttled), "|", color="#c62828", label="throttled")
            i += 1
        if has_clock:
            axes[i].plot(s.t_s, [None if c is None else c / 1e9 for c in s.cpu_freq_hz], linewidth=1)
            i += 1
        if has_power:
            axes[i].plot(s.t_s, s.power_w, linewidth=1)
    unit = "tok/s" if runs and runs[0].series.unit == "tokens" else "inferences/s"
    axes[0].set_ylabel(unit)
    axes[0].set_ylim(bottom=0)
    axes[0].legend(loc="lower left", fontsize=7)
    i = 1
    for flag, ylabel in ((has_temp, "hottest zone [°C]"), (has_clock, "mean CPU clock [GHz]"), (has_power, "W")):
        if flag:
            axes[i].set_ylabel(ylabel)
            i += 1
    axes[-1].set_xlabel("time [s of steps]")
    missing = [w for w, f in (("temperature", has_temp), ("clocks", has_clock), ("power", has_power)) if not f]
    title = "Sustained run on this host (measured)"
    if missing:
        title += ": no " + ", ".join(missing) + " readable here"
    axes[0].set_title(title)
    fig.tight_layout()
    return fig
