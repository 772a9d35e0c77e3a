"""AudioLM and SoundStorm (lucidrains' packages, user checkpoints): availability, folder checks, glue.

The packages cannot be imported here (torchaudio), so the glue is exercised against small fake
``audiolm_pytorch`` / ``soundstorm_pytorch`` modules put in ``sys.modules``. The fakes keep the
upstream signatures the wrappers call (keyword-only constructors, ``generate`` keywords, output
shapes, pads after an end-of-sequence) and produce tokens from the global torch RNG, so loading
order, weights, prompt tokens, seeding and the prompt cut are all checked; HuBERT is a real tiny
transformers model and the k-means file a real pickle, read by codecbench's restricted reader.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import json
import math
import pickle
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import bench.lms.audiolm  # noqa: F401  (registers)
import bench.lms.soundstorm  # noqa: F401
from bench.errors import WeightsUnavailableError
from bench.lms import lms
from bench.lms.base import GenerationRequest, resample

pytest.importorskip("transformers")

PROMPT_SR, CODEC_SR, STRIDES, N_Q, CODEBOOK, K, LAYER = 22050, 8000, [4, 5, 8], 4, 64, 16, 1
HOP = 4 * 5 * 8
SS_CONFIG = {"target_sample_hz": CODEC_SR, "strides": STRIDES, "rq_num_quantizers": N_Q, "codebook_size": CODEBOOK,
             "attn_window_size": 32}
SEMANTIC = {"dim": 8, "depth": 1, "num_semantic_tokens": K}
COARSE = {"dim": 8, "depth": 1, "num_semantic_tokens": K, "codebook_size": CODEBOOK, "num_coarse_quantizers": 2}
FINE = {"dim": 8, "depth": 1, "codebook_size": CODEBOOK, "num_coarse_quantizers": 2, "num_fine_quantizers": 2}
CONFORMER = {"codebook_size": CODEBOOK, "num_quantizers": N_Q, "conformer": {"dim": 8, "depth": 1}}
DECODER_BIAS = 0.25
"""soundstream.pt's weight: decoding only adds it if the checkpoint was really loaded."""

# -- fakes with the upstream signatures -------------------------------------------------------

CALLS: list[tuple] = []


class Recorded(nn.Module):
    """Records construction, weight loading and device moves in CALLS."""

    def load_state_dict(self, state, strict=True, assign=False):
        CALLS.append((type(self).__name__ + ".load_state_dict", strict))
        return super().load_state_dict(state, strict=strict, assign=assign)

    def to(self, *args, **kwargs):
        CALLS.append((type(self).__name__ + ".to", *args))
        return super().to(*args, **kwargs)


class SoundStream(Recorded):
    def __init__(self, *, strides=(2, 4, 5, 8), codebook_size=None, rq_num_quantizers=8, rq_groups=1,
                 target_sample_hz=16000, **kwargs):
        super().__init__()
        CALLS.append(("SoundStream", dict(strides=strides, codebook_size=codebook_size,
                                          rq_num_quantizers=rq_num_quantizers, target_sample_hz=target_sample_hz,
                                          **kwargs)))
        self.strides, self.codebook_size, self.num_quantizers = tuple(strides), codebook_size, rq_num_quantizers
        self.rq_groups, self.target_sample_hz = rq_groups, target_sample_hz
        self.decoder_bias = nn.Parameter(torch.zeros(()))

    @property
    def seq_len_multiple_of(self):
        return math.prod(self.strides)

    def forward(self, x, target=None, return_encoded=False, input_sample_hz=None, **kwargs):
        """Codes of each frame from its mean level, one offset per quantizer: [b, n, q]."""
        assert return_encoded and input_sample_hz is None and x.ndim == 2
        hop = self.seq_len_multiple_of
        frames = x[:, : x.shape[1] // hop * hop].reshape(x.shape[0], -1, hop).mean(-1)
        level = ((frames.clamp(-1, 1) + 1) / 2 * (self.codebook_size - 1)).round().long()
        codes = (level[..., None] + torch.arange(self.num_quantizers)) % self.codebook_size
        return frames, codes, torch.zeros(())

    def decode_from_codebook_indices(self, quantized_indices):
        assert quantized_indices.dtype == torch.long and quantized_indices.min() >= 0
        per_frame = quantized_indices.float().mean(-1) / self.codebook_size + self.decoder_bias
        return per_frame.repeat_interleave(self.seq_len_multiple_of, dim=-1)[:, None]


def fake_decode(codes: np.ndarray) -> np.ndarray:
    """What the fake decoder makes of codes [1, Q, T] (per frame, so a slice decodes to a slice)."""
    t = torch.from_numpy(codes).transpose(1, 2)
    per_frame = t.float().mean(-1) / CODEBOOK + torch.tensor(DECODER_BIAS)
    return per_frame.repeat_interleave(HOP, dim=-1)[0].numpy()


class SemanticTransformer(Recorded):
    def __init__(self, *, dim, depth, num_semantic_tokens, heads=8, **kwargs):
        super().__init__()
        CALLS.append(("SemanticTransformer", dict(dim=dim, depth=depth, num_semantic_tokens=num_semantic_tokens)))
        self.num_semantic_tokens, self.eos_id = num_semantic_tokens, num_semantic_tokens
        self.start_token = nn.Parameter(torch.randn(dim))


class CoarseTransformer(Recorded):
    def __init__(self, *, codebook_size, num_coarse_quantizers, dim, depth, num_semantic_tokens, **kwargs):
        super().__init__()
        CALLS.append(("CoarseTransformer", dict(codebook_size=codebook_size,
                                                num_coarse_quantizers=num_coarse_quantizers, dim=dim, depth=depth,
                                                num_semantic_tokens=num_semantic_tokens)))
        self.codebook_size, self.num_coarse_quantizers = codebook_size, num_coarse_quantizers
        self.coarse_logit_weights = nn.Parameter(torch.randn(num_coarse_quantizers, codebook_size + 1, dim))


class FineTransformer(Recorded):
    def __init__(self, *, num_coarse_quantizers, num_fine_quantizers, codebook_size, dim, depth, **kwargs):
        super().__init__()
        CALLS.append(("FineTransformer", dict(num_coarse_quantizers=num_coarse_quantizers,
                                              num_fine_quantizers=num_fine_quantizers, codebook_size=codebook_size,
                                              dim=dim, depth=depth)))
        self.codebook_size = codebook_size
        self.num_coarse_quantizers, self.num_fine_quantizers = num_coarse_quantizers, num_fine_quantizers
        self.fine_logit_weights = nn.Parameter(torch.randn(num_fine_quantizers, codebook_size, dim))


class SemanticTransformerWrapper(Recorded):
    def __init__(self, *, transformer, wav2vec=None, audio_conditioner=None, pad_id=-1, unique_consecutive=True,
                 mask_prob=0.15):
        super().__init__()
        CALLS.append(("SemanticTransformerWrapper", dict(wav2vec=wav2vec, unique_consecutive=unique_consecutive)))
        self.transformer, self.wav2vec, self.unique_consecutive = transformer, wav2vec, unique_consecutive

    def generate(self, *, max_length, text=None, text_embeds=None, prime_wave=None, prime_wave_input_sample_hz=None,
                 prime_ids=None, batch_size=1, **kwargs):
        """Prime (deduplicated if set) + random tokens up to max_length; the last two masked as after an EOS."""
        assert prime_wave is None and prime_ids.shape[0] == 1
        ids = torch.unique_consecutive(prime_ids[0])[None] if self.unique_consecutive else prime_ids
        new = torch.randint(0, self.transformer.num_semantic_tokens, (1, max_length - ids.shape[1]))
        out = torch.cat((ids, new), dim=-1)
        out[:, -2:] = -1
        CALLS.append(("semantic.generate", dict(prime_ids=prime_ids.clone(), max_length=max_length, out=out)))
        return out


class CoarseTransformerWrapper(Recorded):
    def __init__(self, *, transformer, codec=None, wav2vec=None, audio_conditioner=None, pad_id=-1,
                 unique_consecutive=True, **kwargs):
        super().__init__()
        self.transformer, self.codec = transformer, codec
        self.num_coarse_quantizers = transformer.num_coarse_quantizers * codec.rq_groups

    def generate(self, *, semantic_token_ids, prime_wave=None, prime_wave_input_sample_hz=None,
                 prime_coarse_token_ids=None, text=None, text_embeds=None, max_time_steps=512, reconstruct_wave=False,
                 **kwargs):
        """Prime + max_time_steps new frames (upstream counts from 0 after the prime); EOS at the last one."""
        assert prime_wave is None and not reconstruct_wave
        q = self.num_coarse_quantizers
        new = torch.randint(0, self.transformer.codebook_size, (1, max_time_steps * q))
        out = torch.cat((prime_coarse_token_ids, new), dim=-1).reshape(1, -1, q)
        out[:, -1] = -1
        CALLS.append(("coarse.generate", dict(semantic_token_ids=semantic_token_ids, max_time_steps=max_time_steps,
                                              prime=prime_coarse_token_ids.clone(), out=out.clone())))
        return out


class FineTransformerWrapper(Recorded):
    def __init__(self, *, transformer, codec=None, audio_conditioner=None, pad_id=-1, **kwargs):
        super().__init__()
        self.transformer, self.codec = transformer, codec
        self.num_fine_quantizers = transformer.num_fine_quantizers * codec.rq_groups
        self.num_coarse_quantizers = transformer.num_coarse_quantizers * codec.rq_groups

    def generate(self, *, coarse_token_ids, prime_wave=None, prime_wave_input_sample_hz=None,
                 prime_fine_token_ids=None, text=None, text_embeds=None, reconstruct_wave=False, **kwargs):
        assert prime_wave is None and not reconstruct_wave and (coarse_token_ids >= 0).all()
        q, n = self.num_fine_quantizers, coarse_token_ids.shape[1]
        new = torch.randint(0, self.transformer.codebook_size, (1, n * q - prime_fine_token_ids.shape[-1]))
        out = torch.cat((prime_fine_token_ids, new), dim=-1).reshape(1, n, q)
        CALLS.append(("fine.generate", dict(coarse=coarse_token_ids.clone(), prime=prime_fine_token_ids.clone(),
                                            out=out.clone())))
        return out


class AudioLM(Recorded):
    def __init__(self, *, wav2vec, codec, semantic_transformer, coarse_transformer, fine_transformer,
                 audio_conditioner=None, unique_consecutive=True):
        super().__init__()
        CALLS.append(("AudioLM", dict(wav2vec=wav2vec, codec=codec, unique_consecutive=unique_consecutive)))
        assert fine_transformer.num_coarse_quantizers + fine_transformer.num_fine_quantizers == codec.num_quantizers
        self.semantic = SemanticTransformerWrapper(wav2vec=wav2vec, transformer=semantic_transformer,
                                                   unique_consecutive=unique_consecutive)
        self.coarse = CoarseTransformerWrapper(wav2vec=wav2vec, codec=codec, transformer=coarse_transformer,
                                               unique_consecutive=unique_consecutive)
        self.fine = FineTransformerWrapper(codec=codec, transformer=fine_transformer)


class ConformerWrapper(Recorded):
    def __init__(self, *, codebook_size, num_quantizers, conformer, grouped_quantizers=1):
        super().__init__()
        CALLS.append(("ConformerWrapper", dict(codebook_size=codebook_size, num_quantizers=num_quantizers,
                                               conformer=conformer)))
        self.codebook_size, self.num_quantizers = codebook_size, num_quantizers
        self.grouped_quantizers = grouped_quantizers
        self.dim = conformer["dim"]
        self.code_embeds = nn.Embedding((codebook_size + 1) * num_quantizers, self.dim)


class SoundStorm(Recorded):
    def __init__(self, net, *, soundstream=None, spear_tts_text_to_semantic=None, wav2vec=None, steps=18,
                 num_semantic_token_ids=None, wav2vec_target_sample_hz=None, wav2vec_downsample_factor=None,
                 codec_target_sample_hz=None, codec_downsample_factor=None, **kwargs):
        super().__init__()
        CALLS.append(("SoundStorm", dict(soundstream=soundstream, wav2vec=wav2vec, steps=steps,
                                         num_semantic_token_ids=num_semantic_token_ids,
                                         wav2vec_target_sample_hz=wav2vec_target_sample_hz,
                                         wav2vec_downsample_factor=wav2vec_downsample_factor, **kwargs)))
        self.net, self.soundstream = net, soundstream
        self.wav2vec_rate = wav2vec_downsample_factor / wav2vec_target_sample_hz
        self.semantic_token_emb = nn.Embedding(num_semantic_token_ids, net.dim)

    @torch.no_grad()
    def generate(self, num_latents=None, *, mask=None, texts=None, cond_semantic_token_ids=None,
                 prompt_acoustic_token_ids=None, seconds=None, batch_size=None, **kwargs):
        """Latents as many as the semantic tokens span; the prompt codes kept; decoded; batch of one squeezed."""
        assert (cond_semantic_token_ids >= 0).all()
        ss = self.soundstream
        codec_rate = ss.seq_len_multiple_of / ss.target_sample_hz
        n = math.ceil(cond_semantic_token_ids.shape[1] * self.wav2vec_rate / codec_rate)
        seq = torch.randint(0, self.net.codebook_size, (1, n, self.net.num_quantizers))
        p, qp = prompt_acoustic_token_ids.shape[1:]
        seq[:, :p, :qp] = prompt_acoustic_token_ids
        CALLS.append(("soundstorm.generate", dict(cond=cond_semantic_token_ids.clone(),
                                                  prompt=prompt_acoustic_token_ids.clone(), seq=seq.clone())))
        return ss.decode_from_codebook_indices(seq)[0, 0]


def _module(name: str, *objects) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__spec__ = importlib.machinery.ModuleSpec(name, None)
    for obj in objects:
        setattr(module, obj.__name__, obj)
    return module


@pytest.fixture
def fake_packages(monkeypatch):
    CALLS.clear()
    monkeypatch.setitem(sys.modules, "audiolm_pytorch", _module(
        "audiolm_pytorch", SoundStream, SemanticTransformer, CoarseTransformer, FineTransformer, AudioLM,
        SemanticTransformerWrapper, CoarseTransformerWrapper, FineTransformerWrapper))
    monkeypatch.setitem(sys.modules, "soundstorm_pytorch", _module("soundstorm_pytorch", SoundStorm, ConformerWrapper,
                                                                   SoundStream))
    yield CALLS
    CALLS.clear()


# -- checkpoint folders -------------------------------------------------------------------------


def _kmeans_file(path: Path, centers: np.ndarray, monkeypatch) -> None:
    """A pickled object that unpickles as sklearn's KMeans state (sklearn itself not needed)."""
    module = _module("sklearn.cluster._kmeans")

    class KMeans:
        pass

    KMeans.__module__, KMeans.__qualname__ = module.__name__, "KMeans"
    module.KMeans = KMeans
    monkeypatch.setitem(sys.modules, module.__name__, module)
    km = KMeans()
    km.cluster_centers_ = centers
    path.write_bytes(pickle.dumps(km, protocol=4))


def _save(path: Path, module: nn.Module, drop: str = "", **extra) -> dict[str, torch.Tensor]:
    state = {k: v.clone() for k, v in module.state_dict().items() if not (drop and k.startswith(drop))}
    torch.save({"model": state, "optim": {}, "version": "2.4.0", **extra}, path)
    return state


def _folder(root: Path, monkeypatch, lm_id: str) -> dict[str, dict[str, torch.Tensor]]:
    """Everything a user puts in the folder, from the fakes at seeded random weights; returns saved states."""
    from transformers import HubertModel

    from bench.codecs.hubert_units import tiny_hubert_config

    torch.manual_seed(123)
    hubert = HubertModel(tiny_hubert_config()).eval()
    hubert.save_pretrained(root / "hubert")
    with torch.no_grad():  # centroids among the prompt's own layer features, so its units vary
        feats = hubert(torch.from_numpy(resample(_prompt(), PROMPT_SR, 16000))[None],
                       output_hidden_states=True).hidden_states[LAYER][0]
    _kmeans_file(root / "hubert" / "km.bin", feats[:: feats.shape[0] // K][:K].double().numpy(), monkeypatch)
    ss = SoundStream(**SS_CONFIG)
    with torch.no_grad():
        ss.decoder_bias.fill_(DECODER_BIAS)
    torch.save({"model": ss.state_dict(), "config": pickle.dumps(SS_CONFIG), "version": "2.4.0"},
               root / "soundstream.pt")
    saved = {"semantic": _save(root / "semantic.pt", SemanticTransformer(**SEMANTIC))}
    if lm_id == "audiolm":
        saved["coarse"] = _save(root / "coarse.pt", CoarseTransformer(**COARSE))
        saved["fine"] = _save(root / "fine.pt", FineTransformer(**FINE))
        config = {"semantic": SEMANTIC, "coarse": COARSE, "fine": FINE, "hubert_layer": LAYER}
    else:
        storm = SoundStorm(ConformerWrapper(**CONFORMER), soundstream=ss, steps=4, num_semantic_token_ids=K,
                           wav2vec_target_sample_hz=16000, wav2vec_downsample_factor=320)
        saved["soundstorm"] = _save(root / "soundstorm.pt", storm, drop="soundstream.", scheduler={})
        config = {"conformer": CONFORMER, "soundstorm": {"steps": 4}, "semantic": SEMANTIC, "hubert_layer": LAYER}
    (root / "config.json").write_text(json.dumps(config))
    CALLS.clear()
    return saved


def _prompt(seconds: float = 1.0) -> np.ndarray:
    t = np.arange(int(seconds * PROMPT_SR)) / PROMPT_SR
    return (0.6 * np.sin(2 * np.pi * 3 * t) * np.sin(2 * np.pi * 220 * t)).astype(np.float32)


def _expected_units(root: Path, prompt: np.ndarray) -> torch.Tensor:
    """HuBERT layer-LAYER features of the 16 kHz prompt, nearest centroid (computed here independently)."""
    from transformers import HubertModel

    from bench.codecs.hubert_units import load_kmeans_centroids

    hubert = HubertModel.from_pretrained(root / "hubert").eval()
    centers = torch.from_numpy(load_kmeans_centroids(root / "hubert" / "km.bin"))
    with torch.no_grad():
        feats = hubert(torch.from_numpy(resample(prompt, PROMPT_SR, 16000))[None], output_hidden_states=True)
    return torch.cdist(feats.hidden_states[LAYER], centers[None]).argmin(-1)


def _calls(name: str) -> list[dict]:
    return [c[1] for c in CALLS if c[0] == name]


# -- tests ------------------------------------------------------------------------------------


@pytest.mark.parametrize("lm_id,packages,extra", [
    ("audiolm", "audiolm_pytorch", "audiolm"),
    ("soundstorm", "soundstorm_pytorch, audiolm_pytorch", "soundstorm"),
])
def test_rows_and_availability_name_the_packages_and_the_extra(lm_id, packages, extra):
    lm = lms.get(lm_id).build()
    assert lm.meta.kind == "model" and lm.meta.family == lm_id and lm.meta.weights is None
    assert lm.meta.tasks == {"continuation"} and lm.has_codec
    if importlib.util.find_spec("audiolm_pytorch") is not None:
        pytest.skip("audiolm-pytorch is installed here")
    ok, why = lm.availability()
    assert not ok and f"needs the Python package(s) {packages}" in why and f"codecbench[{extra}]" in why


@pytest.mark.parametrize("lm_id", ["audiolm", "soundstorm"])
def test_no_path_means_no_official_weights(lm_id):
    lm = lms.get(lm_id).build()
    with pytest.raises(WeightsUnavailableError, match=f"no official weights; pass --lm-path {lm_id}=FOLDER"):
        lm.load()
    with pytest.raises(Exception, match="no tiny random build"):
        lm.load(random_init=True)


@pytest.mark.parametrize("lm_id,present,missing", [
    ("audiolm", ["config.json", "soundstream.pt", "semantic.pt", "hubert/config.json", "hubert/pytorch_model.bin"],
     ["coarse.pt", "fine.pt", "hubert/km.bin"]),
    ("soundstorm", ["config.json", "semantic.pt", "hubert/config.json", "hubert/km.bin", "coarse.pt"],
     ["soundstream.pt", "soundstorm.pt", "hubert/model.safetensors or hubert/pytorch_model.bin"]),
])
def test_missing_checkpoint_files_are_named_before_the_package_is_imported(tmp_path, monkeypatch, lm_id, present,
                                                                           missing):
    for name in ("audiolm_pytorch", "soundstorm_pytorch"):
        monkeypatch.setitem(sys.modules, name, None)  # importing it now would raise ImportError
    for name in present:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    lm = lms.get(lm_id).build()
    with pytest.raises(WeightsUnavailableError) as err:
        lm.load(path=tmp_path)
    message = str(err.value)
    named = message.split(" is missing ")[1].split(" (layout")[0]
    assert sorted(part.split(" (")[0] for part in named.split("; ")) == sorted(missing)
    with pytest.raises(WeightsUnavailableError, match="is not a folder"):
        lm.load(path=tmp_path / "nowhere")


def test_audiolm_glue_against_the_upstream_api(tmp_path, monkeypatch, fake_packages):
    saved = _folder(tmp_path, monkeypatch, "audiolm")
    lm = lms.get("audiolm").build()
    assert lm.availability() == (True, "")
    lm.load("cpu", path=tmp_path)
    order = [c[0] for c in CALLS if not c[0].endswith(".to")]
    assert order[:8] == ["SoundStream", "SoundStream.load_state_dict",
                         "SemanticTransformer", "SemanticTransformer.load_state_dict",
                         "CoarseTransformer", "CoarseTransformer.load_state_dict",
                         "FineTransformer", "FineTransformer.load_state_dict"]
    assert all(c[1] is True for c in CALLS if c[0].endswith("load_state_dict"))  # strict, as upstream's .load
    assert _calls("SoundStream")[0] == SS_CONFIG
    assert _calls("SemanticTransformer") == [SEMANTIC] and _calls("FineTransformer") == [FINE]
    built = _calls("AudioLM")[0]
    assert built["wav2vec"] is None and built["codec"] is lm.codec and built["unique_consecutive"] is True
    assert ("AudioLM.to", torch.device("cpu")) in CALLS
    for name, wrapper in (("semantic", lm.model.semantic), ("coarse", lm.model.coarse), ("fine", lm.model.fine)):
        for key, value in saved[name].items():
            assert torch.equal(wrapper.transformer.state_dict()[key], value)

    prompt, seconds = _prompt(1.0), 0.5
    CALLS.clear()
    a = lm.generate(GenerationRequest("continuation", prompt_audio=prompt, prompt_sample_rate=PROMPT_SR, seed=1,
                                      max_duration_s=seconds))
    semantic, coarse, fine = _calls("semantic.generate")[0], _calls("coarse.generate")[0], _calls("fine.generate")[0]
    units = _expected_units(tmp_path, prompt)
    assert torch.unique(units).numel() > K // 2 and torch.equal(semantic["prime_ids"], units)
    assert semantic["max_length"] == torch.unique_consecutive(units[0]).numel() + math.ceil(seconds * 50)
    prompt_codes = SoundStream(**SS_CONFIG)(torch.from_numpy(resample(prompt, PROMPT_SR, CODEC_SR))[None],
                                            return_encoded=True)[1]
    n_prompt = prompt_codes.shape[1]
    assert n_prompt == CODEC_SR // HOP
    assert torch.equal(coarse["semantic_token_ids"], semantic["out"])
    assert torch.equal(coarse["prime"], prompt_codes[..., :2].flatten(1)) and coarse["max_time_steps"] == 25
    assert torch.equal(fine["coarse"], coarse["out"][:, :-1])  # the frame after EOS is dropped
    assert torch.equal(fine["prime"], prompt_codes[..., 2:].flatten(1))
    generated = torch.cat((coarse["out"][:, :-1], fine["out"]), -1)[:, n_prompt:]
    assert a.sample_rate == CODEC_SR and a.codes.shape == (1, N_Q, 24)
    np.testing.assert_array_equal(a.codes, generated.transpose(1, 2).numpy())
    assert a.audio.dtype == np.float32 and a.audio.size == 24 * HOP
    np.testing.assert_array_equal(a.audio, fake_decode(a.codes))  # continuation only, decoded with the checkpoint

    b = lm.generate(GenerationRequest("continuation", prompt_audio=prompt, prompt_sample_rate=PROMPT_SR, seed=1,
                                      max_duration_s=seconds))
    c = lm.generate(GenerationRequest("continuation", prompt_audio=prompt, prompt_sample_rate=PROMPT_SR, seed=2,
                                      max_duration_s=seconds))
    np.testing.assert_array_equal(a.audio, b.audio)
    assert not np.array_equal(a.codes, c.codes)

    r = lm.resynthesize(prompt, PROMPT_SR)
    assert r.sample_rate == CODEC_SR and r.audio.size == n_prompt * HOP
    np.testing.assert_array_equal(r.codes, prompt_codes.transpose(1, 2).numpy())
    with pytest.raises(Exception, match="does not do"):
        lm.generate(GenerationRequest("tts", text="hello", prompt_audio=prompt, prompt_sample_rate=PROMPT_SR))


def test_soundstorm_glue_against_the_upstream_api(tmp_path, monkeypatch, fake_packages):
    saved = _folder(tmp_path, monkeypatch, "soundstorm")
    lm = lms.get("soundstorm").build()
    assert lm.availability() == (True, "")
    lm.load("cpu", path=tmp_path)
    assert _calls("SemanticTransformerWrapper") == [{"wav2vec": None, "unique_consecutive": False}]
    built = _calls("SoundStorm")[0]
    assert built["soundstream"] is lm.codec and built["wav2vec"] is None and built["steps"] == 4
    assert (built["num_semantic_token_ids"], built["wav2vec_target_sample_hz"], built["wav2vec_downsample_factor"]) \
        == (K, 16000, 320)
    state = lm.model.state_dict()
    for key, value in saved["soundstorm"].items():
        assert torch.equal(state[key], value)
    assert lm.model.soundstream.decoder_bias.item() == DECODER_BIAS  # absent from soundstorm.pt: soundstream.pt's

    prompt, seconds = _prompt(1.0), 0.5
    a = lm.generate(GenerationRequest("continuation", prompt_audio=prompt, prompt_sample_rate=PROMPT_SR, seed=3,
                                      max_duration_s=seconds))
    semantic, storm = _calls("semantic.generate")[0], _calls("soundstorm.generate")[0]
    units = _expected_units(tmp_path, prompt)
    assert torch.equal(semantic["prime_ids"], units)  # frame-level: no deduplication
    assert semantic["max_length"] == units.shape[1] + math.ceil(seconds * 50)
    assert torch.equal(storm["cond"], semantic["out"][:, :-2])  # pads after the EOS stripped
    prompt_codes = SoundStream(**SS_CONFIG)(torch.from_numpy(resample(prompt, PROMPT_SR, CODEC_SR))[None],
                                            return_encoded=True)[1]
    covered = units.shape[1]  # 20 ms semantic frames = 20 ms codec frames here
    assert covered < prompt_codes.shape[1] and torch.equal(storm["prompt"], prompt_codes[:, :covered])
    continuation = storm["seq"][:, covered:]
    assert a.sample_rate == CODEC_SR and a.codes is None
    assert a.audio.size == continuation.shape[1] * HOP == (units.shape[1] + 25 - 2 - covered) * HOP
    np.testing.assert_array_equal(a.audio, fake_decode(continuation.transpose(1, 2).numpy()))
    b = lm.generate(GenerationRequest("continuation", prompt_audio=prompt, prompt_sample_rate=PROMPT_SR, seed=3,
                                      max_duration_s=seconds))
    c = lm.generate(GenerationRequest("continuation", prompt_audio=prompt, prompt_sample_rate=PROMPT_SR, seed=4,
                                      max_duration_s=seconds))
    np.testing.assert_array_equal(a.audio, b.audio)
    assert not np.array_equal(a.audio, c.audio)


def test_soundstorm_refuses_what_it_cannot_rebuild(tmp_path, monkeypatch, fake_packages):
    saved = _folder(tmp_path, monkeypatch, "soundstorm")
    lm = lms.get("soundstorm").build()
    torch.save({"model": {**saved["soundstorm"], "text_to_semantic.semantic_token_emb.weight": torch.zeros(2, 2)}},
               tmp_path / "soundstorm.pt")
    with pytest.raises(WeightsUnavailableError, match="TextToSemantic"):
        lm.load(path=tmp_path)
    torch.save({"model": {**saved["soundstorm"], "wav2vec.cluster_centers": torch.zeros(K, 32)}},
               tmp_path / "soundstorm.pt")
    with pytest.raises(WeightsUnavailableError, match="centroids differ"):
        lm.load(path=tmp_path)
    torch.save({"model": {k: v for k, v in saved["soundstorm"].items() if not k.startswith("net.")}},
               tmp_path / "soundstorm.pt")
    with pytest.raises(WeightsUnavailableError, match=r"missing \['net\."):
        lm.load(path=tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    config["soundstorm"]["num_semantic_token_ids"] = K + 1
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(WeightsUnavailableError, match="num_semantic_token_ids=17"):
        lm.load(path=tmp_path)
