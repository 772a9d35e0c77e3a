"""Moshi (Défossez et al., 2024): a Helium text backbone + depth transformer over two Mimi streams.

Loaded through ``transformers.MoshiForConditionalGeneration``. Moshi is a full-duplex dialogue model,
so the benchmark uses it for speech continuation (AudioLM-style): the prompt audio becomes Moshi's
own stream (``moshi_audio_codes``), the user stream is Mimi-coded silence of the same length, and
the text stream is Moshi's text padding token for every prompt frame (the prompt has no
frame-aligned transcript); the model then continues its own stream for ``max_duration_s``.
The output is the continuation only (the prompt frames are cut off). The tiny random build keeps
the structure (backbone, depth decoder, Mimi with 4 codebooks of 64) and a byte-free text stream.
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
from bench.lms.base import Generated, GenerationRequest, LMMeta, NetworkLM, randomize_mimi_codebooks, resample

K, CODEBOOK, TEXT_VOCAB = 4, 64, 64
TEXT_PADDING_ID = 3
"""Moshi's text padding token ("<pad>" of its SentencePiece vocab, id 3), emitted between words."""


@register_lm(LMMeta(
    id="moshiko", family="moshi", kind="model", tasks=frozenset({"continuation"}), sample_rate=24000,
    codec="mimi (8 codebooks × 2048, 12.5 Hz)",
    weights=WeightsSource(uri="hf://kyutai/moshiko-pytorch-bf16", revision="main"),
    license="CC-BY-4.0 (weights)",
    citation="Défossez et al., Moshi: a speech-text foundation model for real-time dialogue (arXiv:2410.00037)",
    implementation="transformers MoshiForConditionalGeneration",
    notes="continuation: prompt as Moshi's own stream, silent user stream, text padding over the prompt; "
          "revision 'main' (no pinned commit found offline); pretrained path not run here (no weights)"))
class Moshi(NetworkLM):
    requires = ("transformers",)

    text_pad = TEXT_PADDING_ID

    def build_random(self) -> Any:
        from transformers import MoshiForConditionalGeneration

        model = MoshiForConditionalGeneration(self.tiny_config())
        randomize_mimi_codebooks(model.audio_encoder.quantizer)
        return model

    def build_pretrained(self, path: Path | None) -> Any:
        from transformers import MoshiForConditionalGeneration

        root = resolve_weights(self.meta, path)  # type: ignore[arg-type]  # duck-typed meta
        return MoshiForConditionalGeneration.from_pretrained(root, dtype=torch.float32)

    def after_load(self) -> None:
        self.sample_rate = int(self.model.config.sampling_rate)
        self.frame_rate = float(self.model.config.audio_encoder_config.frame_rate)
        self.n_q = int(self.model.num_codebooks)

    @staticmethod
    def tiny_config():
        from transformers import MimiConfig, MoshiConfig

        mimi = MimiConfig(hidden_size=32, num_filters=4, num_hidden_layers=1, intermediate_size=64,
                          num_attention_heads=2, num_key_value_heads=2, head_dim=16, codebook_dim=16,
                          vector_quantization_hidden_dimension=16, upsample_groups=32, codebook_size=CODEBOOK,
                          num_quantizers=K)
        return MoshiConfig(vocab_size=TEXT_VOCAB, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                           num_key_value_heads=2, head_dim=16, ffn_dim=64, max_position_embeddings=512,
                           sliding_window=512, num_codebooks=K, audio_vocab_size=CODEBOOK,
                           audio_encoder_config=mimi.to_dict(),
                           depth_decoder_config={"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2,
                                                 "num_key_value_heads": 2, "head_dim": 16, "ffn_dim": 64,
                                                 "max_position_embeddings": K + 1, "sliding_window": K + 1})

    def _encode(self, x: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return self.model.audio_encoder.encode(x, num_quantizers=self.n_q).audio_codes

    def generate(self, request: GenerationRequest) -> Generated:
        self.check_task(request)
        if not self.loaded:
            raise CodecError(f"{self.meta.id}: call load() first")
        if request.prompt_audio is None or request.prompt_sample_rate is None:
            raise CodecError(f"{self.meta.id}: continuation needs prompt audio")
        prompt = resample(request.prompt_audio, request.prompt_sample_rate, self.sample_rate)
        x = torch.from_numpy(prompt)[None, None].to(self.device)
        moshi_codes = self._encode(x)
        user_codes = self._encode(torch.zeros_like(x))
        n = moshi_codes.shape[-1]
        ids = torch.full((1, n), self.text_pad, dtype=torch.long, device=self.device)
        torch.manual_seed(request.seed)
        max_new = max(int(round(request.max_duration_s * self.frame_rate)), 2) + 1  # the delay pattern drops one
        with torch.inference_mode():
            out = self.model.generate(input_ids=ids, user_audio_codes=user_codes, moshi_audio_codes=moshi_codes,
                                      attention_mask=torch.ones_like(ids), do_sample=True, depth_decoder_do_sample=True,
                                      max_new_tokens=max_new, return_audio_codes=True)
        codes = out.audio_codes[:, :, n:]  # the prompt frames are returned too: keep the continuation
        with torch.inference_mode():
            wave = self.model.audio_encoder.decode(codes).audio_values
        return Generated(wave[0].float().cpu().numpy().mean(axis=0).astype(np.float32), self.sample_rate,
                         codes.cpu().numpy())

    @property
    def has_codec(self) -> bool:
        return True

    def resynthesize(self, audio: np.ndarray, sample_rate: int) -> Generated:
        x = torch.from_numpy(resample(audio, sample_rate, self.sample_rate))[None, None].to(self.device)
        codes = self._encode(x)
        with torch.inference_mode():
            y = self.model.audio_encoder.decode(codes).audio_values
        return Generated(y[0].float().cpu().numpy().mean(axis=0)[: x.shape[-1]].astype(np.float32), self.sample_rate,
                         codes.cpu().numpy())
