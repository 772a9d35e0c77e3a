"""Everything a report shows, computed once and rendered twice (HTML and markdown).

Keeping the content in one model means the two formats cannot disagree about a number; the
renderers only decide layout and escaping.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from bench.analysis.summary import ok_mask, op_point_bitrates, summarize
from bench.report import plots
from bench.report.lm_tables import headline_metrics, lm_leaderboard_table, lms_table
from bench.report.loading import RunData
from bench.report.tables import (
    Table,
    codecs_table,
    failures_table,
    leaderboard_table,
    metrics_table,
    one_line,
    ordered_codecs,
)

FAILURE_ROWS = 500


@dataclass
class Plot:
    title: str
    filename: str
    """A safe, generated name (never derived verbatim from result strings)."""
    png: bytes
    caption: str = ""


@dataclass
class Section:
    """One task (on one dataset): its leaderboard and its figures."""

    title: str
    anchor: str
    leaderboard: Table
    quality_plots: list[Plot] = field(default_factory=list)
    distribution_plots: list[Plot] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass
class ReportModel:
    title: str
    header: list[tuple[str, str]]
    sections: list[Section]
    failures: Table
    n_failed: int
    metrics: Table
    codecs: Table
    lms: Table
    config_json: str
    provenance_json: str
    notes: list[str] = field(default_factory=list)

    @property
    def plots(self) -> list[Plot]:
        return [p for s in self.sections for p in (*s.quality_plots, *s.distribution_plots)]


def slug(text: object, limit: int = 40) -> str:
    """Lower-case ``[a-z0-9-]`` fragment for file names and anchors; never empty."""
    s = re.sub(r"[^a-z0-9]+", "-", str(text).lower()).strip("-")[:limit].strip("-")
    return s or "x"


def _as_dict(value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    if isinstance(value, str):
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            return {}
        return parsed if isinstance(parsed, dict) else {}
    return {}


def _from_rows(results: pd.DataFrame, column: str) -> str:
    if column not in results.columns:
        return ""
    return ", ".join(sorted({str(v) for v in results[column].dropna().unique()}))


def _header(meta: dict[str, Any], results: pd.DataFrame, n_failed: int) -> list[tuple[str, str]]:
    prov = _as_dict(meta.get("provenance"))
    dataset = _as_dict(meta.get("dataset"))
    # the runner writes provenance {"codecbench", "git"}; the *_version/_hash spellings are accepted too
    version = prov.get("codecbench") or prov.get("codecbench_version") or _from_rows(results, "codecbench_version")
    git = prov.get("git") or prov.get("git_hash") or _from_rows(results, "git_hash")
    n_items = dataset.get("n_items")
    if n_items is None and "item_id" in results.columns:
        n_items = results["item_id"].nunique()
    pairs = [
        ("Run", meta.get("run_id") or _from_rows(results, "run_id")),
        ("Created", meta.get("created")),
        *([("Updated", meta["updated"])] if meta.get("updated") else []),
        ("Dataset", dataset.get("name") or _from_rows(results, "dataset")),
        ("Manifest sha256", dataset.get("manifest_sha256") or _from_rows(results, "manifest_sha256")),
        ("Items", n_items),
        ("codecbench version", version),
        ("Git hash", git),
        ("Op-points", results["codec"].nunique() if "codec" in results.columns else 0),
        ("Result rows", len(results)),
        ("Failed cells", n_failed),
    ]
    return [(k, one_line(v) if v not in (None, "") else "unknown") for k, v in pairs]


def _dataset_notes(meta: dict[str, Any], limit: int = 10) -> list[str]:
    problems = _as_dict(meta.get("dataset")).get("problems") or []
    if not isinstance(problems, list) or not problems:
        return []
    shown = "; ".join(one_line(p) for p in problems[:limit])
    more = f" (and {len(problems) - limit} more)" if len(problems) > limit else ""
    return [f"Dataset manifest problems ({len(problems)}): {shown}{more}"]


def _pretty_json(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, default=str, ensure_ascii=False)


def _metric_order(meta: dict[str, Any], present: list[str]) -> list[str]:
    declared = [str(m.get("id")) for m in meta.get("metrics") or [] if isinstance(m, dict)]
    first = [m for m in declared if m in present]
    return first + sorted(m for m in present if m not in first)


def _lm_section(idx: int, title: str, results: pd.DataFrame, summary: pd.DataFrame,
                lm_meta: dict[str, dict[str, Any]], config: dict[str, Any], styles: dict[str, plots.Style]) -> Section:
    """A generation task: the codec-LM leaderboard with ceilings, and per-entry distributions (no bitrate axis)."""
    section = Section(title=f"{title} (codec-LM leaderboard)", anchor=f"task-{idx}-{slug(title)}",
                      leaderboard=lm_leaderboard_table(summary, lm_meta))
    section.notes.append(f"{config.get('n_seeds', 1)} generation(s) per list entry (seeds 0..n-1), list seed "
                         f"{config.get('list_seed', 0)}; the CIs resample list entries.")
    if config.get("lm_random_init"):
        section.notes.append("Tiny random-weight models (--lm-random-init): a smoke run; only the ground-truth "
                             "ceilings describe real speech.")
    ok = results[ok_mask(results)]
    headline, _ = headline_metrics(sorted(str(m) for m in results["metric"].unique()))
    per_entry = [m for m in headline if m in set(ok["metric"])]  # corpus ratios (wer) have no per-entry rows
    for m_idx, metric in enumerate(per_entry, start=1):
        vals = ok[ok["metric"] == metric]
        groups = [(c, str(lm_meta.get(c, {}).get("family", "")), vals.loc[vals["codec"] == c, "value"].to_numpy(
            dtype=np.float64)) for c in ordered_codecs(summary)]
        direction = summary.loc[summary["metric"] == metric, "direction"].dropna()
        png = plots.distributions(groups, metric, str(direction.iloc[0]) if len(direction) else None, styles)
        if png is not None:
            section.distribution_plots.append(Plot(
                f"{metric} per list entry", f"{idx:02d}-{slug(title)}-{m_idx:02d}-{slug(metric)}-distribution.png",
                png, "Per-entry values (mean over seeds) of ok cells: box = quartiles, whiskers = 1.5 IQR, "
                     "diamond = mean."))
    return section


def _section(idx: int, title: str, results: pd.DataFrame, summary: pd.DataFrame, metrics: list[str],
             styles: dict[str, plots.Style]) -> Section:
    bitrates = op_point_bitrates(results, by=("codec", "task"))
    section = Section(title=title, anchor=f"task-{idx}-{slug(title)}",
                      leaderboard=leaderboard_table(summary, bitrates, metrics))
    order = ordered_codecs(summary)
    ok = results[ok_mask(results)]
    fam = dict(zip(summary["codec"], summary["codec_family"].fillna("").astype(str), strict=True))
    for m_idx, metric in enumerate(metrics, start=1):
        points = summary[summary["metric"] == metric]
        direction = points["direction"].dropna()
        direction = str(direction.iloc[0]) if len(direction) else None
        base = f"{idx:02d}-{slug(title)}-{m_idx:02d}-{slug(metric)}"
        png = plots.quality_vs_bitrate(points, metric, direction, styles)
        placed = points[np.isfinite(points["measured_bitrate_bps"].astype("float64")) & (points["n"] > 0)]
        left_out = sorted(set(points["codec"]) - set(placed["codec"]))
        caption = "Mean with 95 % CI against measured payload bitrate; lines join one family's op-points."
        if left_out:
            caption += f" Not placed (no measured bitrate or no ok cell): {', '.join(left_out)}."
        if png is None:
            section.notes.append(f"{metric}: no op-point has both a measured bitrate and an ok cell; no plot.")
        else:
            section.quality_plots.append(Plot(f"{metric} vs bitrate", f"{base}-quality.png", png, caption))

        vals = ok[ok["metric"] == metric]
        groups = [(c, fam.get(c, ""), vals.loc[vals["codec"] == c, "value"].to_numpy(dtype=np.float64))
                  for c in order]
        png = plots.distributions(groups, metric, direction, styles)
        if png is not None:
            section.distribution_plots.append(Plot(
                f"{metric} per utterance", f"{base}-distribution.png", png,
                "Per-utterance values of ok cells: box = quartiles, whiskers = 1.5 IQR, diamond = mean."))
    return section


def build_model(run: RunData, *, failure_rows: int = FAILURE_ROWS) -> ReportModel:
    """Summaries, tables and figures of one run."""
    meta, results = run.meta, run.results
    summary = summarize(results)
    n_failed = int((~ok_mask(results)).sum()) if len(results) else 0
    styles = plots.family_styles(summary["codec_family"].fillna("").astype(str)) if len(summary) else {}

    sections: list[Section] = []
    lm_meta = {str(m["id"]): m for m in meta.get("lms") or [] if isinstance(m, dict) and m.get("id")}
    if len(summary):
        has_ds = "dataset" in summary.columns
        several = has_ds and summary["dataset"].nunique(dropna=False) > 1
        keys = ["dataset", "task"] if has_ds else ["task"]
        for idx, (key, sub) in enumerate(summary.groupby(keys, dropna=False, sort=True), start=1):
            key = key if isinstance(key, tuple) else (key,)
            task = key[-1]
            sel = results["task"] == task
            if has_ds:
                sel &= results["dataset"].isna() if pd.isna(key[0]) else results["dataset"] == key[0]
            title = f"{task} — {key[0]}" if several else str(task)
            if lm_meta and set(sub["codec"]) <= set(lm_meta):
                sections.append(_lm_section(idx, title, results[sel], sub, lm_meta, meta.get("config") or {}, styles))
                continue
            metrics = _metric_order(meta, sorted(str(m) for m in sub["metric"].unique()))
            sections.append(_section(idx, title, results[sel], sub, metrics, styles))

    run_id = meta.get("run_id") or _from_rows(results, "run_id") or "unknown run"
    return ReportModel(
        title=f"codecbench report: {one_line(run_id)}",
        header=_header(meta, results, n_failed),
        sections=sections,
        failures=failures_table(results, failure_rows),
        n_failed=n_failed,
        metrics=metrics_table([m for m in meta.get("metrics") or [] if isinstance(m, dict)]),
        codecs=codecs_table([c for c in meta.get("codecs") or [] if isinstance(c, dict)]),
        lms=lms_table(list(lm_meta.values())),
        config_json=_pretty_json(meta.get("config", {})),
        provenance_json=_pretty_json(meta.get("provenance", {})),
        notes=list(run.notes) + _dataset_notes(meta),
    )
