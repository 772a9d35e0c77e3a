"""What worker processes execute: picklable scoring and codec jobs and the functions that run them.

Kept apart from the runner so a worker imports only audio, codecs, metrics and tasks — not
pandas, pyarrow or the result store.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.audio import Audio, load_audio, prepare_pair
from bench.codecs import codecs
from bench.data.manifest import Item
from bench.metrics import metrics
from bench.runner.cache import Cache
from bench.runner.codec_stage import CodecStage, load_reference
from bench.task import CellOutcome, tasks


@dataclass
class ScoreJob:
    """Picklable unit of metric work: one reference, one decoded signal, the metrics missing."""

    task: str
    item: Item
    ref_path: str
    deg_path: str
    deg_rate: int
    metric_ids: list[str]


def score_job(job: ScoreJob) -> list[CellOutcome]:
    """Executed by workers: load both signals and let the task score them."""
    try:
        reference = load_audio(job.ref_path)
        degraded = Audio(np.load(job.deg_path), job.deg_rate)
    except Exception as exc:
        msg = f"cannot load scoring inputs: {type(exc).__name__}: {exc}"
        return [CellOutcome(m, None, msg, 0.0) for m in job.metric_ids]
    return tasks.get(job.task).score(job.item, reference, degraded, job.metric_ids)


@dataclass
class CodecJob:
    """Picklable unit of codec work: one op-point and the references (by path) it has yet to code.

    Only paths cross the wire; the decoded audio lands in the cache at ``cache_dir``, where the
    driver's codec stage then finds it (cache first) and goes on as if it had coded it itself.
    """

    op_id: str
    weights: str | None
    device: str
    batch_size: int
    cache_dir: str
    items: list[tuple[str, str]]
    """(item id, reference audio path), longest first."""


@dataclass
class CodecJobResult:
    n_computed: int
    """References actually coded (the rest were already in the cache)."""
    load_error: str | None
    """Why the codec did not load here; the driver then loads it itself, and fails with the reason."""
    wall_s: float


def codec_job(job: CodecJob) -> CodecJobResult:
    """Executed by workers: run the op-point's codec stage over the references, filling the cache.

    The worker also runs scoring jobs; codecs flush denormals only inside their own calls
    (:func:`bench.numerics.flushed_denormals`), so the scores after this job are unaffected.
    """
    start = time.perf_counter()
    cache = Cache(Path(job.cache_dir))
    stage = CodecStage(codecs.get(job.op_id), cache, job.device, job.batch_size,
                       Path(job.weights) if job.weights else None)
    try:
        for _ in stage.process(load_reference(item_id, path) for item_id, path in job.items):
            pass
    finally:
        cache.close()
    return CodecJobResult(stage.n_computed, stage.load_error, time.perf_counter() - start)


def warm_metrics(metric_ids: list[str]) -> None:
    """First calls load models and JIT caches (ViSQOL, numba): do them before real jobs arrive."""
    t = np.arange(8000, dtype=np.float32) / 16000
    ref = Audio((0.3 * np.sin(2 * np.pi * 220 * t) * np.sin(np.pi * t * 2)).reshape(1, -1), 16000)
    deg = Audio(ref.samples * 0.9, 16000)
    for metric_id in metric_ids:
        with contextlib.suppress(Exception):  # a warm-up failure shows again, as a cell error, later
            metric = metrics.get(metric_id)
            metric.compute(*prepare_pair(ref, deg, metric.info.sample_rate))


