"""The fast STOI/ESTOI and spectral kernels equal their references to 1e-6 on real speech, and the
references stay one flag away."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from bench.audio import Audio, load_audio, prepare_pair
from bench.codecs import codecs
from bench.data import resolve_dataset
from bench.metrics import fast_stoi, metrics

TOL = 1e-6
N_PAIRS = 6


@pytest.fixture(scope="module")
def speech_pairs() -> list[tuple[np.ndarray, np.ndarray]]:
    """Embedded-corpus utterances through a real low-rate codec, at STOI's 16 kHz working rate."""
    ds = resolve_dataset("embedded")
    op = codecs.get("opus@12kbps")
    codec = op.build()
    codec.load("cpu")
    pairs = []
    for item in sorted(ds.items, key=lambda it: it.id)[:N_PAIRS]:
        ref = load_audio(ds.path_of(item))
        x = Audio(ref.samples, ref.sample_rate)
        from bench.audio import resample, to_channels

        inp = to_channels(resample(x.samples, x.sample_rate, op.meta.sample_rate), op.meta.channels)
        out, _ = codec.roundtrip([inp])[0]
        pairs.append(prepare_pair(ref, Audio(out, op.meta.sample_rate), 16000))
    return pairs


def _pystoi(x: np.ndarray, y: np.ndarray, fs: int, extended: bool) -> float:
    from pystoi import stoi

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(stoi(x, y, fs, extended=extended))


@pytest.mark.parametrize("extended", [False, True])
def test_matches_pystoi_on_codec_speech(speech_pairs, extended: bool) -> None:
    for x, y in speech_pairs:
        want = _pystoi(x, y, 16000, extended)
        got = fast_stoi.stoi(x, y, 16000, extended)
        assert abs(got - want) <= TOL, (got, want)
    assert len({round(_pystoi(x, y, 16000, extended), 4) for x, y in speech_pairs}) > 1  # pairs differ


@pytest.mark.parametrize("extended", [False, True])
def test_batch_equals_single_pairs(speech_pairs, extended: bool) -> None:
    """Pairs of different lengths in one call give the values of one call each."""
    refs, degs = [p[0] for p in speech_pairs], [p[1] for p in speech_pairs]
    batch = fast_stoi.stoi_batch(refs, degs, 16000, extended)
    for value, x, y in zip(batch, refs, degs, strict=True):
        assert value is not None and abs(value - fast_stoi.stoi(x, y, 16000, extended)) <= 1e-12


@pytest.mark.parametrize("fs", [8000, 16000, 22050, 44100, 48000])
def test_resampling_equals_pystoi_resample_oct(fs: int) -> None:
    from pystoi.utils import resample_oct

    x = np.random.default_rng(fs).standard_normal((2, 12345))
    want = np.stack([resample_oct(r, 10000, fs) for r in x])
    got = fast_stoi.resample_to_10k(torch.from_numpy(x), fs).numpy()
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)
    got_np = fast_stoi._resample_np(x, fs)  # the CPU path's twin
    assert got_np.shape == want.shape
    np.testing.assert_allclose(got_np, want, rtol=0, atol=1e-12)


@pytest.mark.parametrize("extended", [False, True])
def test_torch_path_equals_numpy_path(speech_pairs, extended: bool) -> None:
    """The batched torch path (used on accelerators) run on CPU gives the numpy path's values."""
    refs, degs = [p[0] for p in speech_pairs[:3]], [p[1] for p in speech_pairs[:3]]
    got = fast_stoi._stoi_batch_torch(refs, degs, 16000, extended, torch.device("cpu"))
    want = fast_stoi.stoi_batch(refs, degs, 16000, extended)
    for g, w in zip(got, want, strict=True):
        assert g is not None and w is not None and abs(g - w) <= 1e-12


def test_other_input_rates_match(speech_pairs) -> None:
    from bench.audio import resample

    x, y = speech_pairs[0]
    for fs in (8000, 22050):
        xr, yr = (resample(v[None], 16000, fs)[0].astype(np.float64) for v in (x, y))
        assert abs(fast_stoi.stoi(xr, yr, fs) - _pystoi(xr, yr, fs, False)) <= TOL


def test_third_octave_matrix_equals_pystoi() -> None:
    from pystoi.utils import thirdoct

    np.testing.assert_array_equal(fast_stoi.third_octave_matrix(), thirdoct(10000, 512, 15, 150)[0])


def test_too_little_speech_is_none(speech_pairs) -> None:
    x, y = speech_pairs[0]
    n = int(0.3 * 16000)
    assert fast_stoi.stoi_batch([x[:n]], [y[:n]], 16000)[0] is None
    with pytest.raises(fast_stoi.TooFewFrames):
        fast_stoi.stoi(x[:n], y[:n], 16000)


@pytest.mark.parametrize("metric_id", ["stoi", "estoi"])
def test_reference_flag_switches_to_pystoi(monkeypatch, speech_pairs, metric_id: str) -> None:
    import pystoi

    x, y = speech_pairs[1]
    metric = metrics.get(metric_id)
    fast = metric.compute(x, y)
    calls = []
    real = pystoi.stoi
    monkeypatch.setattr(pystoi, "stoi", lambda *a, **k: calls.append(1) or real(*a, **k))
    assert abs(metric.compute(x, y) - fast) == 0 and not calls  # default: the fast kernel
    monkeypatch.setenv("CODECBENCH_REFERENCE_KERNELS", "1")
    ref = metric.compute(x, y)
    assert calls and abs(ref - fast) <= TOL


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device here")
def test_gpu_equals_cpu(speech_pairs) -> None:
    x, y = speech_pairs[0]
    for extended in (False, True):
        cpu = fast_stoi.stoi(x, y, 16000, extended)
        assert abs(fast_stoi.stoi(x, y, 16000, extended, device="cuda") - cpu) <= 1e-9


_STOI_KERNEL_STATS = """
import json
import numpy as np
from bench.metrics import fast_stoi, stoi_kernels
rng = np.random.default_rng(0)
x = rng.standard_normal(16000 * 2)
for extended in (False, True):
    fast_stoi.stoi(x, x + 0.3 * rng.standard_normal(x.size), 16000, extended)
kernels = (stoi_kernels.silence_free_frames, stoi_kernels.band_magnitudes, stoi_kernels.stoi_segments)
print(json.dumps({k.__name__: [sum(k.stats.cache_hits.values()), sum(k.stats.cache_misses.values())]
                  for k in kernels}))
"""


def test_stoi_kernels_load_from_numba_cache_in_a_new_process(tmp_path) -> None:
    """Scoring workers start without compiling: a second process loads every kernel the first compiled."""
    import json
    import os
    import subprocess
    import sys

    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path)}
    runs = [json.loads(subprocess.run([sys.executable, "-c", _STOI_KERNEL_STATS], env=env, capture_output=True,
                                      text=True, check=True).stdout.strip().splitlines()[-1]) for _ in range(2)]
    assert all(misses > 0 for _, misses in runs[0].values()), runs[0]  # compiled into the empty cache
    assert all(hits > 0 and misses == 0 for hits, misses in runs[1].values()), runs[1]


# ----------------------------------------------------------------------------- spectral distances

SPECTRAL_CODECS = ("opus@6kbps", "mp3@8kbps", "amrnb@4.75kbps", "g722@64kbps")
# samples at 16 kHz, cut from the middle of each utterance; None keeps it whole. 1025 is the
# shortest signal the 2048-point STFTs accept (reflect padding needs more than 1024 samples).
SPECTRAL_LENGTHS = (None, 12345, 4097, 2049, 1025)


def _spectral_reference(metric_id: str, x: np.ndarray, y: np.ndarray) -> float:
    from bench.metrics.spectral_reference import reference_mel_distance, reference_stft_distance

    return reference_mel_distance(x, y, 16000) if metric_id == "mel_distance" else reference_stft_distance(x, y)


@pytest.fixture(scope="module")
def codec_speech_pairs() -> list[tuple[np.ndarray, np.ndarray]]:
    """Embedded-corpus utterances through four real codecs, whole and cut to short, odd lengths."""
    from bench.audio import resample, to_channels

    ds = resolve_dataset("embedded")
    items = sorted(ds.items, key=lambda it: it.id)[N_PAIRS:N_PAIRS + len(SPECTRAL_CODECS)]  # not the STOI ones
    pairs = []
    for item, name in zip(items, SPECTRAL_CODECS, strict=True):
        op = codecs.get(name)
        codec = op.build()
        codec.load("cpu")
        ref = load_audio(ds.path_of(item))
        out, _ = codec.roundtrip([to_channels(resample(ref.samples, ref.sample_rate, op.meta.sample_rate),
                                              op.meta.channels)])[0]
        x, y = prepare_pair(ref, Audio(out, op.meta.sample_rate), 16000)
        for n in SPECTRAL_LENGTHS:
            start = 0 if n is None else (x.size - n) // 2
            pairs.append((x[start:start + n] if n else x, y[start:start + n] if n else y))
    return pairs


@pytest.mark.parametrize("metric_id", ["mel_distance", "stft_distance"])
def test_spectral_metrics_match_references_on_codec_speech(codec_speech_pairs, metric_id: str) -> None:
    metric = metrics.get(metric_id)
    values = []
    for x, y in codec_speech_pairs:
        want = _spectral_reference(metric_id, x, y)
        got = metric.compute(x, y)
        assert abs(got - want) <= TOL * abs(want), (x.size, got, want)
        values.append(want)
    assert len({round(v, 4) for v in values}) == len(values)  # every pair is a different test


def _cpu_values(pairs: list[tuple[np.ndarray, np.ndarray]]) -> list[tuple[float, float]]:
    from bench.metrics import spectral

    return [(spectral._np_mel_distance(x, y, 16000, spectral.MEL_SETTINGS),
             spectral._np_stft_distance(x, y, spectral.STFT_SETTINGS)) for x, y in pairs]


def _assert_close(got: list[tuple[float, float]], want: list[tuple[float, float]], rel: float) -> None:
    for g, w in zip(got, want, strict=True):
        for a, b in zip(g, w, strict=True):
            assert abs(a - b) <= rel * abs(b), (a, b)


def test_spectral_mkl_path_equals_torch_fft_path(codec_speech_pairs, monkeypatch) -> None:
    """The numba loop calling MKL directly and the fallback chunks through torch.fft agree."""
    from bench.metrics import spectral

    if spectral.mkl_forward() is None:
        pytest.skip("torch here has no MKL: only the torch.fft path exists")
    fast = _cpu_values(codec_speech_pairs[::2])
    monkeypatch.setattr(spectral, "mkl_forward", lambda: None)
    _assert_close(_cpu_values(codec_speech_pairs[::2]), fast, 1e-12)


def test_spectral_log_by_log_equals_lane_products(codec_speech_pairs, monkeypatch) -> None:
    """The exact fallback (one log per bin, for very loud input) gives the lane products' sums."""
    from bench.metrics import spectral

    products = _cpu_values(codec_speech_pairs[1::2])
    monkeypatch.setattr(spectral, "_MAX_SPECTRUM", 0.0)
    _assert_close(_cpu_values(codec_speech_pairs[1::2]), products, 1e-12)


@pytest.mark.parametrize("metric_id", ["mel_distance", "stft_distance"])
def test_spectral_loud_unnormalised_input_matches_reference(codec_speech_pairs, metric_id: str) -> None:
    """Samples scaled far beyond full scale take the log-by-log route and still match."""
    x, y = codec_speech_pairs[0]
    x, y = x.astype(np.float64) * 3e6, y.astype(np.float64) * 3e6
    want = _spectral_reference(metric_id, x, y)
    assert abs(metrics.get(metric_id).compute(x, y) - want) <= TOL * abs(want)


def test_spectral_threads_give_serial_values(codec_speech_pairs) -> None:
    """The kernels release the GIL and keep MKL descriptors per thread: threads change nothing."""
    from concurrent.futures import ThreadPoolExecutor

    pairs = codec_speech_pairs[:6]
    serial = _cpu_values(pairs)
    with ThreadPoolExecutor(3) as pool:
        threaded = list(pool.map(lambda p: _cpu_values([p])[0], pairs))
    assert threaded == serial


@pytest.mark.parametrize(("sr", "n_fft", "n_mels", "fmin", "fmax"),
                         [(16000, 2048, 150, 0.0, 8000.0), (16000, 512, 80, 0.0, 8000.0),
                          (44100, 1024, 128, 0.0, 22050.0), (8000, 512, 40, 100.0, 3500.0)])
def test_mel_runs_rebuild_the_filterbank(sr: int, n_fft: int, n_mels: int, fmin: float, fmax: float) -> None:
    """Two weights per bin (rising edge of one triangle, falling edge of the one before) are the bank."""
    from bench.metrics.spectral import _mel_runs, mel_filterbank

    w0, w1, starts = _mel_runs(sr, n_fft, n_mels, fmin, fmax)
    rebuilt = np.zeros((n_mels, n_fft // 2 + 1))
    for m in range(n_mels):
        run = slice(starts[m], starts[m + 1])
        rebuilt[m, run] += w0[run]
        if m + 1 < n_mels:
            rebuilt[m + 1, run] += w1[run]
    np.testing.assert_array_equal(rebuilt, mel_filterbank(sr, n_fft, n_mels, fmin, fmax))
