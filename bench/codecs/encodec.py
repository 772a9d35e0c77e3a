"""EnCodec (Défossez et al., 2022) through the maintained ``transformers`` port.

24 kHz: causal, mono, 75 Hz frames, 32 residual codebooks of 1024; the bandwidth selects the first
n_q of them (1.5/3/6/12/24 kbps = 2/4/8/16/32 codebooks). 48 kHz: non-causal, stereo, 150 Hz
frames, and, as in the original, the port codes 1 s chunks with 1 % overlap, each chunk
loudness-normalised with its own scale that the decoder needs back; chunks are cross-faded
(linear overlap-add) on decode. The codes of consecutive chunks are concatenated along time, so
their count is slightly above ceil(n / hop) (the overlap) and the measured rate is honestly ~1 %
above the nominal one; the per-chunk float32 scale (32 bits per chunk, as the original ``.ecdc``
format stores it) is reported as overhead.
"""

from __future__ import annotations

import math
from typing import Any

import torch

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
from bench.codecs.base import Codes, Encoded, Measured
from bench.codecs.neural import calibration_audio, stack_padded

CITATION = ("Défossez, Copet, Synnaeve, Adi: High Fidelity Neural Audio Compression. TMLR 2023, "
            "arXiv:2210.13438")
HOP = 320
CODEBOOK = 1024

#: Released configs of the two checkpoints (transformers conversion script / hub config.json).
FULL_CONFIGS: dict[int, dict[str, Any]] = {
    24000: {},
    48000: {"target_bandwidths": [3.0, 6.0, 12.0, 24.0], "sampling_rate": 48000, "audio_channels": 2,
            "use_causal_conv": False, "norm_type": "time_group_norm", "normalize": True,
            "chunk_length_s": 1.0, "overlap": 0.01},
}
#: nn.Parameters of EncodecModel at those configs (counted on the meta device; codebooks are buffers).
N_PARAMS = {24000: 14_851_810, 48000: 14_856_294}
REPOS = {24000: ("facebook/encodec_24khz", "c1dbe2ae3f1de713481a3b3e7c47f357092ee040"),
         48000: ("facebook/encodec_48khz", "c3def8e7185ac8c8efdce6eb8c4a651e487a503e")}


def _meta(sr: int, kbps: float):
    frame_rate = sr / HOP
    n_q = int(round(kbps * 1000 / (frame_rate * math.log2(CODEBOOK))))
    repo, rev = REPOS[sr]
    chunked = sr == 48000
    notes = (
        f"{n_q} of the {32 if sr == 24000 else 16} residual codebooks (bandwidth {kbps} kbps). "
        f"Weights {repo} pinned at {rev} (pin taken from public code that loads it; the resolved snapshot "
        "hash is what results record). n_params: nn.Parameters of the transformers port at the released "
        "config (codebooks are buffers, not counted). Weights CC-BY-NC 4.0 (code MIT). "
    )
    if chunked:
        notes += (
            "Stereo, non-causal; the transformers port keeps the original 1 s chunks with 1 % overlap "
            "(stride 0.99 s), per-chunk RMS normalisation and linear overlap-add on decode. Codes of all "
            "chunks are concatenated in time, so there are ~1 % more frames than ceil(n/320) and the "
            "measured payload is ~1 % above nominal; each chunk's float32 scale (32 bit/chunk) is side "
            "information, counted as overhead. Latency: a whole 1 s chunk."
        )
    else:
        notes += "Mono, causal convolutions and LSTM; latency one 320-sample frame (13.3 ms)."
    return token_meta(
        id=f"encodec_{sr // 1000}khz@{kbps:g}kbps", family=f"encodec_{sr // 1000}khz", sample_rate=sr,
        frame_rate=frame_rate, codebook_sizes=(CODEBOOK,) * n_q, channels=2 if chunked else 1,
        causal=not chunked, streaming=not chunked, n_params=N_PARAMS[sr],
        license="CC-BY-NC-4.0 (weights); MIT (code)", weights=hub_weights(repo, rev), citation=CITATION,
        implementation=implementation("EncodecModel"),
        algorithmic_latency_s=1.0 if chunked else HOP / sr, notes=notes,
        options={"bandwidth": float(kbps), "n_q": n_q},
    )


@register_codec(*(_meta(24000, k) for k in (1.5, 3, 6, 12, 24)), *(_meta(48000, k) for k in (3, 6, 12, 24)))
class EncodecCodec(HFTokenCodec):
    """EncodecModel.encode / decode at one bandwidth; 48 kHz codes chunk by chunk with scales."""

    model_class = "EncodecModel"

    @property
    def chunked(self) -> bool:
        return self.meta.sample_rate == 48000

    def full_config(self):
        from transformers import EncodecConfig

        return EncodecConfig(**FULL_CONFIGS[self.meta.sample_rate])

    def tiny_config(self):
        from transformers import EncodecConfig

        kw = dict(FULL_CONFIGS[self.meta.sample_rate])
        kw.update(num_filters=4, hidden_size=16, num_lstm_layers=1)
        return EncodecConfig(**kw)

    def calibrate(self, model: torch.nn.Module) -> None:
        x = calibration_audio(self.meta.sample_rate, channels=self.meta.channels)
        if model.config.normalize:
            x = x / x.mean(1, keepdim=True).pow(2).mean(-1, keepdim=True).sqrt()
        emb = model.encoder(x)[0].T  # [T, D]

        draw_rvq_codebooks(emb, model.quantizer.layers, CODEBOOK, set_euclidean_codebook, quantize_euclidean)
        codes = model.quantizer.encode(emb.T[None])
        y = model.decoder(model.quantizer.decode(codes))
        rescale_output(y, calibration_audio(self.meta.sample_rate, channels=self.meta.channels),
                       model.decoder.layers[-1].conv)

    # -- frames --------------------------------------------------------------------------------
    def _chunks(self, n: int) -> list[int]:
        """Frames of each chunk the port codes for ``n`` samples."""
        if not self.chunked:
            return [-(-n // HOP)]
        length, stride = self.meta.sample_rate, int(0.99 * self.meta.sample_rate)
        return [-(-min(length, n - off) // HOP) for off in range(0, n, stride)]

    def frames_for(self, n_samples: int) -> int:
        return sum(self._chunks(n_samples))

    # -- model calls ---------------------------------------------------------------------------
    def encode_frames(self, audio: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        model = self._require_model()
        out = model.encode(audio, bandwidth=float(self.meta.options["bandwidth"]), return_dict=True)
        chunks, pad = out.audio_codes, int(out.last_frame_pad_length or 0)
        parts = [chunks[i] for i in range(chunks.shape[0])]
        if pad:
            parts[-1] = parts[-1][..., :-pad]
        codes = torch.cat(parts, dim=-1)
        views = {"quantized": torch.cat([model.quantizer.decode(p.transpose(0, 1)) for p in parts], dim=-1)}
        if self.chunked:
            views["scale"] = torch.cat([s.view(-1, 1, 1).expand(-1, 1, p.shape[-1])
                                        for s, p in zip(out.audio_scales, parts, strict=True)], dim=-1)
        return codes, views

    def decode_frames(self, codes: torch.Tensor, scale: torch.Tensor | None = None) -> torch.Tensor:
        model = self._require_model()
        if not self.chunked:
            return model.decode(codes[None], [None], return_dict=True).audio_values
        per_chunk = self.meta.sample_rate // HOP
        starts = list(range(0, codes.shape[-1], per_chunk))
        last = codes.shape[-1] - starts[-1]
        frames = torch.zeros(len(starts), *codes.shape[:2], per_chunk, dtype=codes.dtype, device=codes.device)
        for i, s in enumerate(starts):
            frames[i, ..., : min(per_chunk, codes.shape[-1] - s)] = codes[..., s: s + per_chunk]
        if scale is None:
            raise ValueError(f"{self.meta.id}: decoding needs the per-chunk scales (Codes.latents['scale'])")
        scales = [scale[:, 0, s].reshape(-1, 1).to(codes.device) for s in starts]
        return model.decode(frames, scales, last_frame_pad_length=per_chunk - last, return_dict=True).audio_values

    def decode(self, encoded: Encoded) -> tuple[torch.Tensor, torch.Tensor]:
        """Like the base, but hands each group its per-chunk scales (48 kHz side information)."""
        assert isinstance(encoded, Codes)
        if not self.chunked:
            return super().decode(encoded)
        self._require_model()
        scale = encoded.latents.get("scale")
        outs: dict[int, torch.Tensor] = {}
        for t, idx in self._groups([int(x) for x in encoded.lengths]).items():
            s = scale[idx, :, :t] if scale is not None else None
            audio = self.decode_frames(encoded.codes[idx, :, :t].to(self.device), s)
            for j, i in enumerate(idx):
                outs[i] = audio[j, :, : encoded.n_samples[i]]
        return stack_padded(outs, self.meta.channels, self.device)

    def measure(self, encoded: Encoded) -> list[Measured]:
        measured = super().measure(encoded)
        if not self.chunked:
            return measured
        assert isinstance(encoded, Codes)
        for m, n in zip(measured, encoded.n_samples, strict=True):
            m.overhead_bps = 32 * len(self._chunks(n)) / (n / self.meta.sample_rate)
        return measured
