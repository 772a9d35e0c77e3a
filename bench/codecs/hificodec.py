"""HiFi-Codec (AcademiCodec): HiFi-GAN-style encoder/generator with group-residual VQ (GRVQ).

Own implementation of the released architecture (yangdongchao/AcademiCodec,
``academicodec/models/hificodec``), written so its ``state_dict`` matches the official checkpoints
key for key: the file is one ``torch.save`` dict ``{"encoder": ..., "generator": ..., "quantizer": ...}``
and the convolutions keep their weight-norm form (``weight_g`` / ``weight_v``), which is how the file
stores them. The latent (512 channels) is split into 2 groups; each group is quantised by 2 residual
stages of 1024 codes, so every frame carries 4 codes ``[stage1 g0, stage1 g1, stage2 g0, stage2 g1]``.

Upstream's strided encoder drops a trailing partial frame (``floor(n / hop)`` frames); this wrapper
right-pads with zeros to a whole number of frames so every input sample is coded (``ceil(n / hop)``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from bench.codecs import register_codec
from bench.codecs.base import CodecMeta, WeightsSource
from bench.codecs.neural import TokenCodec, calibration_audio
from bench.codecs.weights import load_state_dict
from bench.errors import CodecError

LRELU_SLOPE = 0.1
CHECKPOINT_SECTIONS = ("encoder", "generator", "quantizer")


@dataclass(frozen=True)
class HiFiCodecConfig:
    """Hyper-parameters of one HiFi-Codec model (the egs/*.json fields that shape the network)."""

    upsample_rates: tuple[int, ...] = (8, 5, 4, 2)
    upsample_kernel_sizes: tuple[int, ...] = (16, 11, 8, 4)
    upsample_initial_channel: int = 512
    resblock_kernel_sizes: tuple[int, ...] = (3, 7, 11)
    resblock_dilation_sizes: tuple[tuple[int, ...], ...] = ((1, 3, 5), (1, 3, 5), (1, 3, 5))
    n_codes: int = 1024
    n_code_groups: int = 2
    n_residual: int = 2
    encoder_base_channels: int = 32
    """Upstream hard-codes 32 (doubling per stage up to the 512-channel latent)."""
    latent_dim: int = 512
    """Upstream hard-codes 512 (encoder output, quantizer input, generator input)."""

    @property
    def hop(self) -> int:
        return math.prod(self.upsample_rates)


CONFIGS: dict[str, HiFiCodecConfig] = {
    "16k_320d": HiFiCodecConfig(),  # egs/HiFi-Codec-16k-320d/config_16k_320d.json
    "24k_320d": HiFiCodecConfig(),  # egs/HiFi-Codec-24k-320d/config_24k_320d.json
    "24k_240d": HiFiCodecConfig(upsample_rates=(8, 5, 3, 2), upsample_kernel_sizes=(16, 11, 7, 4)),
}


def _padding(kernel: int, dilation: int = 1) -> int:
    return (kernel * dilation - dilation) // 2


class WNConv1d(nn.Module):
    """Conv1d / ConvTranspose1d in weight-norm form: parameters ``bias``, ``weight_g``, ``weight_v``.

    Kept as (g, v) rather than folded because that is what the checkpoints store; the effective
    weight is ``g * v / ||v||`` with the norm over every axis but the first (torch's ``dim=0``).
    """

    def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int = 1, dilation: int = 1,
                 padding: int = 0, transposed: bool = False):
        super().__init__()
        self.stride, self.dilation, self.padding, self.transposed = stride, dilation, padding, transposed
        shape = (in_ch, out_ch, kernel) if transposed else (out_ch, in_ch, kernel)
        ref = (nn.ConvTranspose1d if transposed else nn.Conv1d)(in_ch, out_ch, kernel)
        self.bias = nn.Parameter(ref.bias.detach().clone())
        v = ref.weight.detach().clone().reshape(shape)
        self.weight_g = nn.Parameter(v.norm(dim=(1, 2), keepdim=True))
        self.weight_v = nn.Parameter(v)

    def weight(self) -> torch.Tensor:
        v = self.weight_v
        return v * (self.weight_g / v.norm(dim=(1, 2), keepdim=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.transposed:
            return F.conv_transpose1d(x, self.weight(), self.bias, self.stride, self.padding)
        return F.conv1d(x, self.weight(), self.bias, self.stride, self.padding, self.dilation)


class ResBlock1(nn.Module):
    """HiFi-GAN residual block type 1: three (dilated conv, conv) pairs with leaky ReLU."""

    def __init__(self, channels: int, kernel: int, dilations: Sequence[int]):
        super().__init__()
        self.convs1 = nn.ModuleList(
            WNConv1d(channels, channels, kernel, dilation=d, padding=_padding(kernel, d)) for d in dilations)
        self.convs2 = nn.ModuleList(
            WNConv1d(channels, channels, kernel, padding=_padding(kernel)) for _ in dilations)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for c1, c2 in zip(self.convs1, self.convs2, strict=True):
            x = x + c2(F.leaky_relu(c1(F.leaky_relu(x, LRELU_SLOPE)), LRELU_SLOPE))
        return x


class Encoder(nn.Module):
    """Mirror of the generator: strided convs (reversed rates) doubling channels, GroupNorm'd resblocks."""

    def __init__(self, cfg: HiFiCodecConfig):
        super().__init__()
        base = cfg.encoder_base_channels
        self.num_kernels = len(cfg.resblock_kernel_sizes)
        self.conv_pre = WNConv1d(1, base, 7, padding=3)
        self.normalize = nn.ModuleList()
        self.ups = nn.ModuleList()
        stages = list(reversed(list(zip(cfg.upsample_rates, cfg.upsample_kernel_sizes, strict=True))))
        for i, (u, k) in enumerate(stages):
            self.ups.append(WNConv1d(base * 2**i, base * 2 ** (i + 1), k, stride=u, padding=(k - u) // 2))
        self.resblocks = nn.ModuleList()
        kernels = list(reversed(cfg.resblock_kernel_sizes))
        dilations = list(reversed(cfg.resblock_dilation_sizes))
        for i in range(len(stages)):
            ch = base * 2 ** (i + 1)
            for k, d in zip(kernels, dilations, strict=True):
                self.resblocks.append(ResBlock1(ch, k, d))
                self.normalize.append(nn.GroupNorm(max(1, ch // 16), ch, eps=1e-6, affine=True))
        self.conv_post = nn.Conv1d(base * 2 ** len(stages), cfg.latent_dim, 3, 1, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv_pre(x)
        for i, up in enumerate(self.ups):
            x = up(F.leaky_relu(x, LRELU_SLOPE))
            xs: torch.Tensor | None = None
            for j in range(self.num_kernels):
                idx = i * self.num_kernels + j
                y = self.resblocks[idx](x)
                # upstream normalises the running sum, not each branch
                xs = self.normalize[idx](y if xs is None else xs + y)
            assert xs is not None
            x = xs / self.num_kernels
        return self.conv_post(F.leaky_relu(x))  # default slope 0.01 here, as upstream


class Generator(nn.Module):
    """HiFi-GAN V1 generator from the 512-channel latent; tanh output."""

    def __init__(self, cfg: HiFiCodecConfig):
        super().__init__()
        ch0 = cfg.upsample_initial_channel
        self.num_kernels = len(cfg.resblock_kernel_sizes)
        self.conv_pre = WNConv1d(cfg.latent_dim, ch0, 7, padding=3)
        self.ups = nn.ModuleList(
            WNConv1d(ch0 // 2**i, ch0 // 2 ** (i + 1), k, stride=u, padding=(k - u) // 2, transposed=True)
            for i, (u, k) in enumerate(zip(cfg.upsample_rates, cfg.upsample_kernel_sizes, strict=True)))
        self.resblocks = nn.ModuleList()
        for i in range(len(self.ups)):
            ch = ch0 // 2 ** (i + 1)
            for k, d in zip(cfg.resblock_kernel_sizes, cfg.resblock_dilation_sizes, strict=True):
                self.resblocks.append(ResBlock1(ch, k, d))
        self.conv_post = WNConv1d(ch0 // 2 ** len(self.ups), 1, 7, padding=3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv_pre(x)
        for i, up in enumerate(self.ups):
            x = up(F.leaky_relu(x, LRELU_SLOPE))
            xs = sum(self.resblocks[i * self.num_kernels + j](x) for j in range(self.num_kernels))
            x = xs / self.num_kernels
        return torch.tanh(self.conv_post(F.leaky_relu(x, LRELU_SLOPE)))


class _Codebook(nn.Module):
    """One group's codebook (``<name>.embedding.weight``) with nearest-neighbour lookup."""

    def __init__(self, n_codes: int, dim: int):
        super().__init__()
        self.embedding = nn.Embedding(n_codes, dim)

    def nearest(self, x: torch.Tensor) -> torch.Tensor:
        e = self.embedding.weight
        d = x.pow(2).sum(-1, keepdim=True) + e.pow(2).sum(-1) - 2 * x @ e.t()
        return d.argmin(-1)


class GroupResidualQuantizer(nn.Module):
    """GRVQ: latent split into groups, each quantised by ``n_residual`` stages (stage k in its own list)."""

    def __init__(self, cfg: HiFiCodecConfig):
        super().__init__()
        if cfg.latent_dim % cfg.n_code_groups:
            raise CodecError("latent_dim must be divisible by n_code_groups")
        if cfg.n_residual != 2:
            raise CodecError("the released layout has exactly two residual stages")
        dim = cfg.latent_dim // cfg.n_code_groups
        self.groups = cfg.n_code_groups
        self.quantizer_modules = nn.ModuleList(_Codebook(cfg.n_codes, dim) for _ in range(self.groups))
        self.quantizer_modules2 = nn.ModuleList(_Codebook(cfg.n_codes, dim) for _ in range(self.groups))

    def stages(self) -> list[nn.ModuleList]:
        return [self.quantizer_modules, self.quantizer_modules2]

    def encode(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """[B, D, T] → codes [B, stages*groups, T] and the quantised latent [B, D, T]."""
        residual = z.transpose(1, 2)
        quantized = torch.zeros_like(residual)
        codes = []
        for stage in self.stages():
            parts = residual.chunk(self.groups, dim=-1)
            q = []
            for part, book in zip(parts, stage, strict=True):
                idx = book.nearest(part)
                codes.append(idx)
                q.append(book.embedding(idx))
            q_stage = torch.cat(q, -1)
            residual = residual - q_stage
            quantized = quantized + q_stage
        return torch.stack(codes, 1), quantized.transpose(1, 2)

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """codes [B, stages*groups, T] → latent [B, D, T] (sum over stages, groups concatenated)."""
        out = 0
        for s, stage in enumerate(self.stages()):
            out = out + torch.cat([book.embedding(codes[:, s * self.groups + g])
                                   for g, book in enumerate(stage)], -1)
        assert isinstance(out, torch.Tensor)
        return out.transpose(1, 2)


class HiFiCodecModel(nn.Module):
    """Encoder + generator + GRVQ; ``state_dict`` = the checkpoint's three sections, dot-joined."""

    def __init__(self, cfg: HiFiCodecConfig):
        super().__init__()
        self.cfg = cfg
        self.encoder = Encoder(cfg)
        self.generator = Generator(cfg)
        self.quantizer = GroupResidualQuantizer(cfg)

    def encode(self, audio: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """[B, 1, T] → codes [B, 4, ceil(T / hop)] (+ quantised / unquantised latents)."""
        hop = self.cfg.hop
        pad = -audio.shape[-1] % hop
        z = self.encoder(F.pad(audio, (0, pad)))
        codes, q = self.quantizer.encode(z)
        return codes, {"quantized": q, "unquantized": z}

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        return self.generator(self.quantizer.decode(codes))


def flatten_checkpoint(ckpt: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """The official ``{"encoder": sd, "generator": sd, "quantizer": sd}`` file → one flat state_dict."""
    if all(isinstance(ckpt.get(k), Mapping) for k in CHECKPOINT_SECTIONS):
        return {f"{sec}.{k}": v for sec in CHECKPOINT_SECTIONS for k, v in ckpt[sec].items()}
    return dict(ckpt)


def nest_state_dict(sd: Mapping[str, torch.Tensor]) -> dict[str, dict[str, torch.Tensor]]:
    """Inverse of :func:`flatten_checkpoint`: the layout upstream's ``train.py`` saves."""
    out: dict[str, dict[str, torch.Tensor]] = {k: {} for k in CHECKPOINT_SECTIONS}
    for key, value in sd.items():
        sec, _, rest = key.partition(".")
        out[sec][rest] = value
    return out


@torch.no_grad()
def init_codebooks_from_data(model: HiFiCodecModel, audio: torch.Tensor, seed: int = 0) -> None:
    """Random-init codebooks drawn from the encoder's own outputs (and stage-1 residuals), so codes vary."""
    g = torch.Generator().manual_seed(seed)
    residual = model.encoder(audio).transpose(1, 2).reshape(-1, model.cfg.latent_dim)
    for stage in model.quantizer.stages():
        parts = residual.chunk(model.quantizer.groups, dim=-1)
        q = []
        for part, book in zip(parts, stage, strict=True):
            n_codes = book.embedding.weight.shape[0]
            pick = torch.randint(0, part.shape[0], (n_codes,), generator=g)
            jitter = 0.05 * part.std() * torch.randn(n_codes, part.shape[1], generator=g)
            book.embedding.weight.copy_(part[pick] + jitter)
            q.append(book.embedding(book.nearest(part)))
        residual = residual - torch.cat(q, -1)


# -- operating points --------------------------------------------------------------------------
_HUB = "hf://Dongchao/AcademiCodec"
_CITATION = ("Yang, Liu, Shi, Tian, Zou, Wu, Tao, Ma, Li, Chen, Zhang. HiFi-Codec: Group-residual Vector "
             "quantization for High Fidelity Audio Codec. arXiv:2305.02765, 2023.")
_LICENSE = "no LICENSE file in yangdongchao/AcademiCodec (weights: Dongchao/AcademiCodec on the HF hub)"
_IMPL = "own PyTorch re-implementation of academicodec.models.hificodec (VQVAE encode / forward)"


def _meta(op_id: str, variant: str, sample_rate: int, config: str, n_params: int,
          notes: str = "") -> CodecMeta:
    cfg = CONFIGS[config]
    frame_rate = sample_rate / cfg.hop
    sizes = (cfg.n_codes,) * (cfg.n_code_groups * cfg.n_residual)
    return CodecMeta(
        id=op_id, family=op_id.split("@")[0], kind="tokens", sample_rate=sample_rate,
        bitrate_bps=frame_rate * sum(math.log2(s) for s in sizes), frame_rate=frame_rate,
        codebook_sizes=sizes, causal=False, streaming=False, n_params=n_params, license=_LICENSE,
        weights=WeightsSource(uri=_HUB, revision=None, files=(variant,)), citation=_CITATION,
        implementation=_IMPL, algorithmic_latency_s=None,
        notes=("Non-causal; the encoder's GroupNorm spans the whole utterance, so there is no bounded "
               "algorithmic latency. Codes per frame: [stage1 g0, stage1 g1, stage2 g0, stage2 g1]. " + notes),
        options={"variant": variant, "config": config})


METAS = (
    _meta("hificodec_16k_320d@2kbps", "HiFi-Codec-16k-320d", 16000, "16k_320d", 63630882),
    _meta("hificodec_16k_320d_large_uni@2kbps", "HiFi-Codec-16k-320d-large-universal", 16000,
          "16k_320d", 63630882,
          "Architecture assumed equal to 16k_320d (no config for this checkpoint in the repo)."),
    _meta("hificodec_24k_320d@3kbps", "HiFi-Codec-24k-320d", 24000, "24k_320d", 63630882),
    _meta("hificodec_24k_240d@4kbps", "HiFi-Codec-24k-240d", 24000, "24k_240d", 63614498),
)


def tiny_config(cfg: HiFiCodecConfig) -> HiFiCodecConfig:
    """Same hop, strides and codebook sizes, far fewer channels: for offline random-init checks."""
    return replace(cfg, upsample_initial_channel=32, encoder_base_channels=4, latent_dim=64,
                   resblock_kernel_sizes=(3, 7), resblock_dilation_sizes=((1, 3, 5), (1, 3, 5)))


@register_codec(*METAS)
class HiFiCodec(TokenCodec):
    """One HiFi-Codec checkpoint (all four codebooks are always used: GRVQ has no bitrate switch)."""

    requires = ("torch",)

    @property
    def config(self) -> HiFiCodecConfig:
        return CONFIGS[self.meta.options["config"]]

    def build_pretrained(self, path: Path) -> torch.nn.Module:
        path = Path(path)
        if path.is_dir():
            path = path / self.meta.options["variant"]
        model = HiFiCodecModel(self.config)
        model.load_state_dict(flatten_checkpoint(load_state_dict(path)), strict=True)
        return model

    def build_random(self) -> torch.nn.Module:
        model = HiFiCodecModel(tiny_config(self.config))
        audio = calibration_audio(self.meta.sample_rate, seconds=2.0)
        init_codebooks_from_data(model, audio)
        return model

    def encode_frames(self, audio: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        model = self._require_model()
        assert isinstance(model, HiFiCodecModel)
        return model.encode(audio[:, :1])

    def decode_frames(self, codes: torch.Tensor) -> torch.Tensor:
        model = self._require_model()
        assert isinstance(model, HiFiCodecModel)
        return model.decode(codes)
