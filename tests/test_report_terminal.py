"""Terminal matrix: symbols and words without colour, markup in names printed literally, split to the width."""

from __future__ import annotations

import dataclasses
import io

from rich.console import Console
from test_report_fakes import FIXED_DEVICES, fixed_report

from edgefit.report.terminal import print_matrix, print_reasons


def _render(width: int, data=None) -> str:  # type: ignore[no-untyped-def]
    buf = io.StringIO()
    console = Console(file=buf, width=width, no_color=True, highlight=False)
    print_matrix(console, data or fixed_report())
    return buf.getvalue()


def test_cells_read_without_colour() -> None:
    data = fixed_report()
    text = _render(200, data)
    assert "\x1b[" not in text
    kinds = {v.kind for v in data.verdicts}
    assert len(kinds) >= 4
    for kind in kinds:
        assert kind.symbol in text
    assert "[tok/s]" in text  # the unit survives rich markup


def test_narrow_console_splits_the_devices_into_several_tables() -> None:
    wide, narrow = _render(200), _render(60)
    assert narrow.count("int8: verdict") > wide.count("int8: verdict") == 1
    assert max(len(line) for line in narrow.splitlines()) <= 60


def test_markup_in_a_device_id_is_printed_literally() -> None:
    evil = dataclasses.replace(FIXED_DEVICES[0], id="[red]evil[/red]")
    data = fixed_report((evil, FIXED_DEVICES[1]))
    assert "[red]evil" in _render(200, data)
    buf = io.StringIO()
    print_reasons(Console(file=buf, width=300, no_color=True), data.verdicts_for(device_id=evil.id)[:1])
    assert "[red]evil" in buf.getvalue()
