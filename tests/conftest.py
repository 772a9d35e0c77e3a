"""Shared test fixtures (kept minimal)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import torch

# Tiny random-init models are dominated by thread start-up: one thread is faster and deterministic.
torch.set_num_threads(1)


def make_speechlike(sample_rate: int, duration: float = 2.0, seed: int = 0) -> np.ndarray:
    """Deterministic speech-like [1, T] float32: a glottal pulse train with vibrato through
    formant resonators, lip radiation, a little aspiration noise and a 3 Hz syllable envelope."""
    from scipy.signal import lfilter

    rng = np.random.default_rng(seed)
    n = int(round(sample_rate * duration))
    t = np.arange(n) / sample_rate
    f0 = 120 + 30 * np.sin(2 * np.pi * 1.3 * t) + 10 * np.sin(2 * np.pi * 3.1 * t)
    pulses = np.diff(np.floor(np.cumsum(f0 / sample_rate)), prepend=0.0)
    source = lfilter([1.0, -1.0], [1.0, -1.9, 0.9025], pulses) + 0.003 * rng.standard_normal(n)
    y = np.zeros(n)
    for fc, bw, gain in [(700, 130, 1.0), (1220, 70, 0.6), (2600, 160, 0.3), (3300, 200, 0.2)]:
        if fc >= 0.95 * sample_rate / 2:
            continue
        r, th = np.exp(-np.pi * bw / sample_rate), 2 * np.pi * fc / sample_rate
        y += gain * lfilter([1 - r], [1.0, -2 * r * np.cos(th), r * r], source)
    y *= (0.5 * (1 + np.sin(2 * np.pi * 3.0 * t - np.pi / 2))) ** 1.5
    return (0.5 * y / np.max(np.abs(y))).astype(np.float32)[None, :]


@pytest.fixture(scope="session")
def speechlike() -> Callable[..., np.ndarray]:
    """Factory ``speechlike(sample_rate, duration=2.0, seed=0) -> [1, T] float32``."""
    return make_speechlike


@pytest.fixture(scope="module")
def one_thread():
    """Tiny models run fastest single-threaded; two threads on a loaded 2-core box are ~20x slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
