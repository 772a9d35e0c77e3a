"""Imported once by the fork server, so every worker forked from it starts with these loaded.

Sets the one-thread limits first, then imports the numerical stack and the metric modules;
nothing here starts a thread pool, so forking afterwards is safe.
"""

import contextlib
import importlib
import os

from bench.runner.executor import SINGLE_THREAD_ENV

os.environ.update(SINGLE_THREAD_ENV)

import numpy  # noqa: E402, F401
import soundfile  # noqa: E402, F401
import soxr  # noqa: E402, F401
import torch  # noqa: E402

import bench.runner.jobs  # noqa: E402, F401  (the job function and its imports)
from bench.metrics import metrics  # noqa: E402

torch.set_num_threads(1)
metrics.names()  # imports every metric module
for package in ("pesq", "pystoi", "visqol"):  # the reference packages they call lazily
    with contextlib.suppress(ImportError):
        importlib.import_module(package)
