"""Mimi (Kyutai, the Moshi speech codec) through the maintained ``transformers`` port.

24 kHz mono, SEANet + 8-layer transformer encoder, 12.5 Hz frames, split RVQ of 2048-entry
codebooks: codebook 0 is semantic (distilled from WavLM), codebooks 1..31 acoustic. Fully
causal and streamable (frame 80 ms). Moshi itself uses the first 8 codebooks (1.1 kbps).
"""

from __future__ import annotations

import torch

from bench.codecs import register_codec
from bench.codecs._hf import (
    HFTokenCodec,
    draw_rvq_codebooks,
    hub_weights,
    implementation,
    rescale_output,
    token_meta,
)
from bench.codecs.neural import calibration_audio

REPO, REVISION = "kyutai/mimi", "89091b3e466eb6a9d11e537bf26b144f194978f7"
CITATION = ("Défossez, Mazaré, Orsini, Royer, Pérez, Jégou, Grave, Zeghidour: Moshi: a speech-text foundation "
            "model for real-time dialogue. arXiv:2410.00037, 2024")
SAMPLE_RATE, HOP, CODEBOOK = 24000, 1920, 2048
N_PARAMS = 79_308_609  # nn.Parameters of MimiModel at the released config (meta-device count)


def _meta(n_q: int):
    return token_meta(
        id=f"mimi@{SAMPLE_RATE / HOP * n_q * 11 / 1000:g}kbps", family="mimi", sample_rate=SAMPLE_RATE,
        frame_rate=SAMPLE_RATE / HOP, codebook_sizes=(CODEBOOK,) * n_q, causal=True, streaming=True,
        n_params=N_PARAMS, license="CC-BY-4.0 (weights); MIT/Apache-2.0 (code)", weights=hub_weights(REPO, REVISION),
        citation=CITATION, implementation=implementation("MimiModel"),
        algorithmic_latency_s=HOP / SAMPLE_RATE,
        notes=(f"First {n_q} of 32 codebooks. Codebook 0 is semantic (distilled from WavLM, split RVQ), the "
               "rest acoustic; RVQ-1 views therefore carry mostly phonetic content. Causal convolutions and "
               "causal sliding-window attention: streamable with one 80 ms frame of latency. "
               f"Weights {REPO} pinned at {REVISION} (pin found in several public codebases; results record the "
               "resolved snapshot). n_params: nn.Parameters of the transformers port at the released config "
               "(codebooks are buffers)."),
        options={"n_q": n_q},
    )


@register_codec(_meta(8), _meta(32))
class MimiCodec(HFTokenCodec):
    """MimiModel.encode(num_quantizers=k) / MimiModel.decode(audio_codes)."""

    model_class = "MimiModel"

    def full_config(self):
        from transformers import MimiConfig

        return MimiConfig()

    def tiny_config(self):
        from transformers import MimiConfig

        return MimiConfig(hidden_size=32, num_filters=4, num_hidden_layers=1, intermediate_size=64,
                          num_attention_heads=2, num_key_value_heads=2, codebook_dim=16,
                          vector_quantization_hidden_dimension=16, upsample_groups=32,
                          codebook_size=CODEBOOK, num_quantizers=32)

    def calibrate(self, model: torch.nn.Module) -> None:
        x = calibration_audio(SAMPLE_RATE, seconds=8.0)
        latents = model.encoder(x).latents  # [1, D, T]
        q = model.quantizer

        def set_cb(layer, vectors):
            layer.codebook.embed_sum.copy_(vectors)
            layer.codebook.cluster_usage.fill_(1.0)
            layer.codebook._embed = None

        def quantize(layer, r):
            return layer.codebook.decode(layer.codebook.encode(r))

        for i, rvq in enumerate((q.semantic_residual_vector_quantizer, q.acoustic_residual_vector_quantizer)):
            emb = rvq.input_proj(latents) if rvq.input_proj is not None else latents
            draw_rvq_codebooks(emb[0].T, rvq.layers, CODEBOOK, set_cb, quantize, seed=i)
        y = model.decode(model.encode(x).audio_codes).audio_values
        rescale_output(y, x, model.decoder.decoder_seanet.layers[-1].conv)

    def encode_frames(self, audio: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        model = self._require_model()
        codes = model.encode(audio, num_quantizers=int(self.meta.options["n_q"])).audio_codes
        return codes, {"quantized": model.quantizer.decode(codes)}

    def decode_frames(self, codes: torch.Tensor) -> torch.Tensor:
        return self._require_model().decode(codes).audio_values
