"""Shared plumbing for codec families whose maintained implementation is a ``transformers`` port.

EnCodec, DAC, Mimi, X-Codec, X-Codec2 and NeuCodec all ship as ``transformers`` model classes
whose hub checkpoints load with ``from_pretrained``. This module gives them one loading path
(offline, from the resolved local snapshot, refusing missing or mis-shaped tensors), one way to
make random codebooks useful (drawn from the tiny encoder's own outputs, so random-init codes
vary) and the Kaldi filterbank the X-Codec2 / NeuCodec semantic branch needs (their feature
extractors call torchaudio, which this project never imports).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from bench.codecs.base import CodecMeta, WeightsSource
from bench.codecs.neural import TokenCodec
from bench.errors import CodecError, WeightsUnavailableError

#: Seed of every random-init build, so ``--random-init`` runs are reproducible.
RANDOM_SEED = 0


def transformers_version() -> str:
    try:
        from importlib.metadata import version

        return version("transformers")
    except Exception:  # pragma: no cover - only without transformers installed
        return "?"


def implementation(model_class: str) -> str:
    """What runs, as leaderboards state it: ``transformers 5.23.0 EncodecModel``."""
    return f"transformers {transformers_version()} {model_class}"


def token_meta(*, id: str, family: str, sample_rate: int, frame_rate: float, codebook_sizes: Sequence[int],
               **kwargs: Any) -> CodecMeta:
    """A token op-point whose declared bitrate is computed, never typed: frame_rate × Σ log2(size)."""
    sizes = tuple(int(s) for s in codebook_sizes)
    bitrate = frame_rate * sum(math.log2(s) for s in sizes)
    return CodecMeta(id=id, family=family, kind="tokens", sample_rate=sample_rate, bitrate_bps=bitrate,
                     frame_rate=frame_rate, codebook_sizes=sizes, **kwargs)


def hub_weights(repo: str, revision: str | None, files: Sequence[str] = ("config.json", "model.safetensors")
                ) -> WeightsSource:
    return WeightsSource(uri=f"hf://{repo}", revision=revision, files=tuple(files))


class HFTokenCodec(TokenCodec):
    """A token codec backed by a ``transformers`` model class named ``model_class``."""

    requires = ("transformers",)
    model_class: str = ""

    def model_type(self) -> type:
        import transformers

        return getattr(transformers, self.model_class)

    def build_pretrained(self, path: Path) -> torch.nn.Module:
        """``Model.from_pretrained`` on the local snapshot folder; every checkpoint tensor must fit."""
        folder = Path(path)
        if folder.is_file():  # --weights pointed at model.safetensors: its folder holds config.json
            folder = folder.parent
        if not (folder / "config.json").is_file():
            raise WeightsUnavailableError(f"{self.meta.id}: {folder} has no config.json (a transformers snapshot)")
        model, info = self.model_type().from_pretrained(str(folder), local_files_only=True,
                                                        output_loading_info=True)
        bad = {k: list(v) for k, v in info.items()
               if k in ("missing_keys", "unexpected_keys", "mismatched_keys") and v}
        if bad:
            raise CodecError(f"{self.meta.id}: checkpoint in {folder} does not match {self.model_class}: {bad}")
        return model

    def tiny_config(self) -> Any:
        """The family's tiny config: same hop, frame rate and codebooks, small widths."""
        raise NotImplementedError

    def full_config(self) -> Any:
        """The released checkpoint's config (as far as it is known offline), for size checks."""
        raise NotImplementedError

    def build_random(self) -> torch.nn.Module:
        torch.manual_seed(RANDOM_SEED)
        model = self.model_type()(self.tiny_config()).eval()
        with torch.no_grad():
            self.calibrate(model)
        return model

    def calibrate(self, model: torch.nn.Module) -> None:
        """Make a random model's codebooks non-degenerate (default: nothing to do)."""


# -- random-init helpers ---------------------------------------------------------------------------

def draw_rvq_codebooks(residual: torch.Tensor, layers: Sequence[Any], codebook_size: int,
                       set_codebook: Callable[[Any, torch.Tensor], None],
                       quantize: Callable[[Any, torch.Tensor], torch.Tensor], seed: int = RANDOM_SEED) -> None:
    """Fill residual VQ codebooks stage by stage with jittered samples of the residual they see.

    ``residual`` is [N, D] encoder output vectors; each stage draws ``codebook_size`` of them (with
    replacement, plus noise at 10 % of their spread), then quantizes and passes on the remainder.
    """
    g = torch.Generator().manual_seed(seed)
    for layer in layers:
        idx = torch.randint(0, residual.shape[0], (codebook_size,), generator=g)
        spread = residual.std(0, keepdim=True).clamp_min(1e-6)
        vectors = residual[idx] + 0.1 * spread * torch.randn(codebook_size, residual.shape[1], generator=g)
        set_codebook(layer, vectors.float())
        residual = residual - quantize(layer, residual)


def set_euclidean_codebook(layer: Any, vectors: torch.Tensor) -> None:
    """``set_codebook`` for transformers' EnCodec-style EMA codebooks (EnCodec, X-Codec)."""
    layer.codebook.embed.copy_(vectors)
    layer.codebook.embed_avg.copy_(vectors)
    layer.codebook.cluster_size.fill_(1.0)


def quantize_euclidean(layer: Any, residual: torch.Tensor) -> torch.Tensor:
    """``quantize`` for the same codebooks: nearest entry of each residual vector."""
    return layer.codebook.decode(layer.codebook.encode(residual))


def rescale_output(model_output: torch.Tensor, reference: torch.Tensor, module: torch.nn.Module) -> None:
    """Scale a random decoder's last layer so its output level matches the input's.

    Random weights may decode to near-silence; this multiplies the final layer's weight (and bias),
    which changes only the overall gain of what the real architecture produces.
    """
    out_rms = float(model_output.pow(2).mean().sqrt())
    ref_rms = float(reference.pow(2).mean().sqrt())
    if out_rms <= 0 or not math.isfinite(out_rms):
        raise CodecError("random decoder produced silence or non-finite output while calibrating")
    gain = ref_rms / out_rms
    module.weight.mul_(gain)
    if getattr(module, "bias", None) is not None:
        module.bias.mul_(gain)


# -- Kaldi log-mel filterbank (what X-Codec2 / NeuCodec feed their wav2vec2-BERT) -------------------

def _mel(f: torch.Tensor) -> torch.Tensor:
    return 1127.0 * torch.log1p(f / 700.0)


def kaldi_fbank(wave: torch.Tensor, sample_rate: int = 16000, num_mel_bins: int = 80, frame_length: int = 400,
                frame_shift: int = 160, preemphasis: float = 0.97, low_freq: float = 20.0,
                high_freq: float | None = None) -> torch.Tensor:
    """Kaldi ``compute-fbank`` defaults as the X-Codec2 reference configures them, for one [T] signal.

    Povey window, DC removal and pre-emphasis per frame, ``snip_edges`` framing, power spectrum
    on a power-of-two FFT, triangular filters on Kaldi's mel scale, natural log floored at float
    epsilon; no dither, no energy. Input is in int16 scale (the callers multiply by 2**15).
    Returns [frames, num_mel_bins].
    """
    wave = wave.double()
    if wave.shape[-1] < frame_length:
        return torch.zeros(0, num_mel_bins)
    frames = wave.unfold(0, frame_length, frame_shift)  # snip_edges: only whole frames
    frames = frames - frames.mean(-1, keepdim=True)
    prev = torch.cat([frames[:, :1], frames[:, :-1]], dim=-1)
    frames = frames - preemphasis * prev
    n = torch.arange(frame_length, dtype=torch.float64)
    window = (0.5 - 0.5 * torch.cos(2 * math.pi * n / (frame_length - 1))) ** 0.85
    frames = frames * window
    n_fft = 1 << (frame_length - 1).bit_length()
    power = torch.fft.rfft(frames, n=n_fft).abs().pow(2)  # [F, n_fft/2 + 1]
    high = high_freq if high_freq is not None and high_freq > 0 else sample_rate / 2
    mel_low, mel_high = _mel(torch.tensor(low_freq)), _mel(torch.tensor(float(high)))
    delta = (mel_high - mel_low) / (num_mel_bins + 1)
    left = mel_low + delta * torch.arange(num_mel_bins, dtype=torch.float64)
    center, right = left + delta, left + 2 * delta
    bin_mel = _mel(torch.arange(n_fft // 2, dtype=torch.float64) * sample_rate / n_fft)[None]
    up = (bin_mel - left[:, None]) / (center - left)[:, None]
    down = (right[:, None] - bin_mel) / (right - center)[:, None]
    banks = torch.clamp(torch.minimum(up, down), min=0.0)  # [M, n_fft/2]; the Nyquist bin gets no weight
    energies = power[:, : n_fft // 2] @ banks.T
    eps = torch.finfo(torch.float32).eps
    return torch.log(torch.clamp(energies, min=eps)).float()


def semantic_features(wave: torch.Tensor, sample_rate: int = 16000, stride: int = 2) -> torch.Tensor:
    """Utterance-normalised Kaldi fbank of one [T] signal, stacked ``stride`` frames at a time.

    Matches the X-Codec2 / NeuCodec feature extractors: ×2**15, 80 log-mel bins at 25/10 ms,
    per-utterance mean/variance normalisation (unbiased variance), then pairs of frames
    concatenated into 160-dim vectors for wav2vec2-BERT. Returns [T // stride, 80 * stride].
    """
    feats = kaldi_fbank(wave * 2**15, sample_rate=sample_rate)
    feats = (feats - feats.mean(0)) / torch.sqrt(feats.var(0, unbiased=True) + 1e-7)
    usable = feats.shape[0] - feats.shape[0] % stride
    return feats[:usable].reshape(usable // stride, feats.shape[1] * stride)


def count_parameters_on_meta(model_cls: type, config: Any) -> int:
    """Parameter count of a full-size model, built on the meta device (no memory, no weights)."""
    with torch.device("meta"):
        model = model_cls(config)
    return sum(p.numel() for p in model.parameters())


__all__ = [
    "HFTokenCodec", "count_parameters_on_meta", "draw_rvq_codebooks", "hub_weights",
    "implementation", "kaldi_fbank", "rescale_output", "semantic_features", "token_meta",
]
