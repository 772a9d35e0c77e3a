"""MP3 (LAME through PyAV), CBR, at rates chosen so every frame has the same size.

Sample rates: 8 kbps at 8 kHz (MPEG-2.5), 16 kbps at 16 kHz and 32 kbps at 24 kHz (MPEG-2 LSF,
576-sample frames), 64 kbps at 48 kHz (MPEG-1, 1152-sample frames). At these pairs the frame
length in bytes (72 or 144 × bitrate / rate) is an integer, so no padding slots make the CBR
rate wobble and measured payload equals the declared rate.
"""

from __future__ import annotations

from bench.codecs import register_codec
from bench.codecs._ffmpeg import FFmpegCodec, ffmpeg_implementation
from bench.codecs.base import CodecMeta

_RATES = {8: 8000, 16: 16000, 32: 24000, 64: 48000}


def _meta(kbps: int) -> CodecMeta:
    sr = _RATES[kbps]
    frame = 1152 if sr >= 32000 else 576
    return CodecMeta(
        id=f"mp3@{kbps}kbps",
        family="mp3",
        kind="bitstream",
        sample_rate=sr,
        bitrate_bps=kbps * 1000,
        channels=1,
        frame_rate=sr / frame,
        causal=True,
        streaming=True,
        license="LGPL-2.0-or-later (LAME)",
        citation="ISO/IEC 11172-3:1993 and ISO/IEC 13818-3:1998 (MPEG-1/2 Audio Layer III)",
        implementation=ffmpeg_implementation("LAME (libmp3lame)") + "; decoder: FFmpeg mp3float",
        bitrate_tolerance=0.01,
        notes=(
            f"Runs at {sr} Hz ({frame}-sample frames), CBR: every frame is "
            f"{(144 if frame == 1152 else 72) * kbps * 1000 // sr} bytes including its header, so the "
            "measured payload equals the declared rate; tolerance 1% covers rounding. "
            "Delay: 1105 samples (LAME encoder delay 576 + decoder delay 529), read from the stream "
            "(first packet pts). Overhead: the Xing/LAME info frame that carries delay and padding "
            "for gapless decoding (no ID3 tag)."
        ),
        options={"bit_rate": kbps * 1000, "codec_options": {}},
    )


@register_codec(*(_meta(k) for k in _RATES))
class Mp3Codec(FFmpegCodec):
    """libmp3lame encoder, FFmpeg's native MP3 decoder, raw .mp3 stream."""

    encoder = "libmp3lame"
    decoder = "mp3float"
    sample_format = "s16p"
    container_format = "mp3"
    container_options = {"id3v2_version": "0", "write_id3v1": "0"}
