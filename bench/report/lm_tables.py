"""The codec-LM leaderboard: generated-audio scores beside their ceilings, and the LMs' metadata.

A codec-LM has no bitrate to plot against; what makes its numbers readable is the pair of ceilings
measured with the same judge on the same list: the **ground truth** (the real target utterance) and
the **codec resynthesis** (the target encoded and decoded by the LM's own audio tokenizer, which
bounds what the LM can reach through that tokenizer). So each judge measure gets three columns.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from bench.report.tables import (
    FAILED_COLUMN,
    LEADERBOARD_NOTE,
    TITLE_CHARS,
    Cell,
    Column,
    MetricCells,
    Table,
    format_weights,
    one_line,
    ordered_codecs,
    truncate,
)

#: (measure, label): the headline measures of generation tasks, each followed by its ceilings.
HEADLINE = (
    ("wer", "WER"), ("wer_ceiling", "WER ground truth"), ("wer_resyn", "WER codec resynthesis"),
    ("sim_o", "SIM-o"), ("sim_r", "SIM-r"), ("sim_o_ceiling", "SIM-o ground truth"),
    ("sim_o_resyn", "SIM-o codec resynthesis"),
    ("mos", "MOS"), ("mos_ceiling", "MOS ground truth"), ("mos_resyn", "MOS codec resynthesis"),
)
LM_NOTE = ("Ceilings use the same judge on the same list: ground truth = the real target audio; codec "
           "resynthesis = the target through the LM's own audio tokenizer (— when the row has no tokenizer, "
           "e.g. scored from a folder). Values are means over seeds per entry, then over entries.")


def headline_metrics(present: Sequence[str]) -> tuple[list[str], dict[str, str]]:
    """The headline metric ids present in a summary, grouped by judge, with their column labels."""
    judges: list[str] = []
    for m in present:
        if ":" in m and m.split(":", 1)[1] not in judges:
            judges.append(m.split(":", 1)[1])
    order, labels = [], {}
    for judge in judges:
        for measure, label in HEADLINE:
            mid = f"{measure}:{judge}"
            if mid in present:
                order.append(mid)
                labels[mid] = f"{label} ({judge})"
    return order, labels


def lm_leaderboard_table(summary: pd.DataFrame, lm_meta: Mapping[str, Mapping[str, Any]]) -> Table:
    """One row per codec-LM of one generation task: family, kind, codec, then each measure and its ceilings."""
    metrics, labels = headline_metrics(sorted(str(m) for m in summary["metric"].unique()))
    grid = MetricCells(summary, metrics, labels)
    columns = [Column("Codec-LM"), Column("Family"),
               Column("Kind", "model: loaded and run here; outputs: scored from a folder of its generated audio"),
               Column("Audio tokens"), *grid.columns, FAILED_COLUMN]
    rows = []
    for lm in ordered_codecs(summary):
        meta = lm_meta.get(lm, {})
        cells, failed = grid.row(lm)
        rows.append([Cell(lm, lm), Cell(one_line(meta.get("family", ""))), Cell(one_line(meta.get("kind", ""))),
                     Cell(truncate(one_line(meta.get("codec", "")), 60), None, one_line(meta.get("codec", ""))),
                     *cells, failed])
    return Table(columns, rows, note=f"{LEADERBOARD_NOTE} {LM_NOTE}")


def lms_table(lms: Sequence[Mapping[str, Any]]) -> Table:
    """Codec-LM metadata from ``run.json["lms"]`` (``LMMeta.to_dict``)."""
    columns = [Column("Codec-LM"), Column("Family"), Column("Kind"), Column("Tasks"), Column("Audio tokens"),
               Column("License"), Column("Weights"), Column("Implementation"), Column("Citation"), Column("Notes")]
    rows = []
    for m in lms:
        citation = one_line(m.get("citation", ""))
        rows.append([Cell(one_line(m.get("id", ""))), Cell(one_line(m.get("family", ""))),
                     Cell(one_line(m.get("kind", ""))), Cell(", ".join(m.get("tasks") or [])),
                     Cell(one_line(m.get("codec", ""))), Cell(one_line(m.get("license", ""))),
                     Cell(one_line(format_weights(m.get("weights")))), Cell(one_line(m.get("implementation", ""))),
                     Cell(truncate(citation, 160), None, truncate(citation, TITLE_CHARS)),
                     Cell(one_line(m.get("notes", "")))])
    return Table(columns, rows)
