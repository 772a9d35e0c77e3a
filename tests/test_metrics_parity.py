"""Every built-in metric equals its reference package call, and fails loudly instead of inventing numbers.

Parity tolerance is absolute 1e-6 for every metric (all values are O(1)–O(10): MOS, STOI in
[0, 1], dB, spectral distances), on speech-like synthetic pairs degraded four ways.

References: pesq / pystoi / visqol-python are called directly; SI-SDR against torchmetrics;
stft_distance against auraloss; mel_distance against an independent numpy + librosa
implementation of audiotools' MelSpectrogramLoss (audiotools itself needs torchaudio, which
cannot be installed here).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np
import pytest
import torch
from scipy import signal

from bench.errors import MetricError
from bench.metrics import metrics
from bench.metrics.base import Metric

TOL = 1e-6

# ----------------------------------------------------------------------------- signals


def speech_like(sr: int, dur: float, seed: int) -> np.ndarray:
    """Glottal pulse train with jittered f0 through per-syllable formant resonators, ~4 Hz syllables."""
    rng = np.random.default_rng(seed)
    n = int(sr * dur)
    t = np.arange(n) / sr
    f0 = (
        110
        + 40 * rng.random()
        + 15 * np.sin(2 * np.pi * 0.7 * t)
        + 3 * rng.standard_normal(n).cumsum() / np.sqrt(n)
    )
    pulses = np.diff(np.floor(np.cumsum(f0 / sr)), prepend=0.0)
    source = signal.lfilter([1.0], [1.0, -0.95], pulses)  # -6 dB/oct glottal tilt
    vowels = np.array([[700, 1200, 2600], [300, 2300, 3000], [500, 900, 2500], [400, 1900, 2700]])
    syl = int(sr / (3.5 + rng.random()))
    out = np.zeros(n)
    for a in range(0, n, syl):
        b = min(n, a + syl)
        seg = np.zeros(b - a)
        for f, bw in zip(
            vowels[rng.integers(len(vowels))] * (0.9 + 0.2 * rng.random()), (80, 120, 160), strict=True
        ):
            r = np.exp(-np.pi * bw / sr)
            seg += signal.lfilter([1 - r], [1, -2 * r * np.cos(2 * np.pi * f / sr), r * r], source[a:b])
        if rng.random() < 0.3:  # fricative onset
            hp_b, hp_a = signal.butter(4, min(3000.0, 0.4 * sr) / (sr / 2), "high")
            fric = signal.lfilter(hp_b, hp_a, 0.05 * rng.standard_normal(b - a))
            seg += fric * np.exp(-np.linspace(0, 6, b - a))
        env = np.sin(np.pi * np.linspace(0, 1, b - a)) ** 2
        out[a:b] = seg * env * (0.0 if rng.random() < 0.15 and a > 0 else 1.0)
    return (0.5 * out / np.max(np.abs(out))).astype(np.float32)


def _noise(x: np.ndarray, snr_db: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return x + np.std(x) * 10 ** (-snr_db / 20) * rng.standard_normal(x.size)


def _lowpass(x: np.ndarray, sr: int, fc: float) -> np.ndarray:
    b, a = signal.butter(6, min(fc, 0.45 * sr) / (sr / 2))
    return signal.lfilter(b, a, x)


def _mulaw(x: np.ndarray, bits: int = 8, mu: float = 255.0) -> np.ndarray:
    c = np.sign(x) * np.log1p(mu * np.abs(x)) / np.log1p(mu)
    q = np.round((c + 1) / 2 * (2**bits - 1)) / (2**bits - 1) * 2 - 1
    return np.sign(q) * np.expm1(np.abs(q) * np.log1p(mu)) / mu


DEGRADATIONS: dict[str, Callable[[np.ndarray, int], np.ndarray]] = {
    "noise_20db": lambda x, sr: _noise(x, 20.0, 11),
    "lowpass_3k4": lambda x, sr: _lowpass(x, sr, 3400.0),
    "mulaw_8bit": lambda x, sr: _mulaw(x),
    "lp_noise_gain": lambda x, sr: 0.7 * _noise(_lowpass(x, sr, 2500.0), 30.0, 12),
}

# ViSQOL audio mode is the slowest metric: keep its signals short.
DURATION = {"visqol_audio": 1.5}


def make_pair(metric_id: str, sr: int, seed: int, degradation: str) -> tuple[np.ndarray, np.ndarray]:
    ref = speech_like(sr, DURATION.get(metric_id, 2.5), seed)
    deg = DEGRADATIONS[degradation](ref.astype(np.float64), sr).astype(np.float32)
    return ref, deg


# ----------------------------------------------------------------------------- references


def _ref_pesq(mode: str) -> Callable[[np.ndarray, np.ndarray, int], float]:
    def call(ref: np.ndarray, deg: np.ndarray, sr: int) -> float:
        import pesq

        return float(pesq.pesq(sr, ref, deg, mode))

    return call


def _ref_stoi(extended: bool) -> Callable[[np.ndarray, np.ndarray, int], float]:
    def call(ref: np.ndarray, deg: np.ndarray, sr: int) -> float:
        from pystoi import stoi

        return float(stoi(ref, deg, sr, extended=extended))

    return call


_VISQOL_APIS: dict[str, object] = {}


def _ref_visqol(mode: str) -> Callable[[np.ndarray, np.ndarray, int], float]:
    def call(ref: np.ndarray, deg: np.ndarray, sr: int) -> float:
        from visqol import VisqolApi

        if mode not in _VISQOL_APIS:
            api = VisqolApi()
            api.create(mode=mode, **({"use_lattice_model": True} if mode == "speech" else {}))
            _VISQOL_APIS[mode] = api
        return float(_VISQOL_APIS[mode].measure_from_arrays(ref, deg, sr).moslqo)  # type: ignore[attr-defined]

    return call


def _ref_si_sdr(ref: np.ndarray, deg: np.ndarray, sr: int) -> float:
    from torchmetrics.functional.audio import scale_invariant_signal_distortion_ratio

    r = torch.from_numpy(ref).double()
    d = torch.from_numpy(deg).double()
    return float(scale_invariant_signal_distortion_ratio(d, r, zero_mean=True))


def _ref_stft_distance(ref: np.ndarray, deg: np.ndarray, sr: int) -> float:
    from bench.metrics.spectral_reference import reference_stft_distance

    return reference_stft_distance(ref, deg)


def _ref_mel_distance(ref: np.ndarray, deg: np.ndarray, sr: int) -> float:
    from bench.metrics.spectral_reference import reference_mel_distance

    return reference_mel_distance(ref, deg, sr)


REFERENCES: dict[str, Callable[[np.ndarray, np.ndarray, int], float]] = {
    "pesq_wb": _ref_pesq("wb"),
    "pesq_nb": _ref_pesq("nb"),
    "stoi": _ref_stoi(False),
    "estoi": _ref_stoi(True),
    "visqol_speech": _ref_visqol("speech"),
    "visqol_audio": _ref_visqol("audio"),
    "mel_distance": _ref_mel_distance,
    "stft_distance": _ref_stft_distance,
    "si_sdr": _ref_si_sdr,
}


def _metric(metric_id: str) -> Metric:
    return metrics.get(metric_id)


# ----------------------------------------------------------------------------- tests


def test_every_builtin_metric_has_a_parity_reference() -> None:
    assert set(REFERENCES) <= set(metrics.names())
    # full-reference metrics; judge- and probe-based ones are scored by their task (test_slmtokbench.py)
    builtin = {n for n, m in metrics.items()
               if type(m).__module__.startswith("bench.metrics.") and type(m).__module__ != "bench.metrics.task_scored"}
    assert builtin == set(REFERENCES)


@pytest.mark.parametrize("metric_id", sorted(REFERENCES))
def test_metadata_is_complete(metric_id: str) -> None:
    info = _metric(metric_id).info
    assert info.id == metric_id
    assert info.direction in ("higher", "lower")
    assert isinstance(info.sample_rate, int) and info.sample_rate > 0
    assert info.reference.strip()
    assert info.version.strip()
    assert info.settings and info.description.strip()
    assert info.to_dict()["settings"] == dict(info.settings)
    assert _metric(metric_id).availability() == (True, "")


@pytest.mark.parametrize("degradation", sorted(DEGRADATIONS))
@pytest.mark.parametrize("metric_id", sorted(REFERENCES))
def test_value_equals_reference_call(metric_id: str, degradation: str) -> None:
    metric = _metric(metric_id)
    sr = metric.info.sample_rate
    for seed in (1, 2):
        ref, deg = make_pair(metric_id, sr, seed, degradation)
        got = metric.compute(ref, deg)
        want = REFERENCES[metric_id](ref, deg, sr)
        assert isinstance(got, float)
        assert np.isfinite(got)
        assert abs(got - want) <= TOL, f"{metric_id}/{degradation}/seed{seed}: {got!r} != {want!r}"


def test_direction_agrees_with_degradation_strength() -> None:
    """A sanity check on the reference data: more noise scores worse on every metric."""
    for metric_id in sorted(REFERENCES):
        metric = _metric(metric_id)
        sr = metric.info.sample_rate
        ref = speech_like(sr, DURATION.get(metric_id, 2.5), 3)
        mild = _noise(ref.astype(np.float64), 30.0, 5).astype(np.float32)
        harsh = _noise(ref.astype(np.float64), 0.0, 5).astype(np.float32)
        a, b = metric.compute(ref, mild), metric.compute(ref, harsh)
        better = a > b if metric.info.direction == "higher" else a < b
        assert better, f"{metric_id}: 30 dB SNR scored {a}, 0 dB SNR scored {b}"


def test_mel_filterbank_matches_librosa() -> None:
    import librosa

    from bench.metrics.spectral import mel_filterbank

    for sr, n_fft, n_mels in ((16000, 2048, 150), (16000, 512, 80), (44100, 1024, 128)):
        ours = mel_filterbank(sr, n_fft, n_mels, 0.0, sr / 2)
        theirs = librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, dtype=np.float64)
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-12)


def test_spectral_batch_equals_single_items() -> None:
    from bench.metrics.spectral import mel_distance, multi_resolution_stft_distance

    pairs = [make_pair("mel_distance", 16000, s, d) for s, d in ((1, "noise_20db"), (2, "mulaw_8bit"))]
    refs = torch.from_numpy(np.stack([p[0] for p in pairs]))
    degs = torch.from_numpy(np.stack([p[1] for p in pairs]))
    batch_mel = mel_distance(refs, degs)
    batch_stft = multi_resolution_stft_distance(refs, degs)
    for i, (r, d) in enumerate(pairs):
        assert abs(float(batch_mel[i]) - _metric("mel_distance").compute(r, d)) <= TOL
        assert abs(float(batch_stft[i]) - _metric("stft_distance").compute(r, d)) <= TOL


@pytest.mark.parametrize("metric_id", ["mel_distance", "stft_distance"])
def test_reference_flag_switches_spectral_kernel(monkeypatch, metric_id: str) -> None:
    """CODECBENCH_REFERENCE_KERNELS=1 computes through the reference module, not the fast kernel."""
    from bench.metrics import spectral, spectral_reference

    ref, deg = make_pair(metric_id, 16000, 3, "noise_20db")
    metric = _metric(metric_id)
    fast = metric.compute(ref, deg)
    name = {"mel_distance": "reference_mel_distance", "stft_distance": "reference_stft_distance"}[metric_id]
    calls = []
    real = getattr(spectral_reference, name)
    monkeypatch.setattr(spectral_reference, name, lambda *a: calls.append(1) or real(*a))
    assert metric.compute(ref, deg) == fast and not calls  # default: the fast kernel
    monkeypatch.setenv("CODECBENCH_REFERENCE_KERNELS", "1")
    monkeypatch.setattr(spectral, "mel_distance", None)  # the fast entry points must not be used
    monkeypatch.setattr(spectral, "multi_resolution_stft_distance", None)
    assert abs(metric.compute(ref, deg) - fast) <= 1e-9 and calls  # float64 throughout: no float32 rounding


def test_spectral_cpu_kernel_equals_torch_path() -> None:
    """The fused CPU kernel and the batched torch.stft path (used on accelerators) agree."""
    from bench.metrics import spectral

    pairs = [make_pair("mel_distance", 16000, s, d) for s, d in ((4, "lowpass_3k4"), (5, "mulaw_8bit"))]
    refs = torch.from_numpy(np.stack([p[0] for p in pairs]))
    degs = torch.from_numpy(np.stack([p[1] for p in pairs]))
    torch.testing.assert_close(spectral.mel_distance(refs, degs), spectral._torch_mel_distance(refs, degs),
                               rtol=0, atol=1e-10)
    torch.testing.assert_close(spectral.multi_resolution_stft_distance(refs, degs),
                               spectral._torch_stft_distance(refs, degs), rtol=0, atol=1e-10)


# ----------------------------------------------------------------------------- failure modes

SHORT_SAMPLES = {"si_sdr": 1}  # every other metric gets 50 ms, below its minimum
SILENT_REFERENCE_FAILS = ("pesq_wb", "pesq_nb", "stoi", "estoi", "visqol_speech", "visqol_audio", "si_sdr")


@pytest.mark.parametrize("metric_id", sorted(REFERENCES))
@pytest.mark.parametrize("where", ["reference", "degraded"])
def test_nan_input_raises(metric_id: str, where: str) -> None:
    metric = _metric(metric_id)
    ref, deg = make_pair(metric_id, metric.info.sample_rate, 1, "noise_20db")
    target = ref if where == "reference" else deg
    target[target.size // 2] = np.nan
    with pytest.raises(MetricError, match=f"{metric_id}.*NaN"):
        metric.compute(ref, deg)


@pytest.mark.parametrize("metric_id", sorted(REFERENCES))
def test_too_short_raises(metric_id: str) -> None:
    metric = _metric(metric_id)
    sr = metric.info.sample_rate
    n = SHORT_SAMPLES.get(metric_id, int(0.05 * sr))
    ref, deg = make_pair(metric_id, sr, 1, "noise_20db")
    with pytest.raises(MetricError, match=f"(?i){metric_id}.*(short|too little)"):
        metric.compute(ref[:n].copy(), deg[:n].copy())


@pytest.mark.parametrize("metric_id", SILENT_REFERENCE_FAILS)
def test_silent_reference_raises(metric_id: str) -> None:
    metric = _metric(metric_id)
    ref, deg = make_pair(metric_id, metric.info.sample_rate, 1, "noise_20db")
    with pytest.raises(MetricError, match=f"{metric_id}.*(silent|zero energy)"):
        metric.compute(np.zeros_like(ref), deg)


def test_stoi_too_little_speech_is_not_a_number() -> None:
    """pystoi returns 1e-5 with a warning when <30 speech frames remain; we must raise instead."""
    metric = _metric("stoi")
    ref, deg = make_pair("stoi", 16000, 1, "noise_20db")
    n = int(0.3 * 16000)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # our wrapper must not leak pystoi's warning either
        with pytest.raises(MetricError, match="too little speech"):
            metric.compute(ref[:n].copy(), deg[:n].copy())


@pytest.mark.parametrize("metric_id", ["pesq_wb", "pesq_nb"])
def test_pesq_silent_degraded_raises(metric_id: str) -> None:
    metric = _metric(metric_id)
    ref, deg = make_pair(metric_id, metric.info.sample_rate, 1, "noise_20db")
    with pytest.raises(MetricError, match="silent"):
        metric.compute(ref, np.zeros_like(deg))


def test_si_sdr_degenerate_pairs_raise() -> None:
    metric = _metric("si_sdr")
    ref, _ = make_pair("si_sdr", 16000, 1, "noise_20db")
    with pytest.raises(MetricError, match=r"\+inf"):
        metric.compute(ref, ref.copy())
    with pytest.raises(MetricError, match="zero energy"):
        metric.compute(np.full_like(ref, 0.3), ref)


@pytest.mark.parametrize("metric_id", sorted(REFERENCES))
def test_mismatched_lengths_raise(metric_id: str) -> None:
    metric = _metric(metric_id)
    ref, deg = make_pair(metric_id, metric.info.sample_rate, 1, "noise_20db")
    with pytest.raises(MetricError, match="length"):
        metric.compute(ref, deg[:-10].copy())
