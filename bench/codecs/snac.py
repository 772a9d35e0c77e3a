"""SNAC (Multi-Scale Neural Audio Codec) at 24, 32 and 44.1 kHz through the maintained ``snac`` package.

Why the package: it is the authors' own code (hubertsiuzdak/snac, MIT), needs only torch, numpy,
einops and huggingface_hub (no torchaudio), and its module tree is what the hub checkpoints were
saved from, so the official weights load strictly.

Codes layout. SNAC's quantizer levels run at different rates: level ``l`` has stride ``s_l``
(24 kHz: 4/2/1 over a 512-sample hop, i.e. 11.7 / 23.4 / 46.9 Hz; 32 and 44.1 kHz: 8/4/2/1 over
384 samples). One coarse frame (``hop × s_0`` samples) therefore holds ``s_0 / s_l`` codes of
level ``l`` (24 kHz: 1 + 2 + 4 = 7; 32/44.1 kHz: 1 + 2 + 4 + 8 = 15). Codes are ``[B, K, T]`` with
``T`` coarse frames and ``K`` those per-frame codes as rows, level by level, in time order inside a
level: row ``r`` of level ``l`` at frame ``t`` is level ``l``'s code number ``t × s_0/s_l + r``.
So ``codes[:, :1]`` is the coarsest level and ``codes[:, :3]`` (24 kHz) the two coarsest; the
declared bitrate is Σ_l rate_l × 12 bits = coarse rate × K × log2(4096).

Lengths. Upstream pads the input to ``hop × lcm(s_0, attention window)`` samples (12288 samples at
32/44.1 kHz) before encoding. The codes kept are those of the ``ceil(n / (hop × s_0))`` coarse
frames that cover the input; the rest only code padding and are not transmitted. The decoder's
windowed attention (32/44.1 kHz) needs a multiple of 4 coarse frames, so the decoder repeats the
last received frame's codes up to that multiple (the end of an utterance is usually near silence,
which is what upstream's padding codes encode) and trims the output to the input length.

Determinism. The decoder's NoiseBlocks add ``torch.randn`` noise (the released inference path keeps
them). Each item is decoded on its own with the global RNG forked and seeded with ``NOISE_SEED``,
so decoding is reproducible and a batch decodes exactly as its singles.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from bench.codecs import register_codec
from bench.codecs.base import CodecMeta, WeightsSource
from bench.codecs.neural import TokenCodec
from bench.codecs.weights import load_state_dict
from bench.errors import CodecError

NOISE_SEED = 0
#: Released configurations (hub config.json = ``SNAC.__init__`` kwargs); parameter counts of these
#: builds are 19,842,914 and 54,546,338, the README's 19.8 M and 54.5 M.
CONFIGS: Mapping[str, Mapping[str, Any]] = {
    "snac_24khz": {"sampling_rate": 24000, "encoder_dim": 48, "encoder_rates": [2, 4, 8, 8], "latent_dim": None,
                   "decoder_dim": 1024, "decoder_rates": [8, 8, 4, 2], "attn_window_size": None,
                   "codebook_size": 4096, "codebook_dim": 8, "vq_strides": [4, 2, 1], "noise": True,
                   "depthwise": True},
    "snac_32khz": {"sampling_rate": 32000, "encoder_dim": 64, "encoder_rates": [2, 3, 8, 8], "latent_dim": None,
                   "decoder_dim": 1536, "decoder_rates": [8, 8, 3, 2], "attn_window_size": 32,
                   "codebook_size": 4096, "codebook_dim": 8, "vq_strides": [8, 4, 2, 1], "noise": True,
                   "depthwise": True},
    "snac_44khz": {"sampling_rate": 44100, "encoder_dim": 64, "encoder_rates": [2, 3, 8, 8], "latent_dim": None,
                   "decoder_dim": 1536, "decoder_rates": [8, 8, 3, 2], "attn_window_size": 32,
                   "codebook_size": 4096, "codebook_dim": 8, "vq_strides": [8, 4, 2, 1], "noise": True,
                   "depthwise": True},
}
#: Hub revisions (commits of hubertsiuzdak/snac_*), the ones projects pinning these models use.
REVISIONS = {"snac_24khz": "d73ad176a12188fcf4f360ba3bf2c2fbbe8f58ec",
             "snac_32khz": "c84c6ac842dc7a44a6fb0f3b576ce94b48a7780f",
             "snac_44khz": "873ebef9718b89660340c6f55a2b515e98cfa1d9"}
N_PARAMS = {"snac_24khz": 19_842_914, "snac_32khz": 54_546_338, "snac_44khz": 54_546_338}
USE = {"snac_24khz": "speech", "snac_32khz": "music and sound effects", "snac_44khz": "music and sound effects"}
#: Random-init builds keep every rate-setting field and shrink only the widths.
TINY = {"encoder_dim": 4, "decoder_dim": 64}


def hop_length(cfg: Mapping[str, Any]) -> int:
    return math.prod(cfg["encoder_rates"])


def rows_per_level(cfg: Mapping[str, Any]) -> list[int]:
    """Codes of each level in one coarse frame: s_0 / s_l."""
    s0 = cfg["vq_strides"][0]
    return [s0 // s for s in cfg["vq_strides"]]


def flatten_levels(levels: list[torch.Tensor], cfg: Mapping[str, Any]) -> torch.Tensor:
    """SNAC's per-level codes [B, T_0 × m_l] → [B, K, T_0] (rows of a level in time order)."""
    t0 = levels[0].shape[-1]
    rows = [c.reshape(c.shape[0], t0, m).transpose(1, 2) for c, m in zip(levels, rows_per_level(cfg), strict=True)]
    return torch.cat(rows, dim=1)


def unflatten_levels(codes: torch.Tensor, cfg: Mapping[str, Any]) -> list[torch.Tensor]:
    """Inverse of :func:`flatten_levels`."""
    out, k = [], 0
    for m in rows_per_level(cfg):
        block = codes[:, k : k + m]
        out.append(block.transpose(1, 2).reshape(codes.shape[0], -1))
        k += m
    return out


def centre_quantizers(model: torch.nn.Module, sample_rate: int) -> None:
    """Give a random SNAC non-degenerate codes: centre each level's projected input and spread its codebook.

    A random encoder's latents all point roughly the same way (bias and Snake offsets), so SNAC's
    cosine-distance VQ would map every frame to a handful of entries. Each level's ``in_proj`` bias
    is shifted so its outputs on a seeded noise probe have zero mean, and the codebook is drawn
    unit-normal: the entries then cover the directions the frames really take.
    """
    gen = torch.Generator().manual_seed(0)
    probe = torch.randn(1, 1, sample_rate, generator=gen)
    probe *= torch.linspace(0.05, 0.5, sample_rate)  # varying level, like speech onsets
    with torch.no_grad():
        residual = model.encoder(model.preprocess(probe))
        for vq in model.quantizer.quantizers:
            z = residual
            if vq.stride > 1:
                z = torch.nn.functional.avg_pool1d(z, vq.stride, vq.stride)
            vq.in_proj.bias -= vq.in_proj(z).mean(dim=(0, 2))
            vq.codebook.weight.copy_(torch.randn(vq.codebook.weight.shape, generator=gen))
            z_q, _ = vq(residual)
            residual = residual - z_q


def _meta(name: str) -> CodecMeta:
    cfg = CONFIGS[name]
    sr, hop, strides = cfg["sampling_rate"], hop_length(cfg), cfg["vq_strides"]
    frame_rate = sr / (hop * strides[0])
    sizes = (cfg["codebook_size"],) * sum(rows_per_level(cfg))
    rates = " / ".join(f"{sr / (hop * s):.1f}" for s in strides)
    attn = cfg["attn_window_size"]
    return CodecMeta(
        id=f"{name}@{frame_rate * len(sizes) * math.log2(cfg['codebook_size']) / 1000:.2g}kbps",
        family=name,
        kind="tokens",
        sample_rate=sr,
        bitrate_bps=frame_rate * sum(math.log2(s) for s in sizes),
        channels=1,
        frame_rate=frame_rate,
        codebook_sizes=sizes,
        causal=False,
        streaming=False,
        n_params=N_PARAMS[name],
        license="MIT",
        weights=WeightsSource(uri=f"hf://hubertsiuzdak/{name}", revision=REVISIONS[name],
                              files=("config.json", "pytorch_model.bin")),
        citation=("Siuzdak, Grötschla, Lanzendörfer: SNAC: Multi-Scale Neural Audio Codec, "
                  "NeurIPS 2024 Workshop on AI-Driven Speech, Music, and Sound Generation (arXiv:2410.14411)"),
        implementation="snac package (hubertsiuzdak/snac, PyPI) with the hub checkpoint",
        algorithmic_latency_s=None,
        notes=(f"{len(strides)} RVQ levels of 4096 codes at {rates} Hz (hop {hop}, strides {strides}); trained "
               f"for {USE[name]}. Codes [B, K={len(sizes)}, T] at the coarse rate {frame_rate:.3f} Hz, K = the "
               f"{' + '.join(map(str, rows_per_level(cfg)))} codes of each level per coarse frame, level by level. "
               + ("Decoder pads the received codes to a multiple of 4 coarse frames (windowed attention, "
                  f"window {attn}) by repeating the last frame. " if attn else "")
               + "Non-causal (offline) model, so no algorithmic latency is stated. Decoder noise is seeded "
               f"({NOISE_SEED}) per item for reproducible output."),
        options={"config": name},
    )


def _id(name: str) -> str:
    return _meta(name).id


@register_codec(*(_meta(n) for n in CONFIGS))
class SNACCodec(TokenCodec):
    """One SNAC checkpoint at its single operating point (all levels)."""

    requires = ("snac", "einops")

    @property
    def config(self) -> Mapping[str, Any]:
        return CONFIGS[self.meta.options["config"]]

    def build_pretrained(self, path: Path) -> torch.nn.Module:
        from snac import SNAC

        folder = Path(path)
        cfg_file = folder / "config.json" if folder.is_dir() else folder.with_name("config.json")
        weights = folder / "pytorch_model.bin" if folder.is_dir() else folder
        hub_cfg = json.loads(cfg_file.read_text())
        want = self.config
        differs = {k: (hub_cfg.get(k), v) for k, v in want.items() if k in hub_cfg and hub_cfg[k] != v}
        if differs:
            raise CodecError(f"{self.meta.id}: {cfg_file} differs from the released config "
                             f"(key: (file, expected)) {differs}")
        model = SNAC(**{**want, **hub_cfg})
        model.load_state_dict(load_state_dict(weights), strict=True)
        return model

    def build_random(self) -> torch.nn.Module:
        from snac import SNAC

        model = SNAC(**{**self.config, **TINY}).eval()
        centre_quantizers(model, self.meta.sample_rate)
        return model

    # -- model calls -------------------------------------------------------------------------
    def frames_for(self, n_samples: int) -> int:
        coarse_hop = hop_length(self.config) * self.config["vq_strides"][0]
        return -(-n_samples // coarse_hop)

    @torch.inference_mode()
    def encode_frames(self, audio: torch.Tensor) -> torch.Tensor:
        model = self._require_model()
        levels = model.encode(audio)  # pads to hop × lcm(s_0, attention window) itself
        t0 = self.frames_for(audio.shape[-1])
        levels = [c[:, : t0 * m] for c, m in zip(levels, rows_per_level(self.config), strict=True)]
        return flatten_levels(levels, self.config)

    @torch.inference_mode()
    def decode_frames(self, codes: torch.Tensor) -> torch.Tensor:
        model = self._require_model()
        attn = self.config["attn_window_size"]
        if attn:  # the decoder's windowed attention needs whole windows of finest-rate frames
            s0 = self.config["vq_strides"][0]
            multiple = math.lcm(s0, attn) // s0
            pad = -codes.shape[-1] % multiple
            if pad:
                codes = torch.cat([codes, codes[..., -1:].expand(-1, -1, pad)], dim=-1)
        outs = []
        devices = [] if self.device.type == "cpu" else [self.device]
        for item in codes:
            with torch.random.fork_rng(devices=devices):
                torch.manual_seed(NOISE_SEED)
                outs.append(model.decode([c.to(self.device) for c in unflatten_levels(item[None], self.config)]))
        return torch.cat(outs, dim=0)


SNAC_IDS = tuple(_id(n) for n in CONFIGS)

__all__ = ["CONFIGS", "SNACCodec", "SNAC_IDS", "flatten_levels", "unflatten_levels"]
