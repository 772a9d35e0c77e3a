"""Exceptions that separate user mistakes (exit non-zero) from failed cells (data)."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class CodecBenchError(Exception):
    """Base class for every error codecbench raises on purpose."""


class UsageError(CodecBenchError):
    """A command line or configuration mistake; the CLI exits with status 2."""


class UnknownNameError(UsageError, KeyError):
    """A registry lookup failed; the message suggests close names."""

    def __init__(self, kind: str, name: str, known: Iterable[str]):
        known = sorted(known)
        close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        listing = ", ".join(known[:12]) + (" ..." if len(known) > 12 else "")
        super().__init__(f"unknown {kind} {name!r}.{hint} Known {kind}s: {listing}")
        self.kind, self.name, self.suggestions = kind, name, close

    def __str__(self) -> str:  # KeyError would repr() the message
        return self.args[0]


class DataError(CodecBenchError):
    """Bad input data: unreadable audio, malformed manifest, unsafe path."""


class CodecError(CodecBenchError):
    """A codec failed on one input; becomes a failed cell, never a number."""


class MetricError(CodecBenchError):
    """A metric could not score a pair; becomes a failed cell, never a number."""


class WeightsUnavailableError(CodecBenchError):
    """Pretrained weights are not on disk and cannot be fetched; names what to fetch."""
