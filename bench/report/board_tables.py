"""Leaderboard tables: the ranking, the bitrate ledger, and reported-vs-reproduced figures."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd

from bench.report.rq_tables import _num
from bench.report.tables import (
    MISSING,
    Cell,
    Column,
    Table,
    direction_arrow,
    format_ci,
    format_kbps,
    metric_decimals,
    one_line,
)


def _kbps(v: object) -> Cell:
    return Cell(format_kbps(v), _num(v))


def _audit(r: Mapping) -> Cell:
    if bool(r.get("flagged")):
        return Cell("FLAGGED", 1, one_line(r.get("reason") or ""))
    note = one_line(r.get("note") or "")
    return Cell("ok (note)" if note else "ok", 0, note)


def ranking_table(ranking: pd.DataFrame, metrics: Sequence[str], primary: str,
                  directions: Mapping[str, str]) -> Table:
    """One (dataset, task) ranking: op-points (or codec-LMs) ordered by the primary metric, every metric with CI.

    Codec-LM rankings have no ledger (an LM has no bitrate), so their bitrate columns are left out.
    """
    rated = "kind" in ranking and ranking["kind"].notna().any()
    columns = [Column("Rank", f"by {primary}", numeric=True), Column("Op-point" if rated else "Codec-LM"),
               Column("Family")]
    if rated:
        columns += [Column("Declared kbps", numeric=True),
                    Column("Measured kbps", "token codecs: nominal; bitstream codecs: payload", numeric=True),
                    Column("Entropy kbps", "unigram / conditional on previous frame (token codecs)", numeric=True),
                    Column("Bitrate audit", "declared vs measured, ±1 %")]
    decimals = {m: metric_decimals(ranking[f"{m}_mean"], ranking[f"{m}_ci_low"], ranking[f"{m}_ci_high"])
                for m in metrics}
    best = {}
    for m in metrics:
        vals = ranking[f"{m}_mean"].dropna()
        if len(vals) > 1:
            best[m] = vals.max() if directions.get(m) == "higher" else vals.min()
    for m in metrics:
        label = f"{m} {direction_arrow(directions.get(m))}".strip() + (" (primary)" if m == primary else "")
        columns.append(Column(label, "mean [95 % bootstrap CI] over ok items", numeric=True))
    rows = []
    for _, r in ranking.iterrows():
        uni, cond = _num(r.get("unigram_entropy_bps")), _num(r.get("conditional_entropy_bps"))
        ent = Cell(f"{format_kbps(uni)} / {format_kbps(cond)}", uni) if uni is not None else Cell(MISSING)
        rank = _num(r["rank"])
        row = [Cell(f"{rank:.0f}" if rank is not None else MISSING, rank), Cell(str(r["codec"]), str(r["codec"])),
               Cell(str(r["family"] or ""), str(r["family"] or ""))]
        if rated:
            row += [_kbps(r.get("declared_bps")), _kbps(r.get("measured_bps")), ent, _audit(r)]
        for m in metrics:
            mean = _num(r[f"{m}_mean"])
            n, nf = r[f"{m}_n"], r[f"{m}_n_failed"]
            title = f"n={n:.0f} ok, {nf:.0f} failed" if _num(n) is not None else "not evaluated"
            if mean is None:
                row.append(Cell("all failed" if _num(n) is not None else MISSING, None, title))
            else:
                row.append(Cell(format_ci(mean, r[f"{m}_ci_low"], r[f"{m}_ci_high"], decimals[m]), mean, title,
                                m in best and mean == best[m]))
        rows.append(row)
    note = f"Ranked by {primary}; bold: best mean per metric."
    return Table(columns, rows, note=note + (" Bitrates measured on the evaluated items." if rated else ""))


def ledger_table(ledger: pd.DataFrame) -> Table:
    columns = [Column("Op-point"), Column("Kind"), Column("Items", numeric=True),
               Column("Declared kbps", numeric=True), Column("Measured kbps", numeric=True),
               Column("Padding kbps", "nominal above frame_rate × Σ log2 sizes", numeric=True),
               Column("Codebooks", "emitted / declared"),
               Column("Unigram H kbps", numeric=True), Column("Conditional H kbps", numeric=True),
               Column("Side info kbps", numeric=True), Column("Overhead kbps", numeric=True),
               Column("Deviation", "(measured − declared) / declared", numeric=True), Column("Audit"),
               Column("Source")]
    rows = []
    for _, r in ledger.iterrows():
        dev = _num(r["deviation"])
        emitted, declared = _num(r["n_codebooks_emitted"]), _num(r["n_codebooks_declared"])
        books = f"{emitted:.0f} / {declared:.0f}" if emitted is not None and declared is not None else MISSING
        rows.append([Cell(str(r["codec"]), str(r["codec"])), Cell(str(r["kind"])),
                     Cell(f"{int(r['n_items'])}", int(r["n_items"])), _kbps(r["declared_bps"]),
                     _kbps(r["measured_bps"]), _kbps(r["padding_bps"]), Cell(books),
                     _kbps(r["unigram_entropy_bps"]), _kbps(r["conditional_entropy_bps"]),
                     _kbps(r["side_info_bps"]), _kbps(r["overhead_bps"]),
                     Cell(f"{dev:+.2%}" if dev is not None else MISSING, dev), _audit(r),
                     Cell(one_line(r["source"]))])
    return Table(columns, rows)


def reported_table(reported: pd.DataFrame) -> Table:
    columns = [Column("Op-point"), Column("Metric"), Column("Dataset"), Column("Reported", numeric=True),
               Column("Reproduced here [95 % CI]", numeric=True), Column("Gap", "reproduced − reported", numeric=True),
               Column("Source"), Column("Note")]
    rows = []
    for _, r in reported.iterrows():
        rep, gap = _num(r["reproduced"]), _num(r["gap"])
        d = 3
        rows.append([Cell(str(r["codec"]), str(r["codec"])), Cell(str(r["metric"])),
                     Cell(str(r["dataset"] or "")), Cell(f"{r['reported']:g}", _num(r["reported"])),
                     Cell(format_ci(rep, r["reproduced_ci_low"], r["reproduced_ci_high"], d), rep)
                     if rep is not None else Cell(MISSING, None, "not reproduced in this leaderboard"),
                     Cell(f"{gap:+.{d}f}" if gap is not None else MISSING, gap),
                     Cell(one_line(r["source"])), Cell(one_line(r["note"]))])
    return Table(columns, rows, note="Reported: as published by the cited source. Reproduced: this leaderboard's "
                                     "mean on its own data; a gap may come from data, settings or errors.")
