"""Rate–quality figure for a leaderboard: family curves with CIs and the Pareto front over them."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from bench.report.plots import COLORS, MARKERS, Style, mpl_text, to_png


def rate_quality_front(points: pd.DataFrame, pareto: pd.DataFrame, metric: str, direction: str,
                       styles: dict[str, Style]) -> bytes | None:
    """Mean ± 95 % CI per op-point against measured kbps (log x), one line per family, and the
    Pareto front as a dashed staircase through the non-dominated op-points; None if no point."""
    if points.empty:
        return None
    fig = Figure(figsize=(7.2, 4.6), layout="constrained")
    ax = fig.add_subplot()
    for family, sub in points.groupby("family", sort=True):
        sub = sub.sort_values("rate_bps")
        color, marker = styles.get(str(family), (COLORS[0], MARKERS[0]))
        mean = sub["mean"].to_numpy(np.float64)
        lo = np.nan_to_num(mean - sub["ci_low"].to_numpy(np.float64), nan=0.0)
        hi = np.nan_to_num(sub["ci_high"].to_numpy(np.float64) - mean, nan=0.0)
        ax.errorbar(sub["rate_bps"].to_numpy(np.float64) / 1000, mean,
                    yerr=[np.maximum(lo, 0), np.maximum(hi, 0)], color=color, marker=marker,
                    linewidth=1.3, markersize=5, capsize=3, label=mpl_text(family or "(no family)"))
    if len(pareto):
        x = pareto["rate_bps"].to_numpy(np.float64) / 1000
        y = pareto["mean"].to_numpy(np.float64)
        ax.step(x, y, where="post", color="black", linestyle="--", linewidth=1.0, label="Pareto front")
        ax.scatter(x, y, s=110, facecolors="none", edgecolors="black", linewidths=1.0, zorder=3)
    kb = points["rate_bps"].to_numpy(np.float64) / 1000
    ax.set_xscale("log")
    ax.set_xlim(kb.min() / 1.3, kb.max() * 1.3)
    ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("measured bitrate (kbps, log scale)")
    better = {"higher": " (higher is better)", "lower": " (lower is better)"}.get(direction, "")
    ax.set_ylabel(mpl_text(metric, 60) + better)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize="small", loc="best", ncols=2)
    return to_png(fig)
