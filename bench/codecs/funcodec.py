"""FunCodec (alibaba-damo-academy/FunCodec): EnCodec-style SEANet codec with a 32-stage RVQ.

Own implementation of FunCodec's ``encodec`` model as released on the hub
(``alibaba-damo/audio_codec-encodec-*``): SEANet encoder/decoder whose convolutions are followed by
a one-group GroupNorm over time (``time_group_norm``), 2-layer LSTMs with a skip, and a residual VQ
whose EMA codebooks are stored stacked as buffers ``quantizer.rq.model.{inited,cluster_size,embed,
embed_avg}``. The upstream package pins do not install on Python 3.11, hence this rewrite.

Inference follows ``funcodec.bin.codec_inference``: the input is divided by its RMS
(``audio_normalize``), the first ``n_q`` quantizers code the latent, and decoding from tokens alone
applies no scale (the scale is not part of the token stream). Operating points sharing one
checkpoint differ only in ``options["n_q"]``. ``model.pth`` also holds the training-only
discriminator and mel filterbanks; those keys are dropped before the strict load.

FreqCodec (magnitude-phase) op-points are registered but unavailable: see :class:`FreqCodec`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
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

TRAINING_ONLY_PREFIXES = ("discriminator.", "mel_spec_transforms.")


@dataclass(frozen=True)
class FunCodecConfig:
    """The encoder/decoder/quantizer settings of one released FunCodec ``encodec`` model."""

    ratios: tuple[int, ...] = (8, 5, 4, 2)
    n_filters: int = 32
    dimension: int = 128
    lstm_layers: int = 2
    codebook_size: int = 1024
    num_quantizers: int = 32

    @property
    def hop(self) -> int:
        return math.prod(self.ratios)


CONFIGS: dict[str, FunCodecConfig] = {
    "ds320": FunCodecConfig(),  # egs/LibriTTS/codec/conf/encodec_16k_n32_600k_step.yaml
    "ds640": FunCodecConfig(ratios=(8, 5, 4, 2, 2)),  # ..._ds640.yaml
}


def _reflect_pad(x: torch.Tensor, left: int, right: int) -> torch.Tensor:
    """Reflect padding that also works when the input is shorter than the pad (zero-extend first)."""
    length = x.shape[-1]
    extra = max(0, max(left, right) - length + 1)
    if extra:
        x = F.pad(x, (0, extra))
    y = F.pad(x, (left, right), mode="reflect")
    return y[..., : y.shape[-1] - extra]


class _NormConv(nn.Module):
    """Conv1d followed by GroupNorm(1, C): FunCodec's ``NormConv1d`` with ``time_group_norm``."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int = 1, dilation: int = 1):
        super().__init__()
        self.conv = nn.Conv1d(in_ch, out_ch, kernel, stride, dilation=dilation)
        self.norm = nn.GroupNorm(1, out_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.conv(x))


class SConv1d(nn.Module):
    """Non-causal conv with EnCodec's padding: reflect, split evenly, extra right pad for whole frames."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int = 1, dilation: int = 1):
        super().__init__()
        self.conv = _NormConv(in_ch, out_ch, kernel, stride, dilation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        conv = self.conv.conv
        k, s, d = conv.kernel_size[0], conv.stride[0], conv.dilation[0]
        total = (k - 1) * d - (s - 1)
        n_frames = (x.shape[-1] - k + total) / s + 1
        extra = (math.ceil(n_frames) - 1) * s + (k - total) - x.shape[-1]
        right = total // 2
        return self.conv(_reflect_pad(x, total - right, right + extra))


class _NormConvTr(nn.Module):
    def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int):
        super().__init__()
        self.convtr = nn.ConvTranspose1d(in_ch, out_ch, kernel, stride)
        self.norm = nn.GroupNorm(1, out_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.convtr(x))


class SConvTranspose1d(nn.Module):
    """Transposed conv trimming ``kernel - stride`` samples, the larger half on the left."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int):
        super().__init__()
        self.convtr = _NormConvTr(in_ch, out_ch, kernel, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tr = self.convtr.convtr
        total = tr.kernel_size[0] - tr.stride[0]
        right = total // 2
        y = self.convtr(x)
        return y[..., total - right: y.shape[-1] - right]


class ResnetBlock(nn.Module):
    """SEANet residual unit: ELU, conv k3 (dim → dim/2), ELU, conv k1; 1x1-conv shortcut."""

    def __init__(self, dim: int, dilation: int = 1):
        super().__init__()
        hidden = dim // 2
        self.block = nn.Sequential(nn.ELU(), SConv1d(dim, hidden, 3, dilation=dilation),
                                   nn.ELU(), SConv1d(hidden, dim, 1))
        self.shortcut = SConv1d(dim, dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shortcut(x) + self.block(x)


class SLSTM(nn.Module):
    """Time-major LSTM over a conv layout, with a residual skip."""

    def __init__(self, dim: int, num_layers: int):
        super().__init__()
        self.lstm = nn.LSTM(dim, dim, num_layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(2, 0, 1)
        y, _ = self.lstm(x)
        return (y + x).permute(1, 2, 0)


class SEANetEncoder(nn.Module):
    def __init__(self, cfg: FunCodecConfig):
        super().__init__()
        nf, mult = cfg.n_filters, 1
        layers: list[nn.Module] = [SConv1d(1, nf, 7)]
        for ratio in reversed(cfg.ratios):
            layers += [ResnetBlock(mult * nf), nn.ELU(), SConv1d(mult * nf, 2 * mult * nf, 2 * ratio, ratio)]
            mult *= 2
        layers += [SLSTM(mult * nf, cfg.lstm_layers), nn.ELU(), SConv1d(mult * nf, cfg.dimension, 7)]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class SEANetDecoder(nn.Module):
    def __init__(self, cfg: FunCodecConfig):
        super().__init__()
        nf, mult = cfg.n_filters, 2 ** len(cfg.ratios)
        layers: list[nn.Module] = [SConv1d(cfg.dimension, mult * nf, 7), SLSTM(mult * nf, cfg.lstm_layers)]
        for ratio in cfg.ratios:
            layers += [nn.ELU(), SConvTranspose1d(mult * nf, mult * nf // 2, 2 * ratio, ratio),
                       ResnetBlock(mult * nf // 2)]
            mult //= 2
        layers += [nn.ELU(), SConv1d(nf, 1, 7)]
        self.model = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.model(z)


class StackedRVQ(nn.Module):
    """Residual VQ with all stages' EMA codebooks in stacked buffers (upstream's distributed RVQ)."""

    def __init__(self, n_q: int, bins: int, dim: int):
        super().__init__()
        self.register_buffer("inited", torch.ones(n_q, 1))
        self.register_buffer("cluster_size", torch.zeros(n_q, bins))
        self.register_buffer("embed", torch.zeros(n_q, bins, dim))
        self.register_buffer("embed_avg", torch.zeros(n_q, bins, dim))

    def encode(self, z: torch.Tensor, n_q: int) -> tuple[torch.Tensor, torch.Tensor]:
        """[B, D, T] → codes [B, n_q, T] and the quantised latent [B, D, T]."""
        residual = z.transpose(1, 2)
        quantized = torch.zeros_like(residual)
        codes = []
        for i in range(n_q):
            e = self.embed[i]
            d = residual.pow(2).sum(-1, keepdim=True) - 2 * residual @ e.t() + e.pow(2).sum(-1)
            idx = d.argmin(-1)
            q = F.embedding(idx, e)
            residual = residual - q
            quantized = quantized + q
            codes.append(idx)
        return torch.stack(codes, 1), quantized.transpose(1, 2)

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        out = sum(F.embedding(codes[:, i], self.embed[i]) for i in range(codes.shape[1]))
        assert isinstance(out, torch.Tensor)
        return out.transpose(1, 2)


class _RQ(nn.Module):
    def __init__(self, cfg: FunCodecConfig):
        super().__init__()
        self.model = StackedRVQ(cfg.num_quantizers, cfg.codebook_size, cfg.dimension)


class CostumeQuantizer(nn.Module):
    """Holder keeping upstream's key path ``quantizer.rq.model.*``."""

    def __init__(self, cfg: FunCodecConfig):
        super().__init__()
        self.rq = _RQ(cfg)


class FunCodecModel(nn.Module):
    """Generator part of FunCodec's ``encodec`` model (what inference needs), keys as in model.pth."""

    def __init__(self, cfg: FunCodecConfig):
        super().__init__()
        self.cfg = cfg
        self.encoder = SEANetEncoder(cfg)
        self.quantizer = CostumeQuantizer(cfg)
        self.decoder = SEANetDecoder(cfg)

    @property
    def rvq(self) -> StackedRVQ:
        return self.quantizer.rq.model

    def latent(self, audio: torch.Tensor) -> torch.Tensor:
        """[B, 1, T] → [B, D, ceil(T / hop)], after dividing by the RMS as upstream does."""
        scale = audio.mean(1, keepdim=True).pow(2).mean(2, keepdim=True).sqrt() + 1e-8
        return self.encoder(audio / scale)

    def encode(self, audio: torch.Tensor, n_q: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        z = self.latent(audio)
        codes, q = self.rvq.encode(z, n_q)
        return codes, {"quantized": q, "unquantized": z}

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.rvq.decode(codes))


def generator_state_dict(ckpt: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """A ``model.pth`` state_dict without its training-only (discriminator, loss) entries."""
    return {k: v for k, v in ckpt.items() if not k.startswith(TRAINING_ONLY_PREFIXES)}


def _config_from_yaml(path: Path, base: FunCodecConfig) -> FunCodecConfig:
    """Override the built-in config with the hub's ``config.yaml`` where it states a field."""
    import yaml

    doc = yaml.safe_load(path.read_text()) or {}
    enc = doc.get("encoder_conf") or {}
    qc = doc.get("quantizer_conf") or {}
    mc = doc.get("model_conf") or {}
    return replace(
        base,
        ratios=tuple(enc.get("ratios", base.ratios)),
        n_filters=int(enc.get("n_filters", base.n_filters)),
        dimension=int(mc.get("odim", enc.get("dimension", base.dimension))),
        lstm_layers=int(enc.get("seq_layer_num", base.lstm_layers)),
        codebook_size=int(qc.get("codebook_size", base.codebook_size)),
        num_quantizers=int(qc.get("num_quantizers", base.num_quantizers)),
    )


@torch.no_grad()
def init_codebooks_from_data(model: FunCodecModel, audio: torch.Tensor, seed: int = 0) -> None:
    """Random-init codebooks: Gaussian codes matching each stage's residual statistics, so codes vary.

    Stage ``i`` draws from the mean and spread of the residual left by stages ``< i`` on a calibration
    signal; sampling (not copying) the residuals keeps every one of the 32 stages informative.
    """
    g = torch.Generator().manual_seed(seed)
    rvq = model.rvq
    residual = model.latent(audio).transpose(1, 2).reshape(-1, model.cfg.dimension)
    for i in range(rvq.embed.shape[0]):
        bins, dim = rvq.embed.shape[1:]
        book = residual.mean(0) + residual.std(0) * torch.randn(bins, dim, generator=g)
        rvq.embed[i].copy_(book)
        rvq.embed_avg[i].copy_(book)
        rvq.cluster_size[i].fill_(1.0)
        d = residual.pow(2).sum(-1, keepdim=True) - 2 * residual @ book.t() + book.pow(2).sum(-1)
        residual = residual - book[d.argmin(-1)]


# -- operating points --------------------------------------------------------------------------
_CITATION = ("Du, Wang, Chen, Zhang. FunCodec: A Fundamental, Reproducible and Integrable Open-source "
             "Toolkit for Neural Speech Codec. arXiv:2309.07405, 2023.")
_IMPL = "own PyTorch re-implementation of funcodec.models.codec_basic.Encodec (inference_encoding / decoding)"


def _meta(op_id: str, repo: str, config: str | None, n_q: int, hop: int, n_params: int | None,
          notes: str = "") -> CodecMeta:
    frame_rate = 16000 / hop
    sizes = (1024,) * n_q
    return CodecMeta(
        id=op_id, family=op_id.split("@")[0], kind="tokens", sample_rate=16000,
        bitrate_bps=frame_rate * sum(math.log2(s) for s in sizes), frame_rate=frame_rate,
        codebook_sizes=sizes, causal=False, streaming=False, n_params=n_params, license="MIT",
        weights=WeightsSource(uri=f"hf://alibaba-damo/{repo}", revision=None,
                              files=("model.pth", "config.yaml")),
        citation=_CITATION, implementation=_IMPL, algorithmic_latency_s=None,
        notes=("Non-causal; GroupNorm over time spans the whole utterance, so latency is unbounded. "
               f"First {n_q} of 32 RVQ stages; decoding from tokens carries no loudness scale. " + notes),
        options={"repo": repo, "config": config, "n_q": n_q})


_EN320 = "audio_codec-encodec-en-libritts-16k-nq32ds320-pytorch"
_EN640 = "audio_codec-encodec-en-libritts-16k-nq32ds640-pytorch"
_ZH320 = "audio_codec-encodec-zh_en-general-16k-nq32ds320-pytorch"
_ZH640 = "audio_codec-encodec-zh_en-general-16k-nq32ds640-pytorch"
_N320, _N640 = 14855843, 57549987  # generator-only parameters (manifests)

ENCODEC_METAS = (
    *(_meta(f"funcodec_en_16k_ds320@{n // 2}kbps", _EN320, "ds320", n, 320, _N320) for n in (2, 4, 8, 16, 32)),
    *(_meta(f"funcodec_en_16k_ds640@{n // 4}kbps", _EN640, "ds640", n, 640, _N640) for n in (4, 8, 16, 32)),
    *(_meta(f"funcodec_zh_en_16k_ds320@{n // 2}kbps", _ZH320, "ds320", n, 320, _N320,
            "Architecture assumed equal to the LibriTTS ds320 recipe (no zh_en recipe upstream).")
      for n in (2, 8, 32)),
    *(_meta(f"funcodec_zh_en_16k_ds640@{n // 4}kbps", _ZH640, "ds640", n, 640, _N640,
            "Architecture assumed equal to the LibriTTS ds640 recipe (no zh_en recipe upstream).")
      for n in (4, 16, 32)),
)

_FREQ_GR1 = "audio_codec-freqcodec_magphase-en-libritts-16k-gr1nq32ds320-pytorch"
_FREQ_GR8 = "audio_codec-freqcodec_magphase-en-libritts-16k-gr8nq32ds320-pytorch"
FREQ_METAS = tuple(
    _meta(f"freqcodec_magphase_{gr}_16k_ds320@{n // 2}kbps", repo, None, n, 320, None,
          "FreqCodec: 2-D SEANet over STFT magnitude/phase (n_fft 512, hop 160, time stride 2).")
    for gr, repo in (("gr1", _FREQ_GR1), ("gr8", _FREQ_GR8)) for n in (8, 32)
)

FREQCODEC_UNAVAILABLE = (
    "FreqCodec (magnitude-phase) is not implemented: its released config.yaml is not in the upstream "
    "repository, and the only repo recipe (freqcodec_mag_phase_16k_n32_600k_step.yaml) builds a 12.7 M "
    "parameter model while the README states 0.52 M (gr1) / 4.50 M (gr8), so no layout can be checked "
    "key for key offline; implementing it needs the hub's config.yaml and model.pth"
)


def tiny_config(cfg: FunCodecConfig) -> FunCodecConfig:
    """Same strides (hop), codebook size and stage count, far fewer channels: offline checks."""
    return replace(cfg, n_filters=2, dimension=32, lstm_layers=1)


@register_codec(*ENCODEC_METAS)
class FunCodec(TokenCodec):
    """One FunCodec ``encodec`` checkpoint at a fixed number of RVQ stages."""

    requires = ("torch",)

    @property
    def config(self) -> FunCodecConfig:
        return CONFIGS[self.meta.options["config"]]

    @property
    def n_q(self) -> int:
        return int(self.meta.options["n_q"])

    def build_pretrained(self, path: Path) -> torch.nn.Module:
        path = Path(path)
        cfg = self.config
        if path.is_dir():
            if (path / "config.yaml").is_file():
                cfg = _config_from_yaml(path / "config.yaml", cfg)
            path = path / "model.pth"
        if cfg.hop != self.config.hop or cfg.codebook_size != 1024 or cfg.num_quantizers < self.n_q:
            raise CodecError(f"{self.meta.id}: config.yaml describes hop {cfg.hop}, {cfg.num_quantizers} x "
                             f"{cfg.codebook_size} codes; this op-point needs hop {self.config.hop}, "
                             f">= {self.n_q} x 1024")
        model = FunCodecModel(cfg)
        model.load_state_dict(generator_state_dict(load_state_dict(path)), strict=True)
        return model

    def build_random(self) -> torch.nn.Module:
        model = FunCodecModel(tiny_config(self.config))
        init_codebooks_from_data(model, calibration_audio(16000, seconds=2.0))
        return model

    def encode_frames(self, audio: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        model = self._require_model()
        assert isinstance(model, FunCodecModel)
        return model.encode(audio[:, :1], self.n_q)

    def decode_frames(self, codes: torch.Tensor) -> torch.Tensor:
        model = self._require_model()
        assert isinstance(model, FunCodecModel)
        return model.decode(codes)


@register_codec(*FREQ_METAS)
class FreqCodec(TokenCodec):
    """FreqCodec op-points: listed so they show up with the reason they cannot run."""

    def availability(self) -> tuple[bool, str]:
        return False, FREQCODEC_UNAVAILABLE

    def build_pretrained(self, path: Path) -> torch.nn.Module:
        raise CodecError(f"{self.meta.id}: {FREQCODEC_UNAVAILABLE}")

    def build_random(self) -> torch.nn.Module:
        raise CodecError(f"{self.meta.id}: {FREQCODEC_UNAVAILABLE}")

    def encode_frames(self, audio: torch.Tensor) -> torch.Tensor:
        raise CodecError(f"{self.meta.id}: {FREQCODEC_UNAVAILABLE}")

    def decode_frames(self, codes: torch.Tensor) -> torch.Tensor:
        raise CodecError(f"{self.meta.id}: {FREQCODEC_UNAVAILABLE}")


__all__ = ["FunCodec", "FunCodecConfig", "FunCodecModel", "FreqCodec", "generator_state_dict"]
