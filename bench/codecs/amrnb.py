"""AMR-NB (3GPP TS 26.071) with OpenCORE through PyAV, all eight speech modes, DTX off.

Payload bits are the class A+B+C speech bits of each frame (95 at 4.75 kbps … 244 at 12.2 kbps),
read from each frame's ToC frame type; the ToC byte, octet padding and the ``#!AMR\\n`` magic of
the .amr storage format (RFC 4867 §5) are overhead.
"""

from __future__ import annotations

from bench.codecs import register_codec
from bench.codecs._ffmpeg import FFmpegCodec, ffmpeg_implementation
from bench.codecs.base import CodecMeta
from bench.errors import CodecError

#: Frame type (ToC bits 3..6) → speech bits per 20 ms frame (3GPP TS 26.101 Table 1a); 8 = SID.
FRAME_BITS = {0: 95, 1: 103, 2: 118, 3: 134, 4: 148, 5: 159, 6: 204, 7: 244, 8: 39, 15: 0}
MODES = (4.75, 5.15, 5.9, 6.7, 7.4, 7.95, 10.2, 12.2)
#: Algorithmic delay without the frame buffer: 5 ms look-ahead (TS 26.090) at 8 kHz. FFmpeg's
#: libopencore wrapper reports 50 samples; cross-correlation of output with input gives 40 ± 1.
AMR_DELAY = 40


def _kbps(mode: float) -> str:
    return f"{mode:g}"


def _meta(mode: float) -> CodecMeta:
    return CodecMeta(
        id=f"amrnb@{_kbps(mode)}kbps",
        family="amrnb",
        kind="bitstream",
        sample_rate=8000,
        bitrate_bps=mode * 1000,
        channels=1,
        frame_rate=50.0,
        causal=True,
        streaming=True,
        license="Apache-2.0 (OpenCORE AMR)",
        citation="3GPP TS 26.071/26.090 (AMR speech codec); RFC 4867 (storage format)",
        implementation=ffmpeg_implementation("OpenCORE AMR-NB (libopencore_amrnb)"),
        bitrate_tolerance=0.01,
        notes=(
            f"Narrowband 8 kHz, 20 ms frames, mode {mode:g} kbps, DTX off: every frame carries "
            f"{FRAME_BITS[MODES.index(mode)]} speech bits, so the measured payload equals the mode "
            "rate; tolerance 1% covers rounding. Delay: 40 samples (5 ms look-ahead), a documented "
            "constant because FFmpeg reports 50; the encoder is fed 40 zeros after the input so "
            "the tail is coded. Overhead: ToC byte + octet padding per frame and the 6-byte "
            ".amr magic."
        ),
        options={"bit_rate": int(round(mode * 1000)), "codec_options": {"dtx": "0"}},
    )


@register_codec(*(_meta(m) for m in MODES))
class AmrNbCodec(FFmpegCodec):
    """libopencore_amrnb encoder and decoder, .amr storage file as container."""

    encoder = "libopencore_amrnb"
    decoder = "libopencore_amrnb"
    sample_format = "s16"
    container_format = "amr"
    fixed_delay = AMR_DELAY

    def frame_payload_bits(self, packet: bytes) -> int:
        """Speech bits of one storage-format frame, from its ToC frame type."""
        if not packet:
            raise CodecError(f"{self.meta.id}: empty AMR frame")
        ft = (packet[0] >> 3) & 0x0F
        if ft not in FRAME_BITS:
            raise CodecError(f"{self.meta.id}: invalid AMR frame type {ft}")
        return FRAME_BITS[ft]
