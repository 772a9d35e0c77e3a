"""Scoring jobs on a Ray cluster: ``codecbench run --executor ray [--address ADDR]``.

Ray runs exactly the jobs the local pool runs (``score_job`` on a ``ScoreJob``); each task's
``ObjectRef`` is handed back as a ``concurrent.futures.Future``, so results stream into the same
result store, value cache and resume logic. Only this module imports ray, and only when the
``ray`` executor is chosen (``pip install 'codecbench[ray]'``).

Codec inference stays in the driver process (on its GPU with ``--device cuda``); workers only
score. Jobs carry file paths (reference audio, decoded audio in the cache), so on a multi-node
cluster the dataset and the cache directory must be on a filesystem every node mounts.

A worker that dies mid-task (OOM kill, node loss, ``os._exit``) is retried by Ray up to
``max_retries`` times; the driver sees one result per job, and the store keeps one row per
row key whatever happens.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

import ray

from bench.runner.executor import SINGLE_THREAD_ENV, Executor


def _call(fn: Callable[[Any], Any], arg: Any) -> Any:
    """Runs in a Ray worker: one numerical thread per task (Ray's CPU slot is the parallelism)."""
    import torch

    if torch.get_num_threads() != 1:
        torch.set_num_threads(1)
    return fn(arg)


class RayExecutor(Executor):
    """Submits jobs as Ray tasks of ``num_cpus`` CPUs each; connects to ``address`` or starts Ray locally.

    ``workers`` bounds the local instance this starts when no cluster is given (``ray.init(num_cpus=
    workers)``); on an existing cluster Ray's own CPU accounting decides how many run at once.
    """

    def __init__(self, workers: int, address: str | None = None, max_retries: int = 3, num_cpus: float = 1.0,
                 init_kwargs: dict[str, Any] | None = None):
        self._owns_ray = False
        if not ray.is_initialized():
            kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": True,
                                      "runtime_env": {"env_vars": dict(SINGLE_THREAD_ENV)}}
            if address:
                kwargs["address"] = address
            else:
                kwargs["num_cpus"] = max(1, workers)
            kwargs.update(init_kwargs or {})
            ray.init(**kwargs)
            self._owns_ray = True
        self.workers = max(1, int(ray.cluster_resources().get("CPU", workers) // num_cpus))
        self._remote = ray.remote(_call).options(num_cpus=num_cpus, max_retries=max_retries,
                                                 retry_exceptions=False)

    def submit(self, fn: Callable[[Any], Any], arg: Any) -> Future:
        return self._remote.remote(fn, arg).future()

    def warm_up(self, fn: Callable[[Any], Any], arg: Any) -> None:
        """Start one worker per CPU slot and load the metrics there while the codecs run."""
        for _ in range(self.workers):
            self._remote.remote(fn, arg)

    def shutdown(self) -> None:
        if self._owns_ray:
            ray.shutdown()
            self._owns_ray = False


def make_ray_executor(workers: int, address: str | None = None) -> RayExecutor:
    """Factory registered as the ``ray`` executor; ``address`` as for ``ray.init`` (``auto``, ``ray://…``)."""
    return RayExecutor(workers, address=address or os.environ.get("RAY_ADDRESS") or None)
