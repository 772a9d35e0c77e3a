"""SLMTokBench tasks, judges and corpus aggregates (issue 4), offline and small."""

from __future__ import annotations

import math

import bench.tasks.information_preservation as ip
import bench.tasks.text_alignment as ta
import numpy as np
import pandas as pd
import pytest
import torch

from bench.analysis.corpus import corpus_summary, ratio_ci
from bench.audio import Audio
from bench.data.manifest import Item
from bench.judges import judges, register_judge
from bench.judges.text import normalise, word_errors
from bench.metrics import metrics


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CODECBENCH_CACHE", str(tmp_path / "cache"))


# -- estimator sanity -----------------------------------------------------------------------
WORDS = ["red", "blue", "cat", "dog", "sun", "tree"]
TINY = ta.ProbeConfig(embed_dim=16, hidden=24, epochs=12, batch_size=8, lr=1e-2, ngram_order=3)


def _synthetic(n: int, dependent: bool, rng: np.random.Generator) -> list[ta.TokenItem]:
    out = []
    for i in range(n):
        text = " ".join(rng.choice(WORDS, 2))
        label = ta.text_to_label(text)
        if dependent:  # tokens are a deterministic function of the text (its characters, twice each)
            codes = np.repeat(np.array(label)[None], 2, axis=-1)
        else:  # tokens independent of the text
            codes = rng.integers(0, len(ta.VOCAB), size=(1, 24))
        out.append(ta.TokenItem(f"u{i}", codes, text, 1.0))
    return out


@pytest.fixture(scope="module")
def synthetic_results():
    rng = np.random.default_rng(0)
    res = {}
    for dependent in (True, False):
        train, test = _synthetic(64, dependent, rng), _synthetic(16, dependent, rng)
        res[dependent] = ta.run_probe(train, test, [len(ta.VOCAB)], TINY)
    return res


def test_dependent_tokens_give_lower_bound_near_entropy(synthetic_results):
    r = synthetic_results[True]
    h = float(r.lm_bits.mean())
    assert h > 3.0  # 36 equiprobable two-word texts: log2(36) ≈ 5.2 bits, n-gram estimate near it
    assert r.mi_lower_bound == pytest.approx(h, abs=0.25 * h)
    assert r.mi_contrastive > 0.5 * h
    assert r.errors.sum() / r.ref_words.sum() < 0.5


def test_independent_tokens_give_estimates_near_zero(synthetic_results):
    r, h = synthetic_results[False], float(synthetic_results[False].lm_bits.mean())
    assert abs(r.mi_contrastive) < 0.15 * h
    assert r.mi_lower_bound < 0.15 * h  # a probe that learnt nothing cannot beat the n-gram prior


def test_probe_is_deterministic():
    rng = np.random.default_rng(1)
    items = _synthetic(12, True, rng)
    cfg = ta.ProbeConfig(embed_dim=8, hidden=8, epochs=2, batch_size=4, ngram_order=2)
    a = ta.run_probe(items[:8], items[8:], [len(ta.VOCAB)], cfg)
    b = ta.run_probe(items[:8], items[8:], [len(ta.VOCAB)], cfg)
    np.testing.assert_array_equal(a.logq_self, b.logq_self)
    np.testing.assert_array_equal(a.logq_cross_mean, b.logq_cross_mean)


def test_ctc_repeat_satisfies_length_constraint():
    items = [ta.TokenItem("a", np.zeros((1, 3), dtype=int), "hello world", 1.0),
             ta.TokenItem("b", np.zeros((1, 5), dtype=int), "hi", 1.0),
             ta.TokenItem("c", np.zeros((1, 4), dtype=int), "all good", 1.0)]
    cfg = ta.ProbeConfig(embed_dim=4, hidden=4, epochs=1, batch_size=4, ngram_order=2)
    r = ta.run_probe(items[:2], items[1:], [4], cfg)
    need = ta.ctc_need(ta.text_to_label("hello world"))  # 11 chars + "ll" and "oo"? only "ll" → 12
    assert need == 12 and r.repeat == math.ceil(need / 3)
    assert np.all(np.isfinite(r.logq_cross_mean))


def test_ngram_entropy_of_uniform_texts():
    labels = [ta.text_to_label(w) for w in ("ab", "ba")] * 50
    lm = ta.CharNgram(3, labels, len(ta.VOCAB))
    assert lm.bits(ta.text_to_label("ab")) == pytest.approx(1.0, abs=0.1)  # one fair choice, then determined


def test_views_and_split():
    assert ta.parse_view("rvq1:2", 8) == slice(0, 2) and ta.parse_view("all", 8) == slice(None)
    with pytest.raises(ValueError):
        ta.parse_view("rvq1:9", 8)
    from bench.data import resolve_dataset

    items = resolve_dataset("embedded").items
    train, test = ta.TextAlignmentTask().split(items)
    assert len(test) >= 2 and len(train) >= 2 and not {i.id for i in train} & {i.id for i in test}


# -- text and counting ---------------------------------------------------------------------------
def test_whisper_normaliser_and_word_errors():
    assert normalise("Mr. Smith didn't go!", "whisper_english") == "mister smith did not go"
    e = word_errors("a b c d", "a x c")
    assert (e.substitutions, e.deletions, e.insertions, e.ref_words) == (1, 1, 0, 4)
    assert word_errors("a b", "").errors == 2


def test_corpus_wer_is_a_ratio_of_sums():
    value, lo, hi = ratio_ci(np.array([1.0, 0, 9]), np.array([10.0, 10, 10]))
    assert value == pytest.approx(10 / 30) and lo <= value <= hi


# -- judges with tiny random models, end to end --------------------------------------------------
@pytest.fixture(scope="module")
def tiny_judges():
    from transformers import HubertConfig, HubertForCTC, WavLMConfig, WavLMForXVector

    from bench.judges.hubert_ctc import HubertCTCJudge
    from bench.judges.wavlm import WavLMXVectorJudge

    torch.manual_seed(0)
    small = {"hidden_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 16,
             "conv_dim": (8, 8), "conv_stride": (5, 4), "conv_kernel": (10, 4), "num_conv_pos_embeddings": 8,
             "num_conv_pos_embedding_groups": 2}
    vocab = {"<pad>": 0, "|": 1, **{c: i + 2 for i, c in enumerate("etaoinshrdlucmfwypvbgkqjxz'")}}
    asr = HubertForCTC(HubertConfig(vocab_size=len(vocab), pad_token_id=0, **small))
    spk = WavLMForXVector(WavLMConfig(**small, tdnn_dim=(8, 8), tdnn_kernel=(3, 1), tdnn_dilation=(1, 1),
                                      xvector_output_dim=8, num_buckets=8, max_bucket_distance=16))
    out = {}
    for judge in (HubertCTCJudge.from_model(asr, vocab, "test-hubert-tiny", "rand0"),
                  WavLMXVectorJudge.from_model(spk, "test-wavlm-tiny", "rand0")):
        if judge.info.id not in judges:
            register_judge(judge)
        out[judge.info.kind] = judges.get(judge.info.id)
    return out


def _pair(speechlike):
    ref = Audio(speechlike(16000, 1.0, seed=3), 16000)
    deg = Audio(ref.samples * 0.5 + 0.01 * np.random.default_rng(0).standard_normal(ref.samples.shape)
                .astype(np.float32), 16000)
    return ref, deg


def test_model_judges_end_to_end(tiny_judges, speechlike):
    task = ip.InformationPreservationTask()
    ids = ["asr_errors:test-hubert-tiny", "asr_errors_ceiling:test-hubert-tiny", "asr_ref_words:test-hubert-tiny",
           "spk_sim:test-wavlm-tiny", "spk_sim_ceiling:test-wavlm-tiny"]
    assert task.metric_ids(ids) == ids  # all registered as metrics with the judge in their settings
    ref, deg = _pair(speechlike)
    out = task.score(Item("x", "x.wav", text="the cat sat"), ref, deg, ids)
    assert [o.error for o in out] == [None] * len(ids)
    assert out[2].value == 3
    assert -1.0 <= out[3].value <= 1.0 and out[3].judge == "test-wavlm-tiny@rand0"
    assert metrics.get(ids[0]).info.settings["judge"] == "test-hubert-tiny@rand0"
    # cached: a second op-point re-uses the ceiling transcript without calling the model again
    calls = []
    judge = tiny_judges["asr"]
    original = judge.transcribe
    judge.transcribe = lambda waves: calls.append(len(waves)) or original(waves)
    try:
        task.score(Item("x", "x.wav", text="the cat sat"), ref, Audio(deg.samples * 0.9, 16000), ids[:2])
    finally:
        judge.transcribe = original
    assert calls == [1]


def test_rows_never_mix_judges(tiny_judges, speechlike):
    task = ip.InformationPreservationTask()
    ids = ["asr_errors:test-hubert-tiny", "asr_ref_words:test-hubert-tiny", "spk_sim:test-wavlm-tiny",
           "asr_errors:unknown-judge"]
    ref, deg = _pair(speechlike)
    out = task.score(Item("x", "x.wav", text="a cat"), ref, deg, ids)
    for o in out[:3]:
        judge_id = o.metric.split(":", 1)[1]
        assert o.judge == judges.get(judge_id).info.ref
    assert out[3].error and out[3].value is None  # an unknown judge fails its cells, not the others
    rows = pd.DataFrame([
        {"dataset": "d", "codec": "c", "codec_family": "f", "task": "information_preservation", "item_id": f"i{i}",
         "metric": f"{m}:{j}", "value": v, "status": "ok", "duration_s": 1.0}
        for i in range(3) for j, (err, words) in (("A", (1, 10)), ("B", (5, 10)))
        for m, v in (("asr_errors", err), ("asr_ref_words", words), ("asr_errors_ceiling", 0))])
    s = corpus_summary(rows).set_index("metric")
    assert s.loc["wer:A", "mean"] == pytest.approx(0.1) and s.loc["wer:B", "mean"] == pytest.approx(0.5)
    assert s.loc["wer_delta:B", "mean"] == pytest.approx(0.5)


def test_missing_text_is_an_error_cell(tiny_judges, speechlike):
    ref, deg = _pair(speechlike)
    out = ip.InformationPreservationTask().score(Item("x", "x.wav"), ref, deg, ["asr_errors:test-hubert-tiny"])
    assert out[0].value is None and "no reference text" in out[0].error


def test_unavailable_judges_say_what_to_install():
    ok, why = judges.get("whisper-large-v3").availability()
    if not ok:
        assert "openai-whisper" in why
    assert judges.get("whisper-medium.en").info.normaliser == "whisper_english"


# -- runner: dataset-level task and offline judges on the embedded corpus --------------------------
class _EnergyTokens(torch.nn.Module):
    """A token 'codec' for tests: per 20 ms frame, log-energy bin and zero-crossing bin."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        frames = torch.nn.functional.pad(x[:, 0], (0, (-x.shape[-1]) % 320)).unflatten(-1, (-1, 320))
        energy = (frames.pow(2).mean(-1) + 1e-8).log10()
        zc = (frames[..., 1:] * frames[..., :-1] < 0).float().mean(-1)
        return torch.stack([((energy + 8) * 2).clamp(0, 15), (zc * 32).clamp(0, 15)], 1).long()


def _test_codec():
    from bench.codecs import codecs, register_codec
    from bench.codecs.base import CodecMeta
    from bench.codecs.neural import TokenCodec

    if "test-energy-tokens" in codecs:
        return
    meta = CodecMeta(id="test-energy-tokens", family="test", kind="tokens", sample_rate=16000,
                     bitrate_bps=50 * 8.0, frame_rate=50.0, codebook_sizes=(16, 16))

    @register_codec(meta)
    class EnergyCodec(TokenCodec):
        def load(self, device="cpu", weights=None, random_init=True):
            super().load(device, random_init=True)

        def build_pretrained(self, path):
            return _EnergyTokens()

        def build_random(self):
            return _EnergyTokens()

        def encode_frames(self, audio):
            return self.model(audio)

        def decode_frames(self, codes):
            rng = torch.Generator().manual_seed(0)
            amp = (10 ** (codes[:, :1].float() / 2 - 4)).sqrt().repeat_interleave(320, -1)
            return amp * torch.randn(amp.shape, generator=rng)


def test_runner_text_alignment_and_offline_judges(tmp_path, monkeypatch):
    from bench.runner.run import RunConfig, run
    from bench.runner.store import read_results

    _test_codec()
    monkeypatch.setattr(ta.ProbeConfig, "cpu", classmethod(lambda cls: TINY))
    # 8 embedded utterances (4 held out by the deterministic split, 4 train) keep the test short
    from bench.data import resolve_dataset
    from bench.data.embedded import embedded_dir
    from bench.data.manifest import write_manifest

    items = resolve_dataset("embedded").items
    train, held = ta.TextAlignmentTask().split(items)
    write_manifest(train[:4] + held[:4], tmp_path / "data" / "manifest.jsonl")
    (tmp_path / "data" / "audio").symlink_to(embedded_dir() / "audio")
    config = RunConfig(codecs=["test-energy-tokens"], tasks=["text_alignment", "information_preservation"],
                       data=str(tmp_path / "data" / "manifest.jsonl"), out=tmp_path / "run", workers=1,
                       progress=False, cache_dir=tmp_path / "c")
    run_dir = run(config)
    df = read_results(run_dir)
    mi = df[df.task == "text_alignment"]
    assert mi.status.eq("ok").all(), mi.error.dropna().unique()
    assert set(mi.item_id) == {it.id for it in held[:4]}
    ipr = df[df.task == "information_preservation"]
    assert ipr.status.eq("ok").all(), ipr.error.dropna().unique()
    assert (ipr.judge.str.split("@").str[0] == ipr.metric.str.split(":").str[1]).all()
    summary = pd.read_csv(run_dir / "summary.csv").set_index(["task", "metric"])
    ceiling = summary.loc[("information_preservation", "wer_ceiling:pocketsphinx")]
    resynth = summary.loc[("information_preservation", "wer:pocketsphinx")]
    print(f"\npocketsphinx ceiling WER on 8 embedded utterances: {ceiling['mean']:.3f} "
          f"[{ceiling['ci_low']:.3f}, {ceiling['ci_high']:.3f}]; noise-vocoder resynthesis: {resynth['mean']:.3f}")
    assert 0.0 <= ceiling["mean"] < 0.95 and ceiling["ci_low"] <= ceiling["mean"] <= ceiling["ci_high"]
    assert resynth["mean"] > ceiling["mean"]  # a noise vocoder loses words
    sim = summary.loc[("information_preservation", "spk_sim_ceiling:resemblyzer"), "mean"]
    assert 0.5 < sim <= 1.0
    for m in ("mi_contrastive_bits_per_char", "mi_lower_bound_bits_per_kbit", "probe_wer"):
        assert np.isfinite(summary.loc[("text_alignment", m), "mean"])
    # a rerun writes nothing new and trains nothing
    before = len(df)
    monkeypatch.setattr(ta, "run_probe", lambda *a, **k: (_ for _ in ()).throw(AssertionError("retrained")))
    run(config)
    assert len(read_results(run_dir)) == before
