"""The published page of a leaderboard: ``index.html`` (self-contained) and ``README.md`` + plots.

Built from a :class:`~bench.leaderboard.build.Board` only; like the run report, content is
computed once into a page model and rendered twice, with Jinja autoescape for HTML and
:func:`~bench.report.markdown.md_escape` for markdown, so result strings stay text.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from bench.report.board_tables import ledger_table, ranking_table, reported_table
from bench.report.html import environment
from bench.report.markdown import md_escape, md_table
from bench.report.model import Plot, slug
from bench.report.plots import family_styles
from bench.report.rq_plots import rate_quality_front
from bench.report.rq_tables import anchors_table, bd_matrix_table, pareto_table
from bench.report.tables import Table, metric_decimals, one_line
from bench.runner.atomic import atomic_write_bytes

if TYPE_CHECKING:
    from bench.leaderboard.build import Board

PLOT_DIR = "plots"


@dataclass
class RQView:
    metric: str
    anchor: str
    plots: list[Plot]
    pareto: Table
    anchors: Table
    bd_rate: Table | None
    bd_quality: Table | None


@dataclass
class BoardSection:
    title: str
    anchor: str
    ranking: Table
    rate_quality: list[RQView] = field(default_factory=list)


@dataclass
class LeaderboardPage:
    title: str
    description: str
    header: list[tuple[str, str]]
    sections: list[BoardSection]
    ledger: Table
    reported: Table
    methods: list[tuple[str, str]]
    sources: list[str]
    notes: list[str]

    @property
    def plots(self) -> list[Plot]:
        return [p for s in self.sections for rq in s.rate_quality for p in rq.plots]


def build_page(board: Board) -> LeaderboardPage:
    from bench.leaderboard.build import methods, metric_direction

    spec = board.spec
    styles = family_styles(board.summary["codec_family"].fillna("").astype(str)) if len(board.summary) else {}
    sections = []
    for idx, ((dataset, task), ranking) in enumerate(board.ranking.groupby(["dataset", "task"], sort=True), 1):
        directions = {m: metric_direction(board.summary, m, board.metric_info) for m in spec.metrics}
        title = f"{task} on {dataset}"
        sec = BoardSection(title, f"s{idx}-{slug(title)}", ranking_table(ranking, spec.metrics, spec.primary, directions))
        for rq in (r for r in board.rate_quality if (r.dataset, r.task) == (dataset, task)):
            base = f"{idx:02d}-{slug(rq.metric)}"
            png = rate_quality_front(rq.points, rq.pareto, rq.metric, rq.direction, styles)
            plots = [Plot(f"{rq.metric} vs measured bitrate", f"{base}-rate-quality.png", png,
                          "Mean with 95 % CI per op-point, lines join a family's op-points; dashed: Pareto front.")
                     ] if png is not None else []
            d = metric_decimals(rq.points["mean"], rq.points["ci_low"], rq.points["ci_high"])
            two = len(rq.anchors) > 1
            sec.rate_quality.append(RQView(
                rq.metric, f"{sec.anchor}-{slug(rq.metric)}", plots, pareto_table(rq.pareto, d),
                anchors_table(rq.anchors, d), bd_matrix_table(rq.bd, "bd_rate") if two else None,
                bd_matrix_table(rq.bd, "bd_quality", d) if two else None))
        sections.append(sec)
    header = [("Leaderboard", spec.name), ("Tasks", ", ".join(spec.tasks)), ("Datasets", ", ".join(spec.datasets)),
              ("Metrics", ", ".join(spec.metrics)), ("Primary", spec.primary),
              *([("Op-points", f"{len(set(board.ledger['codec'])) if len(board.ledger) else 0} "
                                f"({', '.join(spec.op_points)})")] if spec.op_points else []),
              *([("Codec-LMs", ", ".join(spec.lms))] if spec.lms else []),
              ("Result rows", str(len(board.results)))]
    sources = [f"{s.run_id} (updated {s.updated}, git {(s.meta.get('provenance') or {}).get('git', 'unknown')}, "
               f"dataset {s.meta.get('dataset', {}).get('name')} manifest "
               f"{str(s.meta.get('dataset', {}).get('manifest_sha256'))[:12]})" for s in board.sources]
    return LeaderboardPage(
        title=f"codecbench leaderboard: {one_line(spec.title)}", description=one_line(spec.description),
        header=[(k, one_line(v)) for k, v in header], sections=sections, ledger=ledger_table(board.ledger),
        reported=reported_table(board.reported), methods=list(methods().items()), sources=sources,
        notes=[one_line(n) for n in board.notes])


def render_leaderboard_html(page: LeaderboardPage) -> str:
    images = {p.filename: base64.b64encode(p.png).decode("ascii") for p in page.plots}
    return environment().get_template("leaderboard.html.j2").render(page=page, images=images)


def _fig(p: Plot) -> str:
    return f"![{md_escape(p.title)}]({PLOT_DIR}/{p.filename})\n\n_{md_escape(p.caption)}_\n"


def render_leaderboard_markdown(page: LeaderboardPage) -> str:
    out = [f"# {md_escape(page.title)}\n"]
    if page.description:
        out.append(md_escape(page.description) + "\n")
    out.append("| | |\n| --- | --- |\n" + "".join(f"| {md_escape(k)} | {md_escape(v)} |\n" for k, v in page.header))
    out.extend(f"_{md_escape(n)}_\n" for n in page.notes)
    for s in page.sections:
        out.append(f"## {md_escape(s.title)}\n\n### Ranking\n\n" + md_table(s.ranking, "No op-point."))
        for rq in s.rate_quality:
            out.append(f"### Rate–quality: {md_escape(rq.metric)}\n\n" + "".join(_fig(p) for p in rq.plots))
            out.append("#### Pareto front\n\n" + md_table(rq.pareto, "No op-point could be placed."))
            out.append("#### Quality at anchor bitrates\n\n" + md_table(rq.anchors, "No family could be placed."))
            if rq.bd_rate is not None and rq.bd_quality is not None:
                out.append("#### BD-rate matrix\n\n" + md_table(rq.bd_rate, "Fewer than two families."))
                out.append("#### BD-quality matrix\n\n" + md_table(rq.bd_quality, "Fewer than two families."))
    if page.ledger.rows:
        out.append("## Bitrate ledger\n\n" + md_table(page.ledger, "No ledger."))
    if page.reported.rows:
        out.append("## Reported vs reproduced\n\n" + md_table(page.reported, "No reported figures."))
    out.append("## Methods and sources\n\n" + "".join(f"- **{md_escape(k)}**: {md_escape(v)}\n"
                                                       for k, v in page.methods))
    out.append("Runs:\n\n" + "".join(f"- {md_escape(s)}\n" for s in page.sources))
    return "\n".join(out)


def write_leaderboard_report(board: Board, out_dir: Path) -> Path:
    """``out_dir/index.html``, ``out_dir/README.md`` and ``out_dir/plots/*.png``; returns index.html."""
    page = build_page(board)
    out_dir = Path(out_dir)
    (out_dir / PLOT_DIR).mkdir(parents=True, exist_ok=True)
    for p in page.plots:
        atomic_write_bytes(out_dir / PLOT_DIR / p.filename, p.png)
    atomic_write_bytes(out_dir / "README.md", render_leaderboard_markdown(page).encode("utf-8"))
    index = out_dir / "index.html"
    atomic_write_bytes(index, render_leaderboard_html(page).encode("utf-8"))
    return index
