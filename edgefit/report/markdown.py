"""report.md: GitHub-readable Markdown, a pure function of ``ReportData``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from edgefit.report import sections
from edgefit.report.data import ReportData
from edgefit.report.tables import Table


def render_markdown(data: ReportData, plot_paths: Mapping[str, str] | None = None) -> str:
    """``plot_paths``: plot name -> path relative to report.md (e.g. ``plots/verdicts.svg``)."""
    doc = sections.build(data)
    out: list[str] = [f"# {doc.title}", "", doc.byline, ""]
    out += ["## In plain words", ""]
    for summary in doc.summary:
        out += [_md_text(summary.text), ""]
        if summary.items:
            out += [f"- {_md_text(item)}" for item in summary.items] + [""]
    for section in doc.sections:
        out += [f"## {section.title}", ""]
        for para in section.paragraphs:
            out += [_md_text(para), ""]
        for table in section.tables:
            out += _table(table)
        for name in section.plots:
            if plot_paths and name in plot_paths:
                out += [f"![{sections.PLOT_TITLES[name]}]({plot_paths[name]})", ""]
        for item in section.bullets:
            out.append(f"- {_md_text(item)}")
        if section.bullets:
            out.append("")
    out += ["## Provenance", ""]
    out += _key_values(doc.provenance_items)
    return "\n".join(out).rstrip() + "\n"


def _table(table: Table) -> list[str]:
    lines = [f"**{_escape(table.title)}**", ""]
    lines.append("| " + " | ".join(_escape(h) for h in table.header) + " |")
    lines.append("|" + "|".join(["---"] + ["---:" if _numeric_header(h) else "---" for h in table.header[1:]]) + "|")
    for row in table.rows:
        lines.append("| " + " | ".join(_escape(c.text) for c in row) + " |")
    lines.append("")
    if table.note:
        lines += [f"<sub>{_escape(table.note)}</sub>", ""]
    return lines


def _numeric_header(h: str) -> bool:
    return "[" in h and "]" in h


def _key_values(items: Sequence[tuple[str, Any]]) -> list[str]:
    lines = ["| item | value |", "|---|---|"]
    for k, v in items:
        lines.append(f"| {_escape(k)} | {_escape(str(v))} |")
    lines.append("")
    return lines


def _escape(text: str) -> str:
    """Markdown table cells: pipes split cells, angle brackets would become HTML on GitHub."""
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;").replace("\n", " ")


def _md_text(text: str) -> str:
    """Prose: keep `code` spans, neutralise raw HTML."""
    return text.replace("<", "&lt;").replace(">", "&gt;")
