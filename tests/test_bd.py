"""Bjøntegaard deltas on synthetic curves with known answers, and the cases that must be refused."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bench.analysis.bd import BDRefused, bd_quality, bd_rate
from bench.analysis.rate_quality import (
    ANCHORS_KBPS,
    anchor_table,
    bd_matrices,
    family_curves,
    pareto_front,
)

RATES = np.array([1500.0, 3000.0, 6000.0, 12000.0, 24000.0])
QUALITY = np.array([1.6, 2.3, 3.0, 3.6, 4.1])  # concave in log-rate, like PESQ


def test_half_the_bitrate_everywhere_is_minus_50_percent():
    res = bd_rate(RATES, QUALITY, RATES / 2, QUALITY)
    assert res.value == pytest.approx(-50.0, abs=1e-9)
    assert (res.low, res.high) == pytest.approx((1.6, 4.1))
    assert "PCHIP" in res.method and "BD-rate -50.0 %" in res.describe()
    # and the other way round: twice the bitrate is +100 %
    assert bd_rate(RATES, QUALITY, RATES * 2, QUALITY).value == pytest.approx(100.0, abs=1e-9)


def test_bd_rate_on_partially_overlapping_curves_uses_the_overlap():
    # test curve shifted by a constant factor in rate, but covering only the top of the quality range
    res = bd_rate(RATES, QUALITY, RATES[2:] * 0.8, QUALITY[2:])
    # end slopes of a 3-point PCHIP differ slightly from the 5-point one's: close to, not exactly, -20 %
    assert res.value == pytest.approx(-20.0, abs=0.5)
    assert (res.low, res.high) == pytest.approx((3.0, 4.1))


def test_bd_quality_constant_offset_and_lower_is_better():
    res = bd_quality(RATES, QUALITY, RATES, QUALITY + 0.25)
    assert res.value == pytest.approx(0.25, abs=1e-12)
    assert (res.low, res.high) == pytest.approx((1500.0, 24000.0))
    # a distance (lower is better) that is 0.5 lower everywhere is a +0.5 gain
    dist = 10.0 - QUALITY
    assert bd_quality(RATES, dist, RATES, dist - 0.5, direction="lower").value == pytest.approx(0.5)
    assert bd_rate(RATES, dist, RATES / 2, dist, direction="lower").value == pytest.approx(-50.0)


def test_bd_rate_nonlinear_known_answer():
    # reference q = log2(r/1000); test reaches each q at 1/4 the rate: test q = log2(4r/1000) -> -75 %
    r = np.array([1000.0, 2000.0, 4000.0, 8000.0, 16000.0])
    q = np.log2(r / 1000)
    assert bd_rate(r, q, r, q + 2.0).value == pytest.approx(-75.0, abs=1e-9)
    assert bd_quality(r, q, r, q + 2.0).value == pytest.approx(2.0, abs=1e-12)


@pytest.mark.parametrize(
    ("test_rates", "test_q", "reason"),
    [
        (RATES * 100, QUALITY, "do not overlap"),  # disjoint bitrate ranges...
        (RATES, QUALITY + 10, "do not overlap"),  # ...or disjoint quality ranges
        (RATES, np.array([1.6, 2.3, 2.2, 3.6, 4.1]), "not strictly monotonic"),
        (RATES[:1], QUALITY[:1], "at least 2"),
        (np.array([3000.0, 3000.0]), np.array([2.0, 3.0]), "share one bitrate"),
    ],
)
def test_refusals_say_why(test_rates, test_q, reason):
    with pytest.raises(BDRefused, match=reason):
        # bd_quality refuses disjoint *rates*; bd_rate refuses disjoint *qualities*
        if np.array_equal(test_rates, RATES * 100):
            bd_quality(RATES, QUALITY, test_rates, test_q)
        else:
            bd_rate(RATES, QUALITY, test_rates, test_q)


def test_wrong_direction_is_not_monotonic():
    with pytest.raises(BDRefused, match="lower is better"):
        bd_rate(RATES, QUALITY, RATES / 2, QUALITY, direction="lower")


def _points(rows):
    return pd.DataFrame(rows, columns=["codec", "family", "rate_bps", "mean", "ci_low", "ci_high", "n"])


def test_pareto_front_anchors_and_matrix():
    rows = [(f"a@{r:g}", "a", r, q, q - 0.1, q + 0.1, 10) for r, q in zip(RATES, QUALITY, strict=True)]
    rows += [(f"b@{r:g}", "b", r, q - 0.5, q - 0.6, q - 0.4, 10) for r, q in zip(RATES[1:4], QUALITY[1:4],
                                                                               strict=True)]
    rows += [("c@2k", "c", 2000.0, 2.5, 2.4, 2.6, 10)]  # beats a@3000 with less rate
    pts = _points(rows)
    front = pareto_front(pts)
    assert list(front["codec"]) == ["a@1500", "c@2k", "a@6000", "a@12000", "a@24000"]
    curves = family_curves(pts)
    anchors = anchor_table(curves).set_index("family")
    assert [f"{a:g} kbps" for a in ANCHORS_KBPS][-1] in anchors.columns
    assert anchors.loc["a", "3 kbps"] == pytest.approx(2.3)  # at a measured point: the measured mean
    assert anchors.loc["a", "1.5 kbps"] == pytest.approx(1.6)
    assert np.isnan(anchors.loc["a", "0.5 kbps"])  # below a's range: never extrapolated
    shifted = family_curves(pts.assign(rate_bps=pts["rate_bps"] * 1.0005))  # 1500.75 bit/s measured
    assert anchor_table(shifted).set_index("family").loc["a", "1.5 kbps"] == pytest.approx(1.6)
    assert np.isnan(anchor_table(family_curves(pts.assign(rate_bps=pts["rate_bps"] * 1.01)))
                    .set_index("family").loc["a", "1.5 kbps"])
    assert np.isnan(anchors.loc["b", "24 kbps"]) and np.isnan(anchors.loc["b", "1.5 kbps"])
    assert anchors.loc["b", "6 kbps"] == pytest.approx(2.5)
    assert np.isnan(anchors.loc["c", "1 kbps"]) and np.isnan(anchors.loc["c", "3 kbps"])
    bd = bd_matrices(curves).set_index(["reference", "test"])
    assert bd.loc[("a", "b"), "bd_quality"] == pytest.approx(-0.5, abs=0.01)  # b: a's middle, 0.5 lower
    assert bd.loc[("a", "b"), "bd_rate_pct"] > 0
    assert np.isnan(bd.loc[("a", "c"), "bd_rate_pct"]) and "at least 2" in bd.loc[("a", "c"), "bd_rate_refused"]
