"""Content-addressed cache: decoded audio by (input audio, op-point metadata), values by inputs.

Decoded audio: ``decoded/<k[:2]>/<k>.npy`` plus a JSON sidecar (measured bitrate, wall time),
each written to a temporary name and renamed, so a killed run never leaves half a file.
Metric values: one SQLite table keyed by (reference hash, degraded hash, metric id, version);
SQLite commits are atomic. Deterministic failures are cached as failures, with their message.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bench.runner.atomic import atomic_write_bytes


def default_cache_dir() -> Path:
    base = os.environ.get("CODECBENCH_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "codecbench"
    )
    return Path(base)


def content_key(*parts: Any) -> str:
    """sha256 over a canonical JSON of the parts."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def _npy_bytes(array: np.ndarray) -> bytes:
    import io

    buf = io.BytesIO()
    np.save(buf, array)
    return buf.getvalue()


@dataclass
class DecodedEntry:
    """A cached codec output: where its samples are and what encoding it measured."""

    path: Path
    sample_rate: int
    sha256: str
    payload_bps: float | None
    overhead_bps: float | None
    codec_wall_s: float
    error: str | None = None
    n_frames: int | None = None
    n_samples: int | None = None
    codes_path: str | None = None
    decodable: bool = True
    """False for encode-only op-points: codes were recorded, there is no audio."""


class Cache:
    """Decoded-audio files and a metric-value table under one directory."""

    def __init__(self, root: Path, read: bool = True):
        self.root = Path(root)
        self.read = read
        self.root.mkdir(parents=True, exist_ok=True)
        self._db: sqlite3.Connection | None = None

    # -- decoded audio -------------------------------------------------------------------
    def _decoded_paths(self, key: str) -> tuple[Path, Path]:
        base = self.root / "decoded" / key[:2] / key
        return base.with_suffix(".npy"), base.with_suffix(".json")

    def get_decoded(self, key: str) -> DecodedEntry | None:
        if not self.read:
            return None
        npy, meta = self._decoded_paths(key)
        if not meta.exists():
            return None
        info = json.loads(meta.read_text())
        if info.get("error") is None and info.get("decodable", True) and not npy.exists():
            return None
        return DecodedEntry(path=npy, **info)

    def put_decoded(self, key: str, samples: np.ndarray | None, entry: DecodedEntry,
                    codes: np.ndarray | None = None) -> DecodedEntry:
        npy, meta = self._decoded_paths(key)
        if samples is not None:
            atomic_write_bytes(npy, _npy_bytes(np.ascontiguousarray(samples, dtype=np.float32)))
        if codes is not None:
            codes_path = npy.with_suffix(".codes.npy")
            atomic_write_bytes(codes_path, _npy_bytes(codes.astype(np.int32 if codes.max() > 32767 else np.int16)))
            entry.codes_path = str(codes_path)
        info = {k: v for k, v in entry.__dict__.items() if k != "path"}
        atomic_write_bytes(meta, json.dumps(info).encode())
        entry.path = npy
        return entry

    # -- metric values ---------------------------------------------------------------------
    @property
    def db(self) -> sqlite3.Connection:
        if self._db is None:
            self._db = sqlite3.connect(self.root / "values.sqlite", timeout=60)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS value (key TEXT PRIMARY KEY, value REAL, error TEXT, wall_s REAL)"
            )
        return self._db

    def get_values(self, keys: list[str]) -> dict[str, tuple[float | None, str | None, float]]:
        if not self.read or not keys:
            return {}
        out: dict[str, tuple[float | None, str | None, float]] = {}
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            rows = self.db.execute(
                f"SELECT key, value, error, wall_s FROM value WHERE key IN ({','.join('?' * len(chunk))})", chunk
            )
            out.update({k: (v, e, w) for k, v, e, w in rows})
        return out

    def put_values(self, entries: list[tuple[str, float | None, str | None, float]]) -> None:
        if entries:
            with self.db:
                self.db.executemany("INSERT OR REPLACE INTO value VALUES (?, ?, ?, ?)", entries)

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
