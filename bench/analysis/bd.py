"""Bjøntegaard deltas between two rate–quality curves: BD-rate and BD-quality.

Method (stated in every result): the piecewise-cubic variant of the Bjøntegaard delta used in
video coding (VCEG-M33 with the cubic polynomial replaced by monotone piecewise-cubic Hermite
interpolation, as in VCEG-AM91 and the JCT-VC/JVET common test conditions), computed with
:class:`scipy.interpolate.PchipInterpolator` and its exact integral.

* **BD-rate**: log10(rate) is interpolated as a function of quality on each curve; the mean
  difference ``test − reference`` over the overlapping *quality* interval gives the average
  bitrate change at equal quality, ``(10^Δ − 1) × 100 %`` (negative: the test codec needs less).
* **BD-quality**: quality is interpolated as a function of log10(rate); the mean difference over
  the overlapping *log-rate* interval is the average quality gain at equal bitrate, in the
  metric's units, signed so that positive means the test codec is better (for a lower-is-better
  metric that is ``reference − test``).

Both refuse (:class:`BDRefused`, with the reason) instead of guessing when a curve has fewer
than two points, when quality is not strictly monotonic in rate (in the improving direction),
or when the two curves do not overlap. Nothing is extrapolated.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.interpolate import PchipInterpolator

METHOD = "Bjøntegaard delta, PCHIP in log10(rate) (VCEG-AM91 piecewise-cubic variant), exact integral"


class BDRefused(ValueError):
    """The two curves do not allow a Bjøntegaard delta; ``str(exc)`` says why."""


@dataclass(frozen=True)
class BDResult:
    """One Bjøntegaard delta: its value, the interval it averages over, and the method."""

    value: float
    """BD-rate in percent, or BD-quality in metric units (positive = test better)."""
    kind: str
    """``"bd_rate"`` or ``"bd_quality"``."""
    low: float
    high: float
    """The overlapping interval: quality units for BD-rate, bits/s for BD-quality."""
    method: str = METHOD

    def describe(self) -> str:
        if self.kind == "bd_rate":
            return (f"BD-rate {self.value:+.1f} % over quality [{self.low:.4g}, {self.high:.4g}]; {self.method}")
        return (f"BD-quality {self.value:+.4g} over [{self.low / 1000:.4g}, {self.high / 1000:.4g}] kbps; "
                f"{self.method}")


def _curve(rates: Sequence[float], quality: Sequence[float], direction: str, name: str
           ) -> tuple[np.ndarray, np.ndarray]:
    """Validated ``(log10 rate, quality)`` sorted by rate; raises BDRefused with the reason."""
    r = np.asarray(rates, dtype=np.float64)
    q = np.asarray(quality, dtype=np.float64)
    if r.shape != q.shape or r.ndim != 1:
        raise BDRefused(f"{name}: rates and qualities must be 1-d of equal length")
    keep = np.isfinite(r) & np.isfinite(q) & (r > 0)
    r, q = r[keep], q[keep]
    if r.size < 2:
        raise BDRefused(f"{name}: {r.size} usable point(s); a curve needs at least 2")
    order = np.argsort(r, kind="stable")
    r, q = r[order], q[order]
    if np.any(np.diff(r) <= 0):
        raise BDRefused(f"{name}: two op-points share one bitrate; the curve is not a function of rate")
    sign = -1.0 if direction == "lower" else 1.0
    steps = np.diff(sign * q)
    if np.any(steps <= 0):
        i = int(np.argmax(steps <= 0))
        raise BDRefused(
            f"{name}: quality is not strictly monotonic in bitrate ({q[i]:.4g} at {r[i] / 1000:.4g} kbps, "
            f"{q[i + 1]:.4g} at {r[i + 1] / 1000:.4g} kbps; {direction or 'higher'} is better)")
    return np.log10(r), q


def _mean_diff(x_a: np.ndarray, y_a: np.ndarray, x_b: np.ndarray, y_b: np.ndarray, what: str
               ) -> tuple[float, float, float]:
    """Mean of ``f_b − f_a`` over the overlap of the x ranges, PCHIP interpolants, exact integrals."""
    lo, hi = max(x_a.min(), x_b.min()), min(x_a.max(), x_b.max())
    if not hi > lo:
        raise BDRefused(f"the curves do not overlap in {what} "
                        f"([{x_a.min():.4g}, {x_a.max():.4g}] vs [{x_b.min():.4g}, {x_b.max():.4g}])")
    fa, fb = PchipInterpolator(x_a, y_a), PchipInterpolator(x_b, y_b)
    return float((fb.integrate(lo, hi) - fa.integrate(lo, hi)) / (hi - lo)), float(lo), float(hi)


def bd_rate(ref_rates: Sequence[float], ref_quality: Sequence[float], test_rates: Sequence[float],
            test_quality: Sequence[float], direction: str = "higher") -> BDResult:
    """Average bitrate change (%) of *test* against *reference* at equal quality."""
    lr_a, q_a = _curve(ref_rates, ref_quality, direction, "reference")
    lr_b, q_b = _curve(test_rates, test_quality, direction, "test")
    # x must increase for PCHIP: for a lower-is-better metric, quality falls with rate
    if direction == "lower":
        lr_a, q_a, lr_b, q_b = lr_a[::-1], q_a[::-1], lr_b[::-1], q_b[::-1]
    delta, lo, hi = _mean_diff(q_a, lr_a, q_b, lr_b, "quality")
    return BDResult(value=(10.0 ** delta - 1.0) * 100.0, kind="bd_rate", low=lo, high=hi)


def bd_quality(ref_rates: Sequence[float], ref_quality: Sequence[float], test_rates: Sequence[float],
               test_quality: Sequence[float], direction: str = "higher") -> BDResult:
    """Average quality gain of *test* over *reference* at equal bitrate (positive = test better)."""
    lr_a, q_a = _curve(ref_rates, ref_quality, direction, "reference")
    lr_b, q_b = _curve(test_rates, test_quality, direction, "test")
    delta, lo, hi = _mean_diff(lr_a, q_a, lr_b, q_b, "bitrate")
    sign = -1.0 if direction == "lower" else 1.0
    return BDResult(value=sign * delta, kind="bd_quality", low=10.0 ** lo, high=10.0 ** hi)
