"""Write a report folder: report.md, report.html, results.json, results.csv, plots/*.svg|png."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from edgefit.errors import UsageError
from edgefit.report.data import ReportData
from edgefit.report.html import render_html
from edgefit.report.markdown import render_markdown
from edgefit.report.results import results_csv, results_document

FORMATS: tuple[str, ...] = ("md", "html", "json", "csv")


def parse_formats(text: str) -> tuple[str, ...]:
    """``"md,html"`` -> ("md", "html"); unknown names are a UsageError listing the valid ones."""
    names = tuple(dict.fromkeys(t.strip().lower() for t in text.split(",") if t.strip()))
    bad = [n for n in names if n not in FORMATS]
    if bad or not names:
        raise UsageError(f"--format: unknown format {', '.join(bad) or repr(text)}; choose from {','.join(FORMATS)}")
    return names


def write_report(data: ReportData, out_dir: Path, formats: Iterable[str] = FORMATS) -> tuple[Path, ...]:
    """Write the requested formats into ``out_dir`` (created if needed); returns the files written.
    Plots are written (SVG and PNG) whenever md or html is requested, since both show them."""
    wanted = tuple(formats)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"--out {out_dir}: cannot create the folder ({exc.strerror}); choose a writable path") from exc
    written: list[Path] = []
    plot_paths: dict[str, str] = {}
    plots_svg: dict[str, bytes] = {}
    if "md" in wanted or "html" in wanted:
        from edgefit.report.plots import render_plots  # matplotlib only when plots are needed

        plot_dir = out_dir / "plots"
        plot_dir.mkdir(exist_ok=True)
        for name, files in render_plots(data).items():
            for ext, blob in files.items():
                path = plot_dir / f"{name}.{ext}"
                path.write_bytes(blob)
                written.append(path)
            plot_paths[name] = f"plots/{name}.svg"
            plots_svg[name] = files["svg"]
    if "md" in wanted:
        written.append(_write(out_dir / "report.md", render_markdown(data, plot_paths)))
    if "html" in wanted:
        written.append(_write(out_dir / "report.html", render_html(data, plots_svg)))
    if "json" in wanted:
        text = json.dumps(results_document(data), indent=2, allow_nan=False) + "\n"
        written.append(_write(out_dir / "results.json", text))
    if "csv" in wanted:
        written.append(_write(out_dir / "results.csv", results_csv(data)))
        if data.user_graphs:  # report --model FILE.onnx: its own columns (results.csv's are a decoder's)
            from edgefit.report.usergraphs import user_graphs_csv

            written.append(_write(out_dir / "results_user_models.csv", user_graphs_csv(data.user_graphs)))
    return tuple(written)


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path
