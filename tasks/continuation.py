"""Speech continuation (AudioLM protocol): the LM hears the first seconds of an utterance and goes on.

List (deterministic, sorted by utterance id): every utterance whose remainder after the prompt is at
least ``MIN_CONTINUATION_S`` long; prompt = its first **3 s** (e.g. ``--data librispeech-test-clean``:
4–10 s utterances) or **1.5 s** on the embedded corpus (its utterances are 3.4–4.8 s); see
:func:`manifest_list`. The ground-truth continuation is the rest of the same utterance. The LM is
asked for as many seconds as the real continuation lasts (capped by ``--lm-max-seconds``); the
generated-folder adapter serves ``<utterance id>_<seed>.wav`` holding the continuation only.

Why not WER against the utterance's transcript: a continuation is free to say anything, and the
transcript has no word timing to cut at the prompt boundary. What is measured, per judge J:

* ``asr_errors:J`` / ``asr_ref_words:J`` / ``wer_utt:J``: the generated continuation's transcript
  against the **same ASR judge's transcript of the real continuation** (both transcribed, both
  normalised): how close the LM's words come to what the speaker went on to say; the summary turns
  the counts into corpus WER with a CI. There is no ground-truth WER ceiling (it is 0 by
  construction); ``asr_errors_resyn:J`` is the codec ceiling (the real continuation resynthesised
  by the LM's codec, against the same reference).
* ``sim_o:J``: speaker cosine of the generated continuation against the prompt (SIM-o), ``sim_r:J``
  against the prompt resynthesised by the LM's codec; ``sim_o_ceiling:J``: the real continuation
  against the prompt (ground-truth ceiling); ``sim_o_resyn:J``: its codec resynthesis.
* ``mos:J`` (DNSMOS of the generated continuation alone), ``mos_ceiling:J`` (real continuation),
  ``mos_resyn:J`` (its codec resynthesis).

Metric ids are shared with ``zero_shot_tts`` (rows carry the task, so the summaries stay apart).
Per entry, values are the mean over seeds 0..n-1; the bootstrap CI resamples utterances.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
from bench.tasks.information_preservation import _cosine
from bench.tasks.zero_shot_tts import (
    TTSEntry,
    _at,
    _cut,
    _register_metrics,
    protocol,
    resynthesise,
    score_by_judge,
)

from bench.audio import load_audio
from bench.data.manifest import Dataset
from bench.judges import ASRJudge, MOSJudge, SpeakerJudge
from bench.judges.cache import cached_call
from bench.judges.text import normalise, word_errors
from bench.lms.base import CodecLM, Generated, GenerationRequest
from bench.numerics import flushed_denormals
from bench.task import CellOutcome, Task, register_task

MIN_CONTINUATION_S = 1.0


def _entry(uid: str, path: str, speaker: str | None, dur: float, prompt_s: float, text: str = "") -> TTSEntry:
    return TTSEntry(uid, "continuation", path, text, path, "", 0.0, prompt_s, speaker, dur)


def manifest_list(dataset: Dataset) -> list[TTSEntry]:
    """Entries from any manifest (no transcript needed), under the same protocol as ``zero_shot_tts``."""
    prompt_s, lo, hi = protocol(dataset)
    out = [_entry(it.id, str(dataset.path_of(it)), it.speaker, float(it.duration or 0.0), prompt_s, it.text or "")
           for it in dataset.items
           if not it.error and lo <= (it.duration or 0.0) <= hi and (it.duration or 0.0) - prompt_s >= MIN_CONTINUATION_S]
    return sorted(out, key=lambda e: e.id)


@register_task
class ContinuationTask(Task):
    name = "continuation"
    description = ("AudioLM-protocol speech continuation of codec-LMs (--lms): SIM-o to the prompt, DNSMOS, and WER "
                   "of the continuation against the ASR transcript of the real continuation; ground-truth and "
                   "codec ceilings, mean over seeds, bootstrap CI over utterances")
    lm_task = "continuation"
    default_metrics = (
        "asr_errors:pocketsphinx", "asr_errors_resyn:pocketsphinx", "asr_ref_words:pocketsphinx",
        "wer_utt:pocketsphinx",
        "sim_o:resemblyzer", "sim_r:resemblyzer", "sim_o_ceiling:resemblyzer", "sim_o_resyn:resemblyzer",
        "mos:dnsmos-ovrl", "mos_ceiling:dnsmos-ovrl", "mos_resyn:dnsmos-ovrl",
    )

    def __init__(self) -> None:
        _register_metrics()  # the shared ids (sim_o, sim_r, ..., *_resyn)

    def entries(self, dataset: Dataset, seed: int = 0) -> list[TTSEntry]:
        """``seed`` is unused: the list has no random draw (kept for the runner's call)."""
        return manifest_list(dataset)

    def evaluate_entry(self, lm: CodecLM, entry: TTSEntry, metric_ids: Sequence[str],
                       n_seeds: int = 1, max_seconds: float | None = None) -> list[CellOutcome]:
        """Generate ``n_seeds`` continuations and score; a failure fails this entry's cells with the reason."""
        start = time.perf_counter()
        try:
            audio = load_audio(entry.target_path)
            prompt, psr = _cut(audio, 0.0, entry.prompt_end)
            truth = _cut(audio, entry.prompt_end or 0.0, None)
            max_s = max(len(truth[0]) / truth[1], MIN_CONTINUATION_S)
            max_s = min(max_s, max_seconds) if max_seconds else max_s
            with flushed_denormals():
                gens: list[Generated] = [lm.generate(GenerationRequest(
                    "continuation", "", prompt, psr, "", seed, max_s, entry.id)) for seed in range(n_seeds)]
        except Exception as exc:
            msg = f"generation: {type(exc).__name__}: {exc}"
            return [CellOutcome(m, None, msg, time.perf_counter() - start) for m in metric_ids]
        gen_wall = (time.perf_counter() - start) / max(len(metric_ids), 1)
        resyn_truth, resyn_prompt, resyn_error = resynthesise(lm, truth, (prompt, psr))
        return score_by_judge(
            metric_ids, gen_wall, resyn_error, "{measure} is not defined for continuation (see tasks/continuation.py)",
            lambda judge: self._judge(judge, (prompt, psr), truth, gens, resyn_truth, resyn_prompt))

    @staticmethod
    def _judge(judge, prompt: tuple[np.ndarray, int], truth: tuple[np.ndarray, int], gens: list[Generated],
               resyn_truth, resyn_prompt) -> dict[str, float]:
        rate = judge.info.sample_rate
        p, t = _at(*prompt, rate), _at(*truth, rate)
        generated = [_at(g.audio, g.sample_rate, rate) for g in gens]
        rt = _at(*resyn_truth, rate) if resyn_truth is not None else None
        rp = _at(*resyn_prompt, rate) if resyn_prompt is not None else None
        info = judge.info
        v: dict[str, float] = {}
        if isinstance(judge, ASRJudge):
            waves = [t, *generated] + ([rt] if rt is not None else [])
            hyps = cached_call(info.ref, "transcript", waves, rate, judge.transcribe)
            norm = info.normaliser or "basic"
            reference = normalise(hyps[0], norm)  # the same judge's transcript of the real continuation
            errs = [word_errors(reference, normalise(h, norm)) for h in hyps[1:]]
            n = len(generated)
            v["asr_errors"] = float(np.mean([e.errors for e in errs[:n]]))
            v["wer_utt"] = float(np.mean([e.wer for e in errs[:n]]))
            v["asr_ref_words"] = float(len(reference.split()))
            if rt is not None:
                v["asr_errors_resyn"] = float(errs[n].errors)
        elif isinstance(judge, SpeakerJudge):
            waves = [p, t, *generated] + [w for w in (rp, rt) if w is not None]
            emb = cached_call(info.ref, "embedding", waves, rate, judge.embed)
            e_p, e_t, e_g, rest = emb[0], emb[1], emb[2:2 + len(generated)], emb[2 + len(generated):]
            v["sim_o"] = float(np.mean([_cosine(e_p, e) for e in e_g]))
            v["sim_o_ceiling"] = _cosine(e_p, e_t)
            if rp is not None:
                v["sim_r"] = float(np.mean([_cosine(rest[0], e) for e in e_g]))
                rest = rest[1:]
            if rt is not None:
                v["sim_o_resyn"] = _cosine(e_p, rest[0])
        elif isinstance(judge, MOSJudge):
            waves = [t, *generated] + ([rt] if rt is not None else [])
            scores = cached_call(info.ref, "mos", waves, rate, judge.score)
            v["mos_ceiling"] = float(scores[0])
            v["mos"] = float(np.mean(scores[1:1 + len(generated)]))
            if rt is not None:
                v["mos_resyn"] = float(scores[-1])
        else:
            raise TypeError(f"judge {info.id} has no known kind")
        return v
