"""Terminal output (rich): the verdict matrix of ``edgefit fit`` and the closing summary of ``edgefit report``.

Colour is an extra: every cell carries a symbol and a word ("✓ fits", "~ tight", "✗ no-fit") so it reads the
same with NO_COLOR or in a log file. Everything printed is a ``rich.text.Text`` (or a string with
``markup=False``): device and model names, ids and reasons come from files, and a ``[/bold]`` in one must print
as itself on any console, never as markup.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from pathlib import Path

from rich.cells import cell_len
from rich.console import Console
from rich.table import Table as RichTable
from rich.text import Text

from edgefit.profiles import DeviceProfile
from edgefit.report import fmt
from edgefit.report.data import ReportData
from edgefit.verdict import Verdict, VerdictKind, model_params

STYLES: dict[VerdictKind, str] = {
    VerdictKind.FITS: "green",
    VerdictKind.TIGHT: "yellow",
    VerdictKind.TOO_SLOW: "red",
    VerdictKind.OVER_POWER_BUDGET: "magenta",
    VerdictKind.DOES_NOT_FIT: "bold red",
    VerdictKind.WEIGHTS_NOT_PUBLIC: "dim",
}


MODEL_COLUMN_WIDTH = 24
DEVICE_COLUMN_WIDTH = 13


def wrap_id(ident: str, width: int) -> str:
    """An id on lines of at most ``width`` cells, broken after its hyphens (``intel-n100-`` / ``mini-pc-16gb``),
    or spaces, not mid-word; a part longer than a line is cut where it must be."""
    lines: list[str] = []
    line = ""
    for part in re.findall(r"[^-\s]+[-\s]*|[-\s]+", ident):
        if line and cell_len((line + part).rstrip()) > width:
            lines.append(line.rstrip())
            line = ""
        while cell_len(part) > width:
            lines.append(part[:width])
            part = part[width:]
        line += part
    return "\n".join([*lines, line.rstrip()] if line.strip() else lines)


def matrix_table(data: ReportData, precision: str, devices: Sequence[DeviceProfile] | None = None) -> RichTable:
    """Models (rows, by size) x devices (columns) at one precision; cells: verdict, decode tok/s, memory GiB."""
    devices = data.devices if devices is None else devices
    table = RichTable(
        title=Text(f"{precision}: verdict, decode [tok/s] and basis / memory [GiB]"),
        title_justify="left",
        pad_edge=False,
    )
    table.add_column("model", overflow="fold", max_width=MODEL_COLUMN_WIDTH)  # a long card id folds, whole
    for device in devices:
        table.add_column(
            Text(f"{wrap_id(device.id, DEVICE_COLUMN_WIDTH)}\n{fmt.gib(device.usable_ram_bytes)} GiB usable"),
            overflow="fold",
            max_width=DEVICE_COLUMN_WIDTH,
        )
    for spec in data.specs_by_size():
        cells = [Text(wrap_id(f"{spec.id} ({fmt.params(model_params(spec))})", MODEL_COLUMN_WIDTH))]
        for device in devices:
            v = data.verdict(spec.id, precision, device.id)
            if v is None:
                cells.append(Text("n/a"))
                continue
            p = v.prediction
            text = (
                f"{v.kind.symbol}\n{fmt.tps(p.decode_tokens_per_s.value)} {fmt.mark(p.decode_tokens_per_s)} / "
                f"{fmt.gib(v.memory_bytes)}"
            )
            cells.append(Text(text, style=STYLES[v.kind]))
        table.add_row(*cells)
    return table


def print_matrix(console: Console, data: ReportData) -> None:
    """One table per precision, split into several when the devices do not fit the console's width."""
    per_table = max(1, (console.width - MODEL_COLUMN_WIDTH - 2) // (DEVICE_COLUMN_WIDTH + 1))
    chunks = [data.devices[i : i + per_table] for i in range(0, len(data.devices), per_table)] or [()]
    for precision in data.precisions:
        for chunk in chunks:
            console.print(matrix_table(data, precision, chunk))
        console.print()
    console.print(Text(fmt.BASIS_LEGEND, style="dim"))


def print_reasons(console: Console, verdicts: Iterable[Verdict], *, notes: bool = True) -> None:
    """One line per verdict: ids, symbol, every reason; then its memory note if any."""
    for v in verdicts:
        p = v.prediction
        head = f"{p.model_id} @ {p.precision} on {p.device_id}: {v.kind.symbol}"
        console.print(Text.assemble((head, STYLES[v.kind]), f": {'; '.join(v.reasons)}"))
        if notes:
            for note in v.notes:
                console.print(Text(f"  note: {note}", style="dim"))


def print_answers(console: Console, data: ReportData, *, max_pairs: int = 12) -> None:
    """The two questions the matrix answers, in words: per device the largest model meeting the workload, and
    (for a few model x device pairs, with several precisions) the least-quantized precision that meets it."""
    if len(data.runnable_precisions) > 1 and len(data.specs) * len(data.devices) <= max_pairs:
        for spec in data.specs_by_size():
            for device in data.devices:
                best = data.best_precision(spec.id, device.id)
                answer = (
                    f"{best.prediction.precision} ({fmt.tps(best.prediction.decode_tokens_per_s.value)} tok/s)"
                    if best
                    else "none meets the workload"
                )
                console.print(Text(f"best precision for {spec.id} on {device.id}: {answer}"))
    if len(data.specs) > 1:
        for device in data.devices:
            v = data.largest_model(device.id)
            answer = (
                f"{v.prediction.model_id} at {v.prediction.precision} "
                f"({fmt.tps(v.prediction.decode_tokens_per_s.value)} tok/s)"
                if v
                else "none of these models meets the workload"
            )
            console.print(Text(f"largest model on {device.id}: {answer}"))


def print_device_facts(console: Console, data: ReportData) -> None:
    """Per device: the sustained factor used (a sustained workload) and its own measured draw, with the basis."""
    sustained = {v.prediction.device_id: v.sustained for v in data.verdicts if v.sustained is not None}
    facts = {f.device_id: f for f in data.facts}
    for device in data.devices:
        s = sustained.get(device.id)
        if s is not None:
            console.print(f"sustained factor on {device.id}: decode x{s.factor:.3g} ({s.basis}): {s.detail}",
                          markup=False, highlight=False)  # fmt: skip
        f = facts.get(device.id)
        if f is not None and f.draws:
            top = max(f.draws, key=lambda d: d.power_w)
            console.print(f"measured power on {device.id}: highest {top.describe()} ({len(f.draws)} readings)",
                          markup=False, highlight=False)  # fmt: skip
        for note in f.notes if f is not None else ():
            console.print(f"note: {device.id}: {note}", markup=False, highlight=False)


def print_written(console: Console, paths: Sequence[Path], out_dir: Path) -> None:
    main = [p for p in paths if p.parent == out_dir]
    plots = [p for p in paths if p.parent != out_dir]
    for p in main:
        console.print(Text(f"wrote {p}"))
    if plots:
        console.print(Text(f"wrote {len(plots)} plots to {plots[0].parent}"))
