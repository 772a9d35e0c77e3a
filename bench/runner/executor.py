"""Executors run scoring jobs: inline (1 worker) or in a local process pool.

Both return ``concurrent.futures.Future`` objects, so the runner streams results the same way
whatever runs them; further executors (e.g. Ray) register in the same registry.
"""

from __future__ import annotations

import multiprocessing as mp
import os
from abc import ABC, abstractmethod
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any

from bench.registry import Registry


class Executor(ABC):
    workers: int

    @abstractmethod
    def submit(self, fn: Callable[[Any], Any], arg: Any) -> Future:
        """Schedule ``fn(arg)``."""

    def shutdown(self) -> None:  # noqa: B027 - inline executors hold nothing to release
        """Release workers."""


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


def _init_worker() -> None:
    """One BLAS/torch thread per worker process: the pool is the parallelism."""
    os.environ["OMP_NUM_THREADS"] = "1"
    import torch

    torch.set_num_threads(1)


class ProcessExecutor(Executor):
    """A spawn-started process pool (fork is unsafe once torch has started its threads)."""

    def __init__(self, workers: int):
        self.workers = workers
        self._pool = ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"), initializer=_init_worker)

    def submit(self, fn: Callable[[Any], Any], arg: Any) -> Future:
        return self._pool.submit(fn, arg)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


def make_local_executor(workers: int) -> Executor:
    return InlineExecutor() if workers <= 1 else ProcessExecutor(workers)


executors: Registry[Callable[[int], Executor]] = Registry("executor", "codecbench.executors")
executors.register("local", make_local_executor)
