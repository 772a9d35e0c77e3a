"""What worker processes execute: a picklable scoring job and the function that runs it.

Kept apart from the runner so a worker imports only audio, metrics and tasks — not pandas,
pyarrow or the result store.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import numpy as np

from bench.audio import Audio, load_audio, prepare_pair
from bench.data.manifest import Item
from bench.metrics import metrics
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


def warm_metrics(metric_ids: list[str]) -> None:
    """First calls load models and JIT caches (ViSQOL, numba): do them before real jobs arrive."""
    t = np.arange(8000, dtype=np.float32) / 16000
    ref = Audio((0.3 * np.sin(2 * np.pi * 220 * t) * np.sin(np.pi * t * 2)).reshape(1, -1), 16000)
    deg = Audio(ref.samples * 0.9, 16000)
    for metric_id in metric_ids:
        with contextlib.suppress(Exception):  # a warm-up failure shows again, as a cell error, later
            metric = metrics.get(metric_id)
            metric.compute(*prepare_pair(ref, deg, metric.info.sample_rate))


