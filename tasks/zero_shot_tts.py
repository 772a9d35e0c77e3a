"""Zero-shot TTS with a speaker prompt (VALL-E protocol), scored by pinned judges with ceilings.

The list comes from the run's dataset (``--data``), deterministically (same manifest and seed → same
list), by :func:`manifest_list`:

* **VALL-E protocol** on a manifest with text and speakers (``--data librispeech-test-clean`` after
  ``codecbench data build librispeech-test-clean SOURCE``): targets of 4–10 s; 3 s prompts.
  ``continuation``: prompt = the first 3 s of the target itself, text = the whole transcript.
  ``cross``: prompt = the first 3 s of another utterance of the same speaker (drawn with the seed),
  prompt text = that utterance's transcript (the whole transcript, as the 3 s cut has no word
  alignment — stated, not hidden). Entry ids are ``<utt>.cont`` / ``<utt>.cross``.
* **The list's own prompts** when the manifest pairs each utterance with one (``--data
  seed-tts-eval-en`` after ``codecbench data build seed-tts-eval-en SOURCE``): all entries ``cross``,
  the whole prompt file, entry id = the list's utterance id (so a folder of ``<utt>.wav`` outputs
  made for seed-tts-eval scores as is).
* The embedded corpus: its utterances are 3.4–4.8 s, too short for 3 s prompts, so it uses **1.5 s**
  prompts and keeps every utterance.

Per entry and seed the LM generates; per entry the values are the mean over seeds (seed = 0..n-1),
so the bootstrap CI of the summary resamples entries (utterances), the independent unit. For the
``continuation`` setting the judged speech is prompt + generated audio (the text covers both); SIM
uses the generated part only. Metrics, per judge J (``<measure>:J``):

* ASR: ``asr_errors`` (generated), ``asr_errors_ceiling`` (the real target utterance: ground-truth
  ceiling), ``asr_errors_resyn`` (the target resynthesised by the LM's own codec: codec ceiling),
  ``asr_ref_words``, ``wer_utt`` / ``wer_utt_ceiling``; the summary turns counts into corpus WER with CIs.
* speaker: ``sim_o`` (generated vs the original prompt audio), ``sim_r`` (generated vs the prompt
  resynthesised by the LM's codec; fails with the reason when the LM has none), ``sim_o_ceiling``
  (real target vs prompt), ``sim_o_resyn`` (resynthesised target vs prompt).
* MOS: ``mos``, ``mos_ceiling``, ``mos_resyn``.

Generation runs in the driver (:mod:`bench.runner.lm_stage`), not in scoring workers: one model is
loaded once and its requests run in list order.
"""

from __future__ import annotations

import random
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from bench.tasks.information_preservation import _cosine, split_metric

from bench.audio import Audio, load_audio, resample
from bench.data.manifest import Dataset, safe_join
from bench.judges import ASRJudge, MOSJudge, SpeakerJudge, judges
from bench.judges.cache import cached_call
from bench.judges.text import normalise, word_errors
from bench.lms.base import CodecLM, Generated, GenerationRequest, to_mono
from bench.metrics import MetricInfo
from bench.metrics.task_scored import TaskScoredMetric, _register_once, judge_metric_id
from bench.numerics import flushed_denormals
from bench.task import CellOutcome, Task, register_task

SETTINGS = ("continuation", "cross")
ZS_MEASURES = {
    "asr": [("asr_errors", "lower", "words"), ("asr_errors_ceiling", "lower", "words"),
            ("asr_errors_resyn", "lower", "words"), ("asr_ref_words", "lower", "words"),
            ("wer_utt", "lower", "ratio"), ("wer_utt_ceiling", "lower", "ratio")],
    "speaker": [("sim_o", "higher", "cosine"), ("sim_r", "higher", "cosine"), ("sim_o_ceiling", "higher", "cosine"),
                ("sim_o_resyn", "higher", "cosine")],
    "mos": [("mos", "higher", "MOS"), ("mos_ceiling", "higher", "MOS"), ("mos_resyn", "higher", "MOS")],
}
DESCRIPTIONS = {
    "asr_errors_resyn": "word errors of the target utterance resynthesised by the LM's codec (codec ceiling)",
    "sim_o": "speaker cosine of the generated audio against the original prompt audio (SIM-o)",
    "sim_r": "speaker cosine of the generated audio against the prompt resynthesised by the LM's codec (SIM-r)",
    "sim_o_ceiling": "speaker cosine of the real target utterance against the prompt (ground-truth ceiling)",
    "sim_o_resyn": "speaker cosine of the codec-resynthesised target against the prompt (codec ceiling)",
    "mos_resyn": "predicted MOS of the codec-resynthesised target (codec ceiling)",
}


@dataclass(frozen=True)
class TTSEntry:
    """One list entry: a target to say, in the voice of a prompt cut [prompt_start, prompt_end) seconds."""

    id: str
    setting: str
    target_path: str
    target_text: str
    prompt_path: str
    prompt_text: str
    prompt_start: float = 0.0
    prompt_end: float | None = None
    speaker: str | None = None
    target_duration: float | None = None


def _pick_cross(rng: random.Random, pool: list, exclude) -> object | None:
    others = [x for x in pool if x is not exclude]
    return rng.choice(others) if others else None


def _entries_from(items: list[tuple[str, str, str, str, float]], prompt_s: float, seed: int,
                  settings: Sequence[str]) -> list[TTSEntry]:
    """items: (id, path, text, speaker, duration), already filtered and sorted by id."""
    rng = random.Random(seed)
    by_spk: dict[str, list] = defaultdict(list)
    for it in items:
        by_spk[it[3]].append(it)
    out = []
    for it in items:
        uid, path, text, spk, dur = it
        if "continuation" in settings:
            out.append(TTSEntry(f"{uid}.cont", "continuation", path, text, path, "", 0.0, prompt_s, spk, dur))
        if "cross" in settings:
            other = _pick_cross(rng, by_spk[spk], it)
            if other is not None:
                out.append(TTSEntry(f"{uid}.cross", "cross", path, text, other[1], other[2], 0.0, prompt_s, spk, dur))
    return out


def protocol(dataset: Dataset) -> tuple[float, float, float]:
    """(prompt seconds, shortest, longest target): VALL-E's 3 s and 4–10 s, or 1.5 s and all on the embedded corpus."""
    embedded = dataset.name.split("-")[0] == "embedded"  # the corpus and subsets of it (embedded-*.jsonl)
    return (1.5, 0.0, float("inf")) if embedded else (3.0, 4.0, 10.0)


def manifest_list(dataset: Dataset, *, seed: int = 0, settings: Sequence[str] = SETTINGS) -> list[TTSEntry]:
    """The list of a manifest with text (and speakers): its own prompt pairs, else VALL-E's protocol."""
    usable = [it for it in dataset.items if not it.error and it.text]
    listed = [it for it in usable if it.prompt_audio]
    if listed:  # seed-tts-eval and other lists that fix the prompt: whole prompt files, entry id = list id
        return [TTSEntry(it.id, "cross", str(dataset.path_of(it)), it.text or "",
                         str(safe_join(dataset.root, it.prompt_audio or "")), it.prompt_text or "", 0.0, None,
                         it.speaker, it.duration) for it in sorted(listed, key=lambda it: it.id)]
    prompt_s, lo, hi = protocol(dataset)
    items = sorted(((it.id, str(dataset.path_of(it)), it.text or "", it.speaker or it.id, float(it.duration or 0.0))
                    for it in usable if lo <= (it.duration or 0.0) <= hi), key=lambda x: x[0])
    return _entries_from(items, prompt_s, seed, settings)


def _register_metrics() -> None:
    for _, judge in judges.items():
        for measure, direction, unit in ZS_MEASURES[judge.info.kind]:
            mid = judge_metric_id(measure, judge.info.id)
            if mid.split(":")[0] in {"asr_errors", "asr_errors_ceiling", "asr_ref_words", "wer_utt",
                                     "wer_utt_ceiling", "mos", "mos_ceiling"}:
                continue  # registered by the judge itself, same meaning
            info = judge.info
            _register_once(TaskScoredMetric(MetricInfo(
                id=mid, version=f"1+{info.revision}+{info.normaliser or 'none'}", direction=direction,
                sample_rate=info.sample_rate, reference=f"{info.implementation} ({info.model})",
                settings={"judge": info.ref, "judge_kind": info.kind, "normaliser": info.normaliser,
                          "judge_sample_rate": info.sample_rate},
                unit=unit, description=DESCRIPTIONS.get(measure, measure)), "zero_shot_tts"))


def _cut(audio: Audio, start: float, end: float | None) -> tuple[np.ndarray, int]:
    x = to_mono(audio.samples)
    a = int(round(start * audio.sample_rate))
    b = len(x) if end is None else int(round(end * audio.sample_rate))
    return x[a:b], audio.sample_rate


def _at(x: np.ndarray, sr: int, rate: int) -> np.ndarray:
    return np.ascontiguousarray(resample(x[None], sr, rate)[0], dtype=np.float32)


def resynthesise(lm: CodecLM, truth: tuple[np.ndarray, int] | None, prompt: tuple[np.ndarray, int]
                 ) -> tuple[tuple[np.ndarray, int] | None, tuple[np.ndarray, int] | None, str]:
    """The real target and the prompt through the LM's own codec (the codec ceiling and SIM-r)."""
    error = f"{lm.meta.id} has no codec in this wrapper (generated-folder or codec-less model)"
    if not lm.has_codec:
        return None, None, error
    try:
        with flushed_denormals():
            resyn_truth = None
            if truth is not None:
                g = lm.resynthesize(*truth)
                resyn_truth = (g.audio, g.sample_rate)
            g = lm.resynthesize(*prompt)
        return resyn_truth, (g.audio, g.sample_rate), error
    except Exception as exc:
        return None, None, f"resynthesis: {type(exc).__name__}: {exc}"


def score_by_judge(metric_ids: Sequence[str], gen_wall: float, resyn_error: str, undefined: str,
                   judge_values: Callable[[Any], dict[str, float]]) -> list[CellOutcome]:
    """Run each judge once for all its metrics; a missing value or a judge failure is a failed cell."""
    by_judge: dict[str, list[str]] = defaultdict(list)
    for m in metric_ids:
        by_judge[split_metric(m)[1]].append(m)
    out: dict[str, CellOutcome] = {}
    for judge_id, ids in by_judge.items():
        t0 = time.perf_counter()
        judge = None
        try:
            judge = judges.get(judge_id)
            judge.ensure_loaded()
            values = judge_values(judge)
            wall = (time.perf_counter() - t0) / len(ids) + gen_wall
            for m in ids:
                measure = split_metric(m)[0]
                v = values.get(measure)
                err = None
                if v is None:
                    err = resyn_error if "resyn" in measure or measure == "sim_r" else undefined.format(measure=measure)
                out[m] = CellOutcome(m, None if v is None else float(v), err, wall, judge.info.ref)
        except Exception as exc:
            wall = (time.perf_counter() - t0) / len(ids) + gen_wall
            for m in ids:
                out[m] = CellOutcome(m, None, f"{type(exc).__name__}: {exc}", wall,
                                     judge.info.ref if judge is not None else None)
    return [out[m] for m in metric_ids]


@register_task
class ZeroShotTTSTask(Task):
    name = "zero_shot_tts"
    description = ("VALL-E-protocol zero-shot TTS of codec-LMs (--lms): WER, SIM-o, SIM-r, MOS with ground-truth "
                   "and codec-resynthesis ceilings, mean over seeds, bootstrap CI over utterances")
    needs_text = True
    lm_task = "tts"
    """Generation tasks are run by bench.runner.lm_stage on codec-LMs, never on codec op-points."""
    default_metrics = (
        "asr_errors:pocketsphinx", "asr_errors_ceiling:pocketsphinx", "asr_errors_resyn:pocketsphinx",
        "asr_ref_words:pocketsphinx", "wer_utt:pocketsphinx", "wer_utt_ceiling:pocketsphinx",
        "sim_o:resemblyzer", "sim_r:resemblyzer", "sim_o_ceiling:resemblyzer", "sim_o_resyn:resemblyzer",
        "mos:dnsmos-ovrl", "mos_ceiling:dnsmos-ovrl", "mos_resyn:dnsmos-ovrl",
    )

    def __init__(self) -> None:
        _register_metrics()

    def entries(self, dataset: Dataset, seed: int = 0) -> list[TTSEntry]:
        return manifest_list(dataset, seed=seed)

    def evaluate_entry(self, lm: CodecLM, entry: TTSEntry, metric_ids: Sequence[str],
                       n_seeds: int = 1, max_seconds: float | None = None) -> list[CellOutcome]:
        """Generate ``n_seeds`` times and score; a failure fails this entry's cells with the reason."""
        start = time.perf_counter()
        try:
            target = load_audio(entry.target_path) if entry.target_path else None
            prompt, psr = _cut(load_audio(entry.prompt_path), entry.prompt_start, entry.prompt_end)
            dur = entry.target_duration or (target.duration if target else 5.0)
            max_s = max(dur - (entry.prompt_end or 0.0), 1.0) if entry.setting == "continuation" else dur
            max_s = min(max_s, max_seconds) if max_seconds else max_s
            with flushed_denormals():
                gens: list[Generated] = [lm.generate(GenerationRequest(
                    "tts", entry.target_text, prompt, psr, entry.prompt_text, seed, max_s, entry.id))
                    for seed in range(n_seeds)]
        except Exception as exc:
            msg = f"generation: {type(exc).__name__}: {exc}"
            return [CellOutcome(m, None, msg, time.perf_counter() - start) for m in metric_ids]
        gen_wall = (time.perf_counter() - start) / max(len(metric_ids), 1)
        truth = _cut(target, 0.0, None) if target is not None else None
        resyn_target, resyn_prompt, resyn_error = resynthesise(lm, truth, (prompt, psr))
        return score_by_judge(
            metric_ids, gen_wall, resyn_error, "no real target audio in this list (seed-tts-eval lists may omit it)",
            lambda judge: self._judge(judge, entry, target, (prompt, psr), gens, resyn_target, resyn_prompt))

    @staticmethod
    def _judge(judge, entry: TTSEntry, target: Audio | None, prompt: tuple[np.ndarray, int],
               gens: list[Generated], resyn_target, resyn_prompt) -> dict[str, float]:
        rate = judge.info.sample_rate
        p = _at(*prompt, rate)
        if entry.setting == "continuation":
            spoken = [np.concatenate([p, _at(g.audio, g.sample_rate, rate)]) for g in gens]
        else:
            spoken = [_at(g.audio, g.sample_rate, rate) for g in gens]
        generated = [_at(g.audio, g.sample_rate, rate) for g in gens]
        tgt = _at(*_cut(target, 0.0, None), rate) if target is not None else None
        rt = _at(*resyn_target, rate) if resyn_target is not None else None
        rp = _at(*resyn_prompt, rate) if resyn_prompt is not None else None
        info = judge.info
        v: dict[str, float] = {}
        if isinstance(judge, ASRJudge):
            waves = spoken + [w for w in (tgt, rt) if w is not None]
            hyps = cached_call(info.ref, "transcript", waves, rate, judge.transcribe)
            norm = info.normaliser or "basic"
            truth = normalise(entry.target_text, norm)
            errs = [word_errors(truth, normalise(h, norm)) for h in hyps]
            n = len(spoken)
            v["asr_errors"] = float(np.mean([e.errors for e in errs[:n]]))
            v["wer_utt"] = float(np.mean([e.wer for e in errs[:n]]))
            v["asr_ref_words"] = float(errs[0].ref_words)
            rest = errs[n:]
            if tgt is not None:
                v["asr_errors_ceiling"], v["wer_utt_ceiling"] = float(rest[0].errors), float(rest[0].wer)
                rest = rest[1:]
            if rt is not None:
                v["asr_errors_resyn"] = float(rest[0].errors)
        elif isinstance(judge, SpeakerJudge):
            waves = [p, *generated] + [w for w in (rp, tgt, rt) if w is not None]
            emb = cached_call(info.ref, "embedding", waves, rate, judge.embed)
            e_p, e_g, rest = emb[0], emb[1:1 + len(generated)], emb[1 + len(generated):]
            v["sim_o"] = float(np.mean([_cosine(e_p, e) for e in e_g]))
            if rp is not None:
                v["sim_r"] = float(np.mean([_cosine(rest[0], e) for e in e_g]))
                rest = rest[1:]
            if tgt is not None:
                v["sim_o_ceiling"] = _cosine(e_p, rest[0])
                rest = rest[1:]
            if rt is not None:
                v["sim_o_resyn"] = _cosine(e_p, rest[0])
        elif isinstance(judge, MOSJudge):
            waves = spoken + [w for w in (tgt, rt) if w is not None]
            scores = cached_call(info.ref, "mos", waves, rate, judge.score)
            n = len(spoken)
            v["mos"] = float(np.mean(scores[:n]))
            rest = list(scores[n:])
            if tgt is not None:
                v["mos_ceiling"] = float(rest.pop(0))
            if rt is not None:
                v["mos_resyn"] = float(rest.pop(0))
        else:
            raise TypeError(f"judge {info.id} has no known kind")
        return v
