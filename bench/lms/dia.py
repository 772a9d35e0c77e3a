"""Dia (Nari Labs, 2025): a text encoder + decoder over 9 delayed DAC 44.1 kHz codebooks; TTS with voice cloning.

Loaded through ``transformers.DiaForConditionalGeneration`` with ``DiaProcessor`` (byte tokenizer with
``[S1]``/``[S2]`` speaker tags, DAC audio tokenizer). Zero-shot TTS uses the port's voice-cloning
path: the text is ``[S1] <prompt transcript> [S1] <target text>``, the prompt audio is DAC-coded into
the decoder prefix, and only the frames after the prompt are decoded. The DAC codec is a separate
checkpoint (``descript/dac_44khz``) that the processor loads: both must be local. Dia's tokenizer
needs no files, so the tiny random build uses the real ``DiaTokenizer`` and processor, with a tiny
DAC (9 codebooks × 1024, hop 512) and a 1-layer encoder/decoder; a random decoder may emit the
audio EOS/PAD/BOS ids mid-stream, which a trained one does not, so the random build suppresses them.
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
from bench.lms.base import Generated, GenerationRequest, LMMeta, NetworkLM, resample

CODEBOOK, N_CH, SR, HOP = 1024, 9, 44100, 512
DELAY = [0, 8, 9, 10, 11, 12, 13, 14, 15]
EOS, PAD, BOS = CODEBOOK, CODEBOOK + 1, CODEBOOK + 2


@register_lm(LMMeta(
    id="dia-1.6b", family="dia", kind="model", tasks=frozenset({"tts"}), sample_rate=SR,
    codec="dac_44khz (9 codebooks × 1024, 86 Hz, delay pattern)",
    weights=WeightsSource(uri="hf://nari-labs/Dia-1.6B-0626", revision="main"), license="Apache-2.0",
    citation="Nari Labs, Dia: a 1.6B-parameter text-to-dialogue model (https://github.com/nari-labs/dia), 2025",
    implementation="transformers DiaForConditionalGeneration + DiaProcessor",
    notes="voice cloning: prompt transcript + target text, prompt audio as DAC prefix; needs descript/dac_44khz "
          "locally too; revision 'main' (no pin found offline); pretrained path not run here (no weights)"))
class Dia(NetworkLM):
    requires = ("transformers",)

    def build_random(self) -> Any:
        from transformers import (
            DacModel,
            DiaFeatureExtractor,
            DiaForConditionalGeneration,
            DiaProcessor,
            DiaTokenizer,
        )

        model_cfg, dac_cfg = self.tiny_configs()
        model = DiaForConditionalGeneration(model_cfg)
        dac = DacModel(dac_cfg).eval()
        self.processor = DiaProcessor(DiaFeatureExtractor(sampling_rate=SR, hop_length=HOP), DiaTokenizer(), dac)
        return model

    def build_pretrained(self, path: Path | None) -> Any:
        import transformers

        root = resolve_weights(self.meta, path)  # type: ignore[arg-type]  # duck-typed meta
        self.processor = transformers.AutoProcessor.from_pretrained(root)
        return transformers.DiaForConditionalGeneration.from_pretrained(root)

    def after_load(self) -> None:
        self.processor.audio_tokenizer.to(self.device)
        self.sample_rate = int(self.processor.feature_extractor.sampling_rate)
        self.frame_rate = self.sample_rate / float(np.prod(self.processor.audio_tokenizer.config.downsampling_ratios))

    @staticmethod
    def tiny_configs():
        from transformers import DacConfig, DiaConfig, DiaDecoderConfig, DiaEncoderConfig

        enc = DiaEncoderConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                               num_key_value_heads=2, head_dim=16, vocab_size=256, max_position_embeddings=512)
        dec = DiaDecoderConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                               num_key_value_heads=2, head_dim=16, cross_num_attention_heads=2, cross_head_dim=16,
                               cross_num_key_value_heads=2, cross_hidden_size=32, vocab_size=CODEBOOK + 4,
                               num_channels=N_CH, max_position_embeddings=1024)
        model = DiaConfig(encoder_config=enc.to_dict(), decoder_config=dec.to_dict(), delay_pattern=DELAY,
                          pad_token_id=PAD, eos_token_id=EOS, bos_token_id=BOS)
        dac = DacConfig(encoder_hidden_size=4, downsampling_ratios=[2, 4, 8, 8], decoder_hidden_size=64,
                        n_codebooks=N_CH, codebook_size=CODEBOOK, codebook_dim=8, sampling_rate=SR)
        return model, dac

    def generate(self, request: GenerationRequest) -> Generated:
        self.check_task(request)
        if not self.loaded:
            raise CodecError(f"{self.meta.id}: call load() first")
        audio = None
        text = f"[S1] {request.text}"
        if request.prompt_audio is not None:
            assert request.prompt_sample_rate
            audio = resample(request.prompt_audio, request.prompt_sample_rate, self.sample_rate)
            text = f"[S1] {request.prompt_text} {text}" if request.prompt_text else text
        kw = {"audio": audio, "sampling_rate": self.sample_rate} if audio is not None else {}
        inputs = self.processor(text=[text], return_tensors="pt", **kw).to(self.device)
        prompt_len = self.processor.get_audio_prompt_len(inputs["decoder_attention_mask"]) if audio is not None \
            else None
        torch.manual_seed(request.seed)
        extra = {"suppress_tokens": [EOS, PAD, BOS]} if self.random_init else {}
        n_new = max(int(round(request.max_duration_s * self.frame_rate)), 2) + max(DELAY) + 1
        with torch.inference_mode():
            out = self.model.generate(**inputs, max_new_tokens=n_new, do_sample=True, **extra)
            wave = self.processor.batch_decode(out, audio_prompt_len=prompt_len)[0]
        return Generated(wave.float().cpu().numpy().reshape(-1).astype(np.float32), self.sample_rate)

    @property
    def has_codec(self) -> bool:
        return True

    def resynthesize(self, audio: np.ndarray, sample_rate: int) -> Generated:
        x = torch.from_numpy(resample(audio, sample_rate, self.sample_rate))[None, None].to(self.device)
        dac = self.processor.audio_tokenizer
        with torch.inference_mode():
            codes = dac.encode(x).audio_codes
            y = dac.decode(audio_codes=codes).audio_values
        return Generated(y.float().cpu().numpy().reshape(-1)[: x.shape[-1]].astype(np.float32), self.sample_rate,
                         codes.cpu().numpy())
