"""Codecs backed by maintained transformers ports: EnCodec, DAC, Mimi, X-Codec, X-Codec2, NeuCodec.

No weights can be downloaded here, so what is checked is everything short of them: every op-point
conforms with the real architecture at a tiny config; declared bitrates; the real loading path
(save_pretrained → build_pretrained) works offline; full-size configs have the state_dict layout
and parameter count committed below; and missing weights fail loudly, naming the hub repo.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

import bench.codecs.dac
import bench.codecs.encodec
import bench.codecs.mimi
import bench.codecs.neucodec
import bench.codecs.xcodec
import bench.codecs.xcodec2  # noqa: F401  (imports register the op-points)
from bench.codecs import codecs
from bench.codecs._hf import HFTokenCodec, kaldi_fbank
from bench.errors import CodecError, WeightsUnavailableError

pytest.importorskip("transformers")

FAMILIES = {"encodec_24khz", "encodec_48khz", "dac_16khz", "dac_24khz", "dac_44khz", "mimi",
            "xcodec_hubert_librispeech", "xcodec2", "neucodec"}
OP_POINTS = sorted(name for name, op in codecs.items() if op.meta.family in FAMILIES)
ONE_PER_FAMILY = sorted({op.meta.family: name for name, op in codecs.items() if op.meta.family in FAMILIES}.values())

#: Committed fixture: state_dict size and sha256 (first 16 hex) of the sorted "key shape" list of each
#: family's full-size model at its released config (transformers 5.23 port), and its nn.Parameters.
FULL_LAYOUT = {
    "encodec_24khz": (252, "e6bd3e0da89b2b7c", 14_851_810),
    "encodec_48khz": (224, "59c79884186e0a7f", 14_856_294),
    "dac_16khz": (238, "2c15bad880c75612", 74_141_697),
    "dac_24khz": (338, "f88bb248e426b402", 74_653_857),
    "dac_44khz": (223, "20f255a23444ede5", 76_620_777),
    "mimi": (350, "d4887603988bb2a7", 79_308_609),
    "xcodec_hubert_librispeech": (454, "2bed84ce990add06", 160_698_625),
    "xcodec2": (811, "2abf2d75728e79e6", 629_281_706),
    "neucodec": (811, "c08c617837eb5d15", 629_937_706),
}
SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "checkpoint_manifests"


pytestmark = pytest.mark.usefixtures("one_thread")


def test_all_expected_op_points_registered():
    assert len(OP_POINTS) == 27
    assert {"encodec_24khz@1.5kbps", "encodec_24khz@24kbps", "encodec_48khz@3kbps", "encodec_48khz@24kbps",
            "dac_16khz@6kbps", "dac_24khz@24kbps", "dac_44khz@7.75kbps", "dac_44khz@2.58kbps", "mimi@1.1kbps",
            "mimi@4.4kbps", "xcodec_hubert_librispeech@4kbps", "xcodec2@0.8kbps", "neucodec@0.8kbps"} <= set(OP_POINTS)


# Random-init conformance of every op-point runs in tests/test_conformance.py.

def test_declared_bitrates_match_the_spec():
    get = lambda name: codecs.get(name).meta  # noqa: E731
    assert get("dac_44khz@7.75kbps").bitrate_bps == pytest.approx(44100 / 512 * 9 * 10)
    assert round(get("dac_44khz@7.75kbps").bitrate_bps) == 7752
    assert get("mimi@1.1kbps").bitrate_bps == pytest.approx(1100)
    assert get("mimi@4.4kbps").bitrate_bps == pytest.approx(4400)
    assert get("encodec_24khz@6kbps").bitrate_bps == pytest.approx(6000)
    assert get("encodec_48khz@24kbps").bitrate_bps == pytest.approx(24000)
    assert get("xcodec2@0.8kbps").bitrate_bps == pytest.approx(800)
    assert get("dac_24khz@24kbps").n_codebooks == 32
    for name in OP_POINTS:
        meta = get(name)
        assert meta.bitrate_bps == pytest.approx(meta.nominal_bitrate_bps)
        assert meta.weights is not None and meta.weights.uri.startswith("hf://")
        assert meta.n_params == FULL_LAYOUT[meta.family][2]


@pytest.mark.parametrize("name", ONE_PER_FAMILY)
def test_offline_load_names_the_hub_repo(name, tmp_path, monkeypatch):
    import huggingface_hub.constants as hub_constants

    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(hub_constants, "HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    monkeypatch.setenv("CODECBENCH_CONFIG", str(tmp_path / "none.yaml"))
    codec = codecs.get(name).build()
    repo = codec.meta.weights.uri.removeprefix("hf://")
    with pytest.raises(WeightsUnavailableError, match=repo):
        codec.load(random_init=False)


def _hop_and_codebooks(model: torch.nn.Module, family: str) -> tuple[float, int, int]:
    """(frame rate, codebook size, codebooks in the model) read from a model's own config."""
    cfg = model.config
    if family.startswith("encodec"):
        return cfg.sampling_rate / cfg.hop_length, cfg.codebook_size, cfg.num_quantizers
    if family.startswith("dac"):
        return cfg.sampling_rate / cfg.hop_length, cfg.codebook_size, cfg.n_codebooks
    if family == "mimi":
        return cfg.frame_rate, cfg.codebook_size, cfg.num_quantizers
    if family.startswith("xcodec_"):
        return cfg.sample_rate / cfg.hop_length, cfg.codebook_size, cfg.num_quantizers
    if family == "xcodec2":
        return cfg.sampling_rate / cfg.hop_length, math.prod(cfg.quantization_levels), 1
    assert family == "neucodec"
    return cfg.input_sampling_rate / cfg.encoder_hop_length, math.prod(cfg.quantization_levels), 1


@pytest.mark.parametrize("name", ONE_PER_FAMILY)
def test_random_init_config_keeps_real_rate_and_codebooks(name):
    codec = codecs.get(name).build()
    model = codec.build_random()
    rate, size, total = _hop_and_codebooks(model, codec.meta.family)
    assert rate == pytest.approx(codec.meta.frame_rate)
    assert size == codec.meta.codebook_sizes[0]
    assert total >= codec.meta.n_codebooks
    with torch.device("meta"):
        big = codec.model_type()(codec.full_config())
    assert _hop_and_codebooks(big, codec.meta.family) == pytest.approx((rate, size, total))
    assert sum(p.numel() for p in model.parameters()) < 0.05 * FULL_LAYOUT[codec.meta.family][2]


@pytest.mark.parametrize("name", ONE_PER_FAMILY)
def test_full_size_layout_matches_fixture(name):
    codec = codecs.get(name).build()
    with torch.device("meta"):
        model = codec.model_type()(codec.full_config())
    sd = model.state_dict()
    digest = hashlib.sha256("\n".join(f"{k} {tuple(v.shape)}" for k, v in sorted(sd.items())).encode()).hexdigest()
    n_keys, h, n_params = FULL_LAYOUT[codec.meta.family]
    assert (len(sd), digest[:16], sum(p.numel() for p in model.parameters())) == (n_keys, h, n_params)
    manifests = list(SHARED.glob(f"*{codec.meta.family.split('_')[0]}*.json")) if SHARED.is_dir() else []
    ours = [m for m in manifests if json.loads(m.read_text()).get("config", {}).get("sample_rate")
            == codec.meta.sample_rate and "funcodec" not in m.name]
    if not ours:
        pytest.skip(f"no shared checkpoint manifest for {codec.meta.family} (transformers port is the reference)")
    manifest = json.loads(ours[0].read_text())
    assert [(k, list(s)) for k, s, _ in manifest["state_dict"]] == [(k, list(v.shape)) for k, v in sd.items()]


@pytest.mark.parametrize("name", ONE_PER_FAMILY)
def test_save_pretrained_loads_through_build_pretrained(name, tmp_path):
    codec = codecs.get(name).build()
    assert isinstance(codec, HFTokenCodec)
    torch.manual_seed(0)
    model = codec.build_random()
    model.save_pretrained(tmp_path)
    loaded = codec.build_pretrained(tmp_path).eval()
    a, b = model.state_dict(), loaded.state_dict()
    assert list(a) == list(b) and all(torch.equal(a[k], b[k]) for k in a)
    # and it codes identically through the op-point's own calls
    codec.load(weights=tmp_path)
    x = torch.from_numpy(np.random.default_rng(0).standard_normal((1, codec.meta.channels, codec.meta.sample_rate // 2))
                         .astype(np.float32) * 0.1)
    with torch.inference_mode():
        got = codec.encode_frames(x)
        codec.model = model
        want = codec.encode_frames(x)
    got, want = (g[0] if isinstance(g, tuple) else g for g in (got, want))
    assert torch.equal(got, want)


def test_build_pretrained_refuses_mismatched_checkpoint(tmp_path):
    codec = codecs.get("dac_16khz@6kbps").build()
    other = codecs.get("dac_44khz@7.75kbps").build().build_random()
    other.save_pretrained(tmp_path)
    # a 44.1 kHz folder loads as a 44.1 kHz model (config.json wins), so tamper one tensor's shape
    from safetensors.torch import load_file, save_file

    tensors = load_file(tmp_path / "model.safetensors")
    key = next(k for k in tensors if k.endswith("codebook.weight"))
    tensors[key] = tensors[key][:, :4].contiguous()
    save_file(tensors, tmp_path / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(RuntimeError, match="ignore_mismatched_sizes"):
        codec.build_pretrained(tmp_path)
    # a missing tensor is refused too (transformers would only warn and leave it random)
    del tensors[key]
    save_file(tensors, tmp_path / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(CodecError, match="missing_keys"):
        codec.build_pretrained(tmp_path)


def test_kaldi_fbank_framing_and_peak():
    sr, f0 = 16000, 1000.0
    t = np.arange(sr) / sr
    wave = torch.from_numpy(np.sin(2 * np.pi * f0 * t).astype(np.float32)) * 2**14
    feats = kaldi_fbank(wave, sample_rate=sr)
    assert feats.shape == (1 + (sr - 400) // 160, 80)  # snip_edges framing
    mel = lambda f: 1127 * np.log1p(f / 700)  # noqa: E731
    edges = np.linspace(mel(20), mel(8000), 82)
    peak_bin = int(feats.mean(0).argmax())
    assert edges[peak_bin] <= mel(f0) <= edges[peak_bin + 2]
    silent = kaldi_fbank(torch.zeros(sr), sample_rate=sr)
    assert torch.allclose(silent, torch.full_like(silent, math.log(torch.finfo(torch.float32).eps)))
