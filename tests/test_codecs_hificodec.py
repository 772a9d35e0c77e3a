"""HiFi-Codec: official checkpoint layout (manifest + committed fixture), strict loading, conformance."""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import pytest
import torch

from bench.codecs import codecs
from bench.codecs import hificodec as hc
from bench.codecs.neural import calibration_audio

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "checkpoint_manifests"
FIXTURE = json.loads((Path(__file__).parent / "fixtures" / "hificodec_layout.json").read_text())
MANIFESTS = {
    "HiFi-Codec-16k-320d": "16k_320d",
    "HiFi-Codec-16k-320d-large-universal": "16k_320d",
    "HiFi-Codec-24k-320d": "24k_320d",
    "HiFi-Codec-24k-240d": "24k_240d",
}


def _layout(config: str) -> list[tuple[str, list[int]]]:
    with torch.device("meta"):  # full-size model without allocating 250 MB
        model = hc.HiFiCodecModel(hc.CONFIGS[config])
    return [(k, list(v.shape)) for k, v in model.state_dict().items()]


def _digest(pairs) -> str:
    return hashlib.sha256("\n".join(f"{k}:{list(s)}" for k, s in pairs).encode()).hexdigest()


@pytest.mark.parametrize("config", sorted(FIXTURE))
def test_state_dict_matches_committed_fixture(config):
    expected = FIXTURE[config]
    pairs = _layout(config)
    assert len(pairs) == expected["n_entries"]
    assert _digest(pairs) == expected["sha256_ordered_key_shapes"]
    assert [list(p) for p in pairs[:2]] == expected["samples"][:2]
    with torch.device("meta"):
        n = sum(p.numel() for p in hc.HiFiCodecModel(hc.CONFIGS[config]).parameters())
    assert n == expected["n_parameters"]


@pytest.mark.parametrize("variant", sorted(MANIFESTS))
def test_state_dict_matches_manifest(variant):
    path = SHARED / f"academicodec_hificodec__{variant}.json"
    if not path.exists():
        pytest.skip(f"no shared manifests at {SHARED}; the committed fixture test covers the layout")
    manifest = json.loads(path.read_text())
    assert _layout(MANIFESTS[variant]) == [(k, s) for k, s, _ in manifest["state_dict"]]
    assert manifest["checkpoint_layout"]["top_level_keys"] == list(hc.CHECKPOINT_SECTIONS)
    meta = next(m for m in hc.METAS if m.options["variant"] == variant)
    assert meta.n_params == manifest["n_parameters"]
    assert meta.bitrate_bps == manifest["nominal_bitrate_bps"]
    assert meta.frame_rate == manifest["config"]["frame_rate_hz"]


def test_bitrates_follow_from_frame_rate_and_codebooks():
    for meta in hc.METAS:
        assert meta.codebook_sizes == (1024,) * 4
        assert meta.bitrate_bps == pytest.approx(meta.frame_rate * 40)
    assert {m.id: m.bitrate_bps for m in hc.METAS} == {
        "hificodec_16k_320d@2kbps": 2000, "hificodec_16k_320d_large_uni@2kbps": 2000,
        "hificodec_24k_320d@3kbps": 3000, "hificodec_24k_240d@4kbps": 4000}


def test_official_nested_checkpoint_loads_strictly(tmp_path):
    """A file in upstream's layout ({encoder, generator, quantizer}) loads; a missing key fails."""
    torch.manual_seed(1)
    cfg = hc.tiny_config(hc.CONFIGS["16k_320d"])
    src = hc.HiFiCodecModel(cfg)
    folder = tmp_path / "snap"
    folder.mkdir()
    torch.save(hc.nest_state_dict(src.state_dict()), folder / "HiFi-Codec-16k-320d")
    codec = codecs.get("hificodec_16k_320d@2kbps").build()
    original = hc.CONFIGS["16k_320d"]
    hc.CONFIGS["16k_320d"] = cfg  # the tiny twin stands in for the 250 MB official config
    try:
        model = codec.build_pretrained(folder)
        for k, v in src.state_dict().items():
            assert torch.equal(model.state_dict()[k], v)
        broken = hc.nest_state_dict(src.state_dict())
        del broken["quantizer"]["quantizer_modules2.1.embedding.weight"]
        torch.save(broken, folder / "HiFi-Codec-16k-320d")
        with pytest.raises(RuntimeError, match="Missing key"):
            codec.build_pretrained(folder)
    finally:
        hc.CONFIGS["16k_320d"] = original


def test_grvq_codes_roundtrip_through_embeddings():
    """Decoding the codes gives exactly the quantised latent the encoder reported."""
    torch.manual_seed(0)
    model = hc.HiFiCodecModel(hc.tiny_config(hc.CONFIGS["24k_240d"])).eval()
    hc.init_codebooks_from_data(model, calibration_audio(24000, seconds=4800/24000, seed=3))
    audio = calibration_audio(24000, seconds=2500/24000, seed=4)
    with torch.no_grad():
        codes, views = model.encode(audio)
        assert codes.shape == (1, 4, math.ceil(2500 / 240))
        assert torch.allclose(model.quantizer.decode(codes), views["quantized"], atol=1e-6)
        # the second stage quantises what the first left over, so it must lower the error
        first = model.quantizer.decode(torch.cat([codes[:, :2], codes[:, :2]], 1)) / 2
    z = views["unquantized"]
    assert (views["quantized"] - z).pow(2).mean() < (first - z).pow(2).mean()


# Random-init conformance of every op-point runs in tests/test_conformance.py.
