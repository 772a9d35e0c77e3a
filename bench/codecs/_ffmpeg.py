"""PyAV (FFmpeg) encode/decode shared by the FFmpeg-backed classic families.

Encoding goes straight through the family's standard muxer into an in-memory file, so the
packets the codec produced and the container bytes it costs are measured in one pass
(Ogg for Opus, raw .mp3 with its Xing/LAME info frame, ADTS for AAC, .amr storage format, ...).
``av`` is imported inside functions only: importing a family module stays cheap.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, ClassVar

import numpy as np

from bench.codecs._classic import align, attribute_payload, check_input, package_version, to_int16
from bench.codecs.base import Bitstream, BitstreamCodec
from bench.errors import CodecError

#: Muxer options for reproducible, minimal files: no random Ogg serial, no encoder-version tags.
_BITEXACT = {"fflags": "+bitexact"}


def ffmpeg_implementation(library: str) -> str:
    """``"<library> via PyAV <v> (FFmpeg)"``; the PyAV version comes from package metadata."""
    return f"{library} via PyAV {package_version('av')} (FFmpeg bundled with the PyAV wheel)"


def ffmpeg_version() -> str:
    """Version of the FFmpeg libraries PyAV is linked against (imports av)."""
    import av

    return str(getattr(av, "ffmpeg_version_info", "unknown"))


def has_codec(name: str, mode: str) -> bool:
    """Whether PyAV's FFmpeg has encoder (``mode="w"``) or decoder (``"r"``) ``name``."""
    import av

    try:
        av.codec.Codec(name, mode)
    except Exception:  # av raises UnknownCodecError (or ValueError in older PyAV)
        return False
    return True


@dataclass
class FFmpegEncoded:
    """What one pass through encoder and muxer produced."""

    packets: list[bytes]
    frame_lens: list[int]
    """Samples (at the codec rate) each packet decodes to."""
    padding: int
    """Encoder priming in samples, from the first packet's negative pts (0 if it starts at 0)."""
    file_bytes: int
    """Size of the standard container file holding the packets."""
    extradata: bytes | None


def encode_to_container(
    x: np.ndarray,
    *,
    encoder: str,
    sample_rate: int,
    sample_format: str,
    container_format: str,
    bit_rate: int | None = None,
    codec_options: Mapping[str, str] | None = None,
    container_options: Mapping[str, str] | None = None,
    chunk: int = 160,
) -> FFmpegEncoded:
    """Encode float32 [C, T] audio with FFmpeg ``encoder`` into an in-memory container.

    Frames are fed at the encoder's frame size (``chunk`` for encoders without one, e.g. PCM) and
    the encoder is flushed, so its lookahead is emitted and the whole input is coded.
    """
    import av

    channels = x.shape[0]
    layout = {1: "mono", 2: "stereo"}.get(channels)
    if layout is None:
        raise CodecError(f"{encoder}: only mono or stereo input is supported, got {channels} channels")
    buf = io.BytesIO()
    packets: list[bytes] = []
    lens: list[int] = []
    first_pts: int | None = None
    try:
        out = av.open(buf, "w", format=container_format, options={**_BITEXACT, **(container_options or {})})
        stream = out.add_stream(encoder, rate=sample_rate)
        cc = stream.codec_context
        cc.format = sample_format
        cc.layout = layout
        cc.time_base = Fraction(1, sample_rate)
        if bit_rate:
            cc.bit_rate = int(bit_rate)
        cc.options = {"flags": "+bitexact", **dict(codec_options or {})}
        cc.open()
        frame_size = int(cc.frame_size) or chunk
        planar = sample_format.endswith("p")

        def take(pkts: list[Any]) -> None:
            nonlocal first_pts
            for p in pkts:
                if first_pts is None:
                    first_pts = int(round((p.pts or 0) * p.time_base * sample_rate))
                data = bytes(p)
                packets.append(data)
                lens.append(frame_size if cc.frame_size else int(round(p.duration * p.time_base * sample_rate)))
                out.mux(p)

        for start in range(0, x.shape[1], frame_size):
            block = x[:, start : start + frame_size]
            if sample_format.startswith("s16"):
                block = to_int16(block)
            arr = block if planar else np.ascontiguousarray(block.T).reshape(1, -1)
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(arr), format=sample_format, layout=layout)
            frame.sample_rate = sample_rate
            frame.pts = start
            frame.time_base = Fraction(1, sample_rate)
            take(stream.encode(frame))
        take(stream.encode(None))
        extradata = bytes(cc.extradata) if cc.extradata else None
        out.close()
    except CodecError:
        raise
    except Exception as exc:  # FFmpeg errors surface as av.error.* / ValueError
        raise CodecError(f"{encoder} encoding failed: {type(exc).__name__}: {exc}") from exc
    if not packets:
        raise CodecError(f"{encoder} produced no packets")
    return FFmpegEncoded(packets, lens, max(0, -(first_pts or 0)), len(buf.getvalue()), extradata)


def decode_packets(
    packets: list[bytes], *, decoder: str, sample_rate: int, channels: int, extradata: bytes | None
) -> tuple[np.ndarray, int]:
    """Decode raw packets with FFmpeg ``decoder`` → (float32 [C, T], output rate).

    Packets are passed without timestamps, so the decoder applies no trimming of its own
    beyond what its codec config (e.g. Opus pre-skip) tells it; the caller aligns.
    """
    import av

    try:
        cc = av.CodecContext.create(decoder, "r")
        cc.sample_rate = sample_rate
        cc.layout = {1: "mono", 2: "stereo"}[channels]
        if extradata:
            cc.extradata = extradata
        cc.open()
        chunks: list[np.ndarray] = []
        rate = sample_rate

        def take(frames: list[Any]) -> None:
            nonlocal rate
            for f in frames:
                rate = int(f.sample_rate)
                a = f.to_ndarray()
                if f.format.is_packed:
                    a = a.reshape(-1, channels).T
                if a.dtype == np.int16:
                    a = a.astype(np.float32) / 32768.0
                elif a.dtype == np.int32:
                    a = a.astype(np.float32) / 2147483648.0
                chunks.append(np.asarray(a, dtype=np.float32))

        for data in packets:
            take(cc.decode(av.Packet(data)))
        take(cc.decode(None))
    except Exception as exc:
        raise CodecError(f"{decoder} decoding failed: {type(exc).__name__}: {exc}") from exc
    if not chunks:
        raise CodecError(f"{decoder} decoded no audio")
    return np.concatenate(chunks, axis=1), rate


@dataclass
class FFmpegBitstream(Bitstream):
    """A :class:`Bitstream` plus what the decoder needs: codec config and the delay to trim."""

    delay: int = 0
    extradata: bytes | None = None
    frame_lens: list[int] = field(default_factory=list)


class FFmpegCodec(BitstreamCodec):
    """Classic op-point run through PyAV; families set the class attributes and a few hooks.

    ``meta.options``: ``bit_rate`` (int, bps) and ``codec_options`` (FFmpeg AVOptions).
    """

    encoder: ClassVar[str]
    decoder: ClassVar[str]
    sample_format: ClassVar[str]
    container_format: ClassVar[str]
    container_options: ClassVar[Mapping[str, str]] = {}
    fixed_delay: ClassVar[int | None] = None
    """Codec delay in samples when the stream does not state it right; None = from the stream."""
    chunk: ClassVar[int] = 160
    samples_per_byte: ClassVar[int | None] = None
    """For sample-wise codecs (G.711, G.722) whose last packet may be short: its true length."""

    def availability(self) -> tuple[bool, str]:
        """Both the encoder and decoder must exist in PyAV's bundled FFmpeg."""
        try:
            import av  # noqa: F401
        except ImportError as exc:
            return False, f"PyAV is not installed ({exc}); pip install av"
        missing = []
        if not has_codec(self.encoder, "w"):
            missing.append(f"encoder {self.encoder}")
        if not has_codec(self.decoder, "r"):
            missing.append(f"decoder {self.decoder}")
        if missing:
            return False, f"PyAV's FFmpeg {ffmpeg_version()} lacks {' and '.join(missing)}"
        return True, ""

    # -- hooks ---------------------------------------------------------------------------------
    def frame_payload_bits(self, packet: bytes) -> int:
        """Bits of one packet that the codec format defines; default: all of its bytes."""
        return len(packet) * 8

    def postprocess(self, y: np.ndarray, rate: int, bs: FFmpegBitstream) -> tuple[np.ndarray, int]:
        """Hook for decoders that do not run at the codec rate or trim part of the delay."""
        if rate != self.meta.sample_rate:
            raise CodecError(f"{self.meta.id}: {self.decoder} decoded at {rate} Hz, expected {self.meta.sample_rate} Hz")
        return y, bs.delay

    # -- coding --------------------------------------------------------------------------------
    def encode_one(self, samples: np.ndarray) -> Bitstream:
        x = check_input(samples, self.meta)
        ok, why = self.availability()
        if not ok:
            raise CodecError(f"{self.meta.id} is unavailable: {why}")
        n = x.shape[1]
        if self.fixed_delay:
            # The encoder does not flush its delay line itself: feed zeros so the tail is coded.
            x = np.concatenate([x, np.zeros((x.shape[0], self.fixed_delay), np.float32)], axis=1)
        opts = self.meta.options
        enc = encode_to_container(
            x,
            encoder=self.encoder,
            sample_rate=self.meta.sample_rate,
            sample_format=self.sample_format,
            container_format=self.container_format,
            bit_rate=opts.get("bit_rate"),
            codec_options=opts.get("codec_options"),
            container_options=self.container_options,
            chunk=self.chunk,
        )
        if self.samples_per_byte:
            enc.frame_lens = [len(p) * self.samples_per_byte for p in enc.packets]
        delay = enc.padding if self.fixed_delay is None else self.fixed_delay
        payload = attribute_payload(
            [self.frame_payload_bits(p) for p in enc.packets], enc.frame_lens, delay, n
        )
        return FFmpegBitstream(
            packets=enc.packets,
            payload_bits=payload,
            overhead_bits=enc.file_bytes * 8 - payload,
            n_samples=n,
            sample_rate=self.meta.sample_rate,
            delay=delay,
            extradata=enc.extradata,
            frame_lens=enc.frame_lens,
        )

    def decode_one(self, bitstream: Bitstream) -> np.ndarray:
        if not isinstance(bitstream, FFmpegBitstream):
            raise CodecError(f"{self.meta.id}: cannot decode a {type(bitstream).__name__}; "
                             "it lacks the codec config and delay this wrapper recorded at encode time")
        y, rate = decode_packets(
            bitstream.packets,
            decoder=self.decoder,
            sample_rate=self.meta.sample_rate,
            channels=self.meta.channels,
            extradata=bitstream.extradata,
        )
        y, delay = self.postprocess(y, rate, bitstream)
        return align(y, delay, bitstream.n_samples)

