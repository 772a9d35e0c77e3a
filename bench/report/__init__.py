"""Reports of one run: a self-contained ``index.html`` and a GitHub ``README.md`` with PNG plots.

``write_report(run_dir, out_dir)`` reads only ``run_dir/run.json`` and the result parquet; every
number in the report is recomputed from the rows by :mod:`bench.analysis.summary`.
"""

from __future__ import annotations

from pathlib import Path

from bench.report.html import render_html
from bench.report.loading import RunData, load_run
from bench.report.markdown import render_markdown
from bench.report.model import ReportModel, build_model
from bench.runner.atomic import atomic_write_bytes

PLOT_DIR = "plots"

__all__ = ["PLOT_DIR", "ReportModel", "RunData", "build_model", "load_run", "write_report"]


def write_report(run_dir: Path, out_dir: Path) -> Path:
    """Write ``out_dir/index.html``, ``out_dir/README.md`` and ``out_dir/plots/*.png``.

    Returns the path of ``index.html``.
    """
    model = build_model(load_run(Path(run_dir)))
    out_dir = Path(out_dir)
    (out_dir / PLOT_DIR).mkdir(parents=True, exist_ok=True)
    for plot in model.plots:
        atomic_write_bytes(out_dir / PLOT_DIR / plot.filename, plot.png)
    atomic_write_bytes(out_dir / "README.md", render_markdown(model, PLOT_DIR).encode("utf-8"))
    index = out_dir / "index.html"
    atomic_write_bytes(index, render_html(model).encode("utf-8"))
    return index
