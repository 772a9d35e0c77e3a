"""SpeechTokenizer: official checkpoint layout, strict loading, RVQ views, and conformance (random init)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from pathlib import Path

import pytest
import torch

import bench.codecs.speechtokenizer as st
from bench.codecs import codecs
from bench.errors import CodecError

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
MANIFESTS = SHARED / "checkpoint_manifests"
FIXTURE = Path(__file__).parent / "fixtures" / "speechtokenizer_state_dict.json"
VARIANTS = ("speechtokenizer_hubert_avg", "speechtokenizer_snake")
OP_POINTS = sorted(name for name, op in codecs.items() if op.meta.family == "speechtokenizer")


pytestmark = pytest.mark.usefixtures("one_thread")


def _full_model_on_meta(variant: str) -> st.SpeechTokenizerModel:
    """The full-size architecture without allocating its 100M parameters."""
    with torch.device("meta"):
        return st.build_model(st.variant_config(variant))


@pytest.mark.parametrize("variant", VARIANTS)
def test_state_dict_matches_manifest_key_for_key(variant):
    path = MANIFESTS / f"speechtokenizer__{variant}.json"
    if not path.exists():
        pytest.skip(f"{path} not present (shared/ is outside the repo); the fixture test still runs")
    manifest = json.loads(path.read_text())
    model = _full_model_on_meta(variant)
    mine = [(k, list(v.shape), str(v.dtype).removeprefix("torch.")) for k, v in model.state_dict().items()]
    assert mine == [tuple(row) for row in manifest["state_dict"]]  # same keys, shapes, dtypes and order
    assert [k for k, _ in model.named_buffers()] == manifest["buffers_in_state_dict"]
    assert sum(p.numel() for p in model.parameters()) == manifest["n_parameters"]
    assert sum(b.numel() for b in model.buffers()) == manifest["n_buffer_elements_in_state_dict"]


@pytest.mark.parametrize("variant", VARIANTS)
def test_state_dict_matches_committed_fixture(variant):
    expected = json.loads(FIXTURE.read_text())[variant]
    model = _full_model_on_meta(variant)
    sd = model.state_dict()
    lines = sorted(f"{k} {','.join(map(str, v.shape))}" for k, v in sd.items())
    assert len(lines) == expected["n_keys"]
    assert hashlib.sha256("\n".join(lines).encode()).hexdigest() == expected["sha256"]
    assert len(list(model.buffers())) == expected["n_buffers"]
    assert sum(p.numel() for p in model.parameters()) == expected["n_parameters"]
    for key, shape in expected["samples"].items():
        assert list(sd[key].shape) == shape, key


def test_registered_op_points_and_declared_rates():
    metas = {codecs.get(n).meta.options["n_q"]: codecs.get(n).meta for n in OP_POINTS}
    assert sorted(metas) == [1, 2, 4, 8]
    for n_q, meta in metas.items():
        assert meta.frame_rate == 50.0 and meta.codebook_sizes == (1024,) * n_q
        assert meta.bitrate_bps == pytest.approx(500.0 * n_q) == meta.nominal_bitrate_bps
        assert meta.n_params == json.loads(FIXTURE.read_text())["speechtokenizer_hubert_avg"]["n_parameters"]
    assert "semantic" in metas[1].notes and "RVQ-1" in metas[1].notes
    assert codecs.get("speechtokenizer@4kbps").meta.options["n_q"] == 8
    assert codecs.get("speechtokenizer@0.5kbps").meta.options["n_q"] == 1


# Random-init conformance of every op-point runs in tests/test_conformance.py.

@pytest.fixture(scope="module")
def tiny_codecs():
    out = {}
    for n_q in (1, 2, 8):
        codec = codecs.get(f"speechtokenizer@{n_q / 2:g}kbps").build()
        codec.load(random_init=True)
        out[n_q] = codec
    return out


def test_rvq_prefix_views_and_latents(tiny_codecs, speechlike):
    audio = torch.from_numpy(speechlike(16000, 1.23, seed=3))[None]
    lengths = torch.tensor([audio.shape[-1]])
    full = tiny_codecs[8].encode(audio, lengths)
    assert full.codes.shape == (1, 8, -(-audio.shape[-1] // 320))
    for n_q in (1, 2):
        part = tiny_codecs[n_q].encode(audio, lengths)
        assert torch.equal(part.codes, full.codes[:, :n_q])  # RVQ-1 (semantic) is the same token either way
    model = tiny_codecs[8].model
    assert isinstance(model, st.SpeechTokenizerModel)
    with torch.no_grad():
        q = model.quantizer.decode(full.codes)
        e = model.encoder(audio)
    assert full.latents["quantized"].shape == full.latents["unquantized"].shape == (1, st.TINY.dimension, 62)
    torch.testing.assert_close(full.latents["quantized"], q)
    torch.testing.assert_close(full.latents["unquantized"], e)
    # more codebooks → the quantized latent is closer to the encoder output
    err = [float((model.quantizer.decode(full.codes[:, :k]) - e).norm()) for k in (1, 2, 8)]
    assert err[0] > err[1] > err[2]


def test_rvq1_decode_uses_only_the_first_codebook(tiny_codecs, speechlike):
    audio = torch.from_numpy(speechlike(16000, 0.8, seed=4))[None]
    enc = tiny_codecs[1].encode(audio, torch.tensor([audio.shape[-1]]))
    y1, _ = tiny_codecs[1].decode(enc)
    enc8 = tiny_codecs[8].encode(audio, torch.tensor([audio.shape[-1]]))
    y8, _ = tiny_codecs[8].decode(enc8)
    assert y1.shape == y8.shape == audio.shape
    assert float((y1 - y8).pow(2).mean().sqrt()) > 0.1 * float(y8.pow(2).mean().sqrt())  # RVQ-2..8 matter


def _save_checkpoint(model: st.SpeechTokenizerModel, folder: Path, cfg: st.SpeechTokenizerConfig) -> Path:
    sub = folder / "speechtokenizer_hubert_avg"
    sub.mkdir(parents=True)
    torch.save(model.state_dict(), sub / "SpeechTokenizer.pt")
    doc = asdict(cfg) | {"strides": list(cfg.strides), "learning_rate": 1e-4, "semantic_model_layer": "avg"}
    (sub / "config.json").write_text(json.dumps(doc))
    return folder


def test_saved_checkpoint_loads_strictly_through_build_pretrained(tmp_path, tiny_codecs, speechlike):
    source = tiny_codecs[8]
    folder = _save_checkpoint(source.model, tmp_path / "snap", st.TINY)
    codec = codecs.get("speechtokenizer@4kbps").build()
    codec.load(weights=folder)
    assert isinstance(codec.model, st.SpeechTokenizerModel) and codec.model.cfg == st.TINY
    for k, v in source.model.state_dict().items():
        assert torch.equal(codec.model.state_dict()[k], v), k
    audio = torch.from_numpy(speechlike(16000, 0.9, seed=5))[None]
    lengths = torch.tensor([audio.shape[-1]])
    assert torch.equal(codec.encode(audio, lengths).codes, source.encode(audio, lengths).codes)
    # a single .pt beside its config.json also works (--weights FILE)
    codec.load(weights=folder / "speechtokenizer_hubert_avg" / "SpeechTokenizer.pt")
    assert codec.model.cfg == st.TINY


def test_checkpoint_with_wrong_keys_is_refused(tmp_path, tiny_codecs):
    folder = _save_checkpoint(tiny_codecs[8].model, tmp_path / "snap", st.TINY)
    pt = folder / "speechtokenizer_hubert_avg" / "SpeechTokenizer.pt"
    state = torch.load(pt, weights_only=True)
    state.pop("transform.weight")
    state["quantizer.vq.layers.8._codebook.embed"] = torch.zeros(1024, st.TINY.dimension)
    torch.save(state, pt)
    with pytest.raises(RuntimeError, match="Missing key.*transform.weight"):
        codecs.get("speechtokenizer@4kbps").build().load(weights=folder)


def test_config_for_a_different_model_is_refused(tmp_path, tiny_codecs):
    folder = _save_checkpoint(tiny_codecs[8].model, tmp_path / "snap", st.TINY)
    cfg = folder / "speechtokenizer_hubert_avg" / "config.json"
    cfg.write_text(json.dumps(json.loads(cfg.read_text()) | {"strides": [8, 5, 4, 4]}))
    with pytest.raises(CodecError, match="different model"):
        codecs.get("speechtokenizer@4kbps").build().load(weights=folder)


def test_upstream_config_keys_are_read_and_training_keys_ignored():
    doc = {"n_filters": 64, "strides": [8, 5, 4, 2], "dimension": 1024, "semantic_dimension": 768,
           "bidirectional": True, "dilation_base": 2, "residual_kernel_size": 3, "n_residual_layers": 1,
           "lstm_layers": 2, "activation": "ELU", "codebook_size": 1024, "n_q": 8, "sample_rate": 16000,
           "mel_loss_lambdas": [45, 1, 1, 1], "segment_size": 48000}
    cfg = st.SpeechTokenizerConfig.from_json(doc)
    assert cfg == st.FULL and cfg.hop_length == 320


@pytest.mark.parametrize("n", [1, 319, 320, 321, 7000])
def test_frame_count_is_ceil_of_hop_and_decode_covers_input(tiny_codecs, n):
    model = tiny_codecs[8].model
    x = torch.randn(1, 1, n, generator=torch.Generator().manual_seed(n)) * 0.1
    with torch.no_grad():
        codes, _ = model.encode(x, 8)
        y = model.decode(codes)
    assert codes.shape[-1] == -(-n // 320) == tiny_codecs[8].frames_for(n)
    assert y.shape[-1] == codes.shape[-1] * 320
