"""What a codec-LM is, what it is asked, and what it returns.

Every wrapped model answers one call, :meth:`CodecLM.generate`, with a :class:`GenerationRequest`
(task, text, optional speaker prompt audio + its transcript, seed, maximum duration). Models whose
audio tokenizer is inside the checkpoint also expose :meth:`CodecLM.resynthesize` (encode → decode
through that tokenizer) so a task can compute the codec-resynthesis ceiling and SIM-r.
"""

from __future__ import annotations

import importlib.util
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from bench.codecs.base import WeightsSource
from bench.errors import CodecError

LMTask = Literal["tts", "continuation", "text_to_music", "text_to_audio"]
LMKind = Literal["model", "outputs"]


@dataclass(frozen=True)
class LMMeta:
    """Typed metadata of one codec-LM row; what its leaderboard row states."""

    id: str
    family: str
    kind: LMKind
    tasks: frozenset[str]
    """Subset of {"tts", "continuation", "text_to_music", "text_to_audio"}."""
    sample_rate: int | None = None
    codec: str = ""
    """Op-point id of the codec registry the LM's tokens come from, where one exists (else a description)."""
    weights: WeightsSource | None = None
    license: str = ""
    citation: str = ""
    implementation: str = ""
    notes: str = ""
    options: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["tasks"] = sorted(self.tasks)
        return d

    @property
    def local_path_option(self) -> str:
        return f"--lm-path {self.id}=PATH"


@dataclass(frozen=True)
class WeightsAsset:
    """A file a codec-LM needs from elsewhere (text encoder, tokenizer), resolved like weights.

    ``id`` is its key in the config file's ``weights:`` table; ``codecbench fetch <owner>`` fetches it.
    """

    id: str
    owner: str
    weights: WeightsSource
    local_path_option: str = ""

    @property
    def family(self) -> str:
        return self.id

    @property
    def fetch_id(self) -> str:
        return self.owner


@dataclass(frozen=True)
class GenerationRequest:
    """One generation: what to say or play, in whose voice, with which seed."""

    task: str
    text: str = ""
    prompt_audio: np.ndarray | None = None
    """Mono float32 prompt (speaker prompt for TTS, the beginning for continuation)."""
    prompt_sample_rate: int | None = None
    prompt_text: str = ""
    seed: int = 0
    max_duration_s: float = 10.0
    item_id: str = ""
    """The list entry this request comes from (the generated-folder adapter finds files by it)."""


@dataclass
class Generated:
    """Mono float32 audio the model produced, and the codes it produced it from when known."""

    audio: np.ndarray
    sample_rate: int
    codes: np.ndarray | None = None


class CodecLM(ABC):
    """Base of codec-LM wrappers: availability, loading (pretrained or tiny random), generation."""

    requires: tuple[str, ...] = ()
    extra: str = ""
    """The optional-dependency group of codecbench that provides ``requires``, if any."""

    def __init__(self, meta: LMMeta):
        self.meta = meta
        self.device = torch.device("cpu")
        self.loaded = False

    def availability(self) -> tuple[bool, str]:
        missing = [n for n in self.requires if importlib.util.find_spec(n) is None]
        if missing:
            hint = f": install the optional extra `pip install 'codecbench[{self.extra}]'`" if self.extra else ""
            return False, f"needs the Python package(s) {', '.join(missing)}{hint}"
        return True, ""

    @abstractmethod
    def load(self, device: str | torch.device = "cpu", path: Path | None = None,
             random_init: bool = False) -> None:
        """Load weights from ``path`` (or the registered source), or build a tiny seeded random model."""

    @abstractmethod
    def generate(self, request: GenerationRequest) -> Generated:
        """Run one request; raises when the model does not do ``request.task``."""

    @property
    def has_codec(self) -> bool:
        return False

    def resynthesize(self, audio: np.ndarray, sample_rate: int) -> Generated:
        """Encode and decode ``audio`` through the LM's own audio tokenizer (codec ceiling, SIM-r)."""
        raise CodecError(f"{self.meta.id} has no audio tokenizer to resynthesise with")

    def weight_sources(self) -> list[Any]:
        """Metadata (``id`` + ``weights``) of every download the pretrained path needs; the LM's own first.

        Models whose text encoder, tokenizer file or audio codec comes from elsewhere add those, so
        ``codecbench fetch ID`` prepares an offline machine completely.
        """
        return [self.meta] if self.meta.weights is not None else []

    def fetch_weights(self) -> list[Path]:
        """Download every weight source ahead of time (``codecbench fetch``); [] when there is none."""
        from bench.codecs.weights import resolve_weights

        return [resolve_weights(m) for m in self.weight_sources()]

    def check_task(self, request: GenerationRequest) -> None:
        if request.task not in self.meta.tasks:
            raise CodecError(f"{self.meta.id} does not do {request.task!r} (it does {', '.join(sorted(self.meta.tasks))})")


class NetworkLM(CodecLM):
    """A codec-LM held as one torch network: its checkpoint, or a tiny seeded random build of the same classes.

    Subclasses say how to build each (``build_pretrained`` / ``build_random``, which may also set
    ``self.processor``) and what to read off the loaded model (``after_load``); loading itself is here.
    """

    processor: Any = None

    def load(self, device: str | torch.device = "cpu", path: Path | None = None, random_init: bool = False) -> None:
        self.device = torch.device(device)
        self.random_init = random_init
        if random_init:
            torch.manual_seed(0)
            model = self.build_random()
        else:
            model = self.build_pretrained(path)
        self.model = model.eval().to(self.device)
        self.after_load()
        self.loaded = True

    @abstractmethod
    def build_pretrained(self, path: Path | None) -> torch.nn.Module:
        """The official checkpoint (``path`` or the registered source), loaded strictly."""

    @abstractmethod
    def build_random(self) -> torch.nn.Module:
        """The same structure, tiny and seeded (torch's seed is set before this is called)."""

    def after_load(self) -> None:
        """Read rates and settings off the loaded model (default: nothing)."""


@dataclass(frozen=True)
class LMEntry:
    """A registry row: metadata plus the class that implements it."""

    meta: LMMeta
    cls: type[CodecLM]

    def build(self) -> CodecLM:
        return self.cls(self.meta)


def to_mono(audio: np.ndarray) -> np.ndarray:
    a = np.asarray(audio, dtype=np.float32)
    return a.mean(axis=0) if a.ndim == 2 else a.reshape(-1)


def resample(audio: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """Mono float32 resampling with soxr (the rest of codecbench uses it too)."""
    if sr_in == sr_out:
        return np.asarray(audio, dtype=np.float32)
    import soxr

    return soxr.resample(np.asarray(audio, dtype=np.float32), sr_in, sr_out, quality="VHQ").astype(np.float32)


def byte_tokens(text: str, vocab_size: int, offset: int = 2) -> list[int]:
    """A tokenizer for tiny random models (no tokenizer files exist offline): UTF-8 bytes folded into the vocab."""
    span = max(vocab_size - offset, 1)
    return [offset + (b % span) for b in text.encode()] or [offset]


def randomize_mimi_codebooks(quantizer: Any) -> None:
    """Random-init Mimi codebooks are zero, so every code would decode alike: draw them instead."""
    import torch

    with torch.no_grad():
        for rvq in (quantizer.semantic_residual_vector_quantizer, quantizer.acoustic_residual_vector_quantizer):
            for layer in rvq.layers:
                layer.codebook.embed_sum.normal_()
                layer.codebook.cluster_usage.fill_(1.0)
                layer.codebook._embed = None
