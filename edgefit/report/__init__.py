"""Reports: everything ``edgefit fit`` and ``edgefit report`` show, as pure functions of one ``ReportData``.

pipeline  Store -> (quick ladder if empty) -> calibrate -> predict -> judge  ==>  data.ReportData
sections  the outline shared by md and html (summary, tables, plots, provenance)
tables    plain-text tables with a verdict kind per cell      summary  the plain-words opening
markdown  report.md      html  report.html (jinja2, autoescaped, plots embedded)
results   results.json / results.csv (base SI units)        plots  matplotlib, Agg: SVG and PNG
terminal  the rich verdict matrix of `edgefit fit`           writer  writes a report folder
"""
