"""Rate–quality analysis: per-family curves with CIs, the Pareto front, anchors and BD matrices.

Input is :func:`~bench.analysis.summary.summarize` output for one (dataset, task, metric): one
row per op-point with ``mean``, ``ci_low``, ``ci_high`` and ``measured_bitrate_bps``. The rate of
a point is its *measured* bitrate (token codecs: measured nominal; bitstream codecs: payload), or
a ledger rate when one is given; a point without a measured rate is left out, never placed at
its declared rate.

Anchor values interpolate each family's curve (PCHIP in log-rate, like the BD deltas) at the
anchor bitrates that lie inside that family's measured range; outside it they are NaN, because
extrapolating a codec to a rate it was not run at invents a number.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.interpolate import PchipInterpolator

from bench.analysis.bd import METHOD, BDRefused, bd_quality, bd_rate

ANCHORS_KBPS = (0.5, 1.0, 1.5, 3.0, 6.0, 12.0, 24.0)
ENDPOINT_SLACK = 1e-3
"""An anchor within 0.1 % of a measured endpoint is that endpoint (6000.02 bit/s measured is 6 kbps)."""
ANCHOR_METHOD = ("PCHIP in log10(rate) through each family's op-point means, inside its measured range only "
                 "(±0.1 % at the ends)")


@dataclass(frozen=True)
class Curve:
    """One codec family's op-points on one metric, sorted by rate."""

    family: str
    codecs: tuple[str, ...]
    rates: np.ndarray
    """bits/s"""
    mean: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray


def rate_quality_points(summary: pd.DataFrame, rates: Mapping[str, float] | None = None) -> pd.DataFrame:
    """Placeable points: ``codec, family, rate_bps, mean, ci_low, ci_high, n`` (ok cells > 0).

    ``rates`` (op-point → bits/s, e.g. the ledger's ``measured_bps``) overrides the summary's
    ``measured_bitrate_bps``.
    """
    pts = pd.DataFrame({
        "codec": summary["codec"].astype(str),
        "family": summary["codec_family"].fillna("").astype(str).where(summary["codec_family"].notna(),
                                                                        summary["codec"].astype(str)),
        "rate_bps": summary["measured_bitrate_bps"].astype("float64"),
        "mean": summary["mean"].astype("float64"),
        "ci_low": summary["ci_low"].astype("float64"),
        "ci_high": summary["ci_high"].astype("float64"),
        "n": summary["n"].astype("int64"),
    })
    if rates:
        pts["rate_bps"] = [float(rates.get(c, r)) for c, r in zip(pts["codec"], pts["rate_bps"], strict=True)]
    keep = np.isfinite(pts["rate_bps"]) & (pts["rate_bps"] > 0) & np.isfinite(pts["mean"]) & (pts["n"] > 0)
    return pts[keep].sort_values(["family", "rate_bps", "codec"]).reset_index(drop=True)


def family_curves(points: pd.DataFrame) -> dict[str, Curve]:
    """Group :func:`rate_quality_points` by family into :class:`Curve` objects."""
    out = {}
    for family, sub in points.groupby("family", sort=True):
        sub = sub.sort_values("rate_bps")
        out[str(family)] = Curve(str(family), tuple(sub["codec"]), sub["rate_bps"].to_numpy(np.float64),
                                 sub["mean"].to_numpy(np.float64), sub["ci_low"].to_numpy(np.float64),
                                 sub["ci_high"].to_numpy(np.float64))
    return out


def pareto_front(points: pd.DataFrame, direction: str = "higher") -> pd.DataFrame:
    """Op-points no other op-point beats on both axes (lower-or-equal rate, better-or-equal
    quality, one strictly), sorted by rate. Ties in both keep every tied point."""
    if points.empty:
        return points.copy()
    q = points["mean"].to_numpy(np.float64) * (-1.0 if direction == "lower" else 1.0)
    r = points["rate_bps"].to_numpy(np.float64)
    keep = []
    for i in range(len(points)):
        dominated = np.any((r <= r[i]) & (q >= q[i]) & ((r < r[i]) | (q > q[i])))
        keep.append(not dominated)
    return points[np.array(keep)].sort_values("rate_bps").reset_index(drop=True)


def interpolate_at(curve: Curve, rate_bps: float) -> float:
    """The family's quality at ``rate_bps`` (PCHIP in log-rate); NaN outside its measured range."""
    r = curve.rates
    lo, hi = r.min(), r.max()
    if not (lo * (1 - ENDPOINT_SLACK) <= rate_bps <= hi * (1 + ENDPOINT_SLACK)):
        return float("nan")
    rate_bps = min(max(rate_bps, lo), hi)
    if r.size == 1:
        return float(curve.mean[0])
    uniq, idx = np.unique(r, return_index=True)
    # two op-points at one rate: average them rather than break PCHIP
    means = np.array([curve.mean[r == u].mean() for u in uniq]) if uniq.size < r.size else curve.mean[idx]
    if uniq.size == 1:
        return float(means[0])
    return float(PchipInterpolator(np.log10(uniq), means)(np.log10(rate_bps)))


def anchor_table(curves: Mapping[str, Curve], anchors_kbps: Sequence[float] = ANCHORS_KBPS) -> pd.DataFrame:
    """Families × anchors (columns ``"<a> kbps"``) of interpolated quality, NaN outside range."""
    rows = []
    for family, curve in curves.items():
        row: dict[str, object] = {"family": family, "min_kbps": curve.rates.min() / 1000,
                                  "max_kbps": curve.rates.max() / 1000}
        for a in anchors_kbps:
            row[f"{a:g} kbps"] = interpolate_at(curve, a * 1000.0)
        rows.append(row)
    return pd.DataFrame(rows, columns=["family", "min_kbps", "max_kbps"] + [f"{a:g} kbps" for a in anchors_kbps])


def bd_matrices(curves: Mapping[str, Curve], direction: str = "higher") -> pd.DataFrame:
    """Long table of BD-rate and BD-quality for every ordered pair (reference, test) of families.

    Columns: ``reference, test, bd_rate_pct, bd_rate_range, bd_quality, bd_quality_range_kbps,
    bd_rate_refused, bd_quality_refused, method``. A refused pair has NaN and the reason.
    """
    rows = []
    for ref_name, ref in curves.items():
        for test_name, test in curves.items():
            if ref_name == test_name:
                continue
            row: dict[str, object] = {"reference": ref_name, "test": test_name, "method": METHOD}
            try:
                res = bd_rate(ref.rates, ref.mean, test.rates, test.mean, direction)
                row.update(bd_rate_pct=res.value, bd_rate_range=(res.low, res.high), bd_rate_refused="")
            except BDRefused as exc:
                row.update(bd_rate_pct=float("nan"), bd_rate_range=None, bd_rate_refused=str(exc))
            try:
                res = bd_quality(ref.rates, ref.mean, test.rates, test.mean, direction)
                row.update(bd_quality=res.value, bd_quality_range_kbps=(res.low / 1000, res.high / 1000),
                           bd_quality_refused="")
            except BDRefused as exc:
                row.update(bd_quality=float("nan"), bd_quality_range_kbps=None, bd_quality_refused=str(exc))
            rows.append(row)
    cols = ["reference", "test", "bd_rate_pct", "bd_rate_range", "bd_rate_refused", "bd_quality",
            "bd_quality_range_kbps", "bd_quality_refused", "method"]
    return pd.DataFrame(rows, columns=cols)
