"""X-Codec (Ye et al., 2024) through the maintained ``transformers`` port (``XcodecModel``).

16 kHz speech codec: a DAC-style acoustic encoder and a HuBERT semantic branch are fused before
one RVQ of 1024-entry codebooks at 50 Hz; the decoder sees only the acoustic projection. The
bandwidth (0.5-4 kbps) selects the first 1-8 codebooks. Input is right-padded to whole 320-sample
hops (as the X-Codec feature extractor does), so n samples give ceil(n / 320) frames.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from bench.codecs import register_codec
from bench.codecs._hf import (
    HFTokenCodec,
    draw_rvq_codebooks,
    hub_weights,
    implementation,
    quantize_euclidean,
    rescale_output,
    set_euclidean_codebook,
    token_meta,
)
from bench.codecs.neural import calibration_audio

REPO = "hf-audio/xcodec-hubert-librispeech"
CITATION = ("Ye, Sun, Lei, et al.: Codec Does Matter: Exploring the Semantic Shortcoming of Codec for Audio "
            "Language Model. AAAI 2025, arXiv:2408.17175")
SAMPLE_RATE, HOP, CODEBOOK = 16000, 320, 1024
N_PARAMS = 160_698_625  # nn.Parameters of XcodecModel at the default (HuBERT-base) config, meta-device count


def _meta(kbps: float):
    n_q = int(round(kbps * 1000 / (SAMPLE_RATE / HOP * math.log2(CODEBOOK))))
    return token_meta(
        id=f"xcodec_hubert_librispeech@{kbps:g}kbps", family="xcodec_hubert_librispeech", sample_rate=SAMPLE_RATE,
        frame_rate=SAMPLE_RATE / HOP, codebook_sizes=(CODEBOOK,) * n_q, causal=False, streaming=False,
        n_params=N_PARAMS, license="not verified offline: see the hf-audio/xcodec-hubert-librispeech model card",
        weights=hub_weights(REPO, None), citation=CITATION, implementation=implementation("XcodecModel"),
        algorithmic_latency_s=HOP / SAMPLE_RATE,
        notes=(f"First {n_q} of 8 codebooks (bandwidth {kbps:g} kbps). Hub id {REPO} from the transformers "
               "XcodecModel docstring (high confidence); revision UNPINNED (main): no public pin found, results "
               "record the resolved snapshot hash. n_params: the transformers port at its default config "
               "(HuBERT-base semantic branch, whose weights are part of the checkpoint); not checked against "
               "the hub config.json. Non-causal (HuBERT attention over the whole utterance)."),
        options={"bandwidth": float(kbps), "n_q": n_q},
    )


@register_codec(*(_meta(k) for k in (0.5, 1, 1.5, 2, 4)))
class XcodecCodec(HFTokenCodec):
    """XcodecModel.encode(bandwidth) / XcodecModel.decode(audio_codes)."""

    model_class = "XcodecModel"

    def full_config(self):
        from transformers import XcodecConfig

        return XcodecConfig()

    def tiny_config(self):
        from transformers import XcodecConfig

        hubert = {"model_type": "hubert", "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
                  "intermediate_size": 64, "conv_dim": [16] * 7, "num_conv_pos_embeddings": 16,
                  "num_conv_pos_embedding_groups": 2}
        dac = {"model_type": "dac", "encoder_hidden_size": 4, "decoder_hidden_size": 32,
               "downsampling_ratios": [8, 5, 4, 2], "upsampling_ratios": [8, 5, 4, 2]}
        return XcodecConfig(acoustic_model_config=dac, semantic_model_config=hubert, codebook_size=CODEBOOK)

    def calibrate(self, model: torch.nn.Module) -> None:
        x = calibration_audio(SAMPLE_RATE, seconds=4.0)
        q = model.quantizer
        captured: dict[str, torch.Tensor] = {}
        original = q.encode

        def capture(embeddings, bandwidth=None):
            captured["e"] = embeddings
            return original(embeddings, bandwidth)

        q.encode = capture
        try:
            model.encode(x)
        finally:
            del q.encode

        draw_rvq_codebooks(captured["e"][0].T, q.quantizers, CODEBOOK, set_euclidean_codebook, quantize_euclidean)
        y = model.decode(model.encode(x, return_dict=True).audio_codes, return_dict=True).audio_values
        rescale_output(y, x, model.acoustic_decoder.conv2)

    def encode_frames(self, audio: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        model = self._require_model()
        x = F.pad(audio, (0, -audio.shape[-1] % HOP))
        codes = model.encode(x, bandwidth=self.meta.options["bandwidth"], return_dict=True).audio_codes
        return codes, {"quantized": model.quantizer.decode(codes.transpose(0, 1))}

    def decode_frames(self, codes: torch.Tensor) -> torch.Tensor:
        return self._require_model().decode(codes, return_dict=True).audio_values
