"""G.711 µ-law (64 kbit/s, 8 kHz) with FFmpeg's ``pcm_mulaw`` through PyAV, in a WAV file."""

from __future__ import annotations

from bench.codecs import register_codec
from bench.codecs._ffmpeg import FFmpegCodec, ffmpeg_implementation
from bench.codecs.base import CodecMeta


@register_codec(
    CodecMeta(
        id="g711@64kbps",
        family="g711",
        kind="bitstream",
        sample_rate=8000,
        bitrate_bps=64000,
        channels=1,
        frame_rate=50.0,
        causal=True,
        streaming=True,
        license="LGPL-2.1-or-later (FFmpeg)",
        citation="ITU-T Recommendation G.711 (1988): Pulse code modulation of voice frequencies (µ-law)",
        implementation=ffmpeg_implementation("FFmpeg pcm_mulaw"),
        bitrate_tolerance=0.01,
        notes=(
            "Narrowband 8 kHz µ-law companding, 8 bits per sample, packets of 20 ms; no delay. "
            "Sample-exact rate, tolerance 1% covers rounding. Overhead: WAV (RIFF fmt/fact/data "
            "headers) as the common file form of G.711."
        ),
        options={"bit_rate": 64000, "codec_options": {}},
    )
)
class G711Codec(FFmpegCodec):
    """FFmpeg pcm_mulaw encoder and decoder, WAV file."""

    encoder = "pcm_mulaw"
    decoder = "pcm_mulaw"
    sample_format = "s16"
    container_format = "wav"
    fixed_delay = 0
    samples_per_byte = 1
    chunk = 160
