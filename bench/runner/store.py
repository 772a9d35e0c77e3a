"""Append-only result store: parquet parts in ``<run>/results/``, consolidated at the end.

Each flush writes one new part atomically (temp file + rename); a run killed with ``kill -9``
keeps every flushed part, and a rerun skips the row keys already present. Reading deduplicates
on ``row_key``, so a crash between consolidation and clean-up cannot duplicate a row.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from bench.runner.atomic import atomic_path
from bench.runner.cache import content_key
from bench.runner.schema import COLUMNS, IDENTITY_COLUMNS, ROW_SCHEMA


def row_key(row: dict[str, Any]) -> str:
    return content_key(*(row[c] for c in IDENTITY_COLUMNS))[:32]


def _write_table(rows: list[dict[str, Any]] | pd.DataFrame, path: Path) -> None:
    if isinstance(rows, pd.DataFrame):
        table = pa.Table.from_pandas(rows[COLUMNS], schema=ROW_SCHEMA, preserve_index=False)
    else:
        table = pa.Table.from_pylist([{c: r.get(c) for c in COLUMNS} for r in rows], schema=ROW_SCHEMA)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)


def read_results(run_dir: str | Path) -> pd.DataFrame:
    """All rows of a run (consolidated file plus any parts), one per row key."""
    run_dir = Path(run_dir)
    files = [run_dir / "results.parquet"] if (run_dir / "results.parquet").exists() else []
    files += sorted((run_dir / "results").glob("part-*.parquet"))
    if not files:
        return ROW_SCHEMA.empty_table().to_pandas()
    frames = [pq.read_table(f, schema=ROW_SCHEMA).to_pandas() for f in files]
    df = pd.concat(frames, ignore_index=True)
    return df.drop_duplicates("row_key", keep="first").reset_index(drop=True)


class ResultStore:
    """Buffers rows and flushes them as parquet parts every ``flush_rows`` rows or seconds."""

    def __init__(self, run_dir: Path, flush_rows: int = 2000, flush_seconds: float = 10.0):
        self.run_dir = Path(run_dir)
        self.parts_dir = self.run_dir / "results"
        self.parts_dir.mkdir(parents=True, exist_ok=True)
        self.flush_rows, self.flush_seconds = flush_rows, flush_seconds
        self._buffer: list[dict[str, Any]] = []
        self._last_flush = time.monotonic()
        existing = read_results(self.run_dir)
        self.done: set[str] = set(existing["row_key"])
        self.n_written = 0

    def add(self, rows: list[dict[str, Any]]) -> None:
        for row in rows:
            if row["row_key"] in self.done:
                continue
            self.done.add(row["row_key"])
            self._buffer.append(row)
        if len(self._buffer) >= self.flush_rows or time.monotonic() - self._last_flush > self.flush_seconds:
            self.flush()

    def flush(self) -> None:
        if self._buffer:
            name = f"part-{time.time_ns():020d}-{uuid.uuid4().hex[:8]}.parquet"
            _write_table(self._buffer, self.parts_dir / name)
            self.n_written += len(self._buffer)
            self._buffer = []
        self._last_flush = time.monotonic()

    def consolidate(self) -> pd.DataFrame:
        """Merge parts into ``results.parquet`` (atomically), then remove the merged parts."""
        self.flush()
        parts = sorted(self.parts_dir.glob("part-*.parquet"))
        df = read_results(self.run_dir)
        df = df.sort_values(["task", "codec", "item_id", "metric"], kind="stable").reset_index(drop=True)
        _write_table(df, self.run_dir / "results.parquet")
        for part in parts:
            part.unlink(missing_ok=True)
        return df
