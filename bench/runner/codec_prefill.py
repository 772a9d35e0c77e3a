"""Codec inference as executor jobs (a Ray cluster's GPUs), ahead of the driver's op-point loop.

The driver's codec stage reads the decoded-audio cache first. Prefilling that cache with codec
jobs therefore changes where codecs run, not what the run does: once an op-point's jobs are
back, its stage finds every entry cached and the scoring, encodings records, dataset-level
tasks and resume logic go on unchanged. A job that fails costs nothing but time: the stage
codes the misses itself, as without prefilling.

Jobs carry paths, never audio, and at most ``max_pending`` are out at once, submitted in
op-point order, so the driver holds neither audio nor the whole run's job list.
"""

from __future__ import annotations

import itertools
import logging
from collections import defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, wait
from pathlib import Path
from typing import TYPE_CHECKING

from bench.data.manifest import Item
from bench.runner.executor import Executor
from bench.runner.jobs import CodecJob, CodecJobResult, codec_job

if TYPE_CHECKING:
    from bench.runner.run import Run

log = logging.getLogger(__name__)

#: References per codec job, in codec batches: enough to amortise loading the codec in the worker.
BATCHES_PER_JOB = 8


def codec_jobs(run: Run, order: list[Item], cache_dir: Path) -> Iterator[tuple[str, CodecJob, bool]]:
    """(op-point id, job, wants a GPU) for every op-point's items with rows missing, op by op.

    A neural (token) op-point asks for a GPU unless the run's device is ``cpu``; the executor
    grants one only where the cluster has some.
    """
    size = BATCHES_PER_JOB * run.config.batch_size
    for op in run.ops:
        weights = run.config.weights.get(op.meta.id)
        gpu = op.meta.kind == "tokens" and not run.config.device.startswith("cpu")
        # longest first, as the driver's own windows; found lazily, as the driver finds them
        todo = ((it.id, str(run.dataset.path_of(it))) for it in order if not it.error and run.missing(op, it))
        while chunk := list(itertools.islice(todo, size)):
            yield op.meta.id, CodecJob(op.meta.id, weights, run.config.device, run.config.batch_size,
                                       str(cache_dir), chunk), gpu


class CodecPrefill:
    """Keeps codec jobs running on the executor and hands each op-point's outcome to the driver."""

    def __init__(self, executor: Executor, jobs: Iterator[tuple[str, CodecJob, bool]], max_pending: int):
        self.executor, self._jobs, self.max_pending = executor, jobs, max_pending
        self._next = next(jobs, None)
        self._pending: dict[Future, str] = {}
        self._done: dict[str, list[Future]] = defaultdict(list)
        self.active = False
        """Whether the executor took codec jobs (False: the driver codes everything, as before)."""
        self.top_up()

    def top_up(self) -> None:
        """Collect finished jobs and submit more, up to ``max_pending`` out at once."""
        for fut in [f for f in self._pending if f.done()]:
            self._done[self._pending.pop(fut)].append(fut)
        while self._next is not None and len(self._pending) < self.max_pending:
            op_id, job, gpu = self._next
            fut = self.executor.submit_codec(codec_job, job, gpu)
            if fut is None:  # the executor runs no codec jobs
                self._next = None
                return
            self.active = True
            self._pending[fut] = op_id
            self._next = next(self._jobs, None)

    def finish(self, op_id: str, poll: Callable[[], None], poll_seconds: float = 1.0) -> list[CodecJobResult]:
        """Wait until every job of ``op_id`` is back; ``poll`` runs meanwhile (streams scoring results).

        A job that failed is logged with its reason and left out: the driver's stage codes its items.
        """
        while True:
            self.top_up()
            mine = [f for f, o in self._pending.items() if o == op_id]
            if not mine and (self._next is None or self._next[0] != op_id):
                break
            wait(mine or list(self._pending), timeout=poll_seconds, return_when=FIRST_COMPLETED)
            poll()
        results = []
        for fut in self._done.pop(op_id, []):
            try:
                results.append(fut.result())
            except Exception as exc:
                log.warning("%s: a codec job failed (%s: %s); the driver codes its items", op_id,
                            type(exc).__name__, exc)
                continue
            if results[-1].load_error:
                log.warning("%s: the codec did not load in a codec job (%s); the driver tries", op_id,
                            results[-1].load_error)
        return results
