"""Judges: the pinned models behind model-based metrics (ASR for WER, speaker embeddings for SIM, MOS).

A number such as "WER 4.2" means nothing without the model that transcribed the audio, its
revision, the text normaliser and the rate the audio was resampled to. Each judge states these in
its :class:`JudgeInfo`, and every result row it produces carries ``judge = id@revision``; the
metric ids name the judge too (``asr_errors:pocketsphinx``), so rows from two judges can never be
averaged together. Built-in judges live in one module per family; third parties register through
the ``codecbench.judges`` entry-point group. Heavy packages are imported in ``load`` only, and
``availability`` says what to install when one is missing.
"""

from __future__ import annotations

import importlib.util
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np

from bench.registry import Registry

JudgeKind = Literal["asr", "speaker", "mos"]


@dataclass(frozen=True)
class JudgeInfo:
    """What a judge is, exactly: enough to reproduce its numbers elsewhere."""

    id: str
    kind: JudgeKind
    revision: str
    """Pinned model revision (hub commit, checkpoint sha256, or package version for packaged models)."""
    sample_rate: int
    """Audio is resampled (soxr VHQ) and mixed to mono at this rate before the judge sees it."""
    model: str
    """Where the weights come from: ``hf://org/repo``, a URL, or ``package:<name>`` when bundled."""
    implementation: str
    requires: tuple[str, ...] = ()
    """Import names the judge needs."""
    install: str = ""
    """What to install when a requirement is missing (shown by ``availability``)."""
    normaliser: str | None = None
    """Text normaliser applied to hypothesis and reference (ASR judges), see :mod:`bench.judges.text`."""
    offline: bool = False
    """True when the model ships inside its package, so the judge runs without any download."""
    description: str = ""

    @property
    def ref(self) -> str:
        """``id@revision``: the value of the ``judge`` column of every row this judge produces."""
        return f"{self.id}@{self.revision}"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["requires"] = list(self.requires)
        d["ref"] = self.ref
        return d


class Judge(ABC):
    """Base of all judges: availability, lazy loading, batched calls on mono float32 arrays."""

    info: JudgeInfo
    batch_size: int = 8

    def __init__(self) -> None:
        self._loaded = False
        self.device = "cpu"

    def availability(self) -> tuple[bool, str]:
        missing = [n for n in self.info.requires if importlib.util.find_spec(n) is None]
        if missing:
            how = f"; install with `{self.info.install}`" if self.info.install else ""
            return False, f"judge {self.info.id} needs the Python package(s) {', '.join(missing)}{how}"
        return True, ""

    def ensure_loaded(self, device: str = "cpu") -> None:
        if not self._loaded:
            ok, why = self.availability()
            if not ok:
                raise RuntimeError(why)
            self.device = device
            self.load(device)
            self._loaded = True

    @abstractmethod
    def load(self, device: str) -> None:
        """Load the model (called once per process, on first use)."""


class ASRJudge(Judge):
    @abstractmethod
    def transcribe(self, waves: Sequence[np.ndarray]) -> list[str]:
        """Mono float32 waves at ``info.sample_rate`` → raw transcripts (normalised later)."""


class SpeakerJudge(Judge):
    @abstractmethod
    def embed(self, waves: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Mono float32 waves at ``info.sample_rate`` → one speaker embedding per wave."""


class MOSJudge(Judge):
    @abstractmethod
    def score(self, waves: Sequence[np.ndarray]) -> list[float]:
        """Mono float32 waves at ``info.sample_rate`` → one predicted MOS per wave."""


def hf_weights_status(repo: str, revision: str) -> tuple[bool, str]:
    """Whether a hub model is in the local Hugging Face cache (no network is touched)."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return False, "needs huggingface_hub (pip install transformers)"
    hit = try_to_load_from_cache(repo, "config.json", revision=revision)
    if isinstance(hit, str):
        return True, ""
    return False, (f"weights of hf://{repo}@{revision} are not in the Hugging Face cache: run once online, "
                   f"or `huggingface-cli download {repo} --revision {revision}`")


BUILTIN_JUDGES = (
    "bench.judges.pocketsphinx",
    "bench.judges.whisper",
    "bench.judges.hubert_ctc",
    "bench.judges.resemblyzer",
    "bench.judges.wavlm",
    "bench.judges.dnsmos",
    "bench.judges.utmos",
)

judges: Registry[Judge] = Registry("judge", "codecbench.judges", BUILTIN_JUDGES)


def register_judge(judge: Judge) -> Judge:
    """Register a judge instance and the metrics it scores (see :mod:`bench.metrics.task_scored`)."""
    from bench.metrics.task_scored import register_judge_metrics

    judges.register(judge.info.id, judge)
    register_judge_metrics(judge.info)
    return judge


def judge_class(cls: type[Judge]) -> type[Judge]:
    """Class decorator: register one default-constructed instance."""
    register_judge(cls())
    return cls


__all__ = ["ASRJudge", "Judge", "JudgeInfo", "MOSJudge", "SpeakerJudge", "judge_class", "judges", "register_judge"]
