"""Aggregate long-format result rows into one line per (codec, task, metric).

A pure function of the rows (no run directory, no registry), so any table in a report can be
recomputed from ``results.parquet`` alone. Failed cells never enter a mean; they are counted, so
a codec that fails on hard items cannot look better than one that scores them.

A cell is *ok* when ``status == "ok"`` and ``value`` is finite; every other row is a failed cell.
When the rows carry a ``dataset`` column it is part of the group key as well, so two datasets are
never averaged together.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from bench.analysis.bootstrap import (
    DEFAULT_CONFIDENCE,
    DEFAULT_RESAMPLES,
    DEFAULT_SEED,
    PairedDiffCI,
    bootstrap_mean_ci,
    paired_bootstrap_diff,
)

REQUIRED_COLUMNS = ("codec", "task", "metric", "value", "status")
SUMMARY_COLUMNS = [
    "codec",
    "codec_family",
    "task",
    "metric",
    "direction",
    "mean",
    "ci_low",
    "ci_high",
    "n",
    "n_failed",
    "median",
    "std",
    "declared_bitrate_bps",
    "measured_bitrate_bps",
    "overhead_bitrate_bps",
]
BITRATE_COLUMNS = ["declared_bitrate_bps", "measured_bitrate_bps", "overhead_bitrate_bps"]


def _check_columns(results: pd.DataFrame) -> None:
    missing = [c for c in REQUIRED_COLUMNS if c not in results.columns]
    if missing:
        raise ValueError(f"results lack required column(s) {missing}; see bench.runner.schema.ROW_SCHEMA")


def ok_mask(results: pd.DataFrame) -> pd.Series:
    """True for cells that count: status ``ok`` and a finite value."""
    values = pd.to_numeric(results["value"], errors="coerce").astype("float64")
    return (results["status"] == "ok") & np.isfinite(values.to_numpy())


def _first(series: pd.Series) -> object:
    s = series.dropna()
    return s.iloc[0] if len(s) else None


def _duration_weighted(group: pd.DataFrame, column: str) -> float:
    """Σ(rate × duration) / Σduration over distinct items: total bits / total seconds.

    Uses every row whose bitrate is known, whether or not the *metric* succeeded there: the
    bitrate is a property of the encoding, not of the scorer. If any such item lacks a positive
    ``duration_s`` the weights are unknown and the plain mean over items is returned instead.
    """
    if column not in group.columns:
        return float("nan")
    cols = [column] + [c for c in ("duration_s", "item_id") if c in group.columns]
    sub = group[cols].dropna(subset=[column])
    if "item_id" in sub.columns:
        sub = sub.drop_duplicates("item_id")
    if sub.empty:
        return float("nan")
    rate = sub[column].to_numpy(dtype=np.float64)
    dur = sub["duration_s"].to_numpy(dtype=np.float64) if "duration_s" in sub.columns else None
    if dur is None or not np.all(np.isfinite(dur) & (dur > 0)):
        return float(rate.mean())
    return float((rate * dur).sum() / dur.sum())


def _bitrates(group: pd.DataFrame) -> dict[str, float]:
    declared = _first(group["declared_bitrate_bps"]) if "declared_bitrate_bps" in group.columns else None
    return {
        "declared_bitrate_bps": float(declared) if declared is not None else float("nan"),
        "measured_bitrate_bps": _duration_weighted(group, "measured_bitrate_bps"),
        "overhead_bitrate_bps": _duration_weighted(group, "overhead_bitrate_bps"),
    }


def _keys(results: pd.DataFrame, base: Sequence[str]) -> list[str]:
    return (["dataset"] if "dataset" in results.columns else []) + list(base)


def op_point_bitrates(results: pd.DataFrame, by: Sequence[str] = ("codec",)) -> pd.DataFrame:
    """Declared, measured and overhead bitrate per ``by`` group (plus dataset, when present).

    The leaderboard uses ``by=("codec", "task")`` so one op-point's bitrate does not vary with
    which metric happened to fail on which item.
    """
    _check_columns(results)
    keys = _keys(results, by)
    rows = []
    for key, group in results.groupby(keys, dropna=False, sort=True):
        key = key if isinstance(key, tuple) else (key,)
        rows.append({**dict(zip(keys, key, strict=True)), **_bitrates(group)})
    return pd.DataFrame(rows, columns=keys + BITRATE_COLUMNS)


def summarize(
    results: pd.DataFrame,
    *,
    n_resamples: int = DEFAULT_RESAMPLES,
    confidence: float = DEFAULT_CONFIDENCE,
    seed: int = DEFAULT_SEED,
) -> pd.DataFrame:
    """One row per (codec, task, metric): mean with bootstrap CI, spread, counts and bitrates.

    Columns are :data:`SUMMARY_COLUMNS` (``dataset`` first when the input has it). ``n`` counts
    ok cells, ``n_failed`` everything else. ``mean``/``median`` are NaN and the CI is NaN when
    no cell is ok; ``std`` (ddof=1) and the CI are NaN when ``n == 1``.
    """
    _check_columns(results)
    keys = _keys(results, ("codec", "task", "metric"))
    columns = (["dataset"] if "dataset" in keys else []) + SUMMARY_COLUMNS
    if results.empty:
        return pd.DataFrame(columns=columns)

    frame = results.copy()
    frame["_ok"] = ok_mask(frame)
    frame["_value"] = pd.to_numeric(frame["value"], errors="coerce").astype("float64")
    rows = []
    for key, group in frame.groupby(keys, dropna=False, sort=True):
        row = dict(zip(keys, key, strict=True))
        ok = group.loc[group["_ok"], "_value"].to_numpy(dtype=np.float64)
        if ok.size:
            ci = bootstrap_mean_ci(ok, n_resamples=n_resamples, confidence=confidence, seed=seed)
            mean, lo, hi = ci.mean, ci.lo, ci.hi
            median = float(np.median(ok))
            std = float(ok.std(ddof=1)) if ok.size > 1 else float("nan")
        else:
            mean = lo = hi = median = std = float("nan")
        row.update(
            codec_family=_first(group["codec_family"]) if "codec_family" in group.columns else None,
            direction=_first(group["direction"]) if "direction" in group.columns else None,
            mean=mean,
            ci_low=lo,
            ci_high=hi,
            n=int(ok.size),
            n_failed=int(len(group) - ok.size),
            median=median,
            std=std,
            **_bitrates(group),
        )
        rows.append(row)
    out = pd.DataFrame(rows, columns=columns)
    # ratios of sums (corpus WER, MI per char/s/kbit) and paired ceiling deltas: bench.analysis.corpus
    from bench.analysis.corpus import corpus_summary

    derived = corpus_summary(results, n_resamples=n_resamples, confidence=confidence, seed=seed)
    if not derived.empty:
        out = pd.concat([out, derived.reindex(columns=columns)], ignore_index=True)
    return out.astype({"n": "int64", "n_failed": "int64"})


def paired_difference(
    results: pd.DataFrame,
    codec_a: str,
    codec_b: str,
    task: str,
    metric: str,
    *,
    dataset: str | None = None,
    n_resamples: int = DEFAULT_RESAMPLES,
    confidence: float = DEFAULT_CONFIDENCE,
    seed: int = DEFAULT_SEED,
) -> PairedDiffCI:
    """Paired bootstrap of ``codec_a − codec_b`` on the items both scored ok.

    Items where either side failed are left out (and the returned ``n`` shows how many pairs
    remain); raises :class:`ValueError` when no item pairs up.
    """
    _check_columns(results)
    if "item_id" not in results.columns:
        raise ValueError("paired comparison needs an item_id column")
    sel = (results["task"] == task) & (results["metric"] == metric) & ok_mask(results)
    if dataset is not None:
        sel &= results["dataset"] == dataset
    elif "dataset" in results.columns and results.loc[sel, "dataset"].nunique() > 1:
        raise ValueError("results hold several datasets; pass dataset= to choose one")
    sub = results.loc[sel, ["codec", "item_id", "value"]]

    def side(codec: str) -> pd.Series:
        s = sub[sub["codec"] == codec].drop_duplicates("item_id").set_index("item_id")["value"]
        return s.astype("float64")

    a, b = side(codec_a), side(codec_b)
    common = a.index.intersection(b.index).sort_values()
    if len(common) == 0:
        raise ValueError(f"{codec_a!r} and {codec_b!r} share no ok items for {task}/{metric}")
    return paired_bootstrap_diff(
        a.loc[common].to_numpy(), b.loc[common].to_numpy(),
        n_resamples=n_resamples, confidence=confidence, seed=seed,
    )
