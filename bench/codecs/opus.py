"""Opus (libopus through PyAV) at 6–32 kbps, hard CBR, 20 ms frames, application ``voip``.

Why these settings: hard CBR makes every packet exactly ``bitrate × 20 ms / 8`` bytes, so the
measured payload rate equals the declared one; ``voip`` is the libopus application meant for
speech intelligibility, which is what this benchmark scores. The input rate sets the widest
audio band libopus may code (RFC 6716 §2.1.1 recommendations): narrowband (8 kHz) at 6–8 kbps,
wideband (16 kHz) at 12–16 kbps, super-wideband (24 kHz) at 24 kbps, fullband (48 kHz) at 32 kbps.
"""

from __future__ import annotations

import numpy as np

from bench.audio import resample
from bench.codecs import register_codec
from bench.codecs._ffmpeg import FFmpegBitstream, FFmpegCodec, ffmpeg_implementation
from bench.codecs.base import CodecMeta
from bench.errors import CodecError

#: libopus decodes at 48 kHz inside FFmpeg; pre-skip in OpusHead is counted at this rate.
OPUS_DECODE_RATE = 48000
_RATES = {6: 8000, 8: 8000, 12: 16000, 16: 16000, 24: 24000, 32: 48000}
_BAND = {8000: "narrowband", 16000: "wideband", 24000: "super-wideband", 48000: "fullband"}
#: Lag of the decoded speech behind the input, in samples at 48 kHz, left after the pre-skip is
#: removed (positive: late). SILK's resamplers add a group delay the pre-skip does not state;
#: median cross-correlation lag over the embedded corpus (20 utterances, 5 voices) per op-point.
#: Without it SI-SDR at 12-32 kbps drops by about 5 dB from a 60 µs shift alone.
SILK_RESIDUAL_LAG_48K = {6: 1, 8: 2, 12: -2, 16: -2, 24: -3, 32: -3}


def _meta(kbps: int) -> CodecMeta:
    sr = _RATES[kbps]
    return CodecMeta(
        id=f"opus@{kbps}kbps",
        family="opus",
        kind="bitstream",
        sample_rate=sr,
        bitrate_bps=kbps * 1000,
        channels=1,
        frame_rate=50.0,
        causal=True,
        streaming=True,
        license="BSD-3-Clause (libopus)",
        citation="RFC 6716: Definition of the Opus Audio Codec (Valin, Vos, Terriberry, 2012)",
        implementation=ffmpeg_implementation("libopus"),
        bitrate_tolerance=0.01,
        notes=(
            f"Runs at {sr} Hz ({_BAND[sr]}, RFC 6716 §2.1.1 bitrate guidance); hard CBR (vbr=off), "
            "application=voip (speech), 20 ms frames. Every packet is exactly bitrate×20 ms/8 bytes, "
            "so measured payload equals the declared rate up to rounding; tolerance 1%. Delay: "
            "encoder lookahead read from the stream (OpusHead pre-skip / first packet pts), "
            f"6.5 ms, plus the SILK resampler lag measured on speech ({SILK_RESIDUAL_LAG_48K[kbps]} samples "
            "at 48 kHz, see SILK_RESIDUAL_LAG_48K); the residual lag is signal-dependent within "
            "about ±2 samples at 48 kHz, so alignment holds to 0.1 ms. libopus in FFmpeg decodes at "
            "48 kHz; output is resampled to the codec rate (soxr VHQ)."
            " Overhead: Ogg (.opus) pages, OpusHead and OpusTags."
        ),
        options={
            "bit_rate": kbps * 1000,
            "codec_options": {"application": "voip", "vbr": "off", "frame_duration": "20"},
            "residual_lag_48k": SILK_RESIDUAL_LAG_48K[kbps],
        },
    )


@register_codec(*(_meta(k) for k in _RATES))
class OpusCodec(FFmpegCodec):
    """libopus encoder + libopus decoder, packets in an Ogg Opus file."""

    encoder = "libopus"
    decoder = "libopus"
    sample_format = "flt"
    container_format = "opus"

    def postprocess(self, y: np.ndarray, rate: int, bs: FFmpegBitstream) -> tuple[np.ndarray, int]:
        """Trim what is left of the pre-skip at the decoder rate, then resample to the codec rate.

        FFmpeg's libopus decoder drops the OpusHead pre-skip itself; the amount it dropped is the
        nominal decoded length (packets × frame) minus what came out, so only the rest is trimmed.
        """
        sr = self.meta.sample_rate
        if rate % sr:
            raise CodecError(f"{self.meta.id}: decoder rate {rate} Hz is not a multiple of {sr} Hz")
        factor = rate // sr
        nominal = sum(bs.frame_lens) * factor
        dropped = nominal - y.shape[1]
        remaining = bs.delay * factor - dropped
        if remaining < 0:
            raise CodecError(f"{self.meta.id}: decoder dropped {dropped} samples, more than the "
                             f"{bs.delay * factor}-sample pre-skip")
        remaining += self.meta.options["residual_lag_48k"] * rate // OPUS_DECODE_RATE
        if remaining < 0:  # output is early: delay it
            y = np.concatenate([np.zeros((y.shape[0], -remaining), y.dtype), y], axis=1)
        else:
            y = y[:, remaining:]
        return resample(y, rate, sr), 0
