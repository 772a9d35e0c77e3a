"""FunCodec: official checkpoint layout (manifest + committed fixture), strict loading, conformance."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import torch

from bench.codecs import codecs
from bench.codecs import funcodec as fc
from bench.codecs.neural import calibration_audio

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "checkpoint_manifests"
FIXTURE = json.loads((Path(__file__).parent / "fixtures" / "funcodec_layout.json").read_text())
MANIFESTS = {
    "audio_codec-encodec-en-libritts-16k-nq32ds320-pytorch": "ds320",
    "audio_codec-encodec-en-libritts-16k-nq32ds640-pytorch": "ds640",
    "audio_codec-encodec-zh_en-general-16k-nq32ds320-pytorch": "ds320",
    "audio_codec-encodec-zh_en-general-16k-nq32ds640-pytorch": "ds640",
}


def _model_on_meta(config: str) -> fc.FunCodecModel:
    with torch.device("meta"):
        return fc.FunCodecModel(fc.CONFIGS[config])


def _digest(pairs) -> str:
    return hashlib.sha256("\n".join(f"{k}:{list(s)}" for k, s in pairs).encode()).hexdigest()


@pytest.mark.parametrize("config", sorted(FIXTURE))
def test_state_dict_matches_committed_fixture(config):
    expected = FIXTURE[config]
    model = _model_on_meta(config)
    pairs = [(k, list(v.shape)) for k, v in model.state_dict().items()]
    assert len(pairs) == expected["n_entries"]
    assert _digest(pairs) == expected["sha256_ordered_key_shapes"]
    assert [list(p) for p in pairs[:2]] == expected["samples"][:2]
    assert sum(p.numel() for p in model.parameters()) == expected["n_parameters"]


@pytest.mark.parametrize("repo", sorted(MANIFESTS))
def test_state_dict_matches_manifest(repo):
    path = SHARED / f"funcodec__{repo}.json"
    if not path.exists():
        pytest.skip(f"no shared manifests at {SHARED}; the committed fixture test covers the layout")
    manifest = json.loads(path.read_text())
    model = _model_on_meta(MANIFESTS[repo])
    expected = [(k, s) for k, s, _ in manifest["state_dict"] if not k.startswith(fc.TRAINING_ONLY_PREFIXES)]
    assert [(k, list(v.shape)) for k, v in model.state_dict().items()] == expected
    buffers = {b for b in manifest["buffers_in_state_dict"] if not b.startswith(fc.TRAINING_ONLY_PREFIXES)}
    assert {name for name, _ in model.named_buffers()} == buffers
    assert set(manifest["training_only_prefixes"]) == set(fc.TRAINING_ONLY_PREFIXES)
    metas = [m for m in fc.ENCODEC_METAS if m.options["repo"] == repo]
    assert metas and all(m.frame_rate == manifest["config"]["frame_rate_hz"] for m in metas)
    full = max(metas, key=lambda m: m.options["n_q"])
    assert full.bitrate_bps == manifest["nominal_bitrate_bps"]
    assert full.n_params == manifest["n_parameters_without_discriminator"]


def test_op_points_are_unique_moderate_and_rate_consistent():
    metas = fc.ENCODEC_METAS + fc.FREQ_METAS
    assert len(metas) <= 20 and len({m.id for m in metas}) == len(metas)
    for m in metas:
        assert m.n_codebooks == m.options["n_q"]
        assert m.bitrate_bps == m.frame_rate * 10 * m.options["n_q"]
        assert m.id.endswith(f"@{m.bitrate_bps / 1000:g}kbps")


def test_full_model_pth_loads_strictly_without_training_keys(tmp_path):
    """model.pth holds the discriminator too: those keys are dropped, everything else must match."""
    torch.manual_seed(2)
    cfg = fc.tiny_config(fc.CONFIGS["ds320"])
    src = fc.FunCodecModel(cfg)
    sd = dict(src.state_dict())
    sd["discriminator.discriminators.0.discriminators.0.convs.0.conv.weight"] = torch.zeros(32, 2, 3, 9)
    sd["mel_spec_transforms.0.window"] = torch.zeros(32)
    folder = tmp_path / "snap"
    folder.mkdir()
    torch.save(sd, folder / "model.pth")
    (folder / "config.yaml").write_text(
        "encoder_conf: {n_filters: 2, seq_layer_num: 1}\nmodel_conf: {odim: 32}\n"
        "quantizer_conf: {codebook_size: 1024, num_quantizers: 32}\n")
    codec = codecs.get("funcodec_en_16k_ds320@4kbps").build()
    model = codec.build_pretrained(folder)
    assert model.cfg == cfg
    for k, v in src.state_dict().items():
        assert torch.equal(model.state_dict()[k], v)
    del sd["quantizer.rq.model.embed"]
    torch.save(sd, folder / "model.pth")
    with pytest.raises(RuntimeError, match="Missing key"):
        codec.build_pretrained(folder)


def test_rvq_prefix_decodes_to_reported_latent():
    """Fewer stages = a prefix of the same codes, and decoding reproduces the quantised latent."""
    torch.manual_seed(0)
    model = fc.FunCodecModel(fc.tiny_config(fc.CONFIGS["ds320"])).eval()
    fc.init_codebooks_from_data(model, calibration_audio(16000, seconds=8000/16000, seed=1))
    audio = calibration_audio(16000, seconds=3000/16000, seed=5)
    with torch.no_grad():
        c32, v32 = model.encode(audio, 32)
        c4, v4 = model.encode(audio, 4)
        assert c32.shape == (1, 32, 10) and torch.equal(c32[:, :4], c4)
        assert torch.allclose(model.rvq.decode(c32), v32["quantized"], atol=1e-5)
        z = v32["unquantized"]
        assert (v32["quantized"] - z).pow(2).mean() < (v4["quantized"] - z).pow(2).mean()


def test_freqcodec_is_registered_but_says_why_not():
    for meta in fc.FREQ_METAS:
        ok, why = codecs.get(meta.id).build().availability()
        assert not ok and "FreqCodec" in why and "config.yaml" in why


# Random-init conformance of every op-point runs in tests/test_conformance.py.
