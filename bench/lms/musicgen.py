"""MusicGen (Copet et al., 2023): text-to-music with a delayed-pattern decoder over EnCodec 32 kHz tokens.

Loaded through ``transformers.MusicgenForConditionalGeneration`` (T5 text encoder, decoder,
EnCodec audio tokenizer in one checkpoint). The tiny random build has the same three parts with
a 16 kHz EnCodec, 2 codebooks of 64 entries, and a byte tokenizer in place of T5's SentencePiece
files (which cannot be fetched offline); its output is noise, which is what the code path needs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from bench.codecs.base import WeightsSource
from bench.codecs.weights import resolve_weights
from bench.errors import CodecError
from bench.lms import register_lm
from bench.lms.base import Generated, GenerationRequest, LMMeta, NetworkLM, byte_tokens, resample

CITATION = "Copet et al., Simple and Controllable Music Generation, NeurIPS 2023 (arXiv:2306.05284)"


def _meta(size: str, notes: str = "") -> LMMeta:
    return LMMeta(id=f"musicgen-{size}", family="musicgen", kind="model", tasks=frozenset({"text_to_music"}),
                  sample_rate=32000, codec="encodec_32khz (4 codebooks × 2048, 50 Hz, delay pattern)",
                  weights=WeightsSource(uri=f"hf://facebook/musicgen-{size}"), license="CC-BY-NC-4.0",
                  citation=CITATION, implementation="transformers MusicgenForConditionalGeneration", notes=notes)


class MusicGen(NetworkLM):
    requires = ("transformers",)
    model_class = "MusicgenForConditionalGeneration"

    def after_load(self) -> None:
        self.sample_rate = int(self.model.config.audio_encoder.sampling_rate)
        self.frame_rate = float(self.model.config.audio_encoder.frame_rate)

    def build_pretrained(self, path: Path | None) -> Any:
        """The transformers checkpoint on disk, with its text processor."""
        import transformers

        root = resolve_weights(self.meta, path)  # type: ignore[arg-type]  # duck-typed meta
        self.processor = transformers.AutoProcessor.from_pretrained(root)
        return getattr(transformers, self.model_class).from_pretrained(root)

    def build_random(self) -> Any:
        """A tiny seeded model of the same classes; no processor (byte tokens stand in for T5's)."""
        import transformers

        model = getattr(transformers, self.model_class)(self.tiny_config())
        for layer in model.audio_encoder.quantizer.layers:  # zero-initialised: every code would decode alike
            layer.codebook.embed.normal_()
        self.processor = None
        return model

    def tiny_config(self):
        from transformers import EncodecConfig, MusicgenConfig, MusicgenDecoderConfig, T5Config

        text = T5Config(vocab_size=256, d_model=32, d_ff=64, d_kv=8, num_layers=1, num_heads=4)
        audio = EncodecConfig(sampling_rate=16000, upsampling_ratios=[8, 5, 4], num_filters=8, hidden_size=32,
                              codebook_size=64, codebook_dim=32, target_bandwidths=[1.5], num_lstm_layers=1)
        dec = MusicgenDecoderConfig(vocab_size=64, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                    ffn_dim=64, num_codebooks=2, max_position_embeddings=1024,
                                    pad_token_id=64, bos_token_id=64)
        return MusicgenConfig(text_encoder=text.to_dict(), audio_encoder=audio.to_dict(), decoder=dec.to_dict(),
                              decoder_start_token_id=64, pad_token_id=64)

    def _text_inputs(self, text: str) -> dict[str, torch.Tensor]:
        if self.processor is not None:
            enc = self.processor(text=[text], padding=True, return_tensors="pt")
            return {k: v.to(self.device) for k, v in enc.items()}
        ids = torch.tensor([byte_tokens(text, self.model.config.text_encoder.vocab_size) + [1]], device=self.device)
        return {"input_ids": ids, "attention_mask": torch.ones_like(ids)}

    def generate(self, request: GenerationRequest) -> Generated:
        self.check_task(request)
        if not self.loaded:
            raise CodecError(f"{self.meta.id}: call load() first")
        torch.manual_seed(request.seed)
        max_new = max(int(request.max_duration_s * self.frame_rate), 8)
        extra = {}
        if self.random_init:
            pad = self.model.config.decoder.pad_token_id
            extra = {"decoder_start_token_id": pad, "pad_token_id": pad}
        with torch.inference_mode():
            out = self.model.generate(**self._text_inputs(request.text), do_sample=True, max_new_tokens=max_new,
                                      return_dict_in_generate=True, **extra)
        audio = out.sequences if hasattr(out, "sequences") else out
        codes = getattr(out, "audio_codes", None)
        wave = audio[0].float().cpu().numpy().mean(axis=0)
        return Generated(wave.astype(np.float32), self.sample_rate,
                         codes.cpu().numpy() if isinstance(codes, torch.Tensor) else None)

    @property
    def has_codec(self) -> bool:
        return True

    def resynthesize(self, audio: np.ndarray, sample_rate: int) -> Generated:
        x = torch.from_numpy(resample(audio, sample_rate, self.sample_rate))[None, None].to(self.device)
        enc = self.model.audio_encoder
        with torch.inference_mode():
            coded = enc.encode(x)
            y = enc.decode(coded.audio_codes, coded.audio_scales)[0]
        return Generated(y[0].float().cpu().numpy().mean(axis=0)[: x.shape[-1]].astype(np.float32), self.sample_rate,
                         coded.audio_codes.cpu().numpy())


@register_lm(_meta("small"), _meta("medium"), _meta("large"))
class MusicGenText(MusicGen):
    """Text-only MusicGen checkpoints (300M, 1.5B, 3.3B)."""


@register_lm(LMMeta(id="musicgen-melody", family="musicgen", kind="model", tasks=frozenset({"text_to_music"}),
                    sample_rate=32000, codec="encodec_32khz (4 codebooks × 2048, 50 Hz, delay pattern)",
                    weights=WeightsSource(uri="hf://facebook/musicgen-melody"), license="CC-BY-NC-4.0",
                    citation=CITATION, implementation="transformers MusicgenMelodyForConditionalGeneration",
                    notes="chroma (melody) conditioning is not used by the tasks here; text-only generation"))
class MusicGenMelody(MusicGen):
    model_class = "MusicgenMelodyForConditionalGeneration"

    def tiny_config(self):
        from transformers import EncodecConfig, MusicgenMelodyConfig, MusicgenMelodyDecoderConfig, T5Config

        text = T5Config(vocab_size=256, d_model=32, d_ff=64, d_kv=8, num_layers=1, num_heads=4)
        audio = EncodecConfig(sampling_rate=16000, upsampling_ratios=[8, 5, 4], num_filters=8, hidden_size=32,
                              codebook_size=64, codebook_dim=32, target_bandwidths=[1.5], num_lstm_layers=1)
        dec = MusicgenMelodyDecoderConfig(vocab_size=64, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                          ffn_dim=64, num_codebooks=2, max_position_embeddings=1024,
                                          pad_token_id=64, bos_token_id=64)
        return MusicgenMelodyConfig(text_encoder=text.to_dict(), audio_encoder=audio.to_dict(),
                                    decoder=dec.to_dict(), decoder_start_token_id=64, pad_token_id=64)
