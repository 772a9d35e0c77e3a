"""STOI and extended STOI, equal to ``pystoi``.

Computed by the vectorised kernel in :mod:`bench.metrics.fast_stoi` (same values to 1e-6,
parity-tested; several times faster per core). ``CODECBENCH_REFERENCE_KERNELS=1`` in the
environment calls ``pystoi.stoi`` itself instead, e.g. to check a suspicious number.

Working rate is 16 kHz: the runner hands 16 kHz signals to ``pystoi.stoi(ref, deg, 16000)``,
which resamples to STOI's internal 10 kHz itself with its MATLAB-``resample``-compatible
polyphase filter. That is how the original MATLAB STOI and nearly every paper call it, so
values match published ones; resampling straight to 10 kHz with soxr would differ slightly.
"""

from __future__ import annotations

import os
import warnings

import numpy as np

from bench.errors import MetricError
from bench.metrics import register_metric_variants
from bench.metrics.base import Metric, MetricInfo
from bench.metrics.pesq import check_not_silent, check_pair

PYSTOI_VERSION = "0.4.1"
WORKING_RATE = 16000

_COMMON = {
    "package": f"pystoi=={PYSTOI_VERSION}",
    "fs_sig": WORKING_RATE,
    "internal_rate": 10000,
    "internal_resampling": "pystoi.utils.resample_oct (MATLAB resample equivalent), 16 kHz -> 10 kHz",
    "frame_length": 256,
    "frame_hop": 128,
    "nfft": 512,
    "window": "hann (pystoi: np.hanning(258)[1:-1])",
    "third_octave_bands": "15 bands from 150 Hz",
    "segment_frames": 30,
    "silent_frame_range_db": 40,
    "too_few_frames": "pystoi warns and returns 1e-5 when <30 non-silent frames remain; raised as MetricError",
    "kernel": "bench.metrics.fast_stoi (numpy + numba on CPU, torch on GPU; == pystoi to 1e-6); CODECBENCH_REFERENCE_KERNELS=1 calls pystoi",
}


def use_reference_kernels() -> bool:
    """True when CODECBENCH_REFERENCE_KERNELS asks for the reference packages instead of the fast kernels."""
    return os.environ.get("CODECBENCH_REFERENCE_KERNELS", "").strip().lower() in ("1", "true", "yes", "on")


@register_metric_variants(
    MetricInfo(
        id="stoi",
        version="1",
        direction="higher",
        sample_rate=WORKING_RATE,
        reference="pystoi.stoi(ref, deg, 16000, extended=False)",
        settings={**_COMMON, "extended": False},
        unit="",
        description=(
            "Short-time objective intelligibility (Taal et al. 2011) in [0, 1]; signals are given at "
            "16 kHz so pystoi does the 10 kHz resampling exactly as published evaluations do."
        ),
    ),
    MetricInfo(
        id="estoi",
        version="1",
        direction="higher",
        sample_rate=WORKING_RATE,
        reference="pystoi.stoi(ref, deg, 16000, extended=True)",
        settings={**_COMMON, "extended": True},
        unit="",
        description=(
            "Extended STOI (Jensen & Taal 2016), which also handles modulated maskers and codec "
            "artefacts that plain STOI over-rates; same 16 kHz convention as stoi."
        ),
    ),
)
class Stoi(Metric):
    """(E)STOI equal to ``pystoi.stoi(ref, deg, 16000, extended=...)``."""

    info: MetricInfo

    def availability(self) -> tuple[bool, str]:
        if not use_reference_kernels():
            return True, ""  # the fast kernel needs only torch
        try:
            import pystoi  # noqa: F401
        except ImportError as exc:
            return False, f"package 'pystoi' is not importable: {exc}"
        return True, ""

    def compute(self, reference: np.ndarray, degraded: np.ndarray) -> float:
        """Score one pair; pystoi's 'not enough frames' fallback value is turned into MetricError."""
        mid = self.info.id
        check_pair(reference, degraded, mid)
        check_not_silent(reference, mid)
        value = self._reference(reference, degraded) if use_reference_kernels() else self._fast(reference, degraded)
        if value is None:
            st = self.info.settings
            need_s = ((st["segment_frames"] - 1) * st["frame_hop"] + st["frame_length"]) / st["internal_rate"]
            raise MetricError(
                f"{mid}: too little speech: fewer than {st['segment_frames']} non-silent frames "
                f"({need_s * 1000:.0f} ms of active speech) remain in the {reference.size / WORKING_RATE:.2f} s "
                "signal after pystoi's silent-frame removal"
            )
        if not np.isfinite(value):
            raise MetricError(f"{mid}: non-finite value ({value})")
        return value

    def _fast(self, reference: np.ndarray, degraded: np.ndarray) -> float | None:
        from bench.metrics.fast_stoi import stoi_batch

        return stoi_batch([reference], [degraded], self.info.settings["fs_sig"], self.info.settings["extended"])[0]

    def _reference(self, reference: np.ndarray, degraded: np.ndarray) -> float | None:
        from pystoi import stoi

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            value = float(
                stoi(reference, degraded, self.info.settings["fs_sig"], extended=self.info.settings["extended"])
            )
        if any("Not enough STFT frames" in str(w.message) for w in caught):
            return None
        return value
