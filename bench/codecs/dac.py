"""Descript Audio Codec (Kumar et al., 2023) through the maintained ``transformers`` port.

Three released checkpoints: 16 kHz (hop 320, 50 Hz, 12 codebooks), 24 kHz (hop 320, 75 Hz, 32)
and 44.1 kHz (hop 512, 86.13 Hz, 9), all 1024-entry factorised, L2-normalised codebooks
trained with quantizer dropout, so the first k codebooks are a valid lower-rate op-point.
Input is right-padded with zeros to a whole hop, as the DAC feature extractor does, so an item
of n samples gives ceil(n / hop) frames. The hop-320 decoders return 8 samples fewer than
T × hop (upstream behaviour of the odd-stride transposed convolution); the tail is zero-filled.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from bench.codecs import register_codec
from bench.codecs._hf import (
    HFTokenCodec,
    hub_weights,
    implementation,
    rescale_output,
    token_meta,
)
from bench.codecs.neural import calibration_audio

CITATION = ("Kumar, Seetharaman, Luebs, Kumar, Kumar: High-Fidelity Audio Compression with Improved RVQGAN. "
            "NeurIPS 2023, arXiv:2306.06546")
CODEBOOK = 1024
#: sample rate → (hub repo, pinned revision, downsampling ratios, codebooks in the checkpoint, nn.Parameters)
MODELS = {
    16000: ("descript/dac_16khz", "7c2fc5e759f1f501aefc6e7a0265cc57f5d17ba7", (2, 4, 5, 8), 12, 74_141_697),
    24000: ("descript/dac_24khz", "6ba020b5ba7d9d8076fb90db7e67f27e31980f6e", (2, 4, 5, 8), 32, 74_653_857),
    44100: ("descript/dac_44khz", "c1bc521685adf9cfe247bc39a5ca58917eda1ac4", (2, 4, 8, 8), 9, 76_620_777),
}
OP_POINTS = {16000: (4, 8, 12), 24000: (8, 16, 32), 44100: (3, 6, 9)}
_NAMES = {16000: "16khz", 24000: "24khz", 44100: "44khz"}


def _meta(sr: int, n_q: int):
    repo, rev, ratios, total, n_params = MODELS[sr]
    hop = math.prod(ratios)
    frame_rate = sr / hop
    kbps = frame_rate * n_q * math.log2(CODEBOOK) / 1000
    label = f"{kbps:.2f}".rstrip("0").rstrip(".")
    return token_meta(
        id=f"dac_{_NAMES[sr]}@{label}kbps", family=f"dac_{_NAMES[sr]}", sample_rate=sr, frame_rate=frame_rate,
        codebook_sizes=(CODEBOOK,) * n_q, causal=False, streaming=False, n_params=n_params,
        license="MIT (code and weights)", weights=hub_weights(repo, rev), citation=CITATION,
        implementation=implementation("DacModel"),
        # non-causal convolutions: the whole utterance is coded at once; one hop is the frame itself
        algorithmic_latency_s=hop / sr,
        notes=(f"First {n_q} of {total} codebooks (quantizer dropout makes prefixes valid); hop {hop}, "
               f"{frame_rate:.4g} Hz frames. Weights {repo} pinned at {rev} (pin from public code that loads "
               "it; results record the resolved snapshot). n_params: nn.Parameters of the transformers port at "
               "the released config (counted on the meta device). Non-causal convolutions: latency stated as "
               "one hop, but the receptive field spans neighbouring frames on both sides, so it is not streamable."),
        options={"n_q": n_q},
    )


@register_codec(*(_meta(sr, k) for sr, ks in OP_POINTS.items() for k in ks))
class DacCodec(HFTokenCodec):
    """DacModel.encode(n_quantizers=k) / DacModel.decode(audio_codes)."""

    model_class = "DacModel"

    def _spec(self):
        return MODELS[self.meta.sample_rate]

    def full_config(self):
        from transformers import DacConfig

        _, _, ratios, total, _ = self._spec()
        return DacConfig(encoder_hidden_size=64, downsampling_ratios=list(ratios), decoder_hidden_size=1536,
                         n_codebooks=total, codebook_size=CODEBOOK, codebook_dim=8, sampling_rate=self.meta.sample_rate)

    def tiny_config(self):
        from transformers import DacConfig

        _, _, ratios, total, _ = self._spec()
        return DacConfig(encoder_hidden_size=4, downsampling_ratios=list(ratios), decoder_hidden_size=32,
                         n_codebooks=total, codebook_size=CODEBOOK, codebook_dim=8, sampling_rate=self.meta.sample_rate)

    @property
    def hop(self) -> int:
        return math.prod(self._spec()[2])

    def calibrate(self, model: torch.nn.Module) -> None:
        x = calibration_audio(self.meta.sample_rate)
        x = F.pad(x, (0, -x.shape[-1] % self.hop))
        y = model.decode(audio_codes=model.encode(x, return_dict=True).audio_codes, return_dict=True).audio_values
        rescale_output(y, x, model.decoder.conv2)

    def encode_frames(self, audio: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        model = self._require_model()
        x = F.pad(audio, (0, -audio.shape[-1] % self.hop))
        out = model.encode(x, n_quantizers=int(self.meta.options["n_q"]), return_dict=True)
        return out.audio_codes, {"quantized": out.quantized_representation}

    def decode_frames(self, codes: torch.Tensor) -> torch.Tensor:
        model = self._require_model()
        y = model.decode(audio_codes=codes, return_dict=True).audio_values[:, None, :]
        # hop-320 decoders (odd stride 5) emit hop - 8 samples short of T × hop, as upstream DAC does;
        # zero-fill that tail so every item decodes to exactly T × hop samples
        return F.pad(y, (0, max(0, codes.shape[-1] * self.hop - y.shape[-1])))
