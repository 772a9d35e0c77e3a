"""Seeded percentile-bootstrap confidence intervals for a mean and for a paired difference.

Every number a leaderboard prints comes with an interval so that two op-points whose intervals
overlap are not ranked by noise. The resampling is vectorised (one ``[resamples, n]`` index
matrix per chunk) and seeded, so the same values always give the same interval.

Edge cases are defined rather than accidental:

* empty input raises :class:`ValueError` (a mean of nothing is a caller bug, not a number);
* non-finite input raises :class:`ValueError` (failed cells must be filtered out before);
* ``n == 1``: the mean is the value, the interval is ``(nan, nan)`` - a single observation says
  nothing about spread, and a zero-width interval would claim certainty it does not have;
* constant data (``n >= 2``): the interval is exactly ``(mean, mean)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

DEFAULT_RESAMPLES = 2000
DEFAULT_CONFIDENCE = 0.95
DEFAULT_SEED = 0
_CHUNK_ELEMENTS = 1 << 19
"""Upper bound on index-matrix elements per chunk (~32 MiB of int64), so large n stays bounded."""

ArrayLike = Sequence[float] | np.ndarray


@dataclass(frozen=True)
class MeanCI:
    """Sample mean with its percentile-bootstrap interval ``[lo, hi]`` over ``n`` values."""

    mean: float
    lo: float
    hi: float
    n: int


@dataclass(frozen=True)
class PairedDiffCI:
    """Mean of ``a - b`` over paired items, with its bootstrap interval and the pair count."""

    diff: float
    lo: float
    hi: float
    n: int


def _as_finite_1d(values: ArrayLike, name: str = "values") -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64).ravel()
    if arr.size == 0:
        raise ValueError(f"cannot bootstrap an empty {name} array: there is no mean to estimate")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contain NaN or Inf; drop failed cells before bootstrapping")
    return arr


def _check_params(n_resamples: int, confidence: float) -> None:
    if int(n_resamples) != n_resamples or n_resamples < 1:
        raise ValueError(f"n_resamples must be a positive integer, got {n_resamples!r}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence!r}")


def resampled_means(values: np.ndarray, n_resamples: int, rng: np.random.Generator) -> np.ndarray:
    """Means of ``n_resamples`` with-replacement resamples of ``values`` (chunked, vectorised)."""
    n = values.size
    out = np.empty(int(n_resamples), dtype=np.float64)
    rows = max(1, _CHUNK_ELEMENTS // n)
    for start in range(0, int(n_resamples), rows):
        stop = min(start + rows, int(n_resamples))
        idx = rng.integers(0, n, size=(stop - start, n))
        out[start:stop] = values[idx].mean(axis=1)
    return out


def _interval(values: np.ndarray, n_resamples: int, confidence: float, seed: int) -> tuple[float, float, float]:
    mean = float(values.mean())
    if values.size == 1:
        return mean, float("nan"), float("nan")
    if np.ptp(values) == 0.0:
        return mean, mean, mean
    means = resampled_means(values, n_resamples, np.random.default_rng(seed))
    alpha = (1.0 - confidence) / 2.0
    lo, hi = np.quantile(means, [alpha, 1.0 - alpha])
    return mean, float(lo), float(hi)


def bootstrap_mean_ci(
    values: ArrayLike,
    *,
    n_resamples: int = DEFAULT_RESAMPLES,
    confidence: float = DEFAULT_CONFIDENCE,
    seed: int = DEFAULT_SEED,
) -> MeanCI:
    """Percentile-bootstrap CI of the mean of ``values`` (see the module doc for edge cases)."""
    _check_params(n_resamples, confidence)
    arr = _as_finite_1d(values)
    mean, lo, hi = _interval(arr, n_resamples, confidence, seed)
    return MeanCI(mean=mean, lo=lo, hi=hi, n=int(arr.size))


def paired_bootstrap_diff(
    a: ArrayLike,
    b: ArrayLike,
    *,
    n_resamples: int = DEFAULT_RESAMPLES,
    confidence: float = DEFAULT_CONFIDENCE,
    seed: int = DEFAULT_SEED,
) -> PairedDiffCI:
    """CI of ``mean(a - b)`` resampling *items* jointly, so per-item difficulty cancels out.

    ``a[i]`` and ``b[i]`` must be the scores of two systems on the same item ``i``. Pairing is
    what makes a small but consistent difference detectable where two independent intervals
    would overlap.
    """
    _check_params(n_resamples, confidence)
    arr_a = _as_finite_1d(a, "a")
    arr_b = _as_finite_1d(b, "b")
    if arr_a.shape != arr_b.shape:
        raise ValueError(f"paired bootstrap needs equal lengths, got {arr_a.size} and {arr_b.size}")
    diff, lo, hi = _interval(arr_a - arr_b, n_resamples, confidence, seed)
    return PairedDiffCI(diff=diff, lo=lo, hi=hi, n=int(arr_a.size))
