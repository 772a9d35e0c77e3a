"""Judge outputs cached by (audio hash, judge id@revision): a transcript or embedding is computed once.

The ceiling (the judge on the original audio) is the same for every op-point, so it is computed
for the first op-point and read back for the others. One SQLite table under the codecbench cache
directory (``CODECBENCH_CACHE``); commits are atomic and safe across worker processes.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bench.audio import audio_sha256
from bench.runner.cache import content_key, default_cache_dir


class JudgeCache:
    def __init__(self, root: Path | None = None):
        self.path = Path(root or default_cache_dir()) / "judges.sqlite"
        self._db: sqlite3.Connection | None = None
        self._pid = -1

    @property
    def db(self) -> sqlite3.Connection:
        if self._db is None or self._pid != os.getpid():  # never share a connection across a fork
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, timeout=60)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("CREATE TABLE IF NOT EXISTS output (key TEXT PRIMARY KEY, value TEXT)")
            self._pid = os.getpid()
        return self._db

    def get(self, keys: list[str]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            rows = self.db.execute(f"SELECT key, value FROM output WHERE key IN ({','.join('?' * len(chunk))})", chunk)
            out.update({k: json.loads(v) for k, v in rows})
        return out

    def put(self, items: dict[str, Any]) -> None:
        with self.db:
            self.db.executemany("INSERT OR REPLACE INTO output VALUES (?, ?)",
                                [(k, json.dumps(v)) for k, v in items.items()])


_CACHE: JudgeCache | None = None


def judge_cache() -> JudgeCache:
    global _CACHE
    if _CACHE is None or _CACHE.path.parent != Path(default_cache_dir()):
        _CACHE = JudgeCache()
    return _CACHE


def cached_call(judge_ref: str, what: str, waves: Sequence[np.ndarray], rate: int,
                fn: Callable[[list[np.ndarray]], list[Any]], use_cache: bool = True) -> list[Any]:
    """``fn`` over the waves not yet cached under (audio hash, judge ref, what); JSON-able outputs."""
    keys = [content_key("judge-v1", judge_ref, what, audio_sha256(w[None, :], rate)) for w in waves]
    cache = judge_cache() if use_cache else None
    hits = cache.get(keys) if cache else {}
    todo = [i for i, k in enumerate(keys) if k not in hits]
    if todo:
        fresh = fn([waves[i] for i in todo])
        new = {keys[i]: (v.tolist() if isinstance(v, np.ndarray) else v) for i, v in zip(todo, fresh, strict=True)}
        if cache:
            cache.put(new)
        hits.update(new)
    return [hits[k] for k in keys]
