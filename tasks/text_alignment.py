"""Text alignment (SLMTokBench): how much text information do a tokenizer's tokens carry?

A downstream probe is trained to transcribe the tokens: token embedding (random init, one table
per codebook of the view, summed) → 2-layer BLSTM → linear → character CTC. It is trained on the
train split and evaluated on held-out utterances, where q(y|x) = exp(−CTC loss) is the probe's
likelihood of transcript y given tokens x. Reported, per held-out utterance (rows) and as
dataset aggregates in the summary (:mod:`bench.analysis.corpus`):

* ``mi_contrastive_bits``: the paper's estimator, Î = 1/N² Σᵢ Σⱼ [log q(yᵢ|xᵢ) − log q(yⱼ|xᵢ)]
  (a vCLUB-style contrastive estimate). Row i holds log2 q(yᵢ|xᵢ) − mean_j log2 q(yⱼ|xᵢ), so the
  mean of the rows is Î. The cross terms are exact when N ≤ ``max_exact`` (default 512); beyond,
  each i uses ``n_negatives`` j drawn uniformly (seeded) and the row is an unbiased estimate.
* ``mi_lower_bound_bits``: −log2 p_LM(yᵢ) + log2 q(yᵢ|xᵢ); its mean is Ĥ(Y) − CE, the
  Barber–Agakov bound I(X;Y) ≥ H(Y) − CE. Ĥ(Y) is the cross-entropy of the held-out transcripts
  under an interpolated Witten–Bell character n-gram (order 5) trained on the train transcripts
  (end-of-utterance included). Ĥ(Y) overestimates H(Y) in expectation, so this is an estimate of
  the bound, not a guaranteed bound; a probe that learnt nothing gives ≤ 0.
* normalisations (summary): per character Σ/Σ chars, per second Σ/Σ audio duration, per kbit of
  tokens Σ/Σ token kbits — i.e. MI bit rate / token bit rate, so 12.5 Hz and 75 Hz tokenizers
  compare; all in bits.
* ``probe_errors`` / ``probe_ref_words``: greedy-CTC word errors; summary probe WER = Σ/Σ.

CTC needs T ≥ L + (adjacent repeated labels). Low-frame-rate tokens violate it, so every frame of
every utterance is repeated r times, r = ceil(max_i need_i / min_i T_i) over train and held-out
utterances (one r per op-point, so all cross terms are feasible); r is in the ``ctc_repeat`` row.

Token views (task variants): ``text_alignment`` (all codebooks), ``text_alignment@rvq1`` (first
codebook), ``text_alignment@rvq1:k`` (first k). Splits: the embedded corpus is split
deterministically (every utterance whose sha256(id) mod 5 == 0 is held out); LibriSpeech uses
train-clean-100 for training when the run is on dev-clean or test-clean (the paper's WER set).
Everything is seeded; the probe is trained in float32 on one thread-pool, deterministically.

Relation to the paper: same probe architecture and estimator; the paper gives no code, no
n-gram/H(Y) and no normalisation, which are additions here.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace

import numpy as np

from bench.data.manifest import Item
from bench.judges.text import basic, word_errors
from bench.task import CellOutcome, Task, register_task

LN2 = math.log(2.0)
VOCAB = ["<blank>", " ", "'", *"abcdefghijklmnopqrstuvwxyz"]
CHAR_ID = {c: i for i, c in enumerate(VOCAB)}


def text_to_label(text: str) -> list[int]:
    """Basic-normalised characters that the probe vocabulary holds (digits and others dropped)."""
    return [CHAR_ID[c] for c in " ".join(basic(text).split()) if c in CHAR_ID and c != "<blank>"]


def label_to_text(label: Sequence[int]) -> str:
    return " ".join("".join(VOCAB[i] for i in label).split())


def ctc_need(label: Sequence[int]) -> int:
    """Frames CTC needs: one per label plus one blank between adjacent equal labels."""
    return len(label) + sum(1 for a, b in zip(label, label[1:], strict=False) if a == b)


@dataclass(frozen=True)
class ProbeConfig:
    """Probe hyper-parameters. The paper's: 1024-unit 2-layer BLSTM; ``cpu()`` is the embedded-corpus config."""

    embed_dim: int = 256
    hidden: int = 1024
    layers: int = 2
    epochs: int = 30
    batch_size: int = 16
    lr: float = 1e-3
    seed: int = 0
    max_exact: int = 512
    n_negatives: int = 256
    ngram_order: int = 5

    @classmethod
    def cpu(cls) -> ProbeConfig:
        return cls(embed_dim=64, hidden=128, epochs=40, batch_size=8, lr=3e-3)


@dataclass
class TokenItem:
    """One utterance's tokens in the chosen view ([K, T] ints), transcript and duration."""

    item_id: str
    codes: np.ndarray
    text: str
    duration: float


class CharNgram:
    """Interpolated Witten–Bell character n-gram with ``<s>`` padding and an end symbol; bits per string."""

    def __init__(self, order: int, texts: Sequence[Sequence[int]], vocab_size: int):
        self.order, self.v = order, vocab_size + 1  # + end symbol
        self.end = vocab_size
        self.counts: list[dict[tuple, Counter]] = [defaultdict(Counter) for _ in range(order)]
        for label in texts:
            seq = [-1] * (order - 1) + list(label) + [self.end]
            for pos in range(order - 1, len(seq)):
                for n in range(order):
                    self.counts[n][tuple(seq[pos - n : pos])][seq[pos]] += 1

    def _prob(self, history: tuple, sym: int) -> float:
        p = 1.0 / self.v
        for n in range(self.order):
            ctx = history[len(history) - n :] if n else ()
            c = self.counts[n].get(ctx)
            if not c:
                continue
            total, types = sum(c.values()), len(c)
            p = (c[sym] + types * p) / (total + types)
        return p

    def bits(self, label: Sequence[int]) -> float:
        seq = [-1] * (self.order - 1) + list(label) + [self.end]
        return -sum(math.log2(self._prob(tuple(seq[pos - self.order + 1 : pos]), seq[pos]))
                    for pos in range(self.order - 1, len(seq)))


def _build_probe(config: ProbeConfig, codebook_sizes: Sequence[int]):
    import torch
    from torch import nn

    class Probe(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.tables = nn.ModuleList(nn.Embedding(int(s), config.embed_dim) for s in codebook_sizes)
            self.blstm = nn.LSTM(config.embed_dim, config.hidden, num_layers=config.layers, bidirectional=True,
                                 batch_first=True)
            self.out = nn.Linear(2 * config.hidden, len(VOCAB))

        def forward(self, codes: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
            """codes [B, K, T] → log-probs [T, B, V] (CTC layout)."""
            x = sum(table(codes[:, k]) for k, table in enumerate(self.tables))
            packed = nn.utils.rnn.pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
            y, _ = self.blstm(packed)
            y, _ = nn.utils.rnn.pad_packed_sequence(y, batch_first=True, total_length=codes.shape[-1])
            return self.out(y).log_softmax(-1).transpose(0, 1)

    return Probe()


def _batch(items: Sequence[TokenItem], repeat: int):
    import torch

    lengths = torch.tensor([it.codes.shape[-1] * repeat for it in items])
    k = items[0].codes.shape[0]
    codes = torch.zeros(len(items), k, int(lengths.max()), dtype=torch.long)
    for i, it in enumerate(items):
        c = torch.from_numpy(np.repeat(it.codes.astype(np.int64), repeat, axis=-1))
        codes[i, :, : c.shape[-1]] = c
    return codes, lengths


def _labels(labels: Sequence[Sequence[int]]):
    import torch

    flat = torch.tensor([c for lab in labels for c in lab], dtype=torch.long)
    return flat, torch.tensor([len(lab) for lab in labels])


@dataclass
class ProbeResult:
    """Per held-out utterance numbers (bits) and what was done to get them."""

    item_ids: list[str]
    logq_self: np.ndarray
    """log2 q(y_i | x_i)"""
    logq_cross_mean: np.ndarray
    """mean_j log2 q(y_j | x_i), exact or subsampled"""
    lm_bits: np.ndarray
    chars: np.ndarray
    kbits: np.ndarray
    errors: np.ndarray
    ref_words: np.ndarray
    repeat: int
    exact_cross_terms: bool
    train_seconds: float

    @property
    def mi_contrastive(self) -> float:
        return float(np.mean(self.logq_self - self.logq_cross_mean))

    @property
    def mi_lower_bound(self) -> float:
        return float(np.mean(self.lm_bits + self.logq_self))


def run_probe(train: Sequence[TokenItem], test: Sequence[TokenItem], codebook_sizes: Sequence[int],
              config: ProbeConfig) -> ProbeResult:
    """Train the probe on ``train``; estimate on ``test``. Deterministic for a given config and input."""
    import torch
    from torch import nn

    if len(train) < 2 or len(test) < 2:
        raise ValueError(f"text alignment needs ≥ 2 train and ≥ 2 held-out utterances (got {len(train)}, {len(test)})")
    train_labels = [text_to_label(it.text) for it in train]
    test_labels = [text_to_label(it.text) for it in test]
    if any(not lab for lab in train_labels + test_labels):
        raise ValueError("an utterance has no transcript characters the probe can model")
    need = max(ctc_need(lab) for lab in train_labels + test_labels)
    min_t = min(it.codes.shape[-1] for it in [*train, *test])
    repeat = max(1, math.ceil(need / max(min_t, 1)))

    torch.manual_seed(config.seed)
    gen = torch.Generator().manual_seed(config.seed)
    probe = _build_probe(config, codebook_sizes)
    ctc = nn.CTCLoss(blank=0, reduction="none", zero_infinity=False)
    opt = torch.optim.Adam(probe.parameters(), lr=config.lr)
    start = time.perf_counter()
    probe.train()
    for _ in range(config.epochs):
        order = torch.randperm(len(train), generator=gen).tolist()
        for s in range(0, len(order), config.batch_size):
            idx = order[s : s + config.batch_size]
            codes, lengths = _batch([train[i] for i in idx], repeat)
            flat, label_len = _labels([train_labels[i] for i in idx])
            loss = ctc(probe(codes, lengths), flat, lengths, label_len)
            loss = (loss / label_len.clamp(min=1)).mean()
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(probe.parameters(), 5.0)
            opt.step()
    train_seconds = time.perf_counter() - start

    probe.eval()
    n = len(test)
    exact = n <= config.max_exact
    rng = np.random.default_rng(config.seed)
    logq_self, cross_mean, errors, ref_words = np.zeros(n), np.zeros(n), np.zeros(n), np.zeros(n)
    with torch.inference_mode():
        for i, it in enumerate(test):
            codes, lengths = _batch([it], repeat)
            logp = probe(codes, lengths)  # [T, 1, V]
            js = np.arange(n) if exact else rng.integers(0, n, size=config.n_negatives)
            flat, label_len = _labels([test_labels[j] for j in js])
            m = len(js)
            nll = ctc(logp.expand(-1, m, -1), flat, lengths.expand(m), label_len).double().numpy() / LN2
            logq = -nll
            own, own_len = _labels([test_labels[i]])
            logq_self[i] = -float(ctc(logp, own, lengths, own_len).double().item()) / LN2
            cross_mean[i] = float(logq.mean())
            best = logp[:, 0].argmax(-1).tolist()
            hyp = [c for k, c in enumerate(best) if c != 0 and (k == 0 or c != best[k - 1])]
            e = word_errors(label_to_text(test_labels[i]), label_to_text(hyp))
            errors[i], ref_words[i] = e.errors, e.ref_words
    lm = CharNgram(config.ngram_order, train_labels, len(VOCAB))
    return ProbeResult(
        item_ids=[it.item_id for it in test], logq_self=logq_self, logq_cross_mean=cross_mean,
        lm_bits=np.array([lm.bits(lab) for lab in test_labels]), chars=np.array([len(lab) for lab in test_labels]),
        kbits=np.zeros(n), errors=errors, ref_words=ref_words, repeat=repeat, exact_cross_terms=exact,
        train_seconds=train_seconds,
    )


def parse_view(view: str, n_codebooks: int) -> slice:
    """``all`` → every codebook; ``rvq1`` → the first; ``rvq1:k`` → the first k (checked against K)."""
    if view == "all":
        return slice(None)
    if view == "rvq1":
        return slice(0, 1)
    if view.startswith("rvq1:"):
        k = int(view.split(":", 1)[1])
        if not 1 <= k <= n_codebooks:
            raise ValueError(f"view {view} asks for {k} codebooks; the codec has {n_codebooks}")
        return slice(0, k)
    raise ValueError(f"unknown token view {view!r} (all, rvq1, rvq1:k)")


def held_out(item_id: str, fold: int = 5) -> bool:
    """Deterministic split independent of manifest order: sha256(id) mod ``fold`` == 0 is held out."""
    return int(hashlib.sha256(item_id.encode()).hexdigest(), 16) % fold == 0


#: Run dataset → the dataset the probe trains on (codes computed by the runner through the same codec).
TRAIN_DATASETS = {"librispeech-dev-clean": "librispeech-train-clean-100",
                  "librispeech-test-clean": "librispeech-train-clean-100"}


@dataclass
class DatasetOutcome:
    """One row of a dataset-level task: which utterance (or ``*``) and the cell."""

    item_id: str
    outcome: CellOutcome
    duration: float | None = None


class TextAlignmentTask(Task):
    """Dataset-level: the runner hands over every utterance's tokens of one op-point at once."""

    name = "text_alignment"
    description = ("SLMTokBench text alignment: mutual information between tokens and transcript "
                   "(contrastive estimate and H(Y) − CE bound, bits per utterance/char/s/kbit) and probe WER")
    needs_text = True
    dataset_level = True
    view = "all"
    default_metrics = ("mi_contrastive_bits", "mi_lower_bound_bits", "probe_nll_bits", "text_entropy_bits",
                       "text_chars", "token_kbits", "probe_errors", "probe_ref_words", "ctc_repeat")

    def probe_config(self, dataset_name: str) -> ProbeConfig:
        """The paper's probe on LibriSpeech; the small CPU probe on anything else (embedded corpus)."""
        return ProbeConfig() if dataset_name.startswith("librispeech") else ProbeConfig.cpu()

    def identity(self, dataset_name: str) -> dict:
        """Everything that changes the numbers besides the tokens: part of the cache key."""
        return {"task": self.name, "view": self.view, "probe": asdict(self.probe_config(dataset_name)), "v": 1}

    def train_dataset(self, dataset_name: str) -> str | None:
        """A separate dataset to train on, or None to split the run's dataset with :func:`held_out`."""
        return TRAIN_DATASETS.get(dataset_name)

    def split(self, items: Sequence[Item]) -> tuple[list[Item], list[Item]]:
        train = [it for it in items if not held_out(it.id)]
        test = [it for it in items if held_out(it.id)]
        return train, test

    def score(self, item, reference, degraded, metric_ids):  # noqa: ANN001 - never called per pair
        raise NotImplementedError("text_alignment is dataset-level: the runner calls evaluate_dataset")

    def evaluate_dataset(self, codebook_sizes: Sequence[int], frame_rate: float, dataset_name: str,
                         train: Sequence[TokenItem], test: Sequence[TokenItem],
                         metric_ids: Sequence[str]) -> list[DatasetOutcome]:
        """Train and estimate on one op-point's tokens; rows for the held-out utterances."""
        start = time.perf_counter()
        k = len(codebook_sizes)
        view = parse_view(self.view, k)
        sizes = list(codebook_sizes)[view]
        train_v = [replace(t, codes=t.codes[view]) for t in train]
        test_v = [replace(t, codes=t.codes[view]) for t in test]
        res = run_probe(train_v, test_v, sizes, self.probe_config(dataset_name))
        bits_per_frame = sum(math.log2(s) for s in sizes)
        kbits = np.array([t.codes.shape[-1] * bits_per_frame / 1000.0 for t in test_v])
        values = {
            "mi_contrastive_bits": res.logq_self - res.logq_cross_mean,
            "mi_lower_bound_bits": res.lm_bits + res.logq_self,
            "probe_nll_bits": -res.logq_self,
            "text_entropy_bits": res.lm_bits,
            "text_chars": res.chars.astype(float),
            "token_kbits": kbits,
            "probe_errors": res.errors,
            "probe_ref_words": res.ref_words,
            "ctc_repeat": np.full(len(test), float(res.repeat)),
        }
        wall = (time.perf_counter() - start) / max(1, len(test) * len(metric_ids))
        out = []
        for i, t in enumerate(test_v):
            for m in metric_ids:
                out.append(DatasetOutcome(t.item_id, CellOutcome(m, float(values[m][i]), None, wall), t.duration))
        return out


register_task(TextAlignmentTask)


def _variant(view: str) -> type[TextAlignmentTask]:
    return type(f"TextAlignment_{view.replace(':', '_')}", (TextAlignmentTask,),
                {"name": f"text_alignment@{view}", "view": view})


for _view in ("rvq1", "rvq1:2", "rvq1:4", "rvq1:8"):
    register_task(_variant(_view))
