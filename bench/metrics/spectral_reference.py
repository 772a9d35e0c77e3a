"""Reference implementations of the spectral distances, selected by ``CODECBENCH_REFERENCE_KERNELS=1``.

The fast kernels in :mod:`bench.metrics.spectral` are parity-tested against these, and the flag
lets anyone recompute a number through them:

* ``stft_distance``: ``auraloss.freq.MultiResolutionSTFTLoss()`` itself (test extra ``auraloss``),
  with its Hann windows rebuilt in float64;
* ``mel_distance``: audiotools' ``MelSpectrogramLoss()`` defaults written out independently with
  numpy (gathered frames, ``np.fft``) and ``librosa.filters.mel`` (audiotools needs torchaudio,
  which cannot be installed beside this torch).
"""

from __future__ import annotations

import numpy as np
import torch

from bench.errors import MetricError


def reference_stft_distance(reference: np.ndarray, degraded: np.ndarray) -> float:
    """``auraloss.freq.MultiResolutionSTFTLoss()(deg, ref)`` with package defaults, in float64."""
    try:
        import auraloss
    except ImportError as exc:
        raise MetricError(f"CODECBENCH_REFERENCE_KERNELS=1 needs the package 'auraloss': {exc}") from exc
    loss = auraloss.freq.MultiResolutionSTFTLoss()
    for res in loss.stft_losses:
        # The window is a plain float32 attribute (module.double() misses it); rebuild the same
        # periodic Hann in float64, else its float32 rounding alone moves the loss by ~3e-7.
        res.window = torch.hann_window(res.win_length, dtype=torch.float64)
    r = torch.from_numpy(np.asarray(reference, dtype=np.float64))[None, None]
    d = torch.from_numpy(np.asarray(degraded, dtype=np.float64))[None, None]
    return float(loss(d, r))


def _np_stft_mag(x: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    """centre=True, reflect-padded, periodic-Hann STFT magnitude [bins, frames] with numpy only."""
    from scipy import signal

    xp = np.pad(x.astype(np.float64), n_fft // 2, mode="reflect")
    n_frames = 1 + (xp.size - n_fft) // hop
    idx = np.arange(n_fft)[None, :] + hop * np.arange(n_frames)[:, None]
    win = signal.get_window("hann", n_fft)  # periodic, as audiotools uses
    return np.abs(np.fft.rfft(xp[idx] * win, axis=-1)).T


def reference_mel_distance(reference: np.ndarray, degraded: np.ndarray, sample_rate: int) -> float:
    """audiotools ``MelSpectrogramLoss()`` defaults, written out with numpy and librosa's mel filters."""
    try:
        import librosa
    except ImportError as exc:
        raise MetricError(f"CODECBENCH_REFERENCE_KERNELS=1 needs the package 'librosa': {exc}") from exc
    ref, deg = np.asarray(reference), np.asarray(degraded)
    total = 0.0
    for win, n_mels in ((2048, 150), (512, 80)):
        fb = librosa.filters.mel(sr=sample_rate, n_fft=win, n_mels=n_mels, fmin=0.0, fmax=None, dtype=np.float64)
        mx = fb @ _np_stft_mag(deg, win, win // 4)
        my = fb @ _np_stft_mag(ref, win, win // 4)
        logx = np.log10(np.maximum(mx, 1e-5) ** 2)
        logy = np.log10(np.maximum(my, 1e-5) ** 2)
        total += np.mean(np.abs(logx - logy)) + np.mean(np.abs(mx - my))
    return float(total)
