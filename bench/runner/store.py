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
from bench.runner.schema import ENCODING_SCHEMA, IDENTITY_COLUMNS, ROW_SCHEMA


def row_key(row: dict[str, Any], identity: tuple[str, ...] = IDENTITY_COLUMNS) -> str:
    return content_key(*(row[c] for c in identity))[:32]


def _write_table(rows: list[dict[str, Any]] | pd.DataFrame, path: Path, schema: pa.Schema) -> None:
    columns = [f.name for f in schema]
    if isinstance(rows, pd.DataFrame):
        table = pa.Table.from_pandas(rows[columns], schema=schema, preserve_index=False)
    else:
        table = pa.Table.from_pylist([{c: r.get(c) for c in columns} for r in rows], schema=schema)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)


def _read(run_dir: str | Path, name: str, schema: pa.Schema) -> pd.DataFrame:
    run_dir = Path(run_dir)
    files = [run_dir / f"{name}.parquet"] if (run_dir / f"{name}.parquet").exists() else []
    files += sorted((run_dir / name).glob("part-*.parquet"))
    if not files:
        return schema.empty_table().to_pandas()
    frames = [pq.read_table(f, schema=schema).to_pandas() for f in files]
    df = pd.concat(frames, ignore_index=True)
    return df.drop_duplicates("row_key", keep="first").reset_index(drop=True)


def read_results(run_dir: str | Path) -> pd.DataFrame:
    """All result rows of a run (consolidated file plus any parts), one per row key."""
    return _read(run_dir, "results", ROW_SCHEMA)


def read_encodings(run_dir: str | Path) -> pd.DataFrame:
    """What the encoders emitted per (op-point, utterance): frames, bitrates, codes file."""
    return _read(run_dir, "encodings", ENCODING_SCHEMA)


class ResultStore:
    """Buffers rows and flushes them as parquet parts every ``flush_rows`` rows or seconds."""

    def __init__(self, run_dir: Path, flush_rows: int = 2000, flush_seconds: float = 10.0,
                 name: str = "results", schema: pa.Schema = ROW_SCHEMA):
        self.run_dir = Path(run_dir)
        self.name, self.schema = name, schema
        self.parts_dir = self.run_dir / name
        self.parts_dir.mkdir(parents=True, exist_ok=True)
        self.flush_rows, self.flush_seconds = flush_rows, flush_seconds
        self._buffer: list[dict[str, Any]] = []
        self._last_flush = time.monotonic()
        existing = _read(self.run_dir, name, schema)
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
            _write_table(self._buffer, self.parts_dir / name, self.schema)
            self.n_written += len(self._buffer)
            self._buffer = []
        self._last_flush = time.monotonic()

    def consolidate(self) -> pd.DataFrame:
        """Merge parts into ``<name>.parquet`` (atomically), then remove the merged parts."""
        self.flush()
        parts = sorted(self.parts_dir.glob("part-*.parquet"))
        df = _read(self.run_dir, self.name, self.schema)
        order = [c for c in ("task", "codec", "item_id", "metric") if c in df.columns]
        df = df.sort_values(order, kind="stable").reset_index(drop=True)
        _write_table(df, self.run_dir / f"{self.name}.parquet", self.schema)
        for part in parts:
            part.unlink(missing_ok=True)
        return df
