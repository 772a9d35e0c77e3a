"""Executors run scoring jobs: inline (1 worker), in a local process pool, or on Ray.

All return ``concurrent.futures.Future`` objects, so the runner streams results the same way
whatever runs them. An executor that can place codec inference (on a cluster's GPUs) also takes
codec jobs (``submit_codec``); the local ones decline, and the driver codes as it always has.
Executors register in one registry; the ``ray`` entry imports its module (and ray) only when
chosen, so the core never needs ray installed.
"""

from __future__ import annotations

import inspect
import multiprocessing as mp
import os
from abc import ABC, abstractmethod
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any

from bench.errors import UsageError
from bench.registry import Registry


class Executor(ABC):
    workers: int

    @abstractmethod
    def submit(self, fn: Callable[[Any], Any], arg: Any) -> Future:
        """Schedule ``fn(arg)``."""

    def shutdown(self) -> None:  # noqa: B027 - inline executors hold nothing to release
        """Release workers."""

    def warm_up(self, fn: Callable[[Any], Any], arg: Any) -> None:  # noqa: B027 - nothing to warm inline
        """Start workers now and run ``fn(arg)`` in each, overlapping start-up with codec inference."""

    def submit_codec(self, fn: Callable[[Any], Any], job: Any, gpu: bool) -> Future | None:
        """Schedule codec inference ``fn(job)``, on a GPU when ``gpu`` and the executor has one.

        None: this executor does not run codec jobs, the driver codes in its own process. A local
        pool declines because the driver already holds the device (and, on one machine, the
        cores), so moving codecs into its workers would only add loading and copying.
        """
        return None


class InlineExecutor(Executor):
    """Runs each job at submission, in this process: no pickling, no start-up cost."""

    workers = 1

    def submit(self, fn: Callable[[Any], Any], arg: Any) -> Future:
        fut: Future = Future()
        try:
            fut.set_result(fn(arg))
        except BaseException as exc:  # surfaced by fut.result(), as a pool would
            fut.set_exception(exc)
        return fut


#: Thread pools a worker would otherwise size to all cores (OpenMP/torch, BLAS, numba used by ViSQOL).
SINGLE_THREAD_ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
                     "NUMBA_NUM_THREADS": "1"}


def _init_worker() -> None:
    """One thread per worker process: the pool is the parallelism, oversubscription only costs.

    Runs before the worker imports numpy, torch or numba, so the limits take effect.
    """
    os.environ.update(SINGLE_THREAD_ENV)
    import torch

    torch.set_num_threads(1)


class ProcessExecutor(Executor):
    """A process pool whose workers fork from a fork server with the numerical stack preloaded.

    Forking the main process is unsafe once torch has started its threads; the fork server is a
    clean process that only imports (bench.runner.worker_preload), so workers start in
    milliseconds instead of re-importing torch, scipy and the metric packages each.
    """

    def __init__(self, workers: int):
        self.workers = workers
        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload(["bench.runner.worker_preload"])
        self._pool = ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker)

    def submit(self, fn: Callable[[Any], Any], arg: Any) -> Future:
        return self._pool.submit(fn, arg)

    def warm_up(self, fn: Callable[[Any], Any], arg: Any) -> None:
        for _ in range(self.workers):
            self._pool.submit(fn, arg)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


def make_local_executor(workers: int) -> Executor:
    return InlineExecutor() if workers <= 1 else ProcessExecutor(workers)


def make_ray_executor(workers: int, address: str | None = None) -> Executor:
    """Lazy entry for ``--executor ray``: imports ray only now (optional extra ``codecbench[ray]``)."""
    try:
        from bench.runner.ray_executor import make_ray_executor as make
    except ImportError as exc:
        raise UsageError(f"--executor ray needs the optional package ray ({exc}); "
                         "install it with: pip install 'codecbench[ray]'") from exc
    return make(workers, address=address)


executors: Registry[Callable[..., Executor]] = Registry("executor", "codecbench.executors")
executors.register("local", make_local_executor)
executors.register("ray", make_ray_executor)


def make_executor(name: str, workers: int, address: str | None = None) -> Executor:
    """Build the named executor; ``address`` goes only to executors that take one (a cluster)."""
    factory = executors.get(name)
    if address is None:
        return factory(workers)
    try:
        takes_address = "address" in inspect.signature(factory).parameters
    except (TypeError, ValueError):
        takes_address = False
    if not takes_address:
        raise UsageError(f"--address applies to cluster executors such as ray, not to {name!r}")
    return factory(workers, address=address)
