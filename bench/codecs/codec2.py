"""Codec2 (pycodec2) at 3200, 1600 and 700C bit/s, narrowband 8 kHz, int16 frames.

Codec2 is a parametric sinusoidal coder: it transmits pitch, voicing and spectral envelope but
no phase, so its output does not follow the input waveform sample by sample.
"""

from __future__ import annotations

import ctypes
import glob
import logging
import os
import struct
from collections.abc import Callable
from functools import cache

import numpy as np

from bench.codecs import register_codec
from bench.codecs._classic import FramedCodec, package_version, to_int16
from bench.codecs.base import CodecMeta
from bench.errors import CodecError

#: Input-to-output delay per mode, samples at 8 kHz. The analysis window is centred 160 samples
#: (20 ms) behind the newest input sample (m_pitch/2) and the synthesis overlap-add ends at that
#: model centre: 160 for 3200 and 1600. 700C measures one 10 ms sub-frame later (its decoder
#: interpolates the 40 ms rate-K vectors). Measured as the mean onset/offset midpoint of tone
#: bursts over 4 pitches × 8 frame phases: 3200 → 160.6, 1600 → 156.5, 700C → 241.3.
CODEC2_DELAY = {3200: 160, 1600: 160, 700: 240}
#: Mode numbers of the .c2 file header (codec2 c2file.h / CODEC2_MODE_*).
_C2_MODE_ID = {3200: 0, 1600: 2, 700: 8}
_C2_MAGIC = b"\xc0\xde\xc2"
#: bits per frame, samples per frame at 8 kHz (fixed by the Codec2 modes).
_FRAMES = {3200: (64, 160), 1600: (64, 320), 700: (28, 320)}


def _meta(mode: int) -> CodecMeta:
    bits, spf = _FRAMES[mode]
    name = "700C" if mode == 700 else str(mode)
    kbps = f"{mode / 1000:g}"
    return CodecMeta(
        id=f"codec2@{kbps}kbps",
        family="codec2",
        kind="bitstream",
        sample_rate=8000,
        bitrate_bps=bits * 8000 / spf,
        channels=1,
        frame_rate=8000 / spf,
        causal=True,
        streaming=True,
        license="LGPL-2.1 (codec2); BSD-3-Clause (pycodec2 wrapper)",
        citation="D. Rowe, Codec 2 open source speech codec (https://www.rowetel.com/codec2.html)",
        implementation=f"codec2 via pycodec2 {package_version('pycodec2')}",
        bitrate_tolerance=0.01,
        notes=(
            f"Mode {name}: {bits} bits per {spf // 8} ms frame at 8 kHz, constant, so the measured "
            "payload equals the declared rate; tolerance 1% covers rounding. Delay: "
            f"{CODEC2_DELAY[mode]} samples, a documented constant (codec2 source; measured on tone "
            "bursts); zeros after the input flush the tail. Parametric, no "
            "waveform match: alignment is checked on the energy envelope. Overhead: octet padding "
            f"({8 * -(-bits // 8) - bits} bits per frame) and the 7-byte .c2 header."
        ),
        options={"mode": mode},
    )


log = logging.getLogger(__name__)


@cache
def _rand_state() -> ctypes.c_uint64 | None:
    """The seed of libcodec2's global ``codec2_rand`` LCG, or None if it cannot be located.

    Codec2's decoder draws random phases for unvoiced harmonics from a process-global PRNG
    (``static unsigned long next`` in codec2.c, no API to reset it), so the same packets decode
    differently depending on what was decoded before. To make decoding a pure function of the
    packets, the seed is found from ``codec2_rand``'s first instruction,
    ``imul $0x41c64e6d, next(%rip), %rax`` (x86-64: 48 69 05 disp32 imm32), and reset to its
    initial value 1 before each item. Any other instruction pattern: None (no guessing).
    """
    import pycodec2

    libdir = os.path.join(os.path.dirname(os.path.dirname(pycodec2.__file__)), "pycodec2.libs")
    libs = glob.glob(os.path.join(libdir, "libcodec2*.so*"))
    if len(libs) != 1:
        return None
    lib = ctypes.CDLL(libs[0])  # same handle as the one pycodec2 links to
    func = ctypes.cast(lib.codec2_rand, ctypes.c_void_p).value
    if func is None:
        return None
    code = bytes((ctypes.c_ubyte * 11).from_address(func))
    if code[:3] != b"\x48\x69\x05" or code[7:11] != struct.pack("<I", 1103515245):
        return None
    disp = struct.unpack("<i", code[3:7])[0]
    return ctypes.c_uint64.from_address(func + 11 + disp)


def reset_codec2_rand() -> bool:
    """Reset libcodec2's global PRNG seed to 1; False if it could not be located (see above)."""
    seed = _rand_state()
    if seed is None:
        log.warning("cannot reset libcodec2's PRNG: Codec2 decoding depends on earlier decodes")
        return False
    seed.value = 1
    return True


@register_codec(*(_meta(m) for m in _FRAMES))
class Codec2Codec(FramedCodec):
    """One pycodec2.Codec2 state per item for encoding and one for decoding."""

    def availability(self) -> tuple[bool, str]:
        try:
            import pycodec2  # noqa: F401
        except ImportError as exc:
            return False, f"pycodec2 is not installed ({exc}); pip install pycodec2"
        return True, ""

    def _state(self):  # pycodec2.Codec2 (untyped extension)
        import pycodec2

        return pycodec2.Codec2(int(self.meta.options["mode"]))

    def frame_len(self) -> int:
        return _FRAMES[int(self.meta.options["mode"])][1]

    def delay(self) -> int:
        return CODEC2_DELAY[int(self.meta.options["mode"])]

    def new_encoder(self) -> Callable[[np.ndarray], bytes]:
        c2 = self._state()
        if c2.samples_per_frame() != self.frame_len():
            raise CodecError(f"{self.meta.id}: library frame is {c2.samples_per_frame()} samples, "
                             f"expected {self.frame_len()}")
        return lambda frame: bytes(c2.encode(np.ascontiguousarray(to_int16(frame[0]))))

    def new_decoder(self) -> Callable[[bytes], np.ndarray]:
        c2 = self._state()
        reset_codec2_rand()  # decoding is then a function of the packets alone
        return lambda data: (c2.decode(bytes(data)).astype(np.float32) / 32768.0)[None, :]

    def frame_payload_bits(self, frame: bytes) -> int:
        """The mode's bits per frame; the rest of the last byte is octet padding."""
        return _FRAMES[int(self.meta.options["mode"])][0]

    def container_bytes(self, frames: list[bytes], n_samples: int) -> int:
        """A .c2 file: 7-byte header (magic, version 1.2, mode, flags) then the frames back to back."""
        header = _C2_MAGIC + struct.pack("BBBB", 1, 2, _C2_MODE_ID[int(self.meta.options["mode"])], 0)
        return len(header) + sum(len(f) for f in frames)
