"""Tables that read at 80 columns.

rich squeezes a table wider than the terminal by truncating every cell to "…": at 80 columns
``edgefit profiles list`` was a wall of them. Here each command lists its columns with a priority; when the
columns' narrowest readable widths (ids and numbers whole, names wrapped at spaces, headers wrapped at spaces)
do not fit, the least important columns are left out, and the caller prints which ones (``--json`` has them all).

    columns (priority)  ──> measure the narrowest readable table ──> fits? ──> print
                                       ^                                 │ no
                                       └──── leave out the lowest ───────┘
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from rich.cells import cell_len
from rich.table import Table
from rich.text import Text

Cell = str | Text
MIN_WRAP_WIDTH = 12  # a wrapped name narrower than this reads as a column of syllables


@dataclass(frozen=True, slots=True)
class Col:
    """A column: ``keep`` ranks it (larger stays longer; 100 = never left out); ``wrap`` lets long text (names,
    kinds) wrap at spaces, while other cells (ids, numbers) always show whole. Headers wrap at spaces."""

    header: str
    justify: Literal["left", "right", "center"] = "left"
    keep: int = 50
    wrap: bool = False
    max_width: int | None = None


def fitted_table(
    cols: Sequence[Col],
    rows: Sequence[Sequence[Cell]],
    width: int,
    *,
    title: str | None = None,
    **table_kwargs: object,
) -> tuple[Table, tuple[str, ...]]:
    """A table of the most important columns that fit ``width`` readably, and the headers left out. Column widths
    are set here (rich, left to itself, truncates every column alike when the table is too wide)."""
    least, most = (
        zip(*(_widths(c, [r[i] for r in rows]) for i, c in enumerate(cols)), strict=True) if cols else ((), ())
    )
    kept = list(range(len(cols)))
    while _total(least[i] for i in kept) > width:
        droppable = [i for i in kept if cols[i].keep < 100]
        if not droppable:
            break
        kept.remove(min(droppable, key=lambda i: (cols[i].keep, -i)))  # ties: the rightmost goes first
    widths = {i: least[i] for i in kept}
    spare = width - _total(widths.values())
    # room left: first unwrap names (fewer lines per row), then headers; the most important first
    for i in sorted(kept, key=lambda i: (not cols[i].wrap, -cols[i].keep)):
        grow = max(0, min(spare, most[i] - widths[i]))
        widths[i] += grow
        spare -= grow
    table = Table(title=title, **table_kwargs)  # type: ignore[arg-type]
    for i in kept:
        c = cols[i]
        table.add_column(c.header, justify=c.justify, width=widths[i], overflow="fold")
    for row in rows:
        table.add_row(*(row[i] for i in kept))
    return table, tuple(cols[i].header for i in range(len(cols)) if i not in kept)


def left_out_note(dropped: Sequence[str], width: int) -> str | None:
    """The line saying which columns a ``width``-column terminal could not show, or None."""
    if not dropped:
        return None
    return f"left out at {width} columns: {', '.join(dropped)} (a wider terminal or --json shows them)"


def _widths(col: Col, cells: Sequence[Cell]) -> tuple[int, int]:
    """(narrowest readable, natural) width of a column's content."""
    lines = [line for cell in cells for line in _plain(cell).splitlines()] or [""]
    natural = max(max(cell_len(line) for line in lines), cell_len(col.header))
    header_word = max(cell_len(w) for w in col.header.split() or [""])
    if col.wrap:
        word = max((cell_len(w) for line in lines for w in line.split()), default=0)
        narrow = max(header_word, min(natural, max(word, MIN_WRAP_WIDTH)))
        if col.max_width is not None:
            natural = min(natural, max(col.max_width, narrow))
    else:
        narrow = max(header_word, max(cell_len(line) for line in lines))
    return narrow, max(natural, narrow)


def _total(widths: object) -> int:
    """Table width for these column widths: a border and one space of padding each side per column."""
    ws = list(widths)  # type: ignore[call-overload]
    return sum(ws) + 3 * len(ws) + 1


def _plain(cell: Cell) -> str:
    return cell.plain if isinstance(cell, Text) else str(cell)
