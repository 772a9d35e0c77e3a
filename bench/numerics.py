"""Process-wide numerical modes, switched on only around the code that needs them.

Neural codecs and codec-LMs meet denormal floats (tiny activations of random or trained weights),
which make CPU inference up to 10× slower unless they are flushed to zero. Flushing is a
process-wide CPU mode, so leaving it on would let the metrics computed later in the same process
(inline scoring, the judges of generation tasks, a Ray worker that also ran a codec job) depend
on which model ran before them. Hence a context manager, and nothing sets the mode for good.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch

_depth = 0


@contextmanager
def flushed_denormals() -> Iterator[None]:
    """Flush denormals to zero inside the block (nestable); the default (off) is restored after."""
    global _depth
    if _depth == 0:
        torch.set_flush_denormal(True)
    _depth += 1
    try:
        yield
    finally:
        _depth -= 1
        if _depth == 0:
            torch.set_flush_denormal(False)
