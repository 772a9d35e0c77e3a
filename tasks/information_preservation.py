"""Information preservation (SLMTokBench): does content and speaker survive resynthesis?

For each utterance the codec output is transcribed by an ASR judge and compared with the
reference transcript (WER), and embedded by a speaker judge and compared with the original
(SIM); each number is stored next to the *same judge's* score on the original audio, the ceiling.

How each number is computed (one row per utterance and metric, ``judge`` column = id@revision):

* audio: reference and codec output aligned and resampled to the judge's rate by
  :func:`bench.audio.prepare_pair` (mono, soxr VHQ, equal length);
* ``asr_errors:J`` / ``asr_errors_ceiling:J``: S + D + I word errors (jiwer Levenshtein) of the
  judge's transcript of the codec output / of the original, after the judge's normaliser
  (Whisper's English normaliser by default) on both sides; ``asr_ref_words:J``: reference words.
  The summary's corpus WER is Σ errors / Σ reference words over utterances
  (:mod:`bench.analysis.corpus`); ``wer_utt:J`` is per-utterance WER whose mean is the
  utterance-mean WER, labelled as such;
* ``spk_sim:J``: cosine similarity of the embeddings of original and codec output;
  ``spk_sim_ceiling:J``: cosine of the embeddings of the original's two halves (a same-speaker,
  real-speech reference point: identical audio would trivially give 1);
* ``mos:J`` / ``mos_ceiling:J``: a non-intrusive MOS judge on codec output / original.

Judge outputs are cached by (audio hash, judge id@revision), so the ceiling is computed once per
utterance whatever the number of op-points. The paper's judges were Whisper (WER) and WavLM-TDNN
(SIM); the offline defaults here are pocketsphinx and resemblyzer, so their absolute numbers are
not the paper's — compare codecs under one judge only.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Sequence

import numpy as np

from bench.audio import Audio, prepare_pair
from bench.data.manifest import Item
from bench.judges import ASRJudge, Judge, MOSJudge, SpeakerJudge, judges
from bench.judges.cache import cached_call
from bench.judges.text import normalise, word_errors
from bench.task import CellOutcome, Task, register_task


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    denom = float(np.linalg.norm(a) * np.linalg.norm(b))
    if denom == 0.0:
        raise ValueError("zero speaker embedding")
    return float(a @ b / denom)


def _asr(judge: ASRJudge, item: Item, ref: np.ndarray, deg: np.ndarray) -> dict[str, float]:
    if not item.text:
        raise ValueError(f"item {item.id} has no reference text (the manifest's 'text' field)")
    info = judge.info
    hyp_ref, hyp_deg = cached_call(info.ref, "transcript", [ref, deg], info.sample_rate, judge.transcribe)
    norm = info.normaliser or "basic"
    truth = normalise(item.text, norm)
    e_deg = word_errors(truth, normalise(hyp_deg, norm))
    e_ref = word_errors(truth, normalise(hyp_ref, norm))
    return {"asr_errors": e_deg.errors, "asr_errors_ceiling": e_ref.errors, "asr_ref_words": e_deg.ref_words,
            "wer_utt": e_deg.wer, "wer_utt_ceiling": e_ref.wer}


def _speaker(judge: SpeakerJudge, ref: np.ndarray, deg: np.ndarray) -> dict[str, float]:
    info = judge.info
    half = ref.shape[-1] // 2
    emb = cached_call(info.ref, "embedding", [ref, deg, ref[:half], ref[half:]], info.sample_rate, judge.embed)
    return {"spk_sim": _cosine(emb[0], emb[1]), "spk_sim_ceiling": _cosine(emb[2], emb[3])}


def _mos(judge: MOSJudge, ref: np.ndarray, deg: np.ndarray) -> dict[str, float]:
    info = judge.info
    ref_mos, deg_mos = cached_call(info.ref, "mos", [ref, deg], info.sample_rate, judge.score)
    return {"mos": float(deg_mos), "mos_ceiling": float(ref_mos)}


def split_metric(metric_id: str) -> tuple[str, str]:
    measure, _, judge_id = metric_id.partition(":")
    if not judge_id:
        raise ValueError(f"{metric_id!r} is not a judge metric (<measure>:<judge id>)")
    return measure, judge_id


@register_task
class InformationPreservationTask(Task):
    name = "information_preservation"
    description = ("SLMTokBench information preservation: resynthesis WER and speaker similarity, each next to "
                   "the same judge's ceiling on the original audio")
    needs_text = True
    default_metrics = (
        "asr_errors:pocketsphinx", "asr_errors_ceiling:pocketsphinx", "asr_ref_words:pocketsphinx",
        "wer_utt:pocketsphinx", "wer_utt_ceiling:pocketsphinx",
        "spk_sim:resemblyzer", "spk_sim_ceiling:resemblyzer",
        "mos:dnsmos-ovrl", "mos_ceiling:dnsmos-ovrl",
    )

    def score(self, item: Item, reference: Audio, degraded: Audio, metric_ids: Sequence[str]) -> list[CellOutcome]:
        """Group the requested metrics by judge; one judge pass (cached) serves all its metrics."""
        by_judge: dict[str, list[str]] = defaultdict(list)
        for metric_id in metric_ids:
            by_judge[split_metric(metric_id)[1]].append(metric_id)
        outcomes: dict[str, CellOutcome] = {}
        for judge_id, ids in by_judge.items():
            start = time.perf_counter()
            judge: Judge | None = None
            try:
                judge = judges.get(judge_id)
                judge.ensure_loaded()
                ref, deg = prepare_pair(reference, degraded, judge.info.sample_rate)
                if isinstance(judge, ASRJudge):
                    values = _asr(judge, item, ref, deg)
                elif isinstance(judge, SpeakerJudge):
                    values = _speaker(judge, ref, deg)
                elif isinstance(judge, MOSJudge):
                    values = _mos(judge, ref, deg)
                else:
                    raise TypeError(f"judge {judge_id} has no known kind")
                wall = (time.perf_counter() - start) / len(ids)
                for metric_id in ids:
                    value = values[split_metric(metric_id)[0]]
                    outcomes[metric_id] = CellOutcome(metric_id, float(value), None, wall, judge.info.ref)
            except Exception as exc:  # every metric of this judge fails with the reason; others go on
                wall = (time.perf_counter() - start) / len(ids)
                ref_id = judge.info.ref if judge is not None else None
                for metric_id in ids:
                    outcomes[metric_id] = CellOutcome(metric_id, None, f"{type(exc).__name__}: {exc}", wall, ref_id)
        return [outcomes[m] for m in metric_ids]
