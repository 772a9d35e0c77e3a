"""Known cases of the seeded percentile bootstrap."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bench.analysis.bootstrap import bootstrap_mean_ci, paired_bootstrap_diff, resampled_means


def test_constant_data_gives_zero_width_interval() -> None:
    ci = bootstrap_mean_ci([0.1] * 7)
    assert ci.lo == ci.hi == ci.mean
    assert ci.n == 7


def test_interval_covers_mean_and_matches_normal_theory() -> None:
    x = np.random.default_rng(1).normal(3.0, 1.0, size=400)
    ci = bootstrap_mean_ci(x)
    assert ci.lo < ci.mean < ci.hi
    assert ci.mean == pytest.approx(x.mean())
    half = 1.96 * x.std(ddof=1) / math.sqrt(x.size)
    assert (ci.hi - ci.lo) / 2 == pytest.approx(half, rel=0.15)


def test_deterministic_for_a_seed_and_seed_matters() -> None:
    x = np.random.default_rng(2).exponential(size=50)
    assert bootstrap_mean_ci(x, seed=5) == bootstrap_mean_ci(x, seed=5)
    assert bootstrap_mean_ci(x, seed=5) != bootstrap_mean_ci(x, seed=6)


def test_single_value_has_mean_but_undefined_interval() -> None:
    ci = bootstrap_mean_ci([4.2])
    assert ci.mean == 4.2 and ci.n == 1
    assert math.isnan(ci.lo) and math.isnan(ci.hi)


def test_empty_and_non_finite_raise() -> None:
    with pytest.raises(ValueError, match="empty"):
        bootstrap_mean_ci([])
    with pytest.raises(ValueError, match="NaN"):
        bootstrap_mean_ci([1.0, float("nan")])
    with pytest.raises(ValueError):
        bootstrap_mean_ci([1.0, 2.0], n_resamples=0)
    with pytest.raises(ValueError):
        bootstrap_mean_ci([1.0, 2.0], confidence=1.0)


def test_wider_confidence_gives_wider_interval() -> None:
    x = np.random.default_rng(3).normal(size=60)
    narrow, wide = bootstrap_mean_ci(x, confidence=0.8), bootstrap_mean_ci(x, confidence=0.99)
    assert wide.lo < narrow.lo and wide.hi > narrow.hi


def test_chunked_resampling_is_bounded_and_correct() -> None:
    x = np.arange(10.0)
    means = resampled_means(x, 3000, np.random.default_rng(0))
    assert means.shape == (3000,)
    assert means.min() >= 0 and means.max() <= 9
    assert means.mean() == pytest.approx(4.5, abs=0.1)


def test_paired_difference_detects_consistent_shift_that_unpaired_misses() -> None:
    rng = np.random.default_rng(4)
    difficulty = rng.normal(0, 2.0, size=40)
    a = difficulty + 0.3 + rng.normal(0, 0.05, size=40)
    b = difficulty
    paired = paired_bootstrap_diff(a, b)
    assert paired.n == 40
    assert paired.diff == pytest.approx(np.mean(a - b))
    assert paired.lo > 0  # paired: clearly better
    ci_a, ci_b = bootstrap_mean_ci(a), bootstrap_mean_ci(b)
    assert ci_a.lo < ci_b.hi  # unpaired intervals overlap


def test_paired_requires_equal_lengths() -> None:
    with pytest.raises(ValueError, match="equal lengths"):
        paired_bootstrap_diff([1.0, 2.0], [1.0])
    same = paired_bootstrap_diff([1.0, 2.0, 3.0], [1.0, 2.0, 3.0])
    assert same.diff == same.lo == same.hi == 0.0
