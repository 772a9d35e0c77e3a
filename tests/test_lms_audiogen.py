"""AudioGen: audiocraft checkpoint → transformers conversion (layout, values, refusals, safe reading), tiny end to end.

The full-size layout fixture (tests/fixtures/audiogen_medium_audiocraft_layout.json) was listed from
audiocraft 1.3.0's own LMModel / EncodecModel built from its sdist configs on the meta device; the
omegaconf fixture (audiogen_compression_omegaconf_cfg.bin) is ``torch.save({"best_state": {...},
"xp.cfg": OmegaConf.create(<that compression config>)})`` written with omegaconf 2.3.0, the pickle
form audiocraft checkpoints can carry. Neither needs audiocraft nor omegaconf here.
"""

from __future__ import annotations

import copy
import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import yaml

import bench.lms.audiogen  # noqa: F401  (registers)
from bench.errors import CodecError, WeightsUnavailableError
from bench.lms import lms
from bench.lms.audiocraft_package import AudiocraftConfig, read_audiocraft_package
from bench.lms.audiogen import (
    CODEC_FILE,
    LM_FILE,
    TINY_CODEC_CONFIG,
    TINY_LM_CONFIG,
    TINY_TEXT_DIM,
    UnsupportedCheckpoint,
    assemble,
    codec_settings,
    compression_layout,
    conversion_plan,
    decoder_config,
    encodec_config,
    lm_layout,
    lm_settings,
    random_state,
    target_shapes,
)
from bench.lms.base import GenerationRequest

pytest.importorskip("transformers")

FIXTURES = Path(__file__).parent / "fixtures"
LAYOUT = json.loads((FIXTURES / "audiogen_medium_audiocraft_layout.json").read_text())


def _tiny_settings():
    return lm_settings(AudiocraftConfig(TINY_LM_CONFIG)), codec_settings(AudiocraftConfig(TINY_CODEC_CONFIG))


def _tiny_t5(vocab: int = 256):
    from transformers import T5Config, T5EncoderModel

    torch.manual_seed(0)
    return T5EncoderModel(T5Config(vocab_size=vocab, d_model=TINY_TEXT_DIM, d_ff=48, d_kv=6, num_layers=1,
                                   num_heads=4)).eval()


def _noise(seconds: float, sr: int = 16000) -> np.ndarray:
    return (0.1 * np.random.default_rng(0).standard_normal(int(seconds * sr))).astype(np.float32)


def test_tiny_random_audiogen_generates_seeded_audio_and_resynthesizes():
    lm = lms.get("audiogen-medium").build()
    assert lm.meta.family == "audiogen" and lm.meta.tasks == {"text_to_audio"}
    assert lm.meta.weights.uri == "hf://facebook/audiogen-medium" and "CC-BY-NC-4.0" in lm.meta.license
    lm.load(random_init=True)
    req = dict(text="a dog barks twice", max_duration_s=0.4)
    a = lm.generate(GenerationRequest("text_to_audio", seed=1, **req))
    b = lm.generate(GenerationRequest("text_to_audio", seed=1, **req))
    c = lm.generate(GenerationRequest("text_to_audio", seed=2, **req))
    assert a.sample_rate == 16000 and a.audio.ndim == 1 and np.all(np.isfinite(a.audio))
    assert 0.2 * a.sample_rate <= a.audio.size <= 0.4 * a.sample_rate
    assert np.sqrt(np.mean(a.audio ** 2)) > 1e-3
    np.testing.assert_array_equal(a.audio, b.audio)
    assert not np.array_equal(a.audio, c.audio)
    r = lm.resynthesize(_noise(0.5), 16000)
    assert r.audio.size == 8000 and r.codes.shape[-2:] == (4, 25) and r.codes.max() < 64
    with pytest.raises(CodecError, match="does not do"):
        lm.generate(GenerationRequest("tts", **req))
    with pytest.raises(CodecError, match="trained on 10 s windows"):
        lm.generate(GenerationRequest("text_to_audio", text="rain", max_duration_s=12))


def test_layout_is_audiocrafts_full_size_state_dict():
    """Key names and shapes derived here from the config equal the ones audiocraft's modules produce."""
    lm = lm_settings(AudiocraftConfig(LAYOUT["lm_config"]))
    codec = codec_settings(AudiocraftConfig(LAYOUT["compression_config"]))  # resolves ${sample_rate}, ${channels}
    assert (lm.dim, lm.num_heads, lm.num_layers, lm.ffn_dim, lm.n_q, lm.card) == (1536, 24, 48, 6144, 4, 2048)
    assert lm.text_encoder == "t5-large" and lm.segment_duration == 10.0
    assert (codec.sample_rate, codec.hop_length, codec.n_q, codec.bins, codec.pad_mode) == (16000, 320, 4, 2048, "constant")
    assert [[m.source, list(m.shape)] for m in lm_layout(lm, LAYOUT["text_encoder_dim"])] == LAYOUT["lm_state_dict"]
    assert sorted([m.source, list(m.shape)] for m in compression_layout(codec)) == sorted(
        LAYOUT["compression_state_dict"])


def test_full_size_conversion_fills_every_transformers_tensor_exactly_once():
    """audiogen-medium's layout against the transformers model of its converted config (meta device, no memory)."""
    from transformers import MusicgenConfig, MusicgenForConditionalGeneration, T5Config

    lm = lm_settings(AudiocraftConfig(LAYOUT["lm_config"]))
    codec = codec_settings(AudiocraftConfig(LAYOUT["compression_config"]))
    t5_large = T5Config(vocab_size=32128, d_model=1024, d_ff=4096, d_kv=64, num_layers=24, num_heads=16)
    enc = encodec_config(codec)
    assert (enc.frame_rate, enc.num_quantizers, enc.codebook_size, enc.pad_mode) == (50, 4, 2048, "constant")
    config = MusicgenConfig(text_encoder=t5_large.to_dict(), audio_encoder=enc.to_dict(),
                            decoder=decoder_config(lm).to_dict())
    with torch.device("meta"):
        model = MusicgenForConditionalGeneration(config)
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    layouts = (lm_layout(lm, 1024), compression_layout(codec))
    assert target_shapes([*layouts[0], *layouts[1]]) == {k: s for k, s in shapes.items()
                                                       if not k.startswith("text_encoder.")}
    states = [{k: torch.empty(s, device="meta") for k, s in LAYOUT[key]} for key in ("lm_state_dict",
                                                                                      "compression_state_dict")]
    plan = conversion_plan([(states[0], layouts[0], LM_FILE), (states[1], layouts[1], CODEC_FILE)], shapes)
    names = [name for name, _ in plan]
    assert len(names) == len(set(names)) == 896
    assert {k for k in shapes if not k.startswith("text_encoder.")} == set(names)


def _attention(x: torch.Tensor, memory: torch.Tensor, in_proj: torch.Tensor, out_proj: torch.Tensor, heads: int,
               causal: bool) -> torch.Tensor:
    q, k, v = (F.linear(src, w) for src, w in zip((x, memory, memory), in_proj.chunk(3), strict=True))
    split = [t.unflatten(-1, (heads, -1)).transpose(1, 2) for t in (q, k, v)]
    return F.linear(F.scaled_dot_product_attention(*split, is_causal=causal).transpose(1, 2).flatten(2), out_proj)


def _audiocraft_logits(state: dict[str, torch.Tensor], s, codes: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
    """audiocraft's LMModel.forward as its source reads (pre-norm StreamingTransformerLayer, sin positions
    cat[cos, sin] with max_period 10000, T5 output_proj as cross-attention memory); [B, K, T, card]."""
    ln = lambda x, p: F.layer_norm(x, (s.dim,), state[f"{p}.weight"], state[f"{p}.bias"])  # noqa: E731
    x = sum(F.embedding(codes[:, k], state[f"emb.{k}.weight"]) for k in range(s.n_q))
    half = s.dim // 2
    phase = torch.arange(codes.shape[-1])[:, None] / 10000 ** (torch.arange(half) / (half - 1))
    x = x + torch.cat([phase.cos(), phase.sin()], dim=-1)
    cond = "condition_provider.conditioners.description.output_proj"
    memory = F.linear(text, state[f"{cond}.weight"], state[f"{cond}.bias"])
    for i in range(s.num_layers):
        p = f"transformer.layers.{i}."
        h = ln(x, p + "norm1")
        x = x + _attention(h, h, state[p + "self_attn.in_proj_weight"], state[p + "self_attn.out_proj.weight"],
                           s.num_heads, causal=True)
        x = x + _attention(ln(x, p + "norm_cross"), memory, state[p + "cross_attention.in_proj_weight"],
                           state[p + "cross_attention.out_proj.weight"], s.num_heads, causal=False)
        x = x + F.linear(F.gelu(F.linear(ln(x, p + "norm2"), state[p + "linear1.weight"])), state[p + "linear2.weight"])
    x = ln(x, "out_norm")
    return torch.stack([F.linear(x, state[f"linears.{k}.weight"]) for k in range(s.n_q)], dim=1)


def test_converted_decoder_computes_audiocrafts_lm_and_values_land_where_expected():
    lm, codec = _tiny_settings()
    g = torch.Generator().manual_seed(3)
    lm_state = {m.source: 0.3 * torch.randn(m.shape, generator=g) for m in lm_layout(lm, TINY_TEXT_DIM)}
    codec_state = random_state(compression_layout(codec), seed=4)
    model = assemble(lm_state, codec_state, lm, codec, _tiny_t5()).eval()
    layer, d = model.decoder.model.decoder.layers[1], lm.dim
    packed = lm_state["transformer.layers.1.self_attn.in_proj_weight"]
    for block, part in zip(packed.split(d), (layer.self_attn.q_proj, layer.self_attn.k_proj, layer.self_attn.v_proj),
                           strict=True):
        assert torch.equal(part.weight, block)
    assert torch.equal(layer.encoder_attn.v_proj.weight, lm_state["transformer.layers.1.cross_attention.in_proj_weight"][2 * d:])
    assert torch.equal(layer.encoder_attn_layer_norm.bias, lm_state["transformer.layers.1.norm_cross.bias"])
    assert torch.equal(model.enc_to_dec_proj.weight,
                       lm_state["condition_provider.conditioners.description.output_proj.weight"])
    conv = model.audio_encoder.decoder.layers[3].conv  # the first transposed conv
    g_, v_ = codec_state["decoder.model.3.convtr.convtr.weight_g"], codec_state["decoder.model.3.convtr.convtr.weight_v"]
    torch.testing.assert_close(conv.weight, g_ * v_ / v_.norm(dim=(1, 2), keepdim=True))
    assert torch.equal(model.audio_encoder.quantizer.layers[2].codebook.embed,
                       codec_state["quantizer.vq.layers.2._codebook.embed"])

    codes = torch.randint(0, lm.card + 1, (2, lm.n_q, 7), generator=g)
    text = torch.randn(2, 5, TINY_TEXT_DIM, generator=g)
    with torch.no_grad():
        ours = model.decoder(input_ids=codes.reshape(-1, 7), encoder_hidden_states=model.enc_to_dec_proj(text)).logits
        reference = _audiocraft_logits(lm_state, lm, codes, text)
    torch.testing.assert_close(ours.reshape(reference.shape), reference, atol=1e-4, rtol=1e-4)


def test_checkpoint_saved_through_torch_attention_converts_alike():
    """audiocraft without custom attention nests the packed q/k/v under ``.mha``; its loader accepts both."""
    lm, codec = _tiny_settings()
    state, codec_state = random_state(lm_layout(lm, TINY_TEXT_DIM), 7), random_state(compression_layout(codec), 8)
    nested = {k.replace("self_attn.", "self_attn.mha.").replace("cross_attention.", "cross_attention.mha."): v
              for k, v in state.items()}
    assert nested.keys() != state.keys()
    a = assemble(state, codec_state, lm, codec, _tiny_t5()).decoder.state_dict()
    b = assemble(nested, codec_state, lm, codec, _tiny_t5()).decoder.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _set(config: dict, path: str, value) -> dict:
    out = copy.deepcopy(config)
    node = out
    *parents, leaf = path.split(".")
    for p in parents:
        node = node.setdefault(p, {})
    node[leaf] = value
    return out


@pytest.mark.parametrize("path,value", [
    ("transformer_lm.bias_ff", True), ("transformer_lm.positional_embedding", "rope"),
    ("transformer_lm.norm_first", False), ("transformer_lm.layer_scale", 1e-4), ("transformer_lm.kv_repeat", 2),
    ("codebooks_pattern.modeling", "parallel"), ("codebooks_pattern.delay.delays", [0, 2, 4, 6]),
    ("fuser.prepend", ["description"]), ("conditioners.description.t5.name", "t5-base"),
    ("conditioners.description.t5.normalize_text", True), ("conditioners.description.t5.finetune", True),
    ("lm_model", "transformer_lm_magnet"),
])
def test_unsupported_lm_config_is_refused_naming_the_field(path, value):
    with pytest.raises(UnsupportedCheckpoint, match=path.split(".")[-1]):
        lm_settings(AudiocraftConfig(_set(TINY_LM_CONFIG, path, value)))


@pytest.mark.parametrize("path,value", [
    ("encodec.renormalize", True), ("encodec.causal", True), ("seanet.lstm", 0), ("seanet.norm", "time_group_norm"),
    ("seanet.activation", "Snake"), ("seanet.disable_norm_outer_blocks", 1), ("channels", 2),
    ("seanet.decoder.final_activation", "Tanh"), ("compression_model", "dac"),
])
def test_unsupported_codec_config_is_refused_naming_the_field(path, value):
    with pytest.raises(UnsupportedCheckpoint, match=path.split(".")[-1]):
        codec_settings(AudiocraftConfig(_set(TINY_CODEC_CONFIG, path, value)))


def test_every_unsupported_field_is_named_at_once():
    config = _set(_set(TINY_LM_CONFIG, "transformer_lm.bias_attn", True), "transformer_lm.activation", "relu")
    with pytest.raises(UnsupportedCheckpoint, match=r"bias_attn=True.*activation='relu'"):
        lm_settings(AudiocraftConfig(config))


def test_checkpoint_not_matching_its_config_is_refused():
    lm, codec = _tiny_settings()
    state = random_state(lm_layout(lm, TINY_TEXT_DIM), seed=0)
    state["transformer.layers.0.self_attn.in_proj_bias"] = torch.zeros(3 * lm.dim)
    del state["linears.3.weight"]
    state["emb.0.weight"] = torch.zeros(lm.card, lm.dim)
    with pytest.raises(UnsupportedCheckpoint, match=r"missing \(1\): linears.3.weight.*unexpected \(1\): "
                                                    r"transformer.layers.0.self_attn.in_proj_bias.*wrong shape.*emb.0"):
        assemble(state, random_state(compression_layout(codec), seed=0), lm, codec, _tiny_t5())
    with pytest.raises(UnsupportedCheckpoint, match="4 × 64 codes, the EnCodec has 4 × 1024"):
        other = codec_settings(AudiocraftConfig(_set(TINY_CODEC_CONFIG, "rvq.bins", 1024)))
        assemble(random_state(lm_layout(lm, TINY_TEXT_DIM), 0), {}, lm, other, _tiny_t5())


def test_omegaconf_pickled_config_is_read_without_omegaconf_or_running_code():
    pkg = read_audiocraft_package(FIXTURES / "audiogen_compression_omegaconf_cfg.bin")
    assert "omegaconf" not in sys.modules
    assert pkg.config.data == LAYOUT["compression_config"]
    assert codec_settings(pkg.config) == codec_settings(AudiocraftConfig(LAYOUT["compression_config"]))
    assert pkg.config.get("seanet.channels") == 1 and pkg.config.get("seanet.causal") is False
    assert torch.equal(pkg.state["quantizer.vq.layers.0._codebook.inited"], torch.ones(1))


class Evil:
    def __reduce__(self):
        return (print, ("this must never run",))


def test_package_with_pickled_code_is_refused(tmp_path, capsys):
    path = tmp_path / "state_dict.bin"
    torch.save({"best_state": {}, "xp.cfg": Evil()}, path)
    with pytest.raises(WeightsUnavailableError, match="refused to load"):
        read_audiocraft_package(path)
    torch.save({"best_state": {}, "xp.cfg": "a: ${b:c}\nb: 1\n"}, path)
    with pytest.raises(WeightsUnavailableError, match="resolver"):
        read_audiocraft_package(path).config.get("a")
    torch.save({"pretrained": "facebook/encodec_32khz", "exported": True}, path)
    with pytest.raises(WeightsUnavailableError, match="names a pretrained model"):
        read_audiocraft_package(path)
    assert "this must never run" not in capsys.readouterr().out


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("CODECBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("CODECBENCH_CONFIG", str(tmp_path / "config.yaml"))
    return tmp_path


def _write_audiogen_folder(root: Path) -> Path:
    """A tiny AudioGen release in audiocraft's export format (YAML ``xp.cfg``, as export.export_lm writes)."""
    lm, codec = _tiny_settings()
    root.mkdir()
    torch.save({"best_state": random_state(lm_layout(lm, TINY_TEXT_DIM), 5), "xp.cfg": yaml.safe_dump(TINY_LM_CONFIG),
                "version": "1.0.0", "exported": True}, root / LM_FILE)
    torch.save({"best_state": random_state(compression_layout(codec), 6), "xp.cfg": yaml.safe_dump(TINY_CODEC_CONFIG),
                "version": "1.0.0", "exported": True}, root / CODEC_FILE)
    return root


def _write_t5(root: Path) -> Path:
    """A tiny T5 encoder and SentencePiece-style tokenizer standing in for google-t5/t5-large."""
    import string

    from tokenizers import Tokenizer, models, pre_tokenizers

    vocab = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("▁", -2.0)] + [(c, -3.0) for c in string.ascii_lowercase]
    tokenizer = Tokenizer(models.Unigram(vocab, unk_id=2))
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()
    root.mkdir()
    tokenizer.save(str(root / "tokenizer.json"))
    _tiny_t5(vocab=len(vocab)).save_pretrained(root)
    return root


def test_pretrained_path_converts_audiocraft_files(isolated):
    from transformers import T5EncoderModel

    folder = _write_audiogen_folder(isolated / "audiogen")
    t5 = _write_t5(isolated / "t5")
    (isolated / "config.yaml").write_text(f"weights:\n  t5-large: {t5}\n")
    lm = lms.get("audiogen-medium").build()
    lm.load(path=folder)
    assert lm.processor is not None and lm.model.generation_config.top_k == 250
    assert lm.model.generation_config.guidance_scale == 3.0
    a = lm.generate(GenerationRequest("text_to_audio", text="rain on a roof", seed=4, max_duration_s=0.3))
    b = lm.generate(GenerationRequest("text_to_audio", text="rain on a roof", seed=4, max_duration_s=0.3))
    assert a.audio.size > 0 and np.all(np.isfinite(a.audio))
    np.testing.assert_array_equal(a.audio, b.audio)
    state = read_audiocraft_package(folder / LM_FILE).state
    assert torch.equal(lm.model.decoder.lm_heads[2].weight, state["linears.2.weight"])
    assert math.isclose(lm.max_duration_s, 10.0)
    text_weights = T5EncoderModel.from_pretrained(t5).state_dict()
    assert all(torch.equal(v, text_weights[k]) for k, v in lm.model.text_encoder.state_dict().items())


def test_missing_weights_name_what_to_fetch(isolated):
    lm = lms.get("audiogen-medium").build()
    with pytest.raises(WeightsUnavailableError) as err:
        lm.load()
    assert "hf://facebook/audiogen-medium" in str(err.value) and "state_dict.bin" in str(err.value)
    folder = _write_audiogen_folder(isolated / "audiogen")
    with pytest.raises(WeightsUnavailableError, match=r"(?s)t5-large is not part of the AudioGen checkpoint.*"
                                                      r"hf://google-t5/t5-large.*model.safetensors.*t5-large: PATH"):
        lm.load(path=folder)
    (folder / CODEC_FILE).unlink()
    with pytest.raises(WeightsUnavailableError, match="must hold state_dict.bin and compression_state_dict.bin"):
        lm.load(path=folder)
