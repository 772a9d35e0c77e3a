"""Causal convolutions that carry their left context, and AudioDec's causal HiFi-GAN vocoder.

AudioDec (facebookresearch/AudioDec) runs every convolution causally: each layer keeps the last
``(kernel − 1) · dilation`` input samples it saw (the ``pad_buffer`` buffer of the official
checkpoints) and prepends them to the next chunk. The official demo warms these contexts up on
8192 zero samples before coding a file, so the first frames of a file are coded from that state,
not from zero padding. Here the context lives in a dict passed along the call (``Context``), so
one model can code many utterances from the same warmed-up state without mutating its buffers;
the ``pad_buffer`` buffers are only the initial state, exactly as loaded from a checkpoint.

The vocoder is the causal HiFi-GAN of AudioDec v0/v1/v2/univ (``models/vocoder/HiFiGAN.py``),
written from its description so its ``state_dict`` matches the released generators key for key:
old-style weight norm (``weight_g`` / ``weight_v``) and the code statistics ``mean`` / ``scale``
as buffers. This module is shared with :mod:`bench.codecs.audiodec`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

Context = dict[nn.Module, torch.Tensor]
"""Per-layer left context (the samples a causal layer still needs), keyed by layer."""


class WNConv1d(nn.Module):
    """A (transposed) 1-D convolution with old-style weight norm: ``weight = g · v / ‖v‖``.

    Parameters are registered as ``bias``, ``weight_g``, ``weight_v`` — the names and order
    ``torch.nn.utils.weight_norm`` leaves in a state_dict — so released checkpoints load strictly.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 dilation: int = 1, groups: int = 1, bias: bool = True, transpose: bool = False):
        super().__init__()
        self.stride, self.dilation, self.groups, self.transpose = stride, dilation, groups, transpose
        shape = ((in_channels, out_channels // groups, kernel_size) if transpose
                 else (out_channels, in_channels // groups, kernel_size))
        fan_in = (in_channels // groups) * kernel_size
        bound = 1.0 / math.sqrt(fan_in)
        self.bias = nn.Parameter(torch.empty(out_channels).uniform_(-bound, bound)) if bias else None
        v = torch.empty(shape).uniform_(-bound, bound)
        self.weight_g = nn.Parameter(v.flatten(1).norm(dim=1).reshape(-1, 1, 1))
        self.weight_v = nn.Parameter(v)

    @property
    def weight(self) -> torch.Tensor:
        v = self.weight_v
        return v * (self.weight_g / v.flatten(1).norm(dim=1).reshape(-1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.transpose:
            return F.conv_transpose1d(x, self.weight, self.bias, self.stride, groups=self.groups)
        return F.conv1d(x, self.weight, self.bias, self.stride, dilation=self.dilation, groups=self.groups)


def _context(layer: nn.Module, buffer: torch.Tensor, x: torch.Tensor, ctx: Context | None) -> torch.Tensor:
    """The layer's left context for this batch: carried state if any, else its initial buffer."""
    prev = ctx.get(layer) if ctx is not None else None
    if prev is None:
        prev = buffer.to(x.dtype)
    if prev.shape[0] != x.shape[0]:  # one shared (warm or initial) state for every item
        prev = prev.expand(x.shape[0], -1, -1)
    return prev


class CausalConv1d(nn.Module):
    """Causal convolution: left context of ``(k − 1) · dilation`` samples, no look-ahead.

    With stride s the output frame j ends at input sample ``s · j``, so T samples give ⌈T / s⌉
    frames and a frame never waits for later samples.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 dilation: int = 1, groups: int = 1, bias: bool = True, weight_norm: bool = False):
        super().__init__()
        self.pad_length = (kernel_size - 1) * dilation
        self.conv: nn.Module
        if weight_norm:
            self.conv = WNConv1d(in_channels, out_channels, kernel_size, stride, dilation, groups, bias)
        else:
            self.conv = nn.Conv1d(in_channels, out_channels, kernel_size, stride, 0, dilation, groups, bias)
        self.register_buffer("pad_buffer", torch.zeros(1, in_channels, self.pad_length))

    def forward(self, x: torch.Tensor, ctx: Context | None = None) -> torch.Tensor:
        x = torch.cat((_context(self, self.pad_buffer, x, ctx), x), dim=-1)
        if ctx is not None:
            ctx[self] = x[:, :, x.shape[-1] - self.pad_length:]
        return self.conv(x)


class CausalConvTranspose1d(nn.Module):
    """Causal transposed convolution (kernel 2·stride): frame t yields samples [t·s, (t+1)·s).

    It keeps ⌈k / s⌉ − 1 input frames of context and drops the ``stride`` samples at each end
    that belong to the previous or the next chunk, so T frames give exactly T · s samples.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int,
                 bias: bool = True, weight_norm: bool = False):
        super().__init__()
        self.stride = stride
        self.pad_length = math.ceil(kernel_size / stride) - 1
        self.deconv: nn.Module
        if weight_norm:
            self.deconv = WNConv1d(in_channels, out_channels, kernel_size, stride, bias=bias, transpose=True)
        else:
            self.deconv = nn.ConvTranspose1d(in_channels, out_channels, kernel_size, stride, bias=bias)
        self.register_buffer("pad_buffer", torch.zeros(1, in_channels, self.pad_length))

    def forward(self, x: torch.Tensor, ctx: Context | None = None) -> torch.Tensor:
        x = torch.cat((_context(self, self.pad_buffer, x, ctx), x), dim=-1)
        if ctx is not None:
            ctx[self] = x[:, :, x.shape[-1] - self.pad_length:]
        y = self.deconv(x)
        return y[:, :, self.stride: y.shape[-1] - self.stride]


class ResidualBlock(nn.Module):
    """HiFi-GAN residual block: per dilation, act → dilated causal conv (→ act → conv) + skip."""

    def __init__(self, kernel_size: int, channels: int, dilations: Sequence[int], groups: int = 1,
                 bias: bool = True, use_additional_convs: bool = True, negative_slope: float = 0.1,
                 weight_norm: bool = True):
        super().__init__()
        self.convs1 = nn.ModuleList()
        self.convs2 = nn.ModuleList() if use_additional_convs else None
        for d in dilations:
            self.convs1.append(CausalConv1d(channels, channels, kernel_size, 1, d, groups, bias, weight_norm))
            if self.convs2 is not None:
                self.convs2.append(CausalConv1d(channels, channels, kernel_size, 1, 1, groups, bias, weight_norm))
        self.activation = nn.LeakyReLU(negative_slope)

    def residual(self, x: torch.Tensor, ctx: Context | None) -> torch.Tensor:
        for i, conv1 in enumerate(self.convs1):
            xt = conv1(self.activation(x), ctx)
            if self.convs2 is not None:
                xt = self.convs2[i](self.activation(xt), ctx)
            x = xt + x
        return x

    def forward(self, x: torch.Tensor, ctx: Context | None = None) -> torch.Tensor:
        return self.residual(x, ctx)


class MultiReceptiveField(nn.Module):
    """HiFi-GAN MRF: the mean of residual blocks with different kernel sizes (AD v0)."""

    def __init__(self, channels: int, kernel_sizes: Sequence[int], dilations: Sequence[Sequence[int]],
                 groups: int, bias: bool, use_additional_convs: bool, negative_slope: float, weight_norm: bool):
        super().__init__()
        self.blocks = nn.ModuleList(
            ResidualBlock(k, channels, d, groups, bias, use_additional_convs, negative_slope, weight_norm)
            for k, d in zip(kernel_sizes, dilations, strict=True))

    def forward(self, x: torch.Tensor, ctx: Context | None = None) -> torch.Tensor:
        total: torch.Tensor | float = 0.0
        for block in self.blocks:
            total = total + block(x, ctx)
        assert isinstance(total, torch.Tensor)
        return total / len(self.blocks)


class MultiGroupConv1d(ResidualBlock):
    """AudioDec's cheaper MRF (AD v1/v2/univ): the input repeated ``groups`` times through one
    grouped residual block, then a 1×1 conv back to ``channels``."""

    def __init__(self, channels: int, kernel_size: int, dilations: Sequence[int], groups: int, bias: bool,
                 use_additional_convs: bool, negative_slope: float, weight_norm: bool):
        super().__init__(kernel_size, channels * groups, dilations, groups, bias, use_additional_convs,
                         negative_slope, weight_norm)
        self.groups = groups
        self.conv_out = (WNConv1d(channels * groups, channels, 1, bias=False) if weight_norm
                         else nn.Conv1d(channels * groups, channels, 1, bias=False))

    def forward(self, x: torch.Tensor, ctx: Context | None = None) -> torch.Tensor:
        return self.conv_out(self.residual(x.repeat(1, self.groups, 1), ctx))


class HiFiGANVocoder(nn.Module):
    """AudioDec's causal HiFi-GAN generator: normalised codes [B, D, T] → waveform [B, 1, T · hop]."""

    def __init__(self, in_channels: int = 64, out_channels: int = 1, channels: int = 512, kernel_size: int = 7,
                 upsample_scales: Sequence[int] = (5, 5, 4, 3), upsample_kernel_sizes: Sequence[int] = (10, 10, 8, 6),
                 resblock_kernel_sizes: Sequence[int] = (11,), resblock_dilations: Sequence[Sequence[int]] = ((1, 3, 5),),
                 groups: int = 3, bias: bool = True, use_additional_convs: bool = True,
                 negative_slope: float = 0.1, use_weight_norm: bool = True, use_stats: bool = True):
        super().__init__()
        if len(upsample_scales) != len(upsample_kernel_sizes):
            raise ValueError("one kernel size per upsampling scale")
        if use_stats:  # the released generators carry the code statistics as buffers
            self.register_buffer("mean", torch.zeros(in_channels))
            self.register_buffer("scale", torch.ones(in_channels))
        self.use_stats = use_stats
        wn = use_weight_norm
        self.input_conv = CausalConv1d(in_channels, channels, kernel_size, weight_norm=wn)
        self.upsamples = nn.ModuleList()
        self.blocks = nn.ModuleList()
        grouped = len(resblock_kernel_sizes) == 1 and groups > 1
        for i, (scale, k) in enumerate(zip(upsample_scales, upsample_kernel_sizes, strict=True)):
            c_out = channels // 2 ** (i + 1)
            self.upsamples.append(CausalConvTranspose1d(channels // 2**i, c_out, k, scale, weight_norm=wn))
            if grouped:
                self.blocks.append(MultiGroupConv1d(c_out, resblock_kernel_sizes[0], resblock_dilations[0], groups,
                                                    bias, use_additional_convs, negative_slope, wn))
            else:
                self.blocks.append(MultiReceptiveField(c_out, resblock_kernel_sizes, resblock_dilations, groups,
                                                       bias, use_additional_convs, negative_slope, wn))
        self.output_conv = CausalConv1d(channels // 2 ** len(upsample_scales), out_channels, kernel_size,
                                        weight_norm=wn)
        self.activation_upsamples = nn.LeakyReLU(negative_slope)
        self.activation_output1 = nn.LeakyReLU()  # upstream uses the default slope (0.01) here
        self.activation_output2 = nn.Tanh()
        self.hop = math.prod(upsample_scales)

    def decode(self, zq: torch.Tensor, ctx: Context | None = None) -> torch.Tensor:
        """Quantized codes [B, D, T] → audio [B, out_channels, T · hop]."""
        c = zq
        if self.use_stats:
            c = (c - self.mean[:, None]) / self.scale[:, None]
        c = self.input_conv(c, ctx)
        for up, block in zip(self.upsamples, self.blocks, strict=True):
            c = block(up(self.activation_upsamples(c), ctx), ctx)
        c = self.output_conv(self.activation_output1(c), ctx)
        return self.activation_output2(c)

    def forward(self, zq: torch.Tensor) -> torch.Tensor:
        return self.decode(zq)
