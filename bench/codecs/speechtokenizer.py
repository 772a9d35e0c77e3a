"""SpeechTokenizer (Zhang et al., ICLR 2024): SEANet + BiLSTM encoder, 8-level RVQ, SEANet decoder.

Why an own implementation: the upstream package imports torchaudio, which must never be imported
here. This module rebuilds the same architecture with the same module names, so the official
``speechtokenizer_hubert_avg/SpeechTokenizer.pt`` (a plain state_dict) loads key for key with
``weights_only=True``. RVQ-1 is the *semantic* layer (distilled from the average of HuBERT-base
layers during training); RVQ-2..8 add the acoustic detail. Each quantizer count is its own
op-point (1/2/4/8 codebooks → 0.5/1/2/4 kbps), decoded from exactly those codebooks, as upstream
``decode(codes[:n_q])`` does.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from bench.codecs import register_codec
from bench.codecs.base import CodecMeta, WeightsSource
from bench.codecs.neural import TokenCodec, calibration_audio
from bench.codecs.weights import load_state_dict
from bench.errors import CodecError, WeightsUnavailableError

# -- configuration ----------------------------------------------------------------------------


@dataclass(frozen=True)
class SpeechTokenizerConfig:
    """The structural keys of the upstream config.json (``config/spt_base_cfg.json``)."""

    n_filters: int = 64
    strides: tuple[int, ...] = (8, 5, 4, 2)
    dimension: int = 1024
    semantic_dimension: int = 768
    bidirectional: bool = True
    dilation_base: int = 2
    residual_kernel_size: int = 3
    n_residual_layers: int = 1
    lstm_layers: int = 2
    activation: str = "ELU"
    codebook_size: int = 1024
    n_q: int = 8
    sample_rate: int = 16000

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> SpeechTokenizerConfig:
        """Keep the structural keys of an upstream config (training keys are ignored)."""
        known = {f.name for f in fields(cls)}
        kw = {k: (tuple(v) if k == "strides" else v) for k, v in doc.items() if k in known}
        return cls(**kw)

    @property
    def hop_length(self) -> int:
        return math.prod(self.strides)


FULL = SpeechTokenizerConfig()
#: Same topology (strides, LSTM depth, residual layout, 1024-entry codebooks), narrow widths.
TINY = SpeechTokenizerConfig(n_filters=4, dimension=16, semantic_dimension=8)

# -- layers -----------------------------------------------------------------------------------


def _wn_weight(g: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Weight normalisation over every dim but 0: the kernel torch.nn.utils.weight_norm runs, so
    the weights (and hence near-tie codebook choices) are bit-identical to upstream's."""
    return torch._weight_norm(v, g, 0)


class _WNConv1d(nn.Module):
    """Conv1d stored as old-style weight norm (``bias``, ``weight_g``, ``weight_v``)."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, dilation: int = 1):
        super().__init__()
        self.stride, self.dilation, self.kernel_size = stride, dilation, kernel
        v = torch.empty(cout, cin, kernel)
        nn.init.kaiming_uniform_(v, a=math.sqrt(5))
        bound = 1 / math.sqrt(cin * kernel)
        self.bias = nn.Parameter(torch.empty(cout).uniform_(-bound, bound))
        self.weight_g = nn.Parameter(v.flatten(1).norm(dim=1).view(cout, 1, 1).clone())
        self.weight_v = nn.Parameter(v)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = _wn_weight(self.weight_g, self.weight_v)
        return F.conv1d(x, w, self.bias, self.stride, 0, self.dilation)


class _WNConvTranspose1d(nn.Module):
    """ConvTranspose1d with old-style weight norm; ``weight_v`` is [in, out, k], g is [in, 1, 1]."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int):
        super().__init__()
        self.stride, self.kernel_size = stride, kernel
        v = torch.empty(cin, cout, kernel)
        nn.init.kaiming_uniform_(v, a=math.sqrt(5))
        bound = 1 / math.sqrt(cout * kernel)
        self.bias = nn.Parameter(torch.empty(cout).uniform_(-bound, bound))
        self.weight_g = nn.Parameter(v.flatten(1).norm(dim=1).view(cin, 1, 1).clone())
        self.weight_v = nn.Parameter(v)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv_transpose1d(x, _wn_weight(self.weight_g, self.weight_v), self.bias, self.stride)


class _Holder(nn.Module):
    """A level of nesting the checkpoint's key names carry (upstream NormConv1d/NormConvTranspose1d)."""

    def __init__(self, name: str, inner: nn.Module):
        super().__init__()
        self.add_module(name, inner)
        self.inner = [inner]  # plain list: not a submodule, so keys stay as upstream

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner[0](x)


def _reflect_pad(x: torch.Tensor, left: int, right: int) -> torch.Tensor:
    """Reflect padding that also works when the input is shorter than the pad (zeros first)."""
    n = x.shape[-1]
    extra = max(left, right) - n + 1 if n <= max(left, right) else 0
    if extra:
        x = F.pad(x, (0, extra))
    y = F.pad(x, (left, right), mode="reflect")
    return y[..., : y.shape[-1] - extra] if extra else y


class _SConv1d(nn.Module):
    """Non-causal conv, reflect-padded so the output has ceil(T / stride) frames."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, dilation: int = 1):
        super().__init__()
        self.conv = _Holder("conv", _WNConv1d(cin, cout, kernel, stride, dilation))
        self.k, self.s, self.d = kernel, stride, dilation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        total = (self.k - 1) * self.d - (self.s - 1)
        n = x.shape[-1]
        frames = math.ceil((n - self.k + total) / self.s + 1)
        extra = (frames - 1) * self.s + (self.k - total) - n
        right = total // 2
        return self.conv(_reflect_pad(x, total - right, right + extra))


class _SConvTranspose1d(nn.Module):
    """Non-causal transposed conv; trims kernel − stride samples (the larger half on the left)."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int):
        super().__init__()
        self.convtr = _Holder("convtr", _WNConvTranspose1d(cin, cout, kernel, stride))
        self.trim = kernel - stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.convtr(x)
        right = self.trim // 2
        left = self.trim - right
        return y[..., left : y.shape[-1] - right]


class _Snake(nn.Module):
    """Snake activation x + sin²(αx)/α (the ``speechtokenizer_snake`` variant)."""

    def __init__(self, channels: int):
        super().__init__()
        self.alpha = nn.Parameter(torch.ones(1, channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + (self.alpha + 1e-9).reciprocal() * torch.sin(self.alpha * x).pow(2)


def _act(cfg: SpeechTokenizerConfig, channels: int) -> nn.Module:
    if cfg.activation == "Snake":
        return _Snake(channels)
    if cfg.activation == "ELU":
        return nn.ELU(alpha=1.0)
    raise CodecError(f"speechtokenizer: unsupported activation {cfg.activation!r}")


class _ResBlock(nn.Module):
    """SEANet residual block: act → k-conv to dim/2 → act → 1x1 conv, plus a 1x1 conv shortcut."""

    def __init__(self, cfg: SpeechTokenizerConfig, dim: int, dilation: int):
        super().__init__()
        hidden = dim // 2
        self.block = nn.Sequential(
            _act(cfg, dim), _SConv1d(dim, hidden, cfg.residual_kernel_size, dilation=dilation),
            _act(cfg, hidden), _SConv1d(hidden, dim, 1),
        )
        self.shortcut = _SConv1d(dim, dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shortcut(x) + self.block(x)


class _SLSTM(nn.Module):
    """LSTM over [B, C, T] with a skip; a bidirectional one adds the input to both directions."""

    def __init__(self, dim: int, layers: int, bidirectional: bool):
        super().__init__()
        self.bidirectional = bidirectional
        self.lstm = nn.LSTM(dim, dim, layers, bidirectional=bidirectional)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(2, 0, 1)
        y, _ = self.lstm(x)
        y = y + (torch.cat([x, x], dim=-1) if self.bidirectional else x)
        return y.permute(1, 2, 0)


class SEANetEncoder(nn.Module):
    """Waveform [B, 1, T] → latent [B, dimension, ceil(T / hop)]."""

    def __init__(self, cfg: SpeechTokenizerConfig):
        super().__init__()
        nf, mult = cfg.n_filters, 1
        layers: list[nn.Module] = [_SConv1d(1, nf, 7)]
        for ratio in reversed(cfg.strides):
            for j in range(cfg.n_residual_layers):
                layers.append(_ResBlock(cfg, mult * nf, cfg.dilation_base ** j))
            layers += [_act(cfg, mult * nf), _SConv1d(mult * nf, mult * nf * 2, ratio * 2, stride=ratio)]
            mult *= 2
        if cfg.lstm_layers:
            layers.append(_SLSTM(mult * nf, cfg.lstm_layers, cfg.bidirectional))
        width = mult * nf * (2 if cfg.bidirectional and cfg.lstm_layers else 1)
        layers += [_act(cfg, width), _SConv1d(width, cfg.dimension, 7)]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class SEANetDecoder(nn.Module):
    """Latent [B, dimension, T] → waveform [B, 1, T × hop] (unidirectional LSTM, as upstream)."""

    def __init__(self, cfg: SpeechTokenizerConfig):
        super().__init__()
        nf, mult = cfg.n_filters, 2 ** len(cfg.strides)
        layers: list[nn.Module] = [_SConv1d(cfg.dimension, mult * nf, 7)]
        if cfg.lstm_layers:
            layers.append(_SLSTM(mult * nf, cfg.lstm_layers, bidirectional=False))
        for ratio in cfg.strides:
            layers += [_act(cfg, mult * nf), _SConvTranspose1d(mult * nf, mult * nf // 2, ratio * 2, ratio)]
            for j in range(cfg.n_residual_layers):
                layers.append(_ResBlock(cfg, mult * nf // 2, cfg.dilation_base ** j))
            mult //= 2
        layers += [_act(cfg, nf), _SConv1d(nf, 1, 7)]
        self.model = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.model(z)


class _Codebook(nn.Module):
    """EMA codebook buffers as trained upstream; inference uses only ``embed`` (nearest L2)."""

    def __init__(self, size: int, dim: int):
        super().__init__()
        self.register_buffer("inited", torch.zeros(1))
        self.register_buffer("cluster_size", torch.zeros(size))
        self.register_buffer("embed", torch.zeros(size, dim))
        self.register_buffer("embed_avg", torch.zeros(size, dim))

    def nearest(self, x: torch.Tensor) -> torch.Tensor:
        """[N, D] → indices [N] of the closest codeword (ties → lowest index, as argmax does)."""
        e = self.embed
        dist = x.pow(2).sum(1, keepdim=True) - 2 * x @ e.t() + e.pow(2).sum(1)[None]
        return (-dist).max(dim=-1).indices


class _VQ(nn.Module):
    def __init__(self, size: int, dim: int):
        super().__init__()
        self._codebook = _Codebook(size, dim)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """[B, D, T] → [B, T]."""
        b, d, t = x.shape
        return self._codebook.nearest(x.transpose(1, 2).reshape(b * t, d)).view(b, t)

    def decode(self, idx: torch.Tensor) -> torch.Tensor:
        """[B, T] → [B, D, T]."""
        return F.embedding(idx, self._codebook.embed).transpose(1, 2)


class _RVQLayers(nn.Module):
    def __init__(self, n_q: int, size: int, dim: int):
        super().__init__()
        self.layers = nn.ModuleList(_VQ(size, dim) for _ in range(n_q))


class ResidualVectorQuantizer(nn.Module):
    """Residual VQ without projections (codebook dim == latent dim)."""

    def __init__(self, cfg: SpeechTokenizerConfig):
        super().__init__()
        self.vq = _RVQLayers(cfg.n_q, cfg.codebook_size, cfg.dimension)

    def encode(self, x: torch.Tensor, n_q: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Latent [B, D, T] → (codes [B, n_q, T], sum of the chosen codewords [B, D, T])."""
        residual, quantized, codes = x, torch.zeros_like(x), []
        for layer in self.vq.layers[:n_q]:
            idx = layer.encode(residual)
            q = layer.decode(idx)
            residual = residual - q
            quantized = quantized + q
            codes.append(idx)
        return torch.stack(codes, dim=1), quantized

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """Codes [B, K, T] → Σ codewords of the first K quantizers [B, D, T]."""
        out = None
        for k in range(codes.shape[1]):
            q = self.vq.layers[k].decode(codes[:, k])
            out = q if out is None else out + q
        assert out is not None
        return out


class SpeechTokenizerModel(nn.Module):
    """Module names and order as upstream ``SpeechTokenizer`` (encoder, transform, quantizer, decoder)."""

    def __init__(self, cfg: SpeechTokenizerConfig):
        super().__init__()
        self.cfg = cfg
        self.encoder = SEANetEncoder(cfg)
        # distillation head towards HuBERT (training only); kept so the checkpoint loads strictly
        self.transform: nn.Module = (nn.Linear(cfg.dimension, cfg.semantic_dimension)
                                     if cfg.dimension != cfg.semantic_dimension else nn.Identity())
        self.quantizer = ResidualVectorQuantizer(cfg)
        self.decoder = SEANetDecoder(cfg)

    def encode(self, wav: torch.Tensor, n_q: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        e = self.encoder(wav)
        codes, q = self.quantizer.encode(e, n_q)
        return codes, {"quantized": q, "unquantized": e}

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.quantizer.decode(codes))


# -- random initialisation --------------------------------------------------------------------


@torch.no_grad()
def init_random_codebooks(model: SpeechTokenizerModel, seed: int = 0) -> None:
    """Fill each RVQ level with codewords from the residual it quantizes (frames + jitter).

    Random codebooks far from the encoder's outputs would map every frame to one code; drawing
    them from the actual residual distribution keeps codes varied at every level.
    """
    g = torch.Generator().manual_seed(seed)
    residual = model.encoder(calibration_audio(model.cfg.sample_rate))  # [1, D, T]
    frames = residual[0].t()
    for layer in model.quantizer.vq.layers:
        cb = layer._codebook
        std = frames.std(dim=0, keepdim=True).clamp(min=1e-6)
        pick = torch.randint(0, frames.shape[0], (cb.embed.shape[0],), generator=g)
        embed = frames[pick] + 0.5 * std * torch.randn(cb.embed.shape, generator=g)
        cb.embed.copy_(embed)
        cb.embed_avg.copy_(embed)
        cb.cluster_size.fill_(1.0)
        cb.inited.fill_(1.0)
        idx = layer.encode(frames.t()[None])
        frames = frames - layer.decode(idx)[0].t()


@torch.no_grad()
def init_random_weights(model: SpeechTokenizerModel) -> None:
    """Unit-gain convolutions and zero biases, so a random model's output depends on its codes.

    PyTorch's default init shrinks the signal by about 1/√3 per layer; after the ~20 layers of
    the decoder only the biases are left and every code decodes to the same waveform.
    """
    for m in model.modules():
        if isinstance(m, _WNConv1d):
            m.weight_g.fill_(1.0)  # each output filter has unit norm: variance kept per layer
            m.bias.zero_()
        elif isinstance(m, _WNConvTranspose1d):
            cin, cout, _ = m.weight_v.shape
            m.weight_g.fill_(math.sqrt(cout * m.stride / cin))  # unit norm per output sample
            m.bias.zero_()


@torch.no_grad()
def match_output_level(model: SpeechTokenizerModel) -> None:
    """Scale the last decoder conv so the probe signal comes back at its own RMS (random init only)."""
    x = calibration_audio(model.cfg.sample_rate)
    codes, _ = model.encode(x, model.cfg.n_q)
    y = model.decode(codes)
    last = model.decoder.model[-1].conv.conv
    assert isinstance(last, _WNConv1d)
    last.weight_g.mul_(x.pow(2).mean().sqrt() / y.pow(2).mean().sqrt().clamp(min=1e-12))


def build_model(cfg: SpeechTokenizerConfig = FULL) -> SpeechTokenizerModel:
    return SpeechTokenizerModel(cfg)


# -- op-points --------------------------------------------------------------------------------

WEIGHTS = WeightsSource(
    uri="hf://fnlp/SpeechTokenizer",
    revision=None,  # hub commit not readable offline: pin it when fetched (see report)
    files=("speechtokenizer_hubert_avg/config.json", "speechtokenizer_hubert_avg/SpeechTokenizer.pt"),
)
#: nn.Parameter count of the official speechtokenizer_hubert_avg model (EMA codebooks are buffers).
N_PARAMS = 103_675_586
_N_Q = (1, 2, 4, 8)


def _meta(n_q: int) -> CodecMeta:
    frame_rate = FULL.sample_rate / FULL.hop_length
    sizes = (FULL.codebook_size,) * n_q
    bps = frame_rate * sum(math.log2(s) for s in sizes)
    layers = "RVQ-1 only (the semantic, HuBERT-distilled layer)" if n_q == 1 else \
        f"RVQ-1..{n_q} (RVQ-1 semantic, HuBERT-distilled; RVQ-2..{n_q} acoustic)"
    return CodecMeta(
        id=f"speechtokenizer@{bps / 1000:g}kbps",
        family="speechtokenizer",
        kind="tokens",
        sample_rate=FULL.sample_rate,
        bitrate_bps=bps,
        channels=1,
        frame_rate=frame_rate,
        codebook_sizes=sizes,
        causal=False,
        streaming=False,
        n_params=N_PARAMS,
        license="Apache-2.0",
        weights=WEIGHTS,
        citation=("X. Zhang, D. Zhang, S. Li, Y. Zhou, X. Qiu: SpeechTokenizer: Unified Speech Tokenizer "
                  "for Speech Language Models, ICLR 2024 (arXiv:2308.16692)"),
        implementation="codecbench re-implementation of ZhangXInFD/SpeechTokenizer @30c96fb (no torchaudio)",
        algorithmic_latency_s=None,
        notes=(f"speechtokenizer_hubert_avg checkpoint, 16 kHz, 50 Hz frames, {layers}; decoded from "
               f"those {n_q} codebook(s) only, as upstream decode(codes[:n_q]). Non-causal: reflect-padded "
               "convolutions and a bidirectional encoder LSTM see the whole utterance, so there is no "
               "bounded algorithmic latency. Latents: 'unquantized' = encoder output before RVQ, "
               "'quantized' = sum of the chosen codewords."),
        options={"n_q": n_q, "variant": "speechtokenizer_hubert_avg"},
    )


def _find_checkpoint(path: Path) -> tuple[Path, Path | None]:
    """(SpeechTokenizer.pt, config.json or None) from a hub snapshot folder or a file."""
    path = Path(path)
    if path.is_dir():
        for sub in (path / "speechtokenizer_hubert_avg", path):
            if (sub / "SpeechTokenizer.pt").exists():
                cfg = sub / "config.json"
                return sub / "SpeechTokenizer.pt", cfg if cfg.exists() else None
        raise WeightsUnavailableError(f"{path}: no SpeechTokenizer.pt (expected speechtokenizer_hubert_avg/)")
    cfg = path.parent / "config.json"
    return path, cfg if cfg.exists() else None


@register_codec(*(_meta(n) for n in _N_Q))
class SpeechTokenizerCodec(TokenCodec):
    """SpeechTokenizer at n_q = 1, 2, 4 or 8 codebooks of one shared checkpoint."""

    requires = ("torch",)

    @property
    def n_q(self) -> int:
        return int(self.meta.options["n_q"])

    def build_pretrained(self, path: Path) -> nn.Module:
        ckpt, cfg_path = _find_checkpoint(path)
        cfg = FULL
        if cfg_path is not None:
            cfg = SpeechTokenizerConfig.from_json(json.loads(cfg_path.read_text()))
        if (cfg.sample_rate, cfg.hop_length, cfg.codebook_size) != (
                FULL.sample_rate, FULL.hop_length, FULL.codebook_size) or cfg.n_q < self.n_q:
            raise CodecError(f"{self.meta.id}: {cfg_path} describes a different model ({cfg})")
        model = build_model(cfg)
        state = load_state_dict(ckpt)
        model.load_state_dict(state, strict=True)
        return model

    def build_random(self) -> nn.Module:
        model = build_model(TINY).eval()
        init_random_weights(model)
        init_random_codebooks(model)
        match_output_level(model)
        return model

    def encode_frames(self, audio: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        model = self._require_model()
        assert isinstance(model, SpeechTokenizerModel)
        return model.encode(audio, self.n_q)

    def decode_frames(self, codes: torch.Tensor) -> torch.Tensor:
        model = self._require_model()
        assert isinstance(model, SpeechTokenizerModel)
        return model.decode(codes[:, : self.n_q])


def variant_config(name: str) -> SpeechTokenizerConfig:
    """Structural config of a released variant (the Snake one is not registered: low confidence)."""
    if name == "speechtokenizer_hubert_avg":
        return FULL
    if name == "speechtokenizer_snake":
        return replace(FULL, activation="Snake")
    raise KeyError(name)
