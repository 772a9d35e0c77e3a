"""G.722 (64 kbit/s sub-band ADPCM, 16 kHz) with FFmpeg's encoder and decoder through PyAV."""

from __future__ import annotations

from bench.codecs import register_codec
from bench.codecs._ffmpeg import FFmpegCodec, ffmpeg_implementation
from bench.codecs.base import CodecMeta

#: QMF analysis + synthesis delay at 16 kHz, as FFmpeg states (initial_padding); cross-correlation
#: of output with white-noise input gives 22. The encoder does not flush it, so zeros are fed.
G722_DELAY = 22


@register_codec(
    CodecMeta(
        id="g722@64kbps",
        family="g722",
        kind="bitstream",
        sample_rate=16000,
        bitrate_bps=64000,
        channels=1,
        frame_rate=50.0,
        causal=True,
        streaming=True,
        license="LGPL-2.1-or-later (FFmpeg)",
        citation="ITU-T Recommendation G.722 (1988): 7 kHz audio-coding within 64 kbit/s",
        implementation=ffmpeg_implementation("FFmpeg g722 (adpcm_g722)"),
        bitrate_tolerance=0.01,
        notes=(
            "Wideband 16 kHz, mode 1 (64 kbit/s): one byte per two samples; packets of 20 ms. "
            "Sample-exact rate, tolerance 1% covers rounding. Delay: 22 samples (QMF analysis + "
            "synthesis; equals FFmpeg's initial_padding, confirmed by cross-correlation on noise); 22 zeros are appended so the "
            "tail is coded. Container: raw .g722 byte stream, so overhead is 0 (RTP framing is "
            "out of scope)."
        ),
        options={"bit_rate": 64000, "codec_options": {}},
    )
)
class G722Codec(FFmpegCodec):
    """FFmpeg g722 encoder and decoder, raw .g722 file."""

    encoder = "g722"
    decoder = "g722"
    sample_format = "s16"
    container_format = "g722"
    fixed_delay = G722_DELAY
    samples_per_byte = 2
    chunk = 320
