"""The codec-LM side that USLM and VALL-E X share: loading, the prompt's codes, seeded generation, decoding.

Both wrap a :class:`~bench.lms.valle_arch.ValleModel` whose tokens come from a codec already in
codecbench's codec registry (SpeechTokenizer, EnCodec). The codec is built from that registry by the
op-point id in ``meta.codec`` (its own pinned weights, or its tiny random build beside a tiny random
LM), so the prompt is coded, and the output decoded and resynthesised, by exactly the codec the
benchmark scores elsewhere. A family supplies its config, its text frontend and its checkpoint reading.
"""

from __future__ import annotations

import zlib
from abc import abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bench.codecs.base import Codec, Codes
from bench.errors import CodecError
from bench.lms.base import Generated, GenerationRequest, NetworkLM, resample, to_mono
from bench.lms.valle_arch import Sampling, ValleModel

#: Upstream's AR length limit: stop after 16 frames per text token.
FRAMES_PER_TEXT_TOKEN = 16


def fold_symbol_ids(symbols: Sequence[str], vocab_size: int, reserved: int) -> list[int]:
    """Stable ids in [reserved, vocab_size) for tiny random builds, which have no symbol table file."""
    span = vocab_size - reserved
    return [reserved + zlib.crc32(s.encode()) % span for s in symbols]


class ValleCodecLM(NetworkLM):
    """A VALL-E-family model over one registered codec op-point; text frontends come from subclasses."""

    sampling = Sampling()
    requires_prompt = False

    # -- what a family provides ------------------------------------------------------------------
    @abstractmethod
    def build_random(self) -> ValleModel:
        """The real structure, narrow and shallow, with the real vocabularies; its text frontend without files."""

    @abstractmethod
    def build_pretrained(self, path: Path | None) -> ValleModel:
        """The official checkpoint, strictly loaded, and its text frontend with the checkpoint's token files."""

    @abstractmethod
    def text_ids(self, request: GenerationRequest) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Text token ids [S] of prompt transcript + target text, and per-token language ids (or None)."""

    # -- loading ---------------------------------------------------------------------------------
    def weight_sources(self) -> list[Any]:
        from bench.codecs import codecs

        codec = codecs.get(self.meta.codec).meta  # prompts are coded and outputs decoded by it
        return [*super().weight_sources(), *([codec] if codec.weights is not None else [])]

    def after_load(self) -> None:
        from bench.codecs import codecs

        self.codec: Codec = codecs.get(self.meta.codec).build()
        self.codec.load(self.device, random_init=self.random_init)
        cfg, cm = self.model.cfg, self.codec.meta
        if cm.codebook_sizes != (cfg.n_audio_tokens,) * cfg.n_quantizers:
            raise CodecError(f"{self.meta.id}: {cm.id} has codebooks {cm.codebook_sizes}, the LM expects "
                             f"{cfg.n_quantizers} × {cfg.n_audio_tokens}")
        assert cm.frame_rate
        self.sample_rate, self.frame_rate = cm.sample_rate, float(cm.frame_rate)

    # -- codec -----------------------------------------------------------------------------------
    def at_codec_rate(self, audio: np.ndarray, sample_rate: int) -> torch.Tensor:
        return torch.from_numpy(resample(to_mono(audio), sample_rate, self.sample_rate))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Codes [K, T] of mono audio ``x`` [N] at the codec's rate."""
        with torch.inference_mode():
            coded = self.codec.encode(x[None, None], torch.tensor([x.numel()]))
        assert isinstance(coded, Codes)
        return coded.item(0).to(self.device)

    def decode(self, codes: torch.Tensor, n_samples: int | None = None) -> np.ndarray:
        """Mono float32 audio of codes [K, T] (``n_samples`` long, else the frames' full length)."""
        n = n_samples or int(round(codes.shape[-1] * self.sample_rate / self.frame_rate))
        with torch.inference_mode():
            audio, lengths = self.codec.decode(Codes(codes[None].cpu(), torch.tensor([codes.shape[-1]]), [n]))
        return audio[0].mean(0)[: int(lengths[0])].float().cpu().numpy().astype(np.float32)

    @property
    def has_codec(self) -> bool:
        return True

    def resynthesize(self, audio: np.ndarray, sample_rate: int) -> Generated:
        self._require_loaded()
        x = self.at_codec_rate(audio, sample_rate)
        codes = self.encode(x)
        return Generated(self.decode(codes, x.numel()), self.sample_rate, codes[None].cpu().numpy())

    # -- generation ------------------------------------------------------------------------------
    def _require_loaded(self) -> None:
        if not self.loaded:
            raise CodecError(f"{self.meta.id}: call load() first")

    def generate(self, request: GenerationRequest) -> Generated:
        """Codes of the speech after the prompt (the prompt itself is not returned), decoded by the codec."""
        self.check_task(request)
        self._require_loaded()
        k = self.model.cfg.n_quantizers
        if request.prompt_audio is not None:
            if request.prompt_sample_rate is None:
                raise CodecError(f"{self.meta.id}: prompt audio without prompt_sample_rate")
            prompt = self.encode(self.at_codec_rate(request.prompt_audio, request.prompt_sample_rate))
        elif self.requires_prompt:
            raise CodecError(f"{self.meta.id}: zero-shot TTS needs a speaker prompt (prompt audio + its transcript)")
        else:
            prompt = torch.zeros(k, 0, dtype=torch.long, device=self.device)
        text, languages = self.text_ids(request)
        text = text.to(self.device)
        languages = languages.to(self.device) if languages is not None else None
        max_frames = max(1, min(int(request.max_duration_s * self.frame_rate), FRAMES_PER_TEXT_TOKEN * text.numel()))
        generator = torch.Generator(device=self.device).manual_seed(request.seed)
        codes = self.model.generate(text, prompt.T, max_frames, generator, self.sampling, languages)
        return Generated(self.decode(codes), self.sample_rate, codes[None].cpu().numpy())
