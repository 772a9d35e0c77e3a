"""Metrics that a task scores itself: judge-based (need the transcript) and probe-based (need all tokens).

They are registered like any metric so every row carries a version and a direction, and the
result schema stays one row per (item, metric). Their ``compute`` cannot score a bare
(reference, degraded) pair — WER needs the reference text, mutual information needs a trained
probe — so it raises and names the task that scores it.

Judge metrics are named ``<measure>:<judge id>``; the judge's ``id@revision`` is in the metric's
settings (hence in the ``judge`` column of each row) and its revision and normaliser are in the
metric version (hence in every cache key). Per-utterance counts (``asr_errors``,
``asr_ref_words``) are stored instead of per-utterance WER so that the corpus WER
Σ errors / Σ reference words is recomputed from rows (see :mod:`bench.analysis.corpus`).
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from bench.errors import MetricError, UsageError
from bench.metrics import Metric, MetricInfo, metrics

#: (measure, direction, unit, description) for each kind of judge.
JUDGE_MEASURES: dict[str, list[tuple[str, Literal["higher", "lower"], str, str]]] = {
    "asr": [
        ("asr_errors", "lower", "words",
         "word errors (substitutions + deletions + insertions) of the judge's transcript of the codec output "
         "against the reference text, both normalised"),
        ("asr_errors_ceiling", "lower", "words",
         "the same judge's word errors on the original audio (the ceiling)"),
        ("asr_ref_words", "lower", "words",
         "words in the normalised reference text (a count, the corpus-WER denominator; direction unused)"),
        ("wer_utt", "lower", "ratio",
         "per-utterance WER of the codec output; its plain mean is the utterance-mean WER, not the corpus WER"),
        ("wer_utt_ceiling", "lower", "ratio", "per-utterance WER of the original audio"),
    ],
    "speaker": [
        ("spk_sim", "higher", "cosine",
         "cosine similarity of the judge's speaker embeddings of the original and the codec output"),
        ("spk_sim_ceiling", "higher", "cosine",
         "cosine similarity of the judge's embeddings of the two halves of the original: how similar the "
         "judge finds real speech of this speaker to itself"),
    ],
    "mos": [
        ("mos", "higher", "MOS", "predicted MOS of the codec output"),
        ("mos_ceiling", "higher", "MOS", "predicted MOS of the original audio"),
    ],
}

#: Metrics of the text-alignment probe, one row per held-out utterance.
PROBE_MEASURES: list[tuple[str, Literal["higher", "lower"], str, str]] = [
    ("mi_contrastive_bits", "higher", "bits",
     "the paper's estimator term log2 q(y_i|x_i) − mean_j log2 q(y_j|x_i); its mean over held-out "
     "utterances is Î"),
    ("mi_lower_bound_bits", "higher", "bits",
     "−log2 p_LM(y_i) + log2 q(y_i|x_i); its mean is the lower bound H(Y) − CE"),
    ("probe_nll_bits", "lower", "bits", "−log2 q(y_i|x_i), the probe's CTC cross-entropy"),
    ("text_entropy_bits", "lower", "bits", "−log2 p_LM(y_i) under the character n-gram LM of the train texts"),
    ("text_chars", "lower", "chars", "characters of the probe label (a count; direction unused)"),
    ("token_kbits", "lower", "kbit", "kilobits of the token view for this utterance (a count)"),
    ("probe_errors", "lower", "words", "word errors of the probe's greedy CTC transcript"),
    ("probe_ref_words", "lower", "words", "words in the probe's reference (a count)"),
    ("ctc_repeat", "lower", "x", "how many times each token frame was repeated to satisfy CTC's length constraint"),
]


class TaskScoredMetric(Metric):
    """A metric whose value only its task can compute."""

    def __init__(self, info: MetricInfo, task: str):
        self.info = info
        self.task = task

    def compute(self, reference: np.ndarray, degraded: np.ndarray) -> float:
        raise MetricError(f"{self.info.id} is scored by the {self.task!r} task (it needs more than an audio pair)")


def _register_once(metric: TaskScoredMetric) -> None:
    """Register unless the id exists with the same info (module re-imports); differing info is an error."""
    try:
        metrics.register(metric.info.id, metric)
    except UsageError:
        if metrics.get(metric.info.id).info != metric.info:
            raise


def judge_metric_id(measure: str, judge_id: str) -> str:
    return f"{measure}:{judge_id}"


def register_judge_metrics(info) -> list[str]:  # info: bench.judges.JudgeInfo (no import cycle)
    """Register the metrics of one judge; called by :func:`bench.judges.register_judge`."""
    ids = []
    for measure, direction, unit, description in JUDGE_MEASURES[info.kind]:
        metric_id = judge_metric_id(measure, info.id)
        m_info = MetricInfo(
            id=metric_id,
            version=f"1+{info.revision}+{info.normaliser or 'none'}",
            direction=direction,
            sample_rate=info.sample_rate,
            reference=f"{info.implementation} ({info.model})",
            settings={"judge": info.ref, "judge_kind": info.kind, "normaliser": info.normaliser,
                      "judge_sample_rate": info.sample_rate},
            unit=unit,
            description=description,
        )
        _register_once(TaskScoredMetric(m_info, "information_preservation"))
        ids.append(metric_id)
    return ids


def _register_builtin() -> None:
    from bench.judges import judges

    judges.names()  # importing the judge modules registers their metrics
    for measure, direction, unit, description in PROBE_MEASURES:
        info = MetricInfo(id=measure, version="1", direction=direction, sample_rate=16000,
                          reference="tasks/text_alignment.py (BLSTM-CTC probe)", unit=unit,
                          description=description)
        _register_once(TaskScoredMetric(info, "text_alignment"))


_register_builtin()
