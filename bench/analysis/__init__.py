"""Statistics over result rows: bootstrap intervals and per-(codec, task, metric) summaries."""

from bench.analysis.bootstrap import MeanCI, PairedDiffCI, bootstrap_mean_ci, paired_bootstrap_diff
from bench.analysis.summary import SUMMARY_COLUMNS, op_point_bitrates, paired_difference, summarize

__all__ = [
    "SUMMARY_COLUMNS",
    "MeanCI",
    "PairedDiffCI",
    "bootstrap_mean_ci",
    "op_point_bitrates",
    "paired_bootstrap_diff",
    "paired_difference",
    "summarize",
]
