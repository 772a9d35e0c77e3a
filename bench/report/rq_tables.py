"""Tables of the rate–quality analysis: anchor values, the Pareto front and BD matrices.

Like :mod:`bench.report.tables`, cells hold unescaped text; renderers escape.
"""

from __future__ import annotations

import math

import pandas as pd

from bench.report.tables import MISSING, Cell, Column, Table, format_ci, format_kbps


def _num(x: object) -> float | None:
    try:
        v = float(x)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def anchors_table(anchors: pd.DataFrame, decimals: int) -> Table:
    """Families × anchor bitrates; blank outside a family's measured range (never extrapolated)."""
    anchor_cols = [c for c in anchors.columns if c.endswith(" kbps")]
    columns = [Column("Family"), Column("Measured range (kbps)")] + [
        Column(c, "interpolated inside the measured range only", numeric=True) for c in anchor_cols]
    rows = []
    for _, r in anchors.iterrows():
        row = [Cell(str(r["family"]), str(r["family"])),
               Cell(f"{format_kbps(r['min_kbps'] * 1000)} – {format_kbps(r['max_kbps'] * 1000)}",
                    _num(r["min_kbps"]))]
        for c in anchor_cols:
            v = _num(r[c])
            row.append(Cell(f"{v:.{decimals}f}", v) if v is not None
                       else Cell(MISSING, None, "outside this family's measured range"))
        rows.append(row)
    return Table(columns, rows)


def pareto_table(pareto: pd.DataFrame, decimals: int) -> Table:
    columns = [Column("Op-point"), Column("Family"), Column("Measured kbps", numeric=True),
               Column("Mean [95 % CI]", numeric=True)]
    rows = [[Cell(str(r["codec"]), str(r["codec"])), Cell(str(r["family"]), str(r["family"])),
             Cell(format_kbps(r["rate_bps"]), _num(r["rate_bps"])),
             Cell(format_ci(r["mean"], r["ci_low"], r["ci_high"], decimals), _num(r["mean"]))]
            for _, r in pareto.iterrows()]
    return Table(columns, rows, note="Op-points no other op-point beats on both measured bitrate and quality.")


def bd_matrix_table(bd: pd.DataFrame, kind: str, decimals: int = 2) -> Table:
    """Reference families as rows, test families as columns; ``kind`` is bd_rate or bd_quality."""
    fams = sorted(set(bd["reference"]) | set(bd["test"]))
    value_col = "bd_rate_pct" if kind == "bd_rate" else "bd_quality"
    refused_col = f"{kind}_refused"
    range_col = "bd_rate_range" if kind == "bd_rate" else "bd_quality_range_kbps"
    columns = [Column("reference \\ test")] + [Column(f, numeric=True) for f in fams]
    index = {(r["reference"], r["test"]): r for _, r in bd.iterrows()}
    rows = []
    for ref in fams:
        row = [Cell(ref, ref)]
        for test in fams:
            r = index.get((ref, test))
            if r is None:
                row.append(Cell(""))
                continue
            v = _num(r[value_col])
            if v is None:
                row.append(Cell("n/a", None, str(r[refused_col])))
                continue
            lo, hi = r[range_col]
            if kind == "bd_rate":
                text, title = f"{v:+.1f} %", f"over quality [{lo:.4g}, {hi:.4g}]"
            else:
                text, title = f"{v:+.{decimals}f}", f"over [{lo:.4g}, {hi:.4g}] kbps"
            row.append(Cell(text, v, title))
        rows.append(row)
    what = ("BD-rate: average bitrate change of the column (test) family against the row (reference) at "
            "equal quality; negative = test needs less bitrate." if kind == "bd_rate" else
            "BD-quality: average quality gain of the column (test) family over the row (reference) at equal "
            "bitrate, in metric units; positive = test better.")
    return Table(columns, rows, note=what + " n/a: refused (hover for the reason). Hover a value for the "
                 "overlap it averages over.")
