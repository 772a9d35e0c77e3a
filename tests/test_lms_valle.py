"""VALL-E family (USLM, VALL-E X): upstream state-dict layout, strict loading, safe checkpoint reading,
text frontends, and tiny random builds end to end (text → codes → audio through ``generate``)."""

from __future__ import annotations

import json
import os
import pathlib
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

import bench.lms.uslm as uslm
import bench.lms.vallex as vallex
from bench.errors import CodecError, WeightsUnavailableError
from bench.lms import lms
from bench.lms.base import GenerationRequest
from bench.lms.trainer_checkpoint import read_model_state
from bench.lms.valle_arch import Sampling, ValleConfig, ValleModel, model_from_state, sample_code

FIXTURE = Path(__file__).parent / "fixtures" / "valle_state_dicts.json"
FULL = {"uslm": uslm.FULL, "valle-x": vallex.FULL}


pytestmark = pytest.mark.usefixtures("one_thread")


def _speech(seconds: float, sr: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    return (0.2 * np.sin(2 * np.pi * 160 * t) * (1 + np.sin(2 * np.pi * 3 * t))
            + 0.02 * rng.standard_normal(t.size)).astype(np.float32)


# -- layout ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("lm_id", sorted(FULL))
def test_full_size_state_dict_matches_upstream_key_for_key(lm_id):
    """Keys, shapes and order of the full-size model equal the layout read from the upstream code."""
    expected = json.loads(FIXTURE.read_text())[lm_id]
    with torch.device("meta"):
        model = ValleModel(FULL[lm_id])
    mine = [[k, list(v.shape)] for k, v in model.state_dict().items()]
    assert mine == expected["state_dict"]
    assert sum(p.numel() for p in model.parameters()) == expected["n_parameters"]
    assert ValleConfig.from_state_dict(model.state_dict(), n_heads=16, prefix_mode=FULL[lm_id].prefix_mode) \
        == FULL[lm_id]  # BOS row, language embeddings, vocabularies and depth are read back from the shapes


def test_nar_output_layers_are_tied_to_the_next_embeddings():
    model = ValleModel(uslm.TINY)
    for j in range(6):
        assert model.nar_predict_layers[j].weight is model.nar_audio_embeddings[j + 2].weight
    assert model.nar_predict_layers[6].weight is not model.nar_audio_embeddings[7].weight


# -- checkpoints ----------------------------------------------------------------------------------


class _Params(dict):
    """Stands for icefall's AttributeDict in a trainer checkpoint."""


class _Payload:
    def __init__(self, target: str):
        self.target = target

    def __reduce__(self):
        return (os.mkdir, (self.target,))


def _trainer_checkpoint(path: Path, state: dict, marker: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"model": state, "params": _Params(exp_dir=pathlib.Path("/exp"), lr=0.05),
                "optimizer": {"state": {}}, "payload": _Payload(str(marker))}, path)


def test_trainer_checkpoint_is_read_without_running_its_pickle(tmp_path):
    state = {"a.weight": torch.randn(3, 2)}
    marker = tmp_path / "ran"
    _trainer_checkpoint(tmp_path / "ck.pt", state, marker)
    got = read_model_state(tmp_path / "ck.pt")
    assert not marker.exists()  # the payload's os.mkdir was never called
    assert list(got) == ["a.weight"] and torch.equal(got["a.weight"], state["a.weight"])
    torch.save({"optimizer": {}}, tmp_path / "empty.pt")
    with pytest.raises(WeightsUnavailableError, match="no 'model' state dict"):
        read_model_state(tmp_path / "empty.pt")


def test_uslm_checkpoint_layout_loads_strictly_and_generates_alike(tmp_path):
    """A checkpoint in the fnlp/USLM layout (trainer pickle + k2 symbols) loads and gives the same codes."""
    torch.manual_seed(3)
    cfg = replace(uslm.TINY, n_heads=uslm.FULL.n_heads)  # heads are not in the shapes: the loader assumes 16
    source = ValleModel(cfg).eval()
    _trainer_checkpoint(tmp_path / uslm.CHECKPOINT, source.state_dict(), tmp_path / "ran")
    (tmp_path / uslm.SYMBOLS).write_text("<eps> 0\n_ 1\nh 2\nl 3\noʊ 4\nə 5\n,\t6\n")
    lm = lms.get("uslm").build()
    model = lm.build_pretrained(tmp_path).eval()
    assert model.cfg == cfg and not (tmp_path / "ran").exists()
    assert lm.symbols.index == {"<pad>": 0, "<bos>": 1, "<eos>": 2, ",": 3, "<eps>": 4, "_": 5, "h": 6, "l": 7,
                                "oʊ": 8, "ə": 9}  # collater order: specials, then the symbols sorted
    assert lm.symbols.encode(["h", "ə", "_", "l"]) == [1, 6, 9, 5, 7, 2]
    with pytest.raises(CodecError, match=r"\['ɪ'\] are not in the checkpoint's symbol table"):
        lm.symbols.encode(["h", "ɪ"])
    text, prompt = torch.tensor([1, 6, 9, 7, 8, 2]), torch.randint(0, 1024, (5, 8))
    a = source.generate(text, prompt, 6, torch.Generator().manual_seed(0))
    b = model.generate(text, prompt, 6, torch.Generator().manual_seed(0))
    assert torch.equal(a, b)
    broken = dict(source.state_dict())
    del broken["nar_decoder.norm.norm.bias"]
    with pytest.raises(CodecError, match="nar_decoder.norm.norm.bias"):
        model_from_state(broken, "broken.pt", n_heads=2)


def test_missing_uslm_weights_name_what_to_fetch(tmp_path, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("CODECBENCH_CONFIG", str(tmp_path / "config.yaml"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(WeightsUnavailableError) as err:
        lms.get("uslm").build().load()
    text = str(err.value)
    assert "hf://fnlp/USLM" in text and uslm.CHECKPOINT in text and uslm.SYMBOLS in text and "--lm-path uslm=PATH" in text
    assert "codecbench fetch uslm" in text


def _bpe_file(path: Path) -> None:
    """A phoneme tokenizer file shaped like VALL-E X's bpe_69.json: special tokens, characters, no merges."""
    from tokenizers import Tokenizer, models, pre_tokenizers

    chars = sorted(set("_.,!?ˈˌ") | set("abdefghiklmnoprstuvwzæðŋɑɔəɛɪɫɹʃʊʒθ"))
    vocab = {t: i for i, t in enumerate(["[UNK]", "[CLS]", "[SEP]", "[PAD]", "[MASK]", *chars])}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.save(str(path))


def test_vallex_checkpoint_layout_loads_with_its_bpe_file(tmp_path):
    pytest.importorskip("eng_to_ipa")
    torch.manual_seed(4)
    cfg = replace(vallex.TINY, n_heads=vallex.FULL.n_heads)
    source = ValleModel(cfg).eval()
    _trainer_checkpoint(tmp_path / vallex.CHECKPOINT, source.state_dict(), tmp_path / "ran")
    _bpe_file(tmp_path / vallex.BPE_FILE)
    lm = lms.get("valle-x").build()
    model = lm.build_pretrained(tmp_path).eval()
    assert model.cfg == cfg and model.cfg.n_languages == 3 and model.cfg.prepend_bos
    ids, langs = lm.text_ids(GenerationRequest("tts", text="Hello world!", prompt_text="the dog"))
    phonemes = "ðə_dɔg." + "hɛˈloʊ_wəɹɫd!"
    vocab = lm.phonemes.tokenizer.get_vocab()
    assert ids.tolist() == [vocab[c] for c in phonemes]  # one id per phoneme character
    assert langs.tolist() == [0] * len(phonemes)  # English
    text, prompt = ids, torch.randint(0, 1024, (5, 8))
    a = source.generate(text, prompt, 6, torch.Generator().manual_seed(0), languages=langs)
    b = model.generate(text, prompt, 6, torch.Generator().manual_seed(0), languages=langs)
    assert torch.equal(a, b)


def test_missing_vallex_weights_and_tokenizer_name_what_to_fetch(tmp_path, monkeypatch):
    import huggingface_hub.constants

    import bench.codecs.weights

    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("CODECBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("CODECBENCH_CONFIG", str(tmp_path / "config.yaml"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    lm = lms.get("valle-x").build()
    with pytest.raises(WeightsUnavailableError, match=r"hf://Plachta/VALL-E-X.*vallex-checkpoint\.pt.*--lm-path valle-x=PATH"):
        lm.load()

    def offline(*args, **kwargs):
        raise OSError("no network")

    monkeypatch.setattr(bench.codecs.weights.urllib.request, "urlopen", offline)
    _trainer_checkpoint(tmp_path / "ck" / vallex.CHECKPOINT, ValleModel(vallex.TINY).state_dict(), tmp_path / "ran")
    with pytest.raises(WeightsUnavailableError, match=r"codecbench fetch valle-x.*raw.githubusercontent.com/Plachtaa/"
                                                      r"VALL-E-X/3faaf8c.*bpe_69.*or set `weights: \{valle-x.bpe_69"):
        lm.build_pretrained(tmp_path / "ck")


# -- sampling and stopping ------------------------------------------------------------------------


def test_top_k_one_is_greedy_and_sampling_is_seeded():
    logits = torch.randn(1025, generator=torch.Generator().manual_seed(0))
    assert sample_code(logits, Sampling(top_k=1), torch.Generator().manual_seed(1)) == int(logits.argmax())
    draws = [sample_code(logits, Sampling(top_k=5), torch.Generator().manual_seed(s)) for s in range(40)]
    assert set(draws) <= set(logits.topk(5).indices.tolist()) and len(set(draws)) > 1


def test_end_of_speech_at_the_first_step_is_an_error():
    model = ValleModel(uslm.TINY).eval()
    with torch.no_grad():  # every hidden state becomes the constant 1, and only end-of-speech scores
        model.ar_decoder.norm.weight.zero_()
        model.ar_decoder.norm.bias.fill_(1.0)
        model.ar_predict_layer.weight.zero_()
        model.ar_predict_layer.weight[model.cfg.eos].fill_(10.0)
    with pytest.raises(CodecError, match="ended speech before its first frame"):
        model.generate(torch.tensor([1, 5, 2]), torch.randint(0, 1024, (4, 8)), 10, torch.Generator())


# -- text frontends -------------------------------------------------------------------------------


def test_espeak_phonemes_as_uslm_splits_them():
    pytest.importorskip("phonemizer")
    symbols = uslm.EspeakPhonemizer()("Hello, world!")
    assert symbols.count("_") == 1 and symbols[-1] == "!" and "," in symbols
    assert "oʊ" in symbols  # a diphthong stays one symbol; phone separators are gone
    assert "|" not in symbols and not any(" " in s for s in symbols)


def test_vallex_english_frontend():
    pytest.importorskip("eng_to_ipa")
    assert vallex.english_ipa("Hello world!") == "hɛˈloʊ wəɹɫd!"
    assert vallex.english_ipa("the dog") == "ðə dɔg."  # a final full stop unless punctuation ends it
    assert vallex.spell_numbers("in 1984, the 21st of $2.05 or 2005") == \
        "in nineteen eighty-four, the twenty-first of two dollars, five cents or two thousand five"
    assert vallex.english_ipa("Mr. Smith") == vallex.english_ipa("mister smith")
    with pytest.raises(CodecError, match="English only"):
        vallex.PhonemeIds(None, 2048)("你好")


# -- tiny random builds end to end ----------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_uslm():
    pytest.importorskip("phonemizer")
    lm = lms.get("uslm").build()
    lm.load(random_init=True)
    return lm


def test_tiny_uslm_tts_end_to_end(tiny_uslm):
    lm = tiny_uslm
    req = dict(text="a short test", prompt_audio=_speech(1.0, 22050), prompt_sample_rate=22050,
               prompt_text="hello there", max_duration_s=0.5)
    a = lm.generate(GenerationRequest("tts", seed=1, **req))
    b = lm.generate(GenerationRequest("tts", seed=1, **req))
    c = lm.generate(GenerationRequest("tts", seed=2, **req))
    assert a.sample_rate == 16000 and a.codes is not None and a.codes.shape[:2] == (1, 8)
    assert a.codes.min() >= 0 and a.codes.max() < 1024
    n_frames = a.codes.shape[-1]
    assert n_frames == 25  # no end-of-speech drawn: capped at 0.5 s × 50 Hz; the 1 s prompt is not returned
    assert a.audio.ndim == 1 and a.audio.size == n_frames * 320 and np.all(np.isfinite(a.audio))
    assert np.sqrt(np.mean(a.audio ** 2)) > 1e-4
    np.testing.assert_array_equal(a.audio, b.audio)
    np.testing.assert_array_equal(a.codes, b.codes)
    assert a.codes.shape != c.codes.shape or not np.array_equal(a.codes, c.codes)
    with pytest.raises(CodecError, match="does not do"):
        lm.generate(GenerationRequest("continuation", **req))
    with pytest.raises(CodecError, match="needs a speaker prompt"):
        lm.generate(GenerationRequest("tts", text="no prompt", max_duration_s=0.2))


def test_tiny_uslm_resynthesises_through_speechtokenizer(tiny_uslm):
    r = tiny_uslm.resynthesize(_speech(0.5, 16000), 16000)
    assert r.sample_rate == 16000 and r.codes is not None and r.codes.shape[:2] == (1, 8)
    assert r.audio.size == 8000 and np.all(np.isfinite(r.audio))


@pytest.fixture(scope="module")
def tiny_vallex():
    pytest.importorskip("eng_to_ipa")
    lm = lms.get("valle-x").build()
    lm.load(random_init=True)
    return lm


def test_tiny_vallex_tts_end_to_end(tiny_vallex):
    lm = tiny_vallex
    req = dict(text="a short test", prompt_audio=_speech(1.0, 16000), prompt_sample_rate=16000,
               prompt_text="hello there", max_duration_s=0.4)
    a = lm.generate(GenerationRequest("tts", seed=1, **req))
    b = lm.generate(GenerationRequest("tts", seed=1, **req))
    c = lm.generate(GenerationRequest("tts", seed=2, **req))
    assert a.sample_rate == 24000 and a.codes is not None and a.codes.shape == (1, 8, 30)  # 0.4 s × 75 Hz cap
    assert a.codes.min() >= 0 and a.codes.max() < 1024
    assert a.audio.ndim == 1 and a.audio.size == 30 * 320 and np.all(np.isfinite(a.audio))
    assert np.sqrt(np.mean(a.audio ** 2)) > 1e-4
    np.testing.assert_array_equal(a.codes, b.codes)
    np.testing.assert_array_equal(a.audio, b.audio)
    assert not np.array_equal(a.codes, c.codes) and not np.array_equal(a.audio, c.audio)
    bare = lm.generate(GenerationRequest("tts", text="no prompt at all", seed=0, max_duration_s=0.2))
    assert bare.codes is not None and bare.codes.shape == (1, 8, 15)  # VALL-E X also speaks without a prompt
    with pytest.raises(CodecError, match="does not do"):
        lm.generate(GenerationRequest("continuation", **req))
    with pytest.raises(CodecError, match="empty text"):
        lm.generate(GenerationRequest("tts", text=" ", **{k: v for k, v in req.items() if k != "text"}))


def test_tiny_vallex_resynthesises_through_encodec(tiny_vallex):
    r = tiny_vallex.resynthesize(_speech(0.5, 16000), 16000)
    assert r.sample_rate == 24000 and r.codes is not None and r.codes.shape[:2] == (1, 8)
    assert r.audio.size == 12000 and np.all(np.isfinite(r.audio))
