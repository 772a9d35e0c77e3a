"""Codec inference: batched encode → decode of reference audio, cached by content.

Input audio is brought to the codec's rate and channel count here (the one place), output is
stored at the codec's own rate. A batch that fails is retried item by item, so one bad
utterance fails alone with its reason.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.audio import Audio, load_audio, resample, to_channels
from bench.codecs import OpPoint
from bench.codecs.base import Codec, Measured
from bench.errors import CodecError
from bench.runner.cache import Cache, DecodedEntry, content_key


@dataclass
class RefAudio:
    """A loaded reference (or the reason it could not be loaded)."""

    item_id: str
    audio: Audio | None
    sha256: str | None
    error: str | None = None


def load_reference(item_id: str, path: str | Path) -> RefAudio:
    """Read and hash one reference; a failure becomes the reason, so one bad file fails alone.

    The one loader of references, whether the driver or a codec job (by path) reads them.
    """
    try:
        audio = load_audio(path)
        return RefAudio(item_id, audio, audio.sha256())
    except Exception as exc:
        return RefAudio(item_id, None, None, f"{type(exc).__name__}: {exc}")


def weights_identity(path: Path | None) -> str | None:
    """User-supplied weights enter the cache key by path, size and mtime of every file."""
    if path is None:
        return None
    files = sorted(p for p in Path(path).rglob("*") if p.is_file()) if Path(path).is_dir() else [Path(path)]
    return content_key([(str(f), f.stat().st_size, f.stat().st_mtime_ns) for f in files])


def decoded_key(op: OpPoint, ref_sha: str, weights: str | None = None) -> str:
    """Any change of op-point metadata (weights revision, implementation, options) changes the key."""
    return content_key("decoded-v1", op.meta.to_dict(), ref_sha, *([weights] if weights else []))


class CodecStage:
    """Holds one loaded codec and turns references into cached decoded entries."""

    def __init__(self, op: OpPoint, cache: Cache, device: str = "cpu", batch_size: int = 8,
                 weights: Path | None = None):
        self.op, self.cache, self.device, self.batch_size = op, cache, device, batch_size
        self.weights = weights
        self._weights_id = weights_identity(weights)
        self._codec: Codec | None = None
        self.load_error: str | None = None
        self.n_computed = 0

    def _get_codec(self) -> Codec:
        if self._codec is None and self.load_error is None:
            try:
                codec = self.op.build()
                ok, why = codec.availability()
                if not ok:
                    raise CodecError(f"codec unavailable: {why}")
                codec.load(self.device, weights=self.weights)
                self._codec = codec
            except Exception as exc:
                self.load_error = f"{type(exc).__name__}: {exc}"
        if self._codec is None:
            raise CodecError(self.load_error or "codec did not load")
        return self._codec

    def process(self, refs: Iterable[RefAudio], window: int | None = None) -> Iterator[tuple[RefAudio, DecodedEntry]]:
        """Yield (reference, decoded entry) for each loadable reference, cache first.

        At most ``window`` uncached references (default 8 batches) are held at a time, so memory
        stays flat in dataset size; within a window the longest go first (batches pad little).
        """
        window = window or 8 * self.batch_size
        todo: list[RefAudio] = []
        for ref in refs:
            if ref.audio is None or ref.sha256 is None:
                continue
            hit = self.cache.get_decoded(decoded_key(self.op, ref.sha256, self._weights_id))
            if hit is not None:
                yield ref, hit
                continue
            todo.append(ref)
            if len(todo) >= window:
                yield from self._run_window(todo)
                todo = []
        yield from self._run_window(todo)

    def _run_window(self, todo: list[RefAudio]) -> Iterator[tuple[RefAudio, DecodedEntry]]:
        # longest first: batches pad little, and the scoring jobs that follow finish evenly (LPT)
        todo.sort(key=lambda r: r.audio.n_samples if r.audio else 0, reverse=True)
        for start in range(0, len(todo), self.batch_size):
            yield from self._run_batch(todo[start : start + self.batch_size])

    def _run_batch(self, batch: list[RefAudio]) -> Iterator[tuple[RefAudio, DecodedEntry]]:
        meta = self.op.meta
        try:
            codec = self._get_codec()
        except CodecError as exc:
            for ref in batch:
                yield ref, DecodedEntry(None, meta.sample_rate, "", None, None, 0.0, str(exc))  # type: ignore[arg-type]
            return
        inputs = [to_channels(resample(r.audio.samples, r.audio.sample_rate, meta.sample_rate), meta.channels)
                  for r in batch if r.audio is not None]
        start = time.perf_counter()
        self.n_computed += len(batch)
        try:
            outputs: list[tuple[np.ndarray, Measured] | tuple[str, bool]] = list(codec.roundtrip(inputs))
            wall = [(time.perf_counter() - start) * x.shape[-1] / sum(i.shape[-1] for i in inputs) for x in inputs]
        except Exception:
            outputs, wall = [], []
            for x in inputs:  # isolate the failing item(s)
                t0 = time.perf_counter()
                try:
                    outputs.append(codec.roundtrip([x])[0])
                except Exception as exc:  # only a CodecError is deterministic enough to cache
                    outputs.append((f"{type(exc).__name__}: {exc}", isinstance(exc, CodecError)))
                wall.append(time.perf_counter() - t0)
        for ref, out, seconds in zip(batch, outputs, wall, strict=True):
            assert ref.sha256 is not None
            key = decoded_key(self.op, ref.sha256, self._weights_id)
            if isinstance(out[0], str):
                message, cacheable = out
                entry = DecodedEntry(None, meta.sample_rate, "", None, None, seconds, f"codec failed: {message}")  # type: ignore[arg-type]
                yield ref, self.cache.put_decoded(key, None, entry) if cacheable else entry
                continue
            samples, measured = out
            entry = DecodedEntry(
                path=None,  # type: ignore[arg-type]
                sample_rate=meta.sample_rate,
                sha256=Audio(samples, meta.sample_rate).sha256() if samples is not None else "",
                payload_bps=measured.payload_bps,
                overhead_bps=measured.overhead_bps,
                codec_wall_s=seconds,
                n_frames=measured.n_frames,
                n_samples=int(samples.shape[-1]) if samples is not None else int(ref.audio.n_samples
                                                                                * meta.sample_rate
                                                                                // ref.audio.sample_rate),
                decodable=samples is not None,
            )
            yield ref, self.cache.put_decoded(key, samples, entry, measured.codes)
