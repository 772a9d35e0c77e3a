"""Read a run directory: ``run.json`` plus the result rows.

The report never imports codecs or metrics; everything it states comes from these two sources,
so a report can be rebuilt anywhere from a copied run directory.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from bench.errors import DataError


@dataclass
class RunData:
    """The parsed ``run.json`` and the result rows of one run."""

    run_dir: Path
    meta: dict[str, Any]
    results: pd.DataFrame
    notes: list[str] = field(default_factory=list)
    """Things the reader had to work around (e.g. no consolidated parquet), shown in the report."""


def read_results(run_dir: Path) -> tuple[pd.DataFrame, list[str]]:
    """Rows of ``results.parquet`` plus any ``results/*.parquet`` parts, one per ``row_key``.

    Parts exist while a run is going, after an interruption, or when a resumed run added rows
    after the last consolidation; reading both gives the report every row the run produced.
    As in the runner's store, the consolidated file is read first and the first row per key wins.
    """
    consolidated = run_dir / "results.parquet"
    files = [consolidated] if consolidated.is_file() else []
    parts = sorted((run_dir / "results").glob("*.parquet")) if (run_dir / "results").is_dir() else []
    files += parts
    if not files:
        raise DataError(f"{run_dir} has neither results.parquet nor results/*.parquet")
    frames = [pd.read_parquet(f) for f in files]
    frame = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    if "row_key" in frame.columns:
        frame = frame.drop_duplicates("row_key", keep="first").reset_index(drop=True)
    notes = []
    if parts:
        origin = "results.parquet and " if consolidated.is_file() else "no results.parquet; "
        notes.append(f"Rows read from {origin}{len(parts)} unconsolidated part file(s) in results/.")
    return frame, notes


def load_run(run_dir: Path) -> RunData:
    """Parse ``run_dir/run.json`` (must be a JSON object) and read the result rows."""
    run_dir = Path(run_dir)
    meta_path = run_dir / "run.json"
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise DataError(f"{meta_path} not found; is {run_dir} a codecbench run directory?") from exc
    except json.JSONDecodeError as exc:
        raise DataError(f"{meta_path} is not valid JSON: {exc}") from exc
    if not isinstance(meta, dict):
        raise DataError(f"{meta_path} must hold a JSON object")
    results, notes = read_results(run_dir)
    return RunData(run_dir=run_dir, meta=meta, results=results, notes=notes)
