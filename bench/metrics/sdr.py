"""Scale-invariant SDR (Le Roux et al., "SDR – half-baked or well done?", ICASSP 2019).

Own float64 numpy implementation of the zero-mean definition::

    s = ref - mean(ref),  ŝ = deg - mean(deg)
    α = <ŝ, s> / ||s||²,  e_target = α s,  e_res = ŝ - e_target
    SI-SDR = 10 log10(||e_target||² / ||e_res||²)

It equals ``torchmetrics.functional.audio.scale_invariant_signal_distortion_ratio(deg, ref,
zero_mean=True)`` in float64 (torchmetrics adds float eps to numerator and denominator, which
moves non-degenerate values by far less than 1e-9 dB). Instead of eps, degenerate pairs raise.
"""

from __future__ import annotations

import numpy as np

from bench.errors import MetricError
from bench.metrics import register_metric
from bench.metrics.base import Metric, MetricInfo
from bench.metrics.pesq import check_pair


def si_sdr(reference: np.ndarray, degraded: np.ndarray) -> float:
    """SI-SDR in dB of ``degraded`` against ``reference``; raises MetricError when undefined."""
    s = np.asarray(reference, dtype=np.float64)
    s_hat = np.asarray(degraded, dtype=np.float64)
    s = s - s.mean()
    s_hat = s_hat - s_hat.mean()
    ref_energy = float(np.dot(s, s))
    if ref_energy == 0.0:
        raise MetricError("si_sdr: reference has zero energy after mean removal (silent or constant)")
    alpha = float(np.dot(s_hat, s)) / ref_energy
    target = alpha * s
    residual = s_hat - target
    target_energy = float(np.dot(target, target))
    residual_energy = float(np.dot(residual, residual))
    if residual_energy == 0.0:
        raise MetricError("si_sdr: degraded equals the reference up to scale and offset; SI-SDR is +inf")
    if target_energy == 0.0:
        raise MetricError("si_sdr: degraded is orthogonal to the reference (or silent); SI-SDR is -inf")
    return float(10.0 * np.log10(target_energy / residual_energy))


@register_metric
class SiSdr(Metric):
    """SI-SDR in dB, higher is better."""

    info = MetricInfo(
        id="si_sdr",
        version="1",
        direction="higher",
        sample_rate=16000,
        reference=(
            "torchmetrics.functional.audio.scale_invariant_signal_distortion_ratio("
            "torch.from_numpy(deg).double(), torch.from_numpy(ref).double(), zero_mean=True)"
        ),
        settings={
            "definition": "Le Roux et al. 2019, zero-mean, optimal scaling of the reference",
            "zero_mean": True,
            "dtype": "float64",
            "eps": "none; zero-energy reference/residual/target raise MetricError",
            "min_samples": 2,
            "implementation": "own numpy; parity-tested against torchmetrics",
        },
        unit="dB",
        description=(
            "Waveform fidelity that ignores gain; 16 kHz so it sees the same band as the speech "
            "metrics. It punishes phase changes, so it favours waveform codecs over parametric ones."
        ),
    )

    def compute(self, reference: np.ndarray, degraded: np.ndarray) -> float:
        """Score one pair in dB."""
        check_pair(reference, degraded, self.info.id)
        need = self.info.settings["min_samples"]
        if reference.size < need:
            raise MetricError(f"si_sdr: signal too short: need at least {need} samples, got {reference.size}")
        return si_sdr(reference, degraded)
