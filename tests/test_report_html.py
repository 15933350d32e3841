"""report.html: well-formed, self-contained, hostile names escaped; plots render; the writer writes every file."""

from __future__ import annotations

import dataclasses
from html.parser import HTMLParser
from pathlib import Path

import pytest
from test_report_fakes import FIXED_DEVICES, fixed_report

from edgefit.errors import UsageError
from edgefit.report.html import render_html
from edgefit.report.markdown import render_markdown
from edgefit.report.writer import parse_formats, write_report

HOSTILE = "<script>alert(1)</script>"
VOID = {"meta", "img", "br", "hr", "link", "input", "col", "area", "base", "source", "wbr"}


class _TagChecker(HTMLParser):
    """Every opened element is closed in order; records script tags and external resources."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.scripts = 0
        self.external: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "script":
            self.scripts += 1
        for key, value in attrs:
            if key in ("src", "href") and value and not value.startswith("data:"):
                self.external.append(value)
        if tag not in VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1] if self.stack else 'nothing'}")
            return
        self.stack.pop()


def _hostile_report():  # type: ignore[no-untyped-def]
    evil = dataclasses.replace(FIXED_DEVICES[1], name=HOSTILE)
    return fixed_report((FIXED_DEVICES[0], evil, FIXED_DEVICES[2]))


def _check_html(text: str) -> _TagChecker:
    checker = _TagChecker()
    checker.feed(text)
    checker.close()
    assert checker.errors == []
    assert checker.stack == []
    return checker


def test_html_is_well_formed_and_escapes_hostile_names() -> None:
    text = render_html(_hostile_report(), {"verdicts": b"<svg xmlns='http://www.w3.org/2000/svg'></svg>"})
    checker = _check_html(text)
    assert checker.scripts == 0
    assert checker.external == []
    assert HOSTILE not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert 'src="data:image/svg+xml;base64,' in text


def test_markdown_neutralises_hostile_names() -> None:
    text = render_markdown(_hostile_report())
    assert HOSTILE not in text
    assert "&lt;script&gt;" in text


def test_writer_writes_all_formats_with_embedded_plots(tmp_path: Path) -> None:
    written = write_report(_hostile_report(), tmp_path / "out")
    names = {p.relative_to(tmp_path / "out").as_posix() for p in written}
    expected = {"report.md", "report.html", "results.json", "results.csv"}
    for plot in ("verdicts", "scaling", "memory", "pareto"):
        expected |= {f"plots/{plot}.svg", f"plots/{plot}.png"}
    assert names == expected
    assert (tmp_path / "out/plots/memory.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    html = (tmp_path / "out/report.html").read_text()
    checker = _check_html(html)
    assert checker.scripts == 0 and checker.external == []
    assert html.count("data:image/svg+xml;base64,") == 4
    assert HOSTILE not in html
    # the hostile name inside the embedded SVG is escaped by matplotlib too
    svg = (tmp_path / "out/plots/verdicts.svg").read_text()
    assert HOSTILE not in svg


def test_writer_only_requested_formats(tmp_path: Path) -> None:
    written = write_report(fixed_report(), tmp_path, ("json", "csv"))
    assert sorted(p.name for p in written) == ["results.csv", "results.json"]
    assert not (tmp_path / "plots").exists()


def test_parse_formats() -> None:
    assert parse_formats("md, html,md") == ("md", "html")
    with pytest.raises(UsageError, match="choose from md,html,json,csv"):
        parse_formats("pdf")


def test_code_spans_escape_before_marking_up() -> None:
    from edgefit.report.html import code_spans

    assert str(code_spans("run `edgefit validate` now")) == "run <code>edgefit validate</code> now"
    assert str(code_spans("`<script>`x")) == "<code>&lt;script&gt;</code>x"
    assert "<b>" not in str(code_spans("<b>`bold`</b>"))
