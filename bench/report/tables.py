"""Renderer-neutral tables: the leaderboard, failures, metric definitions and codec metadata.

Cells hold plain, *unescaped* text plus a sort key; the HTML and markdown writers each escape
for their own format, so no table builder ever has to know where its text will end up.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from bench.analysis.summary import ok_mask

ERROR_CHARS = 200
"""Characters of an error message shown in a failures table cell."""
TITLE_CHARS = 2000
"""Characters kept for the hover text (HTML ``title``) of a cell."""
MISSING = "—"


@dataclass
class Column:
    label: str
    title: str = ""
    numeric: bool = False


@dataclass
class Cell:
    text: str
    sort: float | str | None = None
    title: str = ""
    best: bool = False


@dataclass
class Table:
    columns: list[Column]
    rows: list[list[Cell]] = field(default_factory=list)
    note: str = ""
    """A sentence under the table, e.g. how many rows were left out."""


# -- formatting ----------------------------------------------------------------------------------
def _finite(x: Any) -> bool:
    try:
        return x is not None and math.isfinite(float(x))
    except (TypeError, ValueError):
        return False


def format_kbps(bps: Any) -> str:
    """Bits/s as kbps with precision that suits the magnitude (0.70, 6.00, 24.0, 1411)."""
    if not _finite(bps):
        return MISSING
    kb = float(bps) / 1000.0
    if abs(kb) >= 100:
        return f"{kb:.0f}"
    if abs(kb) >= 10:
        return f"{kb:.1f}"
    return f"{kb:.2f}"


def metric_decimals(means: Iterable[float], lows: Iterable[float], highs: Iterable[float]) -> int:
    """Decimals for one metric column: two significant digits of the typical CI half-width.

    Printing more digits than the interval resolves invites ranking by noise; with no usable
    interval, three significant digits of the typical magnitude are shown.
    """
    half = [(h - lo) / 2 for lo, h in zip(lows, highs, strict=False) if _finite(lo) and _finite(h) and h > lo]
    if half:
        return int(np.clip(1 - math.floor(math.log10(float(np.median(half)))), 0, 6))
    mags = [abs(m) for m in means if _finite(m) and m != 0]
    if mags:
        return int(np.clip(2 - math.floor(math.log10(float(np.median(mags)))), 0, 6))
    return 2


def format_ci(mean: float, lo: float, hi: float, decimals: int) -> str:
    """``mean [lo, hi]``: the bootstrap interval is asymmetric, so both bounds are printed."""
    if not _finite(mean):
        return MISSING
    if _finite(lo) and _finite(hi):
        return f"{mean:.{decimals}f} [{lo:.{decimals}f}, {hi:.{decimals}f}]"
    return f"{mean:.{decimals}f} [no CI]"


def one_line(text: Any) -> str:
    """Collapse whitespace (newlines break table rows in markdown and clutter HTML cells)."""
    return re.sub(r"\s+", " ", "" if text is None else str(text)).strip()


def truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: max(0, limit - 1)].rstrip() + "…"


def error_summary(message: Any) -> str:
    """The informative part of an error: a traceback's last line, whitespace collapsed."""
    raw = "" if message is None else str(message)
    lines = [ln.strip() for ln in raw.strip().splitlines() if ln.strip()]
    if len(lines) > 1 and lines[0].startswith("Traceback"):
        raw = lines[-1]
    return one_line(raw)


def compact_json(value: Any) -> str:
    if value is None or (isinstance(value, Mapping | Sequence) and not isinstance(value, str) and not value):
        return ""
    return json.dumps(value, sort_keys=True, default=str, ensure_ascii=False)


def direction_arrow(direction: Any) -> str:
    return {"higher": "↑", "lower": "↓"}.get(str(direction), "")


# -- leaderboard ---------------------------------------------------------------------------------
def ordered_codecs(frame: pd.DataFrame) -> list[str]:
    """Op-points grouped by family, then by declared bitrate, then by id: the reading order."""
    cols = ["codec"] + [c for c in ("codec_family", "declared_bitrate_bps") if c in frame.columns]
    first = frame[cols].drop_duplicates("codec").copy()
    first["_fam"] = first["codec_family"].fillna("").astype(str) if "codec_family" in first else ""
    first["_rate"] = first["declared_bitrate_bps"].astype("float64") if "declared_bitrate_bps" in first else np.nan
    first = first.sort_values(["_fam", "_rate", "codec"], na_position="last")
    return [str(c) for c in first["codec"]]


class MetricCells:
    """``mean [CI]`` cells of one summary's metrics, with best-in-column marks; shared by every leaderboard."""

    def __init__(self, summary: pd.DataFrame, metrics: Sequence[str], labels: Mapping[str, str] | None = None):
        self.summary, self.metrics = summary, list(metrics)
        directions = {m: summary.loc[summary["metric"] == m, "direction"].dropna() for m in self.metrics}
        self.directions = {m: (str(d.iloc[0]) if len(d) else "") for m, d in directions.items()}
        self.columns = []
        for m in self.metrics:
            better = {"higher": "higher is better", "lower": "lower is better"}.get(self.directions[m], "")
            label = (labels or {}).get(m, m)
            self.columns.append(Column(f"{label} {direction_arrow(self.directions[m])}".strip(),
                                       f"{m}: mean [95 % bootstrap CI] over ok items; {better}".rstrip("; "),
                                       numeric=True))
        self.best: dict[str, float] = {}
        self.decimals: dict[str, int] = {}
        for m in self.metrics:
            sub = summary[(summary["metric"] == m) & (summary["n"] > 0)]
            self.decimals[m] = metric_decimals(sub["mean"], sub["ci_low"], sub["ci_high"])
            if len(sub) > 1 and self.directions[m] in ("higher", "lower"):
                self.best[m] = float(sub["mean"].max() if self.directions[m] == "higher" else sub["mean"].min())

    def row(self, codec: str) -> tuple[list[Cell], Cell]:
        """The metric cells of one op-point (or codec-LM) and its "Failed" cell."""
        own = self.summary[self.summary["codec"] == codec]
        cells, failed_by_metric = [], []
        for m in self.metrics:
            r = own[own["metric"] == m]
            if r.empty:
                cells.append(Cell(MISSING, None, "not evaluated"))
                continue
            r = r.iloc[0]
            failed_by_metric.append(f"{m}: {int(r['n_failed'])}")
            title = f"n={int(r['n'])} ok, {int(r['n_failed'])} failed"
            if int(r["n"]) == 0:
                cells.append(Cell("all failed", None, title))
                continue
            d = self.decimals[m]
            if _finite(r["median"]):
                title += f"; median {r['median']:.{d}f}"
            if _finite(r["std"]):
                title += f", std {r['std']:.{d}f}"
            is_best = m in self.best and float(r["mean"]) == self.best[m]
            cells.append(Cell(format_ci(r["mean"], r["ci_low"], r["ci_high"], d), float(r["mean"]), title, is_best))
        n_failed = int(own["n_failed"].sum())
        return cells, Cell(str(n_failed), n_failed, ", ".join(failed_by_metric))


FAILED_COLUMN = Column("Failed", "failed cells over all metrics of this task", numeric=True)
LEADERBOARD_NOTE = "Bold: best mean per metric. Intervals: 95 % percentile bootstrap."


def leaderboard_table(summary: pd.DataFrame, bitrates: pd.DataFrame, metrics: Sequence[str]) -> Table:
    """One row per op-point of one task; one ``mean [CI]`` column per metric; best in bold.

    ``summary`` is :func:`~bench.analysis.summary.summarize` output restricted to the task;
    ``bitrates`` is :func:`~bench.analysis.summary.op_point_bitrates` by (codec, task) for it.
    """
    grid = MetricCells(summary, metrics)
    columns = [
        Column("Op-point"),
        Column("Family"),
        Column("Declared kbps", "bitrate the op-point is configured for", numeric=True),
        Column("Measured kbps", "payload bits / seconds of audio, from the emitted stream", numeric=True),
        Column("Overhead kbps", "framing + container bits / seconds, measured separately", numeric=True),
        *grid.columns,
        FAILED_COLUMN,
    ]
    rates = bitrates.set_index("codec") if len(bitrates) else pd.DataFrame()
    rows: list[list[Cell]] = []
    for codec in ordered_codecs(summary):
        fam = summary.loc[summary["codec"] == codec, "codec_family"].dropna()
        rate = rates.loc[codec] if codec in rates.index else pd.Series(dtype="float64")
        row = [Cell(codec, codec), Cell(str(fam.iloc[0]) if len(fam) else "", str(fam.iloc[0]) if len(fam) else "")]
        for col in ("declared_bitrate_bps", "measured_bitrate_bps", "overhead_bitrate_bps"):
            v = rate.get(col, np.nan)
            row.append(Cell(format_kbps(v), float(v) if _finite(v) else None))
        cells, failed = grid.row(codec)
        rows.append(row + cells + [failed])
    return Table(columns, rows, note=LEADERBOARD_NOTE)


# -- failures ------------------------------------------------------------------------------------
def failures_table(results: pd.DataFrame, limit: int) -> Table:
    """Every failed cell (up to ``limit``) with a one-line, truncated reason."""
    columns = [Column("Op-point"), Column("Item"), Column("Task"), Column("Metric"), Column("Error")]
    if results.empty:
        return Table(columns)
    failed = results[~ok_mask(results)]
    failed = failed.sort_values([c for c in ("codec", "task", "metric", "item_id") if c in failed.columns])
    rows = []
    for _, r in failed.head(limit).iterrows():
        if r.get("status") == "ok":
            raw = f"non-finite value {r.get('value')!r} reported as ok"
        else:
            raw = r.get("error") if isinstance(r.get("error"), str) and r.get("error") else "(no error message recorded)"
        summary = error_summary(raw)
        cells = [one_line(r.get(c, "")) for c in ("codec", "item_id", "task", "metric")]
        rows.append([Cell(c, c) for c in cells]
                    + [Cell(truncate(summary, ERROR_CHARS), summary, truncate(str(raw), TITLE_CHARS))])
    note = ""
    if len(failed) > limit:
        note = f"Showing {limit} of {len(failed)} failed cells; all are in results.parquet (status == 'error')."
    return Table(columns, rows, note=note)


# -- metadata ------------------------------------------------------------------------------------
def metrics_table(metrics: Sequence[Mapping[str, Any]]) -> Table:
    """Metric definitions from ``run.json["metrics"]`` (``MetricInfo.to_dict``)."""
    columns = [Column("Metric"), Column("Version"), Column("Direction"), Column("Sample rate", numeric=True),
               Column("Unit"), Column("Reference"), Column("Settings"), Column("Description")]
    rows = []
    for m in metrics:
        sr = m.get("sample_rate")
        rows.append([
            Cell(one_line(m.get("id", ""))),
            Cell(one_line(m.get("version", ""))),
            Cell(f"{m.get('direction', '')} is better {direction_arrow(m.get('direction'))}".strip()
                 if m.get("direction") else ""),
            Cell(f"{int(sr)} Hz" if _finite(sr) else MISSING, float(sr) if _finite(sr) else None),
            Cell(one_line(m.get("unit", ""))),
            Cell(one_line(m.get("reference", ""))),
            Cell(one_line(compact_json(m.get("settings")))),
            Cell(one_line(m.get("description", ""))),
        ])
    return Table(columns, rows)


def _codebooks(sizes: Any) -> str:
    if not sizes:
        return ""
    sizes = list(sizes)
    return f"{len(sizes)} × {sizes[0]}" if len(set(sizes)) == 1 else " + ".join(str(s) for s in sizes)


def _params(n: Any) -> tuple[str, float | None]:
    if not _finite(n):
        return MISSING, None
    n = float(n)
    for scale, suffix in ((1e9, " G"), (1e6, " M"), (1e3, " k")):
        if n >= scale:
            return f"{n / scale:.1f}{suffix}", n
    return f"{n:.0f}", n


def format_weights(w: Any) -> str:
    if not isinstance(w, Mapping) or not w.get("uri"):
        return ""
    text = str(w["uri"])
    if w.get("revision"):
        text += f" @ {w['revision']}"
    if w.get("sha256"):
        text += f" (sha256 {str(w['sha256'])[:12]})"
    return text


def codecs_table(codecs: Sequence[Mapping[str, Any]]) -> Table:
    """Codec op-point metadata from ``run.json["codecs"]`` (``CodecMeta.to_dict``)."""
    columns = [Column("Op-point"), Column("Family"), Column("Kind"), Column("Sample rate", numeric=True),
               Column("Declared kbps", numeric=True), Column("Frame rate", numeric=True), Column("Codebooks"),
               Column("Causal"), Column("Streaming"), Column("Params", numeric=True), Column("License"),
               Column("Weights"), Column("Implementation"), Column("Options"), Column("Citation"),
               Column("Notes")]
    rows = []
    for c in codecs:
        sr, br, fr = c.get("sample_rate"), c.get("bitrate_bps"), c.get("frame_rate")
        params, params_sort = _params(c.get("n_params"))
        rows.append([
            Cell(one_line(c.get("id", ""))),
            Cell(one_line(c.get("family", ""))),
            Cell(one_line(c.get("kind", ""))),
            Cell(f"{int(sr)} Hz" if _finite(sr) else MISSING, float(sr) if _finite(sr) else None),
            Cell(format_kbps(br), float(br) if _finite(br) else None),
            Cell(f"{float(fr):g}" if _finite(fr) else MISSING, float(fr) if _finite(fr) else None),
            Cell(_codebooks(c.get("codebook_sizes"))),
            Cell("yes" if c.get("causal") else "no"),
            Cell("yes" if c.get("streaming") else "no"),
            Cell(params, params_sort),
            Cell(one_line(c.get("license", ""))),
            Cell(one_line(format_weights(c.get("weights")))),
            Cell(one_line(c.get("implementation", ""))),
            Cell(one_line(compact_json(c.get("options")))),
            Cell(truncate(one_line(c.get("citation", "")), 160), None, truncate(one_line(c.get("citation", "")), TITLE_CHARS)),
            Cell(one_line(c.get("notes", ""))),
        ])
    return Table(columns, rows)
