"""Audio I/O and the one place where sample-rate, channel and length rules live.

Reading uses soundfile, resampling uses soxr (VHQ), and hashing is over the decoded float32
samples plus the sample rate, so the same audio stored as WAV or FLAC gets the same cache key.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.errors import DataError

#: Shorter clips are refused: no codec frame or metric window fits in them.
MIN_DURATION_S = 0.02


@dataclass
class Audio:
    """Float32 samples shaped [channels, samples] at ``sample_rate``."""

    samples: np.ndarray
    sample_rate: int

    @property
    def channels(self) -> int:
        return int(self.samples.shape[0])

    @property
    def n_samples(self) -> int:
        return int(self.samples.shape[-1])

    @property
    def duration(self) -> float:
        return self.n_samples / self.sample_rate

    def sha256(self) -> str:
        return audio_sha256(self.samples, self.sample_rate)


def audio_sha256(samples: np.ndarray, sample_rate: int) -> str:
    h = hashlib.sha256()
    arr = np.ascontiguousarray(samples, dtype=np.float32)
    h.update(f"{arr.shape}|{sample_rate}|".encode())
    h.update(arr.tobytes())
    return h.hexdigest()


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def load_audio(path: str | Path) -> Audio:
    """Read any soundfile-supported file as float32 [C, T]; raise DataError with the reason."""
    import soundfile as sf

    path = Path(path)
    if not path.exists():
        raise DataError(f"audio file not found: {path}")
    try:
        data, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as exc:  # soundfile raises several types for corrupt input
        raise DataError(f"cannot decode audio {path}: {exc}") from exc
    samples = np.ascontiguousarray(data.T)
    check_audio(samples, sr, str(path))
    return Audio(samples, int(sr))


def check_audio(samples: np.ndarray, sample_rate: int, what: str) -> None:
    """Reject audio no codec or metric can handle, with a message that says why."""
    if samples.ndim != 2:
        raise DataError(f"{what}: expected [channels, samples], got shape {samples.shape}")
    if samples.shape[-1] == 0:
        raise DataError(f"{what}: audio is empty (zero samples)")
    if samples.shape[-1] < MIN_DURATION_S * sample_rate:
        raise DataError(
            f"{what}: audio is {samples.shape[-1] / sample_rate * 1000:.1f} ms long, "
            f"shorter than the {MIN_DURATION_S * 1000:.0f} ms minimum"
        )
    if not np.all(np.isfinite(samples)):
        raise DataError(f"{what}: audio contains NaN or Inf samples")


def to_mono(samples: np.ndarray) -> np.ndarray:
    """Average channels: [C, T] → [1, T]. Stereo references are scored as their mono mix."""
    if samples.shape[0] == 1:
        return samples
    return samples.mean(axis=0, keepdims=True, dtype=np.float32)


def to_channels(samples: np.ndarray, channels: int) -> np.ndarray:
    """Mix down to mono or duplicate mono to ``channels``."""
    if samples.shape[0] == channels:
        return samples
    mono = to_mono(samples)
    return np.repeat(mono, channels, axis=0) if channels > 1 else mono


def resample(samples: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """soxr VHQ resampling of [C, T] float32; identity when the rates match."""
    if from_rate == to_rate:
        return np.ascontiguousarray(samples, dtype=np.float32)
    import soxr

    out = soxr.resample(np.ascontiguousarray(samples.T, dtype=np.float32), from_rate, to_rate, quality="VHQ")
    return np.ascontiguousarray(np.atleast_2d(out.T), dtype=np.float32)


def match_length(samples: np.ndarray, n_samples: int) -> np.ndarray:
    """Alignment rule for scoring: trim the tail, or zero-pad the tail, to ``n_samples``.

    Codec wrappers compensate their own delay, so output starts aligned with the input;
    only the tail may differ (frame padding or a trimmed last frame).
    """
    have = samples.shape[-1]
    if have == n_samples:
        return samples
    if have > n_samples:
        return np.ascontiguousarray(samples[..., :n_samples])
    pad = np.zeros(samples.shape[:-1] + (n_samples - have,), dtype=samples.dtype)
    return np.concatenate([samples, pad], axis=-1)


def prepare_pair(ref: Audio, deg: Audio, sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
    """Mono 1-D reference and degraded signals at ``sample_rate`` with equal length."""
    deg_samples = resample(to_mono(deg.samples), deg.sample_rate, ref.sample_rate)
    deg_samples = match_length(deg_samples, ref.n_samples)
    r = resample(to_mono(ref.samples), ref.sample_rate, sample_rate)[0]
    d = resample(deg_samples, ref.sample_rate, sample_rate)[0]
    n = min(r.shape[-1], d.shape[-1])
    return r[:n], d[:n]
