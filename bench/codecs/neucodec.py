"""NeuCodec (Neuphonic, 2025) through the maintained ``transformers`` port (``NeuCodecModel``).

An X-Codec2 derivative: 16 kHz input, one FSQ codebook of 65536 at 50 Hz (800 bit/s), decoded
by a Vocos-style ISTFT head straight to 24 kHz. The op-point runs at its output rate, 24 kHz:
input arrives at 24 kHz and is resampled to 16 kHz here (soxr VHQ, as the runner would), so
scores compare the codec's real 24 kHz output with the 24 kHz reference (the 8-12 kHz band is
synthesised by the decoder, never coded). Feature padding follows the port's extractor: one zero
sample, zeros to a whole 320-sample hop, filterbank on that signal with no extra padding; the
semantic branch then yields one frame fewer than the acoustic one and both are trimmed to it,
so n samples at 16 kHz give ceil((n + 1) / 320) - 1 codes, and the decoded audio can end up to
one hop early: that tail is zero-filled (silence, never invented audio).
"""

from __future__ import annotations

import numpy as np
import torch

from bench.audio import resample
from bench.codecs import register_codec
from bench.codecs._hf import HFTokenCodec, hub_weights, implementation, token_meta
from bench.codecs.xcodec2 import HOP, calibrate_fsq, fsq_inputs, tiny_fsq_kwargs

REPO = "neuphonic/neucodec"
CITATION = "Neuphonic: NeuCodec, a 50 Hz, 0.8 kbps FSQ speech codec (model card, huggingface.co/neuphonic/neucodec, 2025)"
INPUT_RATE, OUTPUT_RATE, CODEBOOK = 16000, 24000, 4**8
N_PARAMS = 629_937_706  # nn.Parameters of NeuCodecModel at the default config, meta-device count


@register_codec(token_meta(
    id="neucodec@0.8kbps", family="neucodec", sample_rate=OUTPUT_RATE, frame_rate=INPUT_RATE / HOP,
    codebook_sizes=(CODEBOOK,), causal=False, streaming=False, n_params=N_PARAMS,
    license="Apache-2.0 (model card; not verified offline)", weights=hub_weights(REPO, None), citation=CITATION,
    implementation=implementation("NeuCodecModel"), algorithmic_latency_s=HOP / INPUT_RATE,
    notes=(f"Single FSQ codebook of 4^8 = 65536 at 50 Hz; encoder at 16 kHz, decoder output 24 kHz (op-point rate). "
           f"Hub id {REPO} from the transformers NeuCodecModel docstring (medium confidence that the repo's main "
           "branch holds the transformers-format config.json + model.safetensors). Revision UNPINNED (main); "
           "results record the resolved snapshot hash. n_params from the port's default config, not checked "
           "against the hub config. Kaldi fbank re-implemented (torchaudio never imported). Non-causal."),
))
class NeuCodecCodec(HFTokenCodec):
    """NeuCodecModel.encode(input_values, input_features) / decode(audio_codes), 24 kHz in and out."""

    model_class = "NeuCodecModel"

    def full_config(self):
        from transformers import NeuCodecConfig

        return NeuCodecConfig()

    def tiny_config(self):
        from transformers import NeuCodecConfig

        return NeuCodecConfig(**tiny_fsq_kwargs())

    @staticmethod
    def _to_input_rate(audio: torch.Tensor) -> torch.Tensor:
        arr = audio[:, 0].detach().float().cpu().numpy()
        out = np.stack([resample(a[None], OUTPUT_RATE, INPUT_RATE)[0] for a in arr])
        return torch.from_numpy(out)[:, None].to(audio.device)

    def frames_for(self, n_samples: int) -> int:
        n16 = -(-n_samples * INPUT_RATE // OUTPUT_RATE)
        return -(-(n16 + 1) // HOP) - 1

    def calibrate(self, model: torch.nn.Module) -> None:
        calibrate_fsq(model, lambda x: model.encode(*fsq_inputs(x, 0)).audio_codes,
                      lambda c: model.decode(audio_codes=c).audio_values, sample_rate=INPUT_RATE)

    def encode_frames(self, audio: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        model = self._require_model()
        x, feats = fsq_inputs(self._to_input_rate(audio), 0)
        out = model.encode(x, feats, output_latents=True, return_dict=True)
        return out.audio_codes, {"quantized": out.latents}

    def decode_frames(self, codes: torch.Tensor) -> torch.Tensor:
        y = self._require_model().decode(audio_codes=codes, return_dict=True).audio_values
        # the trimmed last frame leaves the output up to one hop short of the input: zero-fill one
        # output hop, which the base decode then trims to the input length
        return torch.nn.functional.pad(y, (0, HOP * OUTPUT_RATE // INPUT_RATE))
