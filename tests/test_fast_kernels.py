"""The fast STOI/ESTOI kernel equals pystoi to 1e-6 on real speech, and the reference stays one flag away."""

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
