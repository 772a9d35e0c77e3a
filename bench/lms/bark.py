"""Bark (Suno, 2023): text → semantic tokens → coarse EnCodec codes → fine EnCodec codes → 24 kHz audio.

Loaded through ``transformers.BarkModel`` (three GPT-style stages + EnCodec 24 kHz in one checkpoint).
Bark has no zero-shot voice cloning from arbitrary audio: its "history prompt" needs the prompt's
*semantic* tokens, made by a HuBERT + k-means tokenizer that is not part of the checkpoint. So the
benchmark runs Bark as TTS **without** a speaker prompt (the request's prompt audio is ignored and the
row says so); SIM-o therefore measures how close Bark's default voice happens to be. The shipped
speaker presets (``speaker_embeddings/*.npy`` in the hub repo) are not used: they are not the
prompt speaker. The tiny random build keeps the real token layout (BERT text ids offset by 10 048,
10 000 semantic ids, 2 coarse + 8 fine codebooks of 1024) with 1-layer, 32-wide stages and a tiny
EnCodec of the same hop (320 at 24 kHz); text goes through the byte tokenizer.
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

CITATION = "Suno, Bark: text-prompted generative audio model (https://github.com/suno-ai/bark), 2023"
SEMANTIC_RATE_HZ = 49.9
TEXT_LEN = 256
NOTES = ("tts without speaker prompt (Bark cannot take arbitrary prompt audio: its history prompt needs "
         "semantic tokens from a HuBERT tokenizer outside the checkpoint); revision 'main' (no pin found offline)")


def _meta(id: str, repo: str) -> LMMeta:
    return LMMeta(id=id, family="bark", kind="model", tasks=frozenset({"tts"}), sample_rate=24000,
                  codec="encodec_24khz (2 coarse + 6 fine codebooks × 1024, 75 Hz)",
                  weights=WeightsSource(uri=f"hf://{repo}", revision="main"), license="MIT",
                  citation=CITATION, implementation="transformers BarkModel", notes=NOTES)


@register_lm(_meta("bark-small", "suno/bark-small"), _meta("bark", "suno/bark"))
class Bark(NetworkLM):
    requires = ("transformers",)

    def build_random(self) -> Any:
        import transformers
        from transformers.models.bark.generation_configuration_bark import (
            BarkCoarseGenerationConfig,
            BarkFineGenerationConfig,
            BarkGenerationConfig,
            BarkSemanticGenerationConfig,
        )

        model = transformers.BarkModel(self.tiny_config())
        for layer in model.codec_model.quantizer.layers:  # zero codebooks would decode every code alike
            layer.codebook.embed.normal_()
        gc = BarkGenerationConfig(semantic_config=BarkSemanticGenerationConfig().to_dict(),
                                  coarse_acoustics_config=BarkCoarseGenerationConfig().to_dict(),
                                  fine_acoustics_config=BarkFineGenerationConfig().to_dict())
        for name in ("semantic_config", "coarse_acoustics_config", "fine_acoustics_config"):
            setattr(gc, name, getattr(gc, name).to_dict())  # BarkModel.generate reads them as dicts (as saved)
        model.generation_config = gc
        self.processor = None
        return model

    def build_pretrained(self, path: Path | None) -> Any:
        import transformers

        root = resolve_weights(self.meta, path)  # type: ignore[arg-type]  # duck-typed meta
        self.processor = transformers.AutoProcessor.from_pretrained(root)
        return transformers.BarkModel.from_pretrained(root)

    def after_load(self) -> None:
        self.sample_rate = int(self.model.generation_config.sample_rate)

    @staticmethod
    def tiny_config():
        from transformers import (
            BarkCoarseConfig,
            BarkConfig,
            BarkFineConfig,
            BarkSemanticConfig,
            EncodecConfig,
        )

        small = dict(num_layers=1, num_heads=2, hidden_size=32, block_size=1024)
        codec = EncodecConfig(sampling_rate=24000, upsampling_ratios=[8, 5, 4, 2], num_filters=4, hidden_size=32,
                              codebook_size=1024, codebook_dim=32, num_lstm_layers=1,
                              target_bandwidths=[1.5, 3.0, 6.0, 12.0, 24.0])
        return BarkConfig(
            semantic_config=BarkSemanticConfig(input_vocab_size=129_600, output_vocab_size=10_048, **small).to_dict(),
            coarse_acoustics_config=BarkCoarseConfig(input_vocab_size=12_096, output_vocab_size=12_096,
                                                     **small).to_dict(),
            fine_acoustics_config=BarkFineConfig(input_vocab_size=1056, output_vocab_size=1056, n_codes_total=8,
                                                 n_codes_given=1, **small).to_dict(),
            codec_config=codec.to_dict())

    def _text_inputs(self, text: str) -> dict[str, torch.Tensor]:
        if self.processor is not None:
            enc = self.processor(text)
            return {k: v.to(self.device) for k, v in enc.items() if k in ("input_ids", "attention_mask")}
        toks = byte_tokens(text, 256)[:TEXT_LEN]  # padded to 256 with a 0 mask, as BarkProcessor does
        ids = torch.zeros((1, TEXT_LEN), dtype=torch.long, device=self.device)
        mask = torch.zeros_like(ids)
        ids[0, : len(toks)], mask[0, : len(toks)] = torch.tensor(toks), 1
        return {"input_ids": ids, "attention_mask": mask}

    def generate(self, request: GenerationRequest) -> Generated:
        self.check_task(request)
        if not self.loaded:
            raise CodecError(f"{self.meta.id}: call load() first")
        torch.manual_seed(request.seed)
        semantic_max = max(int(request.max_duration_s * SEMANTIC_RATE_HZ), 8)
        with torch.inference_mode():
            out = self.model.generate(**self._text_inputs(request.text), do_sample=True,
                                      semantic_max_new_tokens=semantic_max)
        return Generated(out[0].float().cpu().numpy().reshape(-1).astype(np.float32), self.sample_rate)

    @property
    def has_codec(self) -> bool:
        return True

    def resynthesize(self, audio: np.ndarray, sample_rate: int) -> Generated:
        """EnCodec 24 kHz at 8 codebooks (6 kbps): what Bark's fine stage emits."""
        x = torch.from_numpy(resample(audio, sample_rate, self.sample_rate))[None, None].to(self.device)
        codec = self.model.codec_model
        with torch.inference_mode():
            coded = codec.encode(x, bandwidth=6.0)
            y = codec.decode(coded.audio_codes, coded.audio_scales)[0]
        return Generated(y[0].float().cpu().numpy().mean(axis=0)[: x.shape[-1]].astype(np.float32), self.sample_rate,
                         coded.audio_codes.cpu().numpy())
