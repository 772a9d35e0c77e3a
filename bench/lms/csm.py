"""Sesame CSM: a Llama backbone + depth decoder over Mimi tokens; TTS conditioned on a speaker prompt.

Loaded through ``transformers.CsmForConditionalGeneration``. For zero-shot TTS the prompt is one
segment (speaker ``0``, prompt transcript + prompt audio) followed by the target text of the same
speaker, as in Sesame's voice-prompting example. The tiny random build keeps the real structure
(backbone, depth decoder, Mimi codec with 4 codebooks of 64), lays out the same segment by hand
with a byte tokenizer, and forbids the three special code ids (pad/eos/unused) that a trained
model learns not to emit mid-stream, so every sampled frame is decodable by the codec.
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
from bench.lms.base import (
    Generated,
    GenerationRequest,
    LMMeta,
    NetworkLM,
    byte_tokens,
    randomize_mimi_codebooks,
    resample,
)

K, CODEBOOK, TEXT_VOCAB = 4, 64, 300
SPECIAL_CODES = [CODEBOOK, CODEBOOK + 1, CODEBOOK + 2]
AUDIO_TOKEN, AUDIO_EOS, TEXT_PAD = TEXT_VOCAB - 2, TEXT_VOCAB - 1, TEXT_VOCAB - 3


@register_lm(LMMeta(
    id="csm-1b", family="csm", kind="model", tasks=frozenset({"tts"}), sample_rate=24000,
    codec="mimi (32 codebooks × 2048, 12.5 Hz)", weights=WeightsSource(uri="hf://sesame/csm-1b"),
    license="Apache-2.0 (gated on the hub)",
    citation="Sesame, Crossing the uncanny valley of conversational voice (CSM), 2025",
    implementation="transformers CsmForConditionalGeneration",
    notes="speaker prompt as one context segment of speaker 0; pretrained path not run here (gated weights)"))
class CSM(NetworkLM):
    requires = ("transformers",)

    def build_random(self) -> Any:
        from transformers import CsmForConditionalGeneration

        model = CsmForConditionalGeneration(self.tiny_config())
        randomize_mimi_codebooks(model.codec_model.quantizer)
        self.processor = None
        return model

    def build_pretrained(self, path: Path | None) -> Any:
        from transformers import AutoProcessor, CsmForConditionalGeneration

        root = resolve_weights(self.meta, path)  # type: ignore[arg-type]  # duck-typed meta
        self.processor = AutoProcessor.from_pretrained(root)
        return CsmForConditionalGeneration.from_pretrained(root)

    def after_load(self) -> None:
        self.sample_rate = int(self.model.config.codec_config.sampling_rate)
        self.frame_rate = float(self.model.config.codec_config.frame_rate)

    @staticmethod
    def tiny_config():
        from transformers import CsmConfig, CsmDepthDecoderConfig, MimiConfig

        vocab = CODEBOOK + 3
        mimi = MimiConfig(hidden_size=32, num_filters=4, num_hidden_layers=1, intermediate_size=64,
                          num_attention_heads=2, num_key_value_heads=2, head_dim=16, codebook_dim=16,
                          vector_quantization_hidden_dimension=16, upsample_groups=32, codebook_size=CODEBOOK,
                          num_quantizers=K)
        depth = CsmDepthDecoderConfig(num_codebooks=K, backbone_hidden_size=32, vocab_size=vocab, hidden_size=32,
                                      intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                                      num_key_value_heads=2, head_dim=16, max_position_embeddings=K + 1)
        return CsmConfig(num_codebooks=K, vocab_size=vocab, text_vocab_size=TEXT_VOCAB, hidden_size=32,
                         intermediate_size=64, num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=2,
                         head_dim=16, max_position_embeddings=2048, codebook_pad_token_id=CODEBOOK + 2,
                         codebook_eos_token_id=0, audio_token_id=AUDIO_TOKEN, audio_eos_token_id=AUDIO_EOS,
                         pad_token_id=TEXT_PAD, bos_token_id=1, eos_token_id=2,
                         depth_decoder_config=depth.to_dict(), codec_config=mimi.to_dict())

    def _inputs(self, request: GenerationRequest) -> dict[str, torch.Tensor]:
        prompt = None
        if request.prompt_audio is not None:
            assert request.prompt_sample_rate
            prompt = resample(request.prompt_audio, request.prompt_sample_rate, self.sample_rate)
        if self.processor is not None:
            turns = []
            if prompt is not None:
                turns.append({"role": "0", "content": [{"type": "text", "text": request.prompt_text},
                                                       {"type": "audio", "path": prompt}]})
            turns.append({"role": "0", "content": [{"type": "text", "text": request.text}]})
            enc = self.processor.apply_chat_template(turns, tokenize=True, return_dict=True)
            return {k: v.to(self.device) for k, v in enc.items()}
        ids = byte_tokens(f"[0]{request.prompt_text}", TEXT_PAD) if prompt is not None else []
        out: dict[str, torch.Tensor] = {}
        if prompt is not None:
            x = torch.from_numpy(prompt)[None, None].to(self.device)
            with torch.inference_mode():
                n_frames = int(self.model.codec_model.encode(x).audio_codes.shape[-1])
            ids += [AUDIO_TOKEN] * n_frames + [AUDIO_EOS]
            out["input_values"] = x
            out["input_values_cutoffs"] = torch.tensor([[x.shape[-1]]], device=self.device)
        ids += byte_tokens(f"[0]{request.text}", TEXT_PAD)
        out["input_ids"] = torch.tensor([ids], device=self.device)
        out["attention_mask"] = torch.ones_like(out["input_ids"])
        return out

    def generate(self, request: GenerationRequest) -> Generated:
        self.check_task(request)
        if not self.loaded:
            raise CodecError(f"{self.meta.id}: call load() first")
        torch.manual_seed(request.seed)
        extra = {"suppress_tokens": SPECIAL_CODES, "depth_decoder_suppress_tokens": SPECIAL_CODES} \
            if self.random_init else {}
        with torch.inference_mode():
            out = self.model.generate(**self._inputs(request), do_sample=True, depth_decoder_do_sample=True,
                                      max_new_tokens=max(int(request.max_duration_s * self.frame_rate), 2),
                                      output_audio=True, **extra)
        wave = out[0] if isinstance(out, list) else out
        return Generated(wave.float().cpu().numpy().reshape(-1).astype(np.float32), self.sample_rate)

    @property
    def has_codec(self) -> bool:
        return True

    def resynthesize(self, audio: np.ndarray, sample_rate: int) -> Generated:
        x = torch.from_numpy(resample(audio, sample_rate, self.sample_rate))[None, None].to(self.device)
        with torch.inference_mode():
            codes = self.model.codec_model.encode(x).audio_codes
            y = self.model.codec_model.decode(codes).audio_values
        return Generated(y[0].float().cpu().numpy().mean(axis=0)[: x.shape[-1]].astype(np.float32), self.sample_rate,
                         codes.cpu().numpy())
