"""report.html: one self-contained file. Plots are embedded as base64 SVG data URIs; every string that came
from a user (device names, model names, reasons) goes through jinja2's autoescape."""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from pathlib import Path

import jinja2
import markupsafe

from edgefit.report import sections
from edgefit.report.data import ReportData

_TEMPLATES = Path(__file__).resolve().parent / "templates"


def code_spans(text: str) -> markupsafe.Markup:
    """Escape ``text`` first, then turn `backtick` spans into <code>: nothing from the text becomes markup."""
    escaped = str(markupsafe.escape(text))
    return markupsafe.Markup(re.sub(r"`([^`<>]+)`", r"<code>\1</code>", escaped))


def _environment() -> jinja2.Environment:
    # autoescape=True unconditionally: select_autoescape() keys on the file suffix, and ours is ".html.j2".
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(_TEMPLATES)),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=False,
        keep_trailing_newline=True,
    )
    env.filters["code"] = code_spans
    return env


def render_html(data: ReportData, plots_svg: Mapping[str, bytes] | None = None) -> str:
    """``plots_svg``: plot name -> SVG bytes, embedded in place."""
    doc = sections.build(data)
    encoded = {name: base64.b64encode(svg).decode("ascii") for name, svg in (plots_svg or {}).items()}
    template = _environment().get_template("report.html.j2")
    return template.render(doc=doc, plots=encoded, plot_titles=sections.PLOT_TITLES)
