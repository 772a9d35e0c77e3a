"""X-Codec2 (Ye et al., 2025, the Llasa speech tokenizer) through the ``transformers`` port.

16 kHz speech, one finite-scalar-quantised codebook (FSQ, 8 dimensions × 4 levels = 65536
codes) at 50 Hz: 800 bit/s. The semantic branch is wav2vec2-BERT on 80-bin Kaldi filterbanks,
fused with a BigCodec-style acoustic encoder; a transformer + ISTFT (Vocos) head decodes. The
filterbank is computed here (bench.codecs._hf.kaldi_fbank) because the port's feature extractor
needs torchaudio; padding follows that extractor: one zero sample, then zeros to a whole hop,
so n samples give ceil((n + 1) / 320) frames.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

from bench.codecs import register_codec
from bench.codecs._hf import (
    HFTokenCodec,
    hub_weights,
    implementation,
    semantic_features,
    token_meta,
)
from bench.codecs.neural import calibration_audio

REPO = "hf-audio/xcodec2"
CITATION = ("Ye, Zhu, Lei, et al.: Llasa: Scaling Train-Time and Inference-Time Compute for Llama-based Speech "
            "Synthesis. arXiv:2502.04128, 2025")
SAMPLE_RATE, HOP, CODEBOOK = 16000, 320, 4**8
N_PARAMS = 629_281_706  # nn.Parameters of Xcodec2Model at the default config (16-layer w2v-BERT), meta count

TINY_SEMANTIC = {"model_type": "wav2vec2-bert", "hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2,
                 "intermediate_size": 64, "feature_projection_input_dim": 160, "conv_depthwise_kernel_size": 7}


def tiny_fsq_kwargs() -> dict:
    """Small widths with the real hop, FSQ levels and semantic feature size (shared with NeuCodec)."""
    return {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2,
            "num_key_value_heads": 2, "head_dim": 16, "encoder_hidden_size": 4, "quantization_dim": 64,
            "semantic_model_config": dict(TINY_SEMANTIC)}


def fsq_inputs(audio: torch.Tensor, mel_pad: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Padded waveform [B, 1, L] and stacked filterbanks [B, F, 160] for equal-length items.

    One zero sample, then zeros to a whole hop (both feature extractors); ``mel_pad`` zeros each
    side before the filterbank (X-Codec2: hop / 2; NeuCodec: none).
    """
    x = F.pad(audio[:, :1], (0, 1))
    x = F.pad(x, (0, -x.shape[-1] % HOP))
    feats = torch.stack([semantic_features(F.pad(x[b, 0], (mel_pad, mel_pad)).cpu(), SAMPLE_RATE)
                         for b in range(x.shape[0])]).to(x.device)
    return x, feats


def calibrate_fsq(model: torch.nn.Module, encode: Callable[[torch.Tensor], torch.Tensor],
                  decode: Callable[[torch.Tensor], torch.Tensor], sample_rate: int = SAMPLE_RATE) -> None:
    """Random-init FSQ: standardise the projection into the 8 FSQ dims and set the decoder's level.

    With 0.02-std random weights every frame lands on the centre code. Scaling ``project_in`` so
    its outputs have unit spread on the encoder's response to the calibration signal spreads the
    codes over the 4 levels of each dimension. The ISTFT head takes ``exp`` of its magnitude half,
    so adding log(gain) to that half's bias scales the output audio by exactly ``gain``.
    """
    x = calibration_audio(sample_rate, seconds=4.0)
    seen: dict[str, torch.Tensor] = {}
    proj = model.quantizer.project_in
    hook = proj.register_forward_hook(lambda mod, inp, out: seen.__setitem__("out", out.detach()))
    try:
        encode(x)
    finally:
        hook.remove()
    out = seen["out"].reshape(-1, proj.out_features)
    std = out.std(0).clamp_min(1e-6)
    proj.weight.div_(std[:, None])
    proj.bias.copy_((proj.bias - out.mean(0)) / std)
    y = decode(encode(x))
    gain = float(x.pow(2).mean().sqrt() / y.pow(2).mean().sqrt().clamp_min(1e-12))
    head = model.acoustic_decoder.head.linear
    head.bias[: head.out_features // 2].add_(math.log(gain))


@register_codec(token_meta(
    id="xcodec2@0.8kbps", family="xcodec2", sample_rate=SAMPLE_RATE, frame_rate=SAMPLE_RATE / HOP,
    codebook_sizes=(CODEBOOK,), causal=False, streaming=False, n_params=N_PARAMS, license="CC-BY-NC-4.0",
    weights=hub_weights(REPO, None), citation=CITATION, implementation=implementation("Xcodec2Model"),
    algorithmic_latency_s=HOP / SAMPLE_RATE,
    notes=(f"Single FSQ codebook of 4^8 = 65536 at 50 Hz. Hub id {REPO} (transformers-format conversion by "
           "hf-audio; medium confidence — the port's docstring names HKUSTAudio/xcodec2-hf, and "
           "HKUSTAudio/xcodec2 is the original, non-transformers checkpoint). Revision UNPINNED (main); results "
           "record the resolved snapshot hash. n_params: the port's default config (16 w2v-BERT layers), "
           "which may differ from the hub config (the 3.29 GB checkpoint suggests ~0.82 B fp32 tensors). "
           "Kaldi fbank re-implemented here (torchaudio is never imported) and not compared to torchaudio "
           "offline. Non-causal (bidirectional attention)."),
))
class Xcodec2Codec(HFTokenCodec):
    """Xcodec2Model.encode(input_values, input_features) / decode(audio_codes)."""

    model_class = "Xcodec2Model"

    def full_config(self):
        from transformers import Xcodec2Config

        return Xcodec2Config()

    def tiny_config(self):
        from transformers import Xcodec2Config

        return Xcodec2Config(**tiny_fsq_kwargs())

    def frames_for(self, n_samples: int) -> int:
        return -(-(n_samples + 1) // HOP)

    def calibrate(self, model: torch.nn.Module) -> None:
        calibrate_fsq(model, lambda x: model.encode(*fsq_inputs(x, HOP // 2)).audio_codes,
                      lambda c: model.decode(audio_codes=c).audio_values)

    def encode_frames(self, audio: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        model = self._require_model()
        x, feats = fsq_inputs(audio, HOP // 2)
        out = model.encode(x, feats, output_latents=True, return_dict=True)
        return out.audio_codes, {"quantized": out.latents}

    def decode_frames(self, codes: torch.Tensor) -> torch.Tensor:
        return self._require_model().decode(audio_codes=codes, return_dict=True).audio_values
