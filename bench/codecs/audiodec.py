"""AudioDec (Wu et al., ICASSP 2023): a streaming causal codec, 8 × 1024 RVQ codes per 300-sample hop.

Own re-implementation of facebookresearch/AudioDec (not on PyPI), checkpoint-compatible with the
released ``exp.zip``: the symmetric autoencoder ``StreamGenerator`` (causal SEANet-like encoder,
causal projector, residual VQ whose EMA codebooks are buffers, symmetric decoder) and the causal
HiFi-GAN vocoder (:mod:`bench.codecs._hifigan`). Op-points follow the upstream demo
(``utils/audiodec.py: assign_model``): ``libritts_v1`` = encoder at 500k steps + AD v1 vocoder,
``libritts_sym`` = same encoder + the symmetric decoder of the 1M-step checkpoint, and the VCTK 48 kHz
pairs. The hop is 300 samples at both rates, so 24 kHz is 80 Hz × 80 bits = 6.4 kbps (not 6 kbps /
75 Hz) and 48 kHz is 160 Hz × 80 bits = 12.8 kbps.

Coding follows the demo exactly: the encoder (and, on the receiver, the encoder's codebooks and the
decoder) are first run on 8192 zero samples, and each utterance is then coded in one call from that
warmed-up causal state. The warm state is computed once per loaded model and shared by all items,
so results do not depend on batching or on earlier utterances.
"""

from __future__ import annotations

import hashlib
import math
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import Any

import torch
from torch import nn

from bench.codecs import register_codec
from bench.codecs._hifigan import CausalConv1d, CausalConvTranspose1d, Context, HiFiGANVocoder
from bench.codecs.base import CodecMeta, WeightsSource
from bench.codecs.neural import TokenCodec
from bench.codecs.weights import load_state_dict, weights_cache_dir
from bench.errors import WeightsUnavailableError
from bench.runner.atomic import atomic_path

RELEASE_URL = "https://github.com/facebookresearch/AudioDec/releases/download/pretrain_models_v02/exp.zip"
RECEPTIVE_LENGTH = 8192
"""Zero samples the upstream demo feeds the encoder and decoder before coding (``AudioDec`` default)."""


# -- symmetric autoencoder (models/autoencoder/AudioDec.py StreamGenerator) -----------------------

class ResidualUnit(nn.Module):
    """ELU → dilated causal conv (k = 7, no bias) → ELU → 1×1 conv, plus the skip."""

    def __init__(self, channels: int, dilation: int, kernel_size: int = 7):
        super().__init__()
        self.activation = nn.ELU()
        self.conv1 = CausalConv1d(channels, channels, kernel_size, dilation=dilation, bias=False)
        self.conv2 = nn.Conv1d(channels, channels, 1, bias=False)

    def forward(self, x: torch.Tensor, ctx: Context | None = None) -> torch.Tensor:
        y = self.conv1(self.activation(x), ctx)
        return x + self.conv2(self.activation(y))


class EncoderBlock(nn.Module):
    """Three residual units (dilations 1, 3, 9), then a strided causal conv (kernel 2·stride)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, bias: bool,
                 dilations: Sequence[int] = (1, 3, 9)):
        super().__init__()
        self.res_units = nn.ModuleList(ResidualUnit(in_channels, d) for d in dilations)
        self.conv = CausalConv1d(in_channels, out_channels, 2 * stride, stride=stride, bias=bias)

    def forward(self, x: torch.Tensor, ctx: Context | None = None) -> torch.Tensor:
        for unit in self.res_units:
            x = unit(x, ctx)
        return self.conv(x, ctx)


class DecoderBlock(nn.Module):
    """A causal transposed conv (kernel 2·stride), then three residual units (dilations 1, 3, 9)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, bias: bool,
                 dilations: Sequence[int] = (1, 3, 9)):
        super().__init__()
        self.conv = CausalConvTranspose1d(in_channels, out_channels, 2 * stride, stride, bias=bias)
        self.res_units = nn.ModuleList(ResidualUnit(out_channels, d) for d in dilations)

    def forward(self, x: torch.Tensor, ctx: Context | None = None) -> torch.Tensor:
        x = self.conv(x, ctx)
        for unit in self.res_units:
            x = unit(x, ctx)
        return x


class Encoder(nn.Module):
    def __init__(self, input_channels: int, channels: int, ratios: Sequence[int], strides: Sequence[int],
                 bias: bool, kernel_size: int = 7):
        super().__init__()
        self.conv = CausalConv1d(input_channels, channels, kernel_size, bias=False)
        self.conv_blocks = nn.ModuleList()
        c_in = channels
        for ratio, stride in zip(ratios, strides, strict=True):
            self.conv_blocks.append(EncoderBlock(c_in, channels * ratio, stride, bias))
            c_in = channels * ratio
        self.out_channels = c_in

    def forward(self, x: torch.Tensor, ctx: Context | None = None) -> torch.Tensor:
        x = self.conv(x, ctx)
        for block in self.conv_blocks:
            x = block(x, ctx)
        return x


class Decoder(nn.Module):
    def __init__(self, code_dim: int, output_channels: int, channels: int, ratios: Sequence[int],
                 strides: Sequence[int], bias: bool, kernel_size: int = 7):
        super().__init__()
        self.conv1 = CausalConv1d(code_dim, channels * ratios[0], kernel_size, bias=False)
        self.conv_blocks = nn.ModuleList()
        for i, stride in enumerate(strides):
            c_out = channels * ratios[i + 1] if i + 1 < len(ratios) else channels
            self.conv_blocks.append(DecoderBlock(channels * ratios[i], c_out, stride, bias))
        self.conv2 = CausalConv1d(channels, output_channels, kernel_size, bias=False)

    def forward(self, z: torch.Tensor, ctx: Context | None = None) -> torch.Tensor:
        x = self.conv1(z, ctx)
        for block in self.conv_blocks:
            x = block(x, ctx)
        return self.conv2(x, ctx)


class Projector(nn.Module):
    def __init__(self, in_channels: int, code_dim: int, kernel_size: int = 3):
        super().__init__()
        self.project = CausalConv1d(in_channels, code_dim, kernel_size, bias=False)

    def forward(self, x: torch.Tensor, ctx: Context | None = None) -> torch.Tensor:
        return self.project(x, ctx)


class VectorQuantizer(nn.Module):
    """One EMA codebook. Only ``embed`` [D, K] is used at inference; ``cluster_size`` and
    ``embed_avg`` are the training statistics the checkpoints carry as buffers."""

    def __init__(self, dim: int, codebook_size: int):
        super().__init__()
        embed = torch.randn(dim, codebook_size)
        self.register_buffer("embed", embed)
        self.register_buffer("cluster_size", torch.zeros(codebook_size))
        self.register_buffer("embed_avg", embed.clone())

    def nearest(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x [T, D] → (indices [T], straight-through quantized [T, D]), the upstream arithmetic."""
        dist = x.pow(2).sum(1, keepdim=True) - 2 * x @ self.embed + self.embed.pow(2).sum(0, keepdim=True)
        _, idx = (-dist).max(1)
        q = nn.functional.embedding(idx, self.embed.t())
        return idx, x + (q - x)


class ResidualVQ(nn.Module):
    def __init__(self, dim: int, num_quantizers: int, codebook_size: int):
        super().__init__()
        self.layers = nn.ModuleList(VectorQuantizer(dim, codebook_size) for _ in range(num_quantizers))


class Quantizer(nn.Module):
    def __init__(self, code_dim: int, codebook_num: int, codebook_size: int):
        super().__init__()
        self.codebook = ResidualVQ(code_dim, codebook_num, codebook_size)

    def encode(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """z [B, D, T] → (codes [B, K, T], quantized [B, D, T]).

        Items are quantized one at a time ([T, D] like the upstream batch-1 call), so a batch
        gives bit-identical codes to single items.
        """
        codes, quantized = [], []
        for item in z.transpose(1, 2):
            residual, out = item, torch.zeros_like(item)
            idx_all = []
            for layer in self.codebook.layers:
                idx, q = layer.nearest(residual)
                residual = residual - q
                out = out + q
                idx_all.append(idx)
            codes.append(torch.stack(idx_all))
            quantized.append(out.t())
        return torch.stack(codes), torch.stack(quantized)

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """codes [B, K, T] → quantized [B, D, T]: the sum of each layer's code vectors."""
        books = [layer.embed.t() for layer in self.codebook.layers]
        out = [torch.stack([nn.functional.embedding(c, b) for c, b in zip(item, books, strict=True)]).sum(0).t()
               for item in codes]
        return torch.stack(out)


class StreamGenerator(nn.Module):
    """The symmetric AudioDec autoencoder; submodule names follow the released checkpoints."""

    def __init__(self, input_channels: int = 1, output_channels: int = 1, encode_channels: int = 32,
                 decode_channels: int = 32, code_dim: int = 64, codebook_num: int = 8, codebook_size: int = 1024,
                 bias: bool = True, enc_ratios: Sequence[int] = (2, 4, 8, 16),
                 dec_ratios: Sequence[int] = (16, 8, 4, 2), enc_strides: Sequence[int] = (3, 4, 5, 5),
                 dec_strides: Sequence[int] = (5, 5, 4, 3), **upstream: Any):
        super().__init__()
        unsupported = {k: v for k, v in upstream.items()
                       if (k, v) not in {("mode", "causal"), ("codec", "audiodec"), ("projector", "conv1d"),
                                         ("quantier", "residual_vq"), ("use_weight_norm", False)}}
        if unsupported:
            raise ValueError(f"AudioDec variant not implemented: {unsupported}")
        self.input_channels = input_channels
        self.hop = math.prod(enc_strides)
        self.encoder = Encoder(input_channels, encode_channels, enc_ratios, enc_strides, bias)
        self.decoder = Decoder(code_dim, output_channels, decode_channels, dec_ratios, dec_strides, bias)
        self.projector = Projector(self.encoder.out_channels, code_dim)
        self.quantizer = Quantizer(code_dim, codebook_num, codebook_size)

    def encode(self, x: torch.Tensor, ctx: Context | None = None) -> torch.Tensor:
        """audio [B, C, T] → continuous latents z [B, D, ⌈T / hop⌉]."""
        return self.projector(self.encoder(x, ctx), ctx)

    def decode(self, zq: torch.Tensor, ctx: Context | None = None) -> torch.Tensor:
        """quantized latents [B, D, T] → audio [B, C, T · hop]."""
        return self.decoder(zq, ctx)


# -- the codec: analyzer (encoder + codebooks) and synthesizer (vocoder or symmetric decoder) ----

class AudioDecPipeline(nn.Module):
    """What the upstream demo runs: ``analyzer`` encodes and owns the codebooks (transmitter and
    receiver both load the encoder checkpoint); ``synthesizer`` turns looked-up codes into audio."""

    def __init__(self, analyzer: StreamGenerator, synthesizer: StreamGenerator | HiFiGANVocoder,
                 receptive_length: int = RECEPTIVE_LENGTH):
        super().__init__()
        self.analyzer = analyzer
        self.synthesizer = synthesizer
        self.receptive_length = receptive_length
        self._warm: tuple[torch.device, Context, Context] | None = None
        for p in self.parameters():
            p.requires_grad_(False)

    def reset_stream(self) -> None:
        """Forget the warmed-up state (after loading other weights)."""
        self._warm = None

    def _warm_state(self, device: torch.device) -> tuple[Context, Context]:
        """Encoder and decoder contexts after the demo's warm-up on zeros (computed once)."""
        if self._warm is None or self._warm[0] != device:
            enc_ctx: Context = {}
            dec_ctx: Context = {}
            with torch.no_grad():
                zeros = torch.zeros(1, self.analyzer.input_channels, self.receptive_length, device=device)
                z = self.analyzer.encode(zeros, enc_ctx)
                codes, _ = self.analyzer.quantizer.encode(z)
                self.synthesizer.decode(self.analyzer.quantizer.decode(codes), dec_ctx)
            self._warm = (device, enc_ctx, dec_ctx)
        return self._warm[1], self._warm[2]

    def encode(self, audio: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """audio [B, C, T] → (codes [B, K, ⌈T/hop⌉], quantized, unquantized latents [B, D, ⌈T/hop⌉])."""
        enc_ctx, _ = self._warm_state(audio.device)
        ctx = dict(enc_ctx)  # a copy: every utterance starts from the same warm state
        z = self.analyzer.encode(audio, ctx)
        codes, zq = self.analyzer.quantizer.encode(z)
        return codes, zq, z

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """codes [B, K, T] → audio [B, C, T · hop]."""
        _, dec_ctx = self._warm_state(codes.device)
        zq = self.analyzer.quantizer.decode(codes)
        return self.synthesizer.decode(zq, dict(dec_ctx))


# -- configurations (exp/*/config.yml of the release) ---------------------------------------------

AUTOENCODER = dict(input_channels=1, output_channels=1, encode_channels=32, decode_channels=32, code_dim=64,
                   codebook_num=8, codebook_size=1024, bias=True, enc_ratios=(2, 4, 8, 16),
                   dec_ratios=(16, 8, 4, 2), enc_strides=(3, 4, 5, 5), dec_strides=(5, 5, 4, 3))
VOCODER_V1 = dict(in_channels=64, out_channels=1, channels=512, kernel_size=7, upsample_scales=(5, 5, 4, 3),
                  upsample_kernel_sizes=(10, 10, 8, 6), resblock_kernel_sizes=(11,),
                  resblock_dilations=((1, 3, 5),), groups=3, bias=True, use_additional_convs=True,
                  negative_slope=0.1, use_weight_norm=True, use_stats=True)
VOCODERS: dict[str, dict[str, Any]] = {
    "v0": {**VOCODER_V1, "groups": 1, "resblock_kernel_sizes": (3, 7, 11),
           "resblock_dilations": ((1, 3, 5),) * 3},
    "v1": VOCODER_V1,
    "v2": {**VOCODER_V1, "resblock_kernel_sizes": (3,)},
    "v3": VOCODER_V1,  # AudioDec_v3_symADuniv: same generator as v1, another discriminator
}
TINY_AUTOENCODER = {**AUTOENCODER, "encode_channels": 2, "decode_channels": 2, "code_dim": 16}
TINY_VOCODER = {**VOCODER_V1, "in_channels": 16, "channels": 16}


def _exp(kind: str, tag: str, steps: int) -> str:
    return f"exp/{kind}/{tag}/checkpoint-{steps}steps.pkl"


# Upstream demo models (utils/audiodec.py assign_model): encoder checkpoint, decoder checkpoint.
MODELS: dict[str, dict[str, Any]] = {
    "libritts_v1": {"sample_rate": 24000, "encoder": _exp("autoencoder", "symAD_libritts_24000_hop300", 500000),
                    "decoder": _exp("vocoder", "AudioDec_v1_symAD_libritts_24000_hop300_clean", 500000),
                    "vocoder": "v1"},
    "libritts_sym": {"sample_rate": 24000, "encoder": _exp("autoencoder", "symAD_libritts_24000_hop300", 500000),
                     "decoder": _exp("autoencoder", "symAD_libritts_24000_hop300", 1000000), "vocoder": None},
    "vctk_v1": {"sample_rate": 48000, "encoder": _exp("autoencoder", "symAD_vctk_48000_hop300", 200000),
                "decoder": _exp("vocoder", "AudioDec_v1_symAD_vctk_48000_hop300_clean", 500000), "vocoder": "v1"},
    "vctk_sym": {"sample_rate": 48000, "encoder": _exp("autoencoder", "symAD_vctk_48000_hop300", 200000),
                 "decoder": _exp("autoencoder", "symAD_vctk_48000_hop300", 700000), "vocoder": None},
}


def build_pipeline(model: str, tiny: bool = False) -> AudioDecPipeline:
    """The architecture of an upstream demo model (full size, or the tiny test configuration)."""
    spec = MODELS[model]
    ae = TINY_AUTOENCODER if tiny else AUTOENCODER
    synth: StreamGenerator | HiFiGANVocoder
    synth = (HiFiGANVocoder(**(TINY_VOCODER if tiny else VOCODERS[spec["vocoder"]])) if spec["vocoder"]
             else StreamGenerator(**ae))
    return AudioDecPipeline(StreamGenerator(**ae), synth)


# -- release files: exp.zip or its extracted folder -----------------------------------------------

def _safe_member(name: str) -> bool:
    p = PurePosixPath(name.replace("\\", "/"))
    return not p.is_absolute() and ".." not in p.parts and ":" not in name


def _from_zip(archive: Path, inner: Sequence[str]) -> dict[str, Path]:
    """Extract just the needed checkpoints of the release zip into the weights cache (once)."""
    st = archive.stat()
    key = hashlib.sha256(f"{archive.resolve()}:{st.st_size}:{st.st_mtime_ns}".encode()).hexdigest()[:16]
    dest = weights_cache_dir() / "audiodec" / key
    out: dict[str, Path] = {}
    with zipfile.ZipFile(archive) as zf:
        members = {m.filename: m for m in zf.infolist() if not m.is_dir()}
        for name in inner:
            member = members.get(name)
            if member is None:  # tolerate a different top folder, never a path escaping it
                hits = [m for n, m in members.items() if n.endswith("/" + name.removeprefix("exp/"))]
                member = hits[0] if len(hits) == 1 else None
            if member is None:
                raise WeightsUnavailableError(f"{archive}: no member {name} (is this AudioDec's exp.zip?)")
            if not _safe_member(member.filename):
                raise WeightsUnavailableError(f"{archive}: refusing unsafe member path {member.filename!r}")
            target = dest / name  # our own constant path, never the member's
            if not target.resolve().is_relative_to(dest.resolve()):
                raise WeightsUnavailableError(f"{archive}: refusing to extract outside {dest}")
            if not (target.is_file() and target.stat().st_size == member.file_size):
                with atomic_path(target) as tmp, zf.open(member) as src, open(tmp, "wb") as dst:
                    while block := src.read(1 << 20):
                        dst.write(block)
            out[name] = target
    return out


def _from_folder(folder: Path, inner: Sequence[str]) -> dict[str, Path]:
    out: dict[str, Path] = {}
    for name in inner:
        candidates = [folder / name, folder / name.removeprefix("exp/")]
        found = next((c for c in candidates if c.is_file()), None)
        if found is None:
            raise WeightsUnavailableError(f"{folder}: none of {[str(c) for c in candidates]} exists")
        out[name] = found
    return out


def release_files(path: Path, inner: Sequence[str]) -> dict[str, Path]:
    """Local files for the release's inner paths, from ``exp.zip`` or the folder it unpacks to."""
    path = Path(path)
    if path.is_dir():
        return _from_folder(path, inner)
    if path.is_file() and zipfile.is_zipfile(path):
        return _from_zip(path, inner)
    raise WeightsUnavailableError(f"{path}: expected AudioDec's exp.zip or the folder it extracts to")


def generator_state(path: Path) -> dict[str, torch.Tensor]:
    """The generator weights of a training checkpoint (``ckpt['model']['generator']``).

    Loaded with ``weights_only=True``; the optimizer / scheduler entries of the training format are
    plain containers and load too, but are not used.
    """
    ckpt = load_state_dict(path)
    model = ckpt.get("model") if isinstance(ckpt, Mapping) else None
    if isinstance(model, Mapping) and isinstance(model.get("generator"), Mapping):
        return dict(model["generator"])
    if isinstance(ckpt, Mapping) and ckpt and all(isinstance(v, torch.Tensor) for v in ckpt.values()):
        return dict(ckpt)  # a bare generator state_dict
    top = sorted(ckpt) if isinstance(ckpt, Mapping) else type(ckpt).__name__
    raise WeightsUnavailableError(f"{path}: not an AudioDec checkpoint (expected ['model']['generator'], got {top})")


# -- registry -------------------------------------------------------------------------------------

HOP = 300
LICENSE = "CC-BY-NC-4.0 (code and weights)"
CITATION = ("Y.-C. Wu, I. D. Gebru, D. Marković, A. Richard, \"AudioDec: An Open-source Streaming "
            "High-fidelity Neural Audio Codec\", ICASSP 2023")
IMPLEMENTATION = ("own PyTorch re-implementation of facebookresearch/AudioDec (StreamGenerator + causal HiFi-GAN), "
                  "checkpoint-compatible; codes like demoFile.py (8192-sample zero warm-up, whole file in one call)")
# Parameters used at inference (encoder + projector + vocoder or symmetric decoder), from the full configs.
N_PARAMS = {"v1": 3_904_672 + 19_461_090, "sym": 3_904_672 + 4_035_264}


def _meta(op_id: str, model: str, notes: str) -> CodecMeta:
    spec = MODELS[model]
    sizes = (AUTOENCODER["codebook_size"],) * AUTOENCODER["codebook_num"]
    frame_rate = spec["sample_rate"] / HOP
    return CodecMeta(
        id=op_id, family=op_id.split("@")[0], kind="tokens", sample_rate=spec["sample_rate"],
        bitrate_bps=frame_rate * sum(math.log2(s) for s in sizes), channels=1, frame_rate=frame_rate,
        codebook_sizes=sizes, causal=True, streaming=True,
        n_params=N_PARAMS["v1" if spec["vocoder"] else "sym"], license=LICENSE,
        weights=WeightsSource(uri=RELEASE_URL, revision="pretrain_models_v02", sha256=None,
                              files=(spec["encoder"], spec["decoder"])),
        citation=CITATION, implementation=IMPLEMENTATION,
        algorithmic_latency_s=HOP / spec["sample_rate"],
        notes=notes + " Release zip has no published sha256 (unpinned).",
        options={"model": model},
    )


@register_codec(
    _meta("audiodec_24khz@6.4kbps", "libritts_v1",
          "LibriTTS 24 kHz, symAD encoder (500k steps) + AD v1 HiFi-GAN vocoder, the demo's default 'libritts_v1'."),
    _meta("audiodec_24khz_sym@6.4kbps", "libritts_sym",
          "LibriTTS 24 kHz, symAD encoder (500k) + symmetric decoder (1M steps), the demo's 'libritts_sym'."),
    _meta("audiodec_48khz@12.8kbps", "vctk_v1",
          "VCTK 48 kHz, symAD encoder (200k steps) + AD v1 HiFi-GAN vocoder, the demo's 'vctk_v1'."),
    _meta("audiodec_48khz_sym@12.8kbps", "vctk_sym",
          "VCTK 48 kHz, symAD encoder (200k) + symmetric decoder (700k steps), the demo's 'vctk_sym'."),
)
class AudioDec(TokenCodec):
    """An AudioDec demo model as a token codec: 8 codebooks of 1024 per 300-sample frame."""

    requires = ()

    @property
    def _model_name(self) -> str:
        return str(self.meta.options["model"])

    def build_pretrained(self, path: Path) -> nn.Module:
        spec = MODELS[self._model_name]
        files = release_files(path, (spec["encoder"], spec["decoder"]))
        pipe = build_pipeline(self._model_name)
        pipe.analyzer.load_state_dict(generator_state(files[spec["encoder"]]), strict=True)
        pipe.synthesizer.load_state_dict(generator_state(files[spec["decoder"]]), strict=True)
        pipe.reset_stream()
        return pipe

    def build_random(self) -> nn.Module:
        pipe = build_pipeline(self._model_name, tiny=True)
        _init_random(pipe)
        return pipe

    def encode_frames(self, audio: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        model = self._require_model()
        assert isinstance(model, AudioDecPipeline)
        codes, zq, z = model.encode(audio)
        return codes, {"quantized": zq, "unquantized": z}

    def decode_frames(self, codes: torch.Tensor) -> torch.Tensor:
        model = self._require_model()
        assert isinstance(model, AudioDecPipeline)
        return model.decode(codes)


def _init_random(pipe: AudioDecPipeline, seed: int = 0) -> None:
    """Make a random tiny model usable: codebooks drawn from its own encoder's residuals (so
    codes spread over the codebook), vocoder statistics from the quantized latents, and an output
    gain so random weights give audible (not silent) audio. Deterministic for a given seed."""
    gen = torch.Generator().manual_seed(seed)
    sr_like = 24000
    t = torch.arange(3 * sr_like // 2) / sr_like
    f0 = 110 + 40 * torch.sin(2 * torch.pi * 0.7 * t)
    probe = 0.3 * torch.sin(2 * torch.pi * torch.cumsum(f0, 0) / sr_like) * (0.6 + 0.4 * torch.sin(2 * torch.pi * 3 * t))
    probe = (probe + 0.05 * torch.randn(t.shape, generator=gen)).reshape(1, 1, -1)
    with torch.no_grad():
        z = pipe.analyzer.encode(probe)[0].t()  # [T, D]
        residual = z
        for layer in pipe.analyzer.quantizer.codebook.layers:
            k = layer.embed.shape[1]
            pick = torch.randint(0, residual.shape[0], (k,), generator=gen)
            spread = residual.std(0, keepdim=True) * 0.1
            book = residual[pick] + spread * torch.randn(k, residual.shape[1], generator=gen)
            layer.embed.copy_(book.t())
            layer.embed_avg.copy_(book.t())
            _, q = layer.nearest(residual)
            residual = residual - q
        synth = pipe.synthesizer
        if isinstance(synth, HiFiGANVocoder):
            zq = pipe.analyzer.quantizer.decode(pipe.analyzer.quantizer.encode(z.t()[None])[0])[0]
            synth.mean.copy_(zq.mean(1))
            synth.scale.copy_(zq.std(1).clamp_min(1e-3))
        # scale the last conv so the random decoder's output is audible but not clipped
        pipe.reset_stream()
        y = pipe.decode(pipe.encode(probe)[0])
        rms = float(y.pow(2).mean().sqrt())
        gain = 0.1 / max(rms, 1e-6)
        last = synth.output_conv.conv if isinstance(synth, HiFiGANVocoder) else synth.decoder.conv2.conv
        if isinstance(synth, HiFiGANVocoder):
            last.weight_g.mul_(min(gain, 10.0))
            if last.bias is not None:
                last.bias.mul_(min(gain, 10.0))
        else:
            last.weight.mul_(gain)
    pipe.reset_stream()
