"""What a task is: which metrics it scores and how one (reference, codec output) pair is scored.

A task declares its needs and scores; it never loops over data, caches or parallelises — the
runner does. Task plugins live in the top-level ``tasks/`` folder (installed as ``bench.tasks``)
and register with :func:`register_task`; third parties use the ``codecbench.tasks`` entry points.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from bench.audio import Audio, prepare_pair
from bench.data.manifest import Item
from bench.errors import UsageError
from bench.metrics import metrics
from bench.registry import Registry


@dataclass
class CellOutcome:
    """The result of one metric on one pair: a value, or the reason there is none."""

    metric: str
    value: float | None
    error: str | None
    wall_s: float
    judge: str | None = None


class Task:
    """Base task: score a reference against what a codec made of it, metric by metric."""

    name: str = ""
    description: str = ""
    default_metrics: tuple[str, ...] = ()
    needs_text: bool = False

    def metric_ids(self, requested: Sequence[str] | None = None) -> list[str]:
        ids = list(requested) if requested else list(self.default_metrics)
        for metric_id in ids:
            metrics.get(metric_id)  # raises UnknownNameError with suggestions
        if not ids:
            raise UsageError(f"task {self.name!r} has no metrics to compute")
        return ids

    def score(self, item: Item, reference: Audio, degraded: Audio, metric_ids: Sequence[str]) -> list[CellOutcome]:
        """Score every metric; one metric failing never hides the others."""
        prepared: dict[int, tuple] = {}
        outcomes: list[CellOutcome] = []
        for metric_id in metric_ids:
            metric = metrics.get(metric_id)
            start = time.perf_counter()
            try:
                ok, why = metric.availability()
                if not ok:
                    raise RuntimeError(f"metric unavailable: {why}")
                rate = metric.info.sample_rate
                if rate not in prepared:
                    prepared[rate] = prepare_pair(reference, degraded, rate)
                value = float(metric.compute(*prepared[rate]))
                outcomes.append(CellOutcome(metric_id, value, None, time.perf_counter() - start))
            except Exception as exc:  # becomes an error cell carrying the message
                outcomes.append(CellOutcome(metric_id, None, f"{type(exc).__name__}: {exc}",
                                            time.perf_counter() - start))
        return outcomes


tasks: Registry[Task] = Registry("task", "codecbench.tasks", ("bench.tasks.reconstruction",
                                                          "bench.tasks.information_preservation",
                                                          "bench.tasks.text_alignment",
                                                          "bench.tasks.zero_shot_tts",
                                                          "bench.tasks.continuation"))


def register_task(cls: type[Task]) -> type[Task]:
    """Class decorator: register one instance under ``cls.name``."""
    tasks.register(cls.name, cls())
    return cls



