"""PESQ (ITU-T P.862) through the ``pesq`` package: wide-band (P.862.2) and narrow-band MOS-LQO.

The wrapper is a thin call of ``pesq.pesq``; it only adds the input checks the C code does not
make (NaN, silent reference) and turns every PESQ failure into :class:`MetricError`, so a
failed pair becomes a failed cell rather than a made-up score.
"""

from __future__ import annotations

import numpy as np

from bench.errors import MetricError
from bench.metrics import register_metric_variants
from bench.metrics.base import Metric, MetricInfo

PESQ_VERSION = "0.0.4"

_COMMON = {
    "package": f"pesq=={PESQ_VERSION}",
    "on_error": "PesqError.RAISE_EXCEPTION",
    "input_scaling": "pesq divides both signals by their joint peak, then casts to float32",
    "min_duration_s": "0.25 (enforced by the package: BufferTooShortError)",
}


def check_pair(reference: np.ndarray, degraded: np.ndarray, metric_id: str) -> None:
    """Reject pairs no metric can score: wrong shape, unequal length, empty or non-finite samples."""
    if reference.ndim != 1 or degraded.ndim != 1:
        raise MetricError(
            f"{metric_id}: expected mono 1-D signals, got shapes {reference.shape} and {degraded.shape}"
        )
    if reference.shape != degraded.shape:
        raise MetricError(
            f"{metric_id}: reference and degraded differ in length ({reference.size} vs {degraded.size} samples)"
        )
    if reference.size == 0:
        raise MetricError(f"{metric_id}: signals are empty")
    for name, x in (("reference", reference), ("degraded", degraded)):
        if not np.all(np.isfinite(x)):
            raise MetricError(f"{metric_id}: {name} contains NaN or Inf samples")


def check_not_silent(reference: np.ndarray, metric_id: str) -> None:
    """A reference of all zeros has no speech to compare against; the packages would return junk."""
    if not np.any(reference):
        raise MetricError(f"{metric_id}: reference is silent (all samples are zero)")


@register_metric_variants(
    MetricInfo(
        id="pesq_wb",
        version="1",
        direction="higher",
        sample_rate=16000,
        reference="pesq.pesq(16000, ref, deg, 'wb')",
        settings={**_COMMON, "fs": 16000, "mode": "wb", "standard": "ITU-T P.862.2 (wide-band)"},
        unit="MOS-LQO",
        description=(
            "Wide-band PESQ (P.862.2) at 16 kHz, the rate the standard defines; the most widely "
            "reported speech-codec quality score, so numbers are comparable with published tables."
        ),
    ),
    MetricInfo(
        id="pesq_nb",
        version="1",
        direction="higher",
        sample_rate=8000,
        reference="pesq.pesq(8000, ref, deg, 'nb')",
        settings={
            **_COMMON,
            "fs": 8000,
            "mode": "nb",
            "standard": "ITU-T P.862 + P.862.1 mapping (narrow-band)",
        },
        unit="MOS-LQO",
        description=(
            "Narrow-band PESQ (P.862 with the P.862.1 MOS-LQO mapping) at 8 kHz, for telephone-band "
            "codecs and comparison with the older narrow-band literature."
        ),
    ),
)
class Pesq(Metric):
    """PESQ MOS-LQO equal to ``pesq.pesq(fs, ref, deg, mode)``."""

    info: MetricInfo

    def availability(self) -> tuple[bool, str]:
        try:
            import pesq  # noqa: F401
        except ImportError as exc:
            return False, f"package 'pesq' is not importable: {exc}"
        return True, ""

    def compute(self, reference: np.ndarray, degraded: np.ndarray) -> float:
        """Score one pair at ``info.sample_rate``; PESQ errors become MetricError."""
        import pesq

        mid = self.info.id
        check_pair(reference, degraded, mid)
        check_not_silent(reference, mid)
        if not np.any(degraded):
            raise MetricError(f"{mid}: degraded signal is silent (all zeros); PESQ is undefined for it")
        fs, mode = self.info.settings["fs"], self.info.settings["mode"]
        try:
            value = pesq.pesq(fs, reference, degraded, mode)
        except pesq.PesqError as exc:
            msg = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else str(exc)
            raise MetricError(f"{mid}: PESQ failed ({type(exc).__name__}): {msg}") from exc
        except ValueError as exc:  # the package raises this when its internal level estimate is NaN
            raise MetricError(f"{mid}: PESQ failed: {exc}") from exc
        value = float(value)
        if not np.isfinite(value):
            raise MetricError(f"{mid}: PESQ returned a non-finite value ({value})")
        return value
