"""Metric registry: metric id → :class:`Metric` instance. Families register on import."""

from __future__ import annotations

from collections.abc import Callable

from bench.metrics.base import Metric, MetricInfo
from bench.registry import Registry

BUILTIN_FAMILIES = (
    "bench.metrics.pesq",
    "bench.metrics.stoi",
    "bench.metrics.visqol",
    "bench.metrics.spectral",
    "bench.metrics.sdr",
    "bench.metrics.task_scored",
)

metrics: Registry[Metric] = Registry("metric", "codecbench.metrics", BUILTIN_FAMILIES)


def register_metric(cls: type[Metric]) -> type[Metric]:
    """Class decorator: register one instance under ``cls.info.id``."""
    metrics.register(cls.info.id, cls())
    return cls


def register_metric_variants(*infos: MetricInfo) -> Callable[[type[Metric]], type[Metric]]:
    """Class decorator for one implementation with several settings (PESQ-WB / PESQ-NB)."""

    def add(cls: type[Metric]) -> type[Metric]:
        for info in infos:
            inst = cls()
            inst.info = info
            metrics.register(info.id, inst)
        return cls

    return add


__all__ = ["Metric", "MetricInfo", "metrics", "register_metric", "register_metric_variants"]
