"""Mechanics every classic (bitstream) codec wrapper shares, written once.

* :func:`check_input` refuses what no classic codec can code (NaN, wrong channel count, empty),
  with a :class:`CodecError` that names the op-point, instead of coding garbage.
* :func:`align` trims the codec delay and fixes the length, so ``decode_one`` output starts at
  input sample 0 and has exactly the input's length.
* :func:`attribute_payload` splits the bits a codec emitted into payload (bits whose frames code
  the input's time span) and the rest (frames that only code the codec delay or the zero padding
  after the input's end), so the measured payload bitrate of a constant-rate codec equals its
  declared rate for any item length, while every emitted bit is still counted somewhere.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from importlib import metadata

import numpy as np

from bench.codecs.base import Bitstream, BitstreamCodec, CodecMeta
from bench.errors import CodecError


def check_input(samples: np.ndarray, meta: CodecMeta) -> np.ndarray:
    """Validate a [C, T] float array for ``meta``; return it as contiguous float32.

    Raising here rather than inside the codec library gives one clear message per failure
    (a library would clip NaN to 0 or crash) and keeps failed cells failed, never numbers.
    """
    arr = np.asarray(samples)
    if arr.ndim != 2:
        raise CodecError(f"{meta.id}: expected [channels, samples] audio, got shape {arr.shape}")
    if arr.shape[0] != meta.channels:
        raise CodecError(
            f"{meta.id}: expected {meta.channels} channel(s), got {arr.shape[0]}; "
            "the runner maps channels before encoding"
        )
    if arr.shape[1] == 0:
        raise CodecError(f"{meta.id}: cannot code empty audio (0 samples)")
    if not np.issubdtype(arr.dtype, np.floating):
        raise CodecError(f"{meta.id}: expected float audio in [-1, 1], got dtype {arr.dtype}")
    if not np.all(np.isfinite(arr)):
        raise CodecError(f"{meta.id}: input contains NaN or Inf samples")
    return np.ascontiguousarray(arr, dtype=np.float32)


def to_int16(x: np.ndarray) -> np.ndarray:
    """Float in [-1, 1] → int16 (clipping out-of-range samples, as a 16-bit codec input would)."""
    return np.clip(np.round(x * 32768.0), -32768, 32767).astype(np.int16)


def align(decoded: np.ndarray, delay: int, n_samples: int) -> np.ndarray:
    """Drop ``delay`` leading samples and cut or zero-pad to ``n_samples``: [C, T] → [C, n]."""
    if delay < 0:
        raise CodecError(f"negative codec delay {delay}: the delay bookkeeping is wrong")
    out = decoded[:, delay : delay + n_samples]
    if out.shape[1] < n_samples:
        # Only reachable if an encoder emitted fewer frames than its delay needs; pad so the
        # contract (exact length) holds, but the wrappers flush enough that this does not happen.
        pad = np.zeros((decoded.shape[0], n_samples - out.shape[1]), dtype=np.float32)
        out = np.concatenate([out, pad], axis=1)
    return np.ascontiguousarray(out, dtype=np.float32)


def attribute_payload(frame_bits: Sequence[int], frame_lens: Sequence[int], delay: int, n_samples: int) -> int:
    """Payload bits: each frame's bits times the fraction of its span inside the input.

    Frame ``i`` decodes to output samples ``[s_i, s_i + L_i)`` with ``s_i`` the sum of the earlier
    frame lengths, i.e. input time ``[s_i − delay, s_i + L_i − delay)``. Frames that lie wholly in the priming delay or after the
    input's end count 0; the last, partly filled frame counts pro rata. The rest of the emitted
    bits is reported as overhead, so payload + overhead is everything the encoder produced.
    """
    total, start = 0.0, -delay
    for bits, length in zip(frame_bits, frame_lens, strict=True):
        overlap = min(start + length, n_samples) - max(start, 0)
        if overlap > 0 and length > 0:
            total += bits * overlap / length
        start += length
    return int(round(total))


def frames_needed(n_samples: int, delay: int, frame_len: int) -> int:
    """Frames to encode so the decoder's output covers ``delay + n_samples`` samples."""
    return -(-(n_samples + delay) // frame_len)


def package_version(dist: str) -> str:
    """Installed version of a distribution, read from metadata (cheap: no import of the library)."""
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


class FramedCodec(BitstreamCodec):
    """Classic codec driven frame by frame from Python (Codec2, LC3): shared encode/decode.

    Subclasses give the frame length, the algorithmic delay, how one frame is coded and decoded,
    and the container framing (file header and per-frame prefix) used to measure overhead.
    Decoders are fresh per item, so items never share codec state.
    """

    def frame_len(self) -> int:
        """Samples per frame at the codec rate."""
        raise NotImplementedError

    def delay(self) -> int:
        """Algorithmic delay in samples at the codec rate (trimmed from the decoded output)."""
        raise NotImplementedError

    def new_encoder(self) -> Callable[[np.ndarray], bytes]:
        """A function coding one [C, frame_len] float32 frame into its bytes."""
        raise NotImplementedError

    def new_decoder(self) -> Callable[[bytes], np.ndarray]:
        """A function decoding one frame's bytes into [C, frame_len] float32."""
        raise NotImplementedError

    def frame_payload_bits(self, frame: bytes) -> int:
        """Bits of one frame the codec format defines (default: all its bytes)."""
        return len(frame) * 8

    def container_bytes(self, frames: list[bytes], n_samples: int) -> int:
        """Size of the family's standard file holding ``frames``."""
        raise NotImplementedError

    def encode_one(self, samples: np.ndarray) -> Bitstream:
        x = check_input(samples, self.meta)
        ok, why = self.availability()
        if not ok:
            raise CodecError(f"{self.meta.id} is unavailable: {why}")
        n, flen, delay = x.shape[1], self.frame_len(), self.delay()
        count = frames_needed(n, delay, flen)
        padded = np.zeros((x.shape[0], count * flen), np.float32)
        padded[:, :n] = x  # zeros after the input flush the codec's delay line
        encode = self.new_encoder()
        try:
            frames = [encode(padded[:, i * flen : (i + 1) * flen]) for i in range(count)]
        except CodecError:
            raise
        except Exception as exc:  # library errors (ctypes, asserts) become a failed cell
            raise CodecError(f"{self.meta.id} encoding failed: {type(exc).__name__}: {exc}") from exc
        payload = attribute_payload([self.frame_payload_bits(f) for f in frames], [flen] * count, delay, n)
        return Bitstream(
            packets=frames,
            payload_bits=payload,
            overhead_bits=self.container_bytes(frames, n) * 8 - payload,
            n_samples=n,
            sample_rate=self.meta.sample_rate,
        )

    def decode_one(self, bitstream: Bitstream) -> np.ndarray:
        decode = self.new_decoder()
        try:
            y = np.concatenate([decode(f) for f in bitstream.packets], axis=1)
        except Exception as exc:
            raise CodecError(f"{self.meta.id} decoding failed: {type(exc).__name__}: {exc}") from exc
        return align(y, self.delay(), bitstream.n_samples)
