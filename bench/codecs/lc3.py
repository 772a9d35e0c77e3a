"""LC3 (Bluetooth LE Audio, liblc3 via lc3py) at 16–64 kbps with 10 ms frames.

Rates follow the Bluetooth BAP presets where one exists: 32 kbps at 16 kHz (16_2), 48 kbps at
24 kHz (24_2), 64 kbps at 32 kHz (32_2); 16 and 24 kbps run at 16 kHz (wideband, below the
presets; 20 bytes per frame is LC3's minimum frame size).
"""

from __future__ import annotations

import struct
from collections.abc import Callable

import numpy as np

from bench.codecs import register_codec
from bench.codecs._classic import FramedCodec, package_version
from bench.codecs.base import CodecMeta

FRAME_US = 10000
_RATES = {16: 16000, 24: 16000, 32: 16000, 48: 24000, 64: 32000}
#: liblc3 binary file (tools/lc3bin): file id 0xcc1c, 18-byte header, 16-bit length per frame.
_LC3_FILE_ID = 0xCC1C
_LC3_HEADER = 18


def _meta(kbps: int) -> CodecMeta:
    sr = _RATES[kbps]
    return CodecMeta(
        id=f"lc3@{kbps}kbps",
        family="lc3",
        kind="bitstream",
        sample_rate=sr,
        bitrate_bps=kbps * 1000,
        channels=1,
        frame_rate=100.0,
        causal=True,
        streaming=True,
        license="Apache-2.0 (liblc3, lc3py)",
        citation="Bluetooth SIG, Low Complexity Communication Codec (LC3) Specification 1.0 (2020); ETSI TS 103 634",
        implementation=f"liblc3 via lc3py {package_version('lc3py')}",
        bitrate_tolerance=0.01,
        notes=(
            f"Runs at {sr} Hz, 10 ms frames of {kbps * 10 // 8} bytes: constant, so the measured "
            "payload equals the declared rate; tolerance 1% covers rounding. Delay: 2.5 ms "
            "(liblc3 lc3_delay_samples). Overhead: liblc3 .lc3 file (18-byte header, 2-byte length "
            "per frame)."
        ),
        options={"frame_bytes": kbps * 10 // 8},
    )


@register_codec(*(_meta(k) for k in _RATES))
class Lc3Codec(FramedCodec):
    """One lc3.Encoder / lc3.Decoder per item."""

    def availability(self) -> tuple[bool, str]:
        try:
            import lc3  # noqa: F401
        except Exception as exc:  # ImportError, or lc3.InitializationError if liblc3 is missing
            return False, f"lc3py/liblc3 is not usable ({exc}); pip install lc3py"
        return True, ""

    def frame_len(self) -> int:
        return FRAME_US * self.meta.sample_rate // 1_000_000

    def delay(self) -> int:
        import lc3

        return int(lc3.Decoder(FRAME_US, self.meta.sample_rate).get_delay_samples())

    def new_encoder(self) -> Callable[[np.ndarray], bytes]:
        import lc3

        enc = lc3.Encoder(FRAME_US, self.meta.sample_rate)
        nbytes = int(self.meta.options["frame_bytes"])
        return lambda frame: enc.encode(frame[0].tolist(), nbytes)

    def new_decoder(self) -> Callable[[bytes], np.ndarray]:
        import lc3

        dec = lc3.Decoder(FRAME_US, self.meta.sample_rate)
        return lambda data: np.asarray(dec.decode(data), dtype=np.float32)[None, :]

    def container_bytes(self, frames: list[bytes], n_samples: int) -> int:
        """liblc3 .lc3 file: header (id, size, rate/100, bitrate/100, channels, frame/10 µs, rfu,
        sample count) then each frame prefixed by its 16-bit length."""
        header = struct.pack(
            "<9H", _LC3_FILE_ID, _LC3_HEADER, self.meta.sample_rate // 100,
            int(self.meta.bitrate_bps) // 100, self.meta.channels, FRAME_US // 10, 0,
            n_samples & 0xFFFF, n_samples >> 16,
        )
        return len(header) + sum(2 + len(f) for f in frames)
