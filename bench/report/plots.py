"""Report figures as PNG bytes: bitrate vs quality, and per-utterance distributions.

Figures are built with :class:`matplotlib.figure.Figure` on the Agg canvas, never through
pyplot, so making a report touches no global backend state and leaks no open figures. The same
PNG bytes go into the HTML (base64) and beside the markdown (files).
"""

from __future__ import annotations

import inspect
import io
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
          "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]
MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*", "<", ">"]
LABEL_CHARS = 40
DPI = 100

Style = tuple[str, str]


def family_styles(families: Iterable[str]) -> dict[str, Style]:
    """A stable (colour, marker) per family, shared by every figure of a report."""
    fams = sorted({str(f) for f in families})
    return {f: (COLORS[i % len(COLORS)], MARKERS[(i // len(COLORS) + i) % len(MARKERS)]) for i, f in enumerate(fams)}


def mpl_text(text: object, limit: int = LABEL_CHARS) -> str:
    """Label text matplotlib shows literally: ``$`` would start mathtext (and may raise)."""
    s = " ".join(str(text).split())
    if len(s) > limit:
        s = s[: limit - 1] + "…"
    return s.replace("$", r"\$")


def to_png(fig: Figure) -> bytes:
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    return buf.getvalue()


def _quality_label(metric: str, direction: str | None) -> str:
    better = {"higher": " (higher is better)", "lower": " (lower is better)"}.get(str(direction), "")
    return mpl_text(metric, 60) + better


def quality_vs_bitrate(points: pd.DataFrame, metric: str, direction: str | None,
                       styles: dict[str, Style]) -> bytes | None:
    """Mean ± 95 % CI against measured kbps (log x); each family's op-points joined by bitrate.

    ``points`` are summary rows of one (task, metric) with ``codec_family``,
    ``measured_bitrate_bps``, ``mean``, ``ci_low``, ``ci_high``. Op-points without a measured
    bitrate or without a single ok cell cannot be placed and are left out; returns None when
    nothing is left.
    """
    pts = points.copy()
    pts["kbps"] = pts["measured_bitrate_bps"].astype("float64") / 1000.0
    pts = pts[np.isfinite(pts["kbps"]) & (pts["kbps"] > 0) & np.isfinite(pts["mean"].astype("float64"))]
    if pts.empty:
        return None
    fig = Figure(figsize=(6.4, 4.2), layout="constrained")
    ax = fig.add_subplot()
    for family in sorted(pts["codec_family"].fillna("").astype(str).unique()):
        sub = pts[pts["codec_family"].fillna("").astype(str) == family].sort_values("kbps")
        color, marker = styles.get(family, (COLORS[0], MARKERS[0]))
        mean = sub["mean"].to_numpy(dtype=np.float64)
        lo = np.nan_to_num(mean - sub["ci_low"].to_numpy(dtype=np.float64), nan=0.0)
        hi = np.nan_to_num(sub["ci_high"].to_numpy(dtype=np.float64) - mean, nan=0.0)
        ax.errorbar(sub["kbps"].to_numpy(), mean, yerr=[np.maximum(lo, 0), np.maximum(hi, 0)],
                    color=color, marker=marker, linestyle="-", linewidth=1.4, markersize=6,
                    capsize=3, label=mpl_text(family or "(no family)"))
    ax.set_xscale("log")
    ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    kb = pts["kbps"].to_numpy(dtype=np.float64)
    ax.set_xlim(kb.min() / 1.25, kb.max() * 1.25)  # a lone op-point still gets a readable decade
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("measured bitrate (kbps, log scale)")
    ax.set_ylabel(_quality_label(metric, direction))
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize="small", loc="best", title="family", title_fontsize="small")
    return to_png(fig)


_HAS_ORIENTATION = "orientation" in inspect.signature(Axes.boxplot).parameters


def distributions(groups: Sequence[tuple[str, str, np.ndarray]], metric: str, direction: str | None,
                  styles: dict[str, Style]) -> bytes | None:
    """Horizontal box plot of per-utterance values, one box per op-point (mean as a diamond).

    ``groups`` are ``(op-point, family, ok values)`` in display order; op-points with no ok
    value are skipped. Returns None when no op-point has a value.
    """
    groups = [(c, f, np.asarray(v, dtype=np.float64)) for c, f, v in groups if len(v)]
    if not groups:
        return None
    groups = groups[::-1]  # first op-point on top
    fig = Figure(figsize=(6.4, max(2.2, 0.32 * len(groups) + 1.3)), layout="constrained")
    ax = fig.add_subplot()
    kwargs = {"orientation": "horizontal"} if _HAS_ORIENTATION else {"vert": False}
    bp = ax.boxplot([g[2] for g in groups], patch_artist=True, showmeans=True, widths=0.6,
                    meanprops={"marker": "D", "markerfacecolor": "white", "markeredgecolor": "black",
                               "markersize": 4},
                    flierprops={"marker": ".", "markersize": 3, "alpha": 0.5}, **kwargs)
    for patch, (_codec, family, _v) in zip(bp["boxes"], groups, strict=True):
        patch.set_facecolor(styles.get(family, (COLORS[0], ""))[0])
        patch.set_alpha(0.55)
    ax.set_yticks(range(1, len(groups) + 1), [mpl_text(g[0]) for g in groups], fontsize="small")
    ax.set_xlabel(_quality_label(metric, direction))
    ax.grid(True, axis="x", alpha=0.3)
    return to_png(fig)
