"""Render a :class:`~bench.report.model.ReportModel` as GitHub-flavoured markdown.

Every string that comes from results or metadata goes through :func:`md_escape`: HTML-special
characters and ``|`` become entities (a ``|`` would split a table cell, ``<script>`` would be
raw HTML) and markdown punctuation is backslash-escaped, so names render as the literal text.
"""

from __future__ import annotations

import re

from bench.report.model import Plot, ReportModel
from bench.report.tables import Table

_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", "|": "&#124;", '"': "&quot;"}
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+!~:])")
MD_FAILURE_ROWS = 100


def md_escape(text: object) -> str:
    """Literal text for a markdown paragraph or table cell (single line)."""
    s = " ".join(str(text).split())
    s = _MD_SPECIAL.sub(r"\\\1", s)
    return "".join(_ENTITIES.get(ch, ch) for ch in s)


def md_table(table: Table, empty: str, max_rows: int | None = None) -> str:
    if not table.rows:
        return f"_{md_escape(empty)}_\n"
    lines = [
        "| " + " | ".join(md_escape(c.label) for c in table.columns) + " |",
        "| " + " | ".join("---:" if c.numeric else "---" for c in table.columns) + " |",
    ]
    rows = table.rows if max_rows is None else table.rows[:max_rows]
    for row in rows:
        cells = [f"**{md_escape(c.text)}**" if c.best and c.text else md_escape(c.text) for c in row]
        lines.append("| " + " | ".join(cells) + " |")
    out = "\n".join(lines) + "\n"
    if max_rows is not None and len(table.rows) > max_rows:
        out += f"\n_Showing {max_rows} of {len(table.rows)} rows here; index.html has more._\n"
    if table.note:
        out += f"\n_{md_escape(table.note)}_\n"
    return out


def _figure(plot: Plot, plot_dir: str) -> str:
    return f"![{md_escape(plot.title)}]({plot_dir}/{plot.filename})\n\n_{md_escape(plot.caption)}_\n"


def render_markdown(model: ReportModel, plot_dir: str = "plots") -> str:
    """Markdown whose images are ``plot_dir/<plot.filename>`` relative to the README."""
    out = [f"# {md_escape(model.title)}\n"]
    out.append("| | |\n| --- | --- |\n" + "".join(
        f"| {md_escape(k)} | {md_escape(v)} |\n" for k, v in model.header))
    out.extend(f"_{md_escape(n)}_\n" for n in model.notes)
    if not model.sections:
        out.append("## Leaderboard\n\n_This run has no result rows._\n")
    for s in model.sections:
        out.append(f"## Task: {md_escape(s.title)}\n")
        out.append("### Leaderboard\n\n" + md_table(s.leaderboard, "No op-point was evaluated on this task."))
        out.extend(f"_{md_escape(n)}_\n" for n in s.notes)
        if s.quality_plots:
            out.append("### Bitrate vs quality\n\n" + "\n".join(_figure(p, plot_dir) for p in s.quality_plots))
        if s.distribution_plots:
            out.append("### Per-utterance distributions\n\n"
                       + "\n".join(_figure(p, plot_dir) for p in s.distribution_plots))
    out.append(f"## Failures ({model.n_failed})\n\n" + md_table(model.failures, "No failed cells.", MD_FAILURE_ROWS))
    out.append("## Metric definitions\n\n" + md_table(model.metrics, "run.json lists no metrics."))
    out.append("## Codec metadata\n\n" + md_table(model.codecs, "run.json lists no codecs."))
    if model.lms.rows:
        out.append("## Codec-LM metadata\n\n" + md_table(model.lms, "run.json lists no codec-LMs."))
    return "\n".join(out)
