"""Codec and scoring jobs on a Ray cluster: ``codecbench run --executor ray [--address ADDR]``.

Ray runs the work units of a run as tasks: codec inference of each op-point in chunks of
references (``codec_job`` on a ``CodecJob``, one GPU per task for neural op-points when the
cluster has GPUs and the run's device is not ``cpu``, else one CPU) and the metric and judge
scoring (``score_job`` on a ``ScoreJob``, one CPU). Codec jobs write decoded audio into the
cache, where the driver's codec stage then finds it, so results, value cache and resume logic
are those of a local run. Each task's ``ObjectRef`` is handed back as a
``concurrent.futures.Future``. Only this module imports ray, and only when the ``ray`` executor
is chosen (``pip install 'codecbench[ray]'``).

Jobs carry file paths (reference audio, the cache directory), so on a multi-node cluster the
dataset and the cache directory must be on a filesystem every node mounts.

A worker that dies mid-task (OOM kill, node loss, ``os._exit``) is retried by Ray up to
``max_retries`` times; the driver sees one result per job, and the store keeps one row per
row key whatever happens.
"""

from __future__ import annotations

import dataclasses
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


def _call_codec(fn: Callable[[Any], Any], job: Any) -> Any:
    """Runs in a Ray worker: code on the GPU Ray granted this task (it sets the visible device), else on CPU."""
    return _call(fn, dataclasses.replace(job, device="cuda" if ray.get_gpu_ids() else "cpu"))


class RayExecutor(Executor):
    """Submits jobs as Ray tasks of ``num_cpus`` CPUs each; connects to ``address`` or starts Ray locally.

    Codec jobs that ask for a GPU get one GPU (plus ``num_cpus``) when the cluster has any GPU,
    otherwise they run as CPU tasks like scoring jobs, one numerical thread per CPU slot.
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
        self.has_gpus = ray.cluster_resources().get("GPU", 0) > 0
        # CPU codec jobs share the scoring workers (a second worker pool on the same CPUs would make
        # Ray kill and restart warm scoring workers); codec_job leaves the process as it found it. A GPU
        # job gets a fresh process (Ray's default for GPU tasks), which frees the GPU's memory after it.
        codec = {"num_cpus": num_cpus, "max_retries": max_retries, "retry_exceptions": False}
        self._codec_cpu = ray.remote(**codec)(_call_codec)
        self._codec_gpu = ray.remote(num_gpus=1, max_calls=1, **codec)(_call_codec)

    def submit(self, fn: Callable[[Any], Any], arg: Any) -> Future:
        return self._remote.remote(fn, arg).future()

    def submit_codec(self, fn: Callable[[Any], Any], job: Any, gpu: bool) -> Future:
        remote = self._codec_gpu if gpu and self.has_gpus else self._codec_cpu
        return remote.remote(fn, job).future()

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
