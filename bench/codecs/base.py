"""What a codec operating point is, what it promises, and what encoding produces.

An operating point (``opus@6kbps``, ``encodec_24khz@6kbps``) is one registry entry: typed metadata
(:class:`CodecMeta`) plus the class that implements it. Token codecs return integer codes
``[B, K, T]`` with per-item frame lengths (:class:`Codes`); classic codecs return the packets they
really produced (:class:`Bitstream`), so bitrate is measured, never typed in.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from bench.errors import CodecError
from bench.numerics import flushed_denormals

CodecKind = Literal["tokens", "bitstream"]


@dataclass(frozen=True)
class WeightsSource:
    """Where pretrained weights come from: a hub repo at a pinned revision, or a URL + sha256."""

    uri: str
    revision: str | None = None
    sha256: str | None = None
    files: tuple[str, ...] = ()


@dataclass(frozen=True)
class CodecMeta:
    """Typed metadata of one codec operating point; everything a leaderboard row states."""

    id: str
    family: str
    """The model (or classic encoder) whose op-points form one rate–quality curve, e.g. ``opus``,
    ``encodec_24khz``, ``audiodec_48khz_sym``: op-points of different models never share one."""
    kind: CodecKind
    sample_rate: int
    bitrate_bps: float
    """Declared bitrate: the mode the codec is asked for (classic) or frame_rate × Σ log2 sizes."""
    channels: int = 1
    frame_rate: float | None = None
    """Frames (tokens) or packets per second."""
    codebook_sizes: tuple[int, ...] = ()
    causal: bool = False
    streaming: bool = False
    n_params: int | None = None
    license: str = ""
    weights: WeightsSource | None = None
    citation: str = ""
    implementation: str = ""
    """What actually runs, e.g. ``libopus via PyAV (FFmpeg)``."""
    decodable: bool = True
    """False for encode-only tokenizers (e.g. HuBERT k-means units without a unit vocoder)."""
    algorithmic_latency_s: float | None = None
    """Frame size plus look-ahead: the delay a streaming use of this op-point cannot avoid."""
    bitrate_tolerance: float = 0.01
    """Relative |measured − declared| / declared the conformance check accepts, and why in ``notes``."""
    notes: str = ""
    options: Mapping[str, Any] = field(default_factory=dict)
    """Family-specific settings the implementation reads (mode, application, quantizer count)."""

    @property
    def n_codebooks(self) -> int | None:
        return len(self.codebook_sizes) if self.codebook_sizes else None

    @property
    def nominal_bitrate_bps(self) -> float | None:
        """frame_rate × Σ log2(codebook size) for token codecs; None for bitstreams."""
        if not self.codebook_sizes or not self.frame_rate:
            return None
        return self.frame_rate * sum(math.log2(s) for s in self.codebook_sizes)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["n_codebooks"] = self.n_codebooks
        d["codebook_sizes"] = list(self.codebook_sizes)
        d["options"] = dict(self.options)
        return d


@dataclass
class Bitstream:
    """The packets one item was coded into, and how many of their bits are codec payload."""

    packets: list[bytes]
    payload_bits: int
    """Bits the codec's own format defines (e.g. 28 per Codec2 700C frame), excluding byte padding."""
    overhead_bits: int
    """Framing padding plus the bytes a standard container adds (measured by writing one)."""
    n_samples: int
    sample_rate: int

    @property
    def duration(self) -> float:
        return self.n_samples / self.sample_rate


@dataclass
class Codes:
    """Integer codes [B, K, T] padded along T, with each item's frame count and sample count."""

    codes: torch.Tensor
    lengths: torch.Tensor
    n_samples: list[int]
    latents: dict[str, torch.Tensor] = field(default_factory=dict)
    """Optional continuous views (``"quantized"``, ``"unquantized"``) for token tasks."""

    def item(self, i: int, codebooks: slice = slice(None)) -> torch.Tensor:
        """Codes of item ``i`` as [K, T_i], optionally a codebook view such as RVQ-1:k."""
        return self.codes[i, codebooks, : int(self.lengths[i])]


Encoded = Codes | list[Bitstream]


@dataclass
class Measured:
    """Per-item bitrate measured from what the encoder emitted, and what it emitted."""

    payload_bps: float
    overhead_bps: float = 0.0
    n_frames: int | None = None
    codes: np.ndarray | None = None
    """Integer codes [K, T] of this item (token codecs), for the bitrate ledger and token tasks."""


class Codec(ABC):
    """One operating point, built from its metadata. Subclasses implement encode and decode.

    Audio crosses the interface as float32 tensors ``[B, C, T]`` at ``meta.sample_rate`` with
    ``lengths`` in samples; the runner does resampling and channel mapping, once, before calling.
    """

    random_init_supported: bool = False
    """Whether ``load(random_init=True)`` can build the real architecture with random weights."""

    def __init__(self, meta: CodecMeta):
        self.meta = meta
        self.device = torch.device("cpu")

    # -- lifecycle ---------------------------------------------------------------------------
    def availability(self) -> tuple[bool, str]:
        """Whether this op-point can run here and, if not, what is missing."""
        return True, ""

    def weights_status(self) -> tuple[bool, str]:
        """Whether the weights are on this machine (classic codecs need none)."""
        return True, ""

    def fetch_weights(self) -> Path | None:
        """Download the weights ahead of time (``codecbench fetch``); None when there are none."""
        return None

    def load(self, device: str | torch.device = "cpu", weights: Path | None = None,
             random_init: bool = False) -> None:
        """Prepare to run (load weights). Classic codecs have nothing to load."""
        self.device = torch.device(device)

    # -- coding ------------------------------------------------------------------------------
    @abstractmethod
    def encode(self, audio: torch.Tensor, lengths: torch.Tensor) -> Encoded:
        """[B, C, T] float audio at the codec rate → codes or bitstreams."""

    @abstractmethod
    def decode(self, encoded: Encoded) -> tuple[torch.Tensor, torch.Tensor]:
        """Codes or bitstreams → ([B, C, T'] audio at the codec rate, lengths in samples)."""

    # -- measurement -------------------------------------------------------------------------
    def measure(self, encoded: Encoded) -> list[Measured]:
        """Bitrate of each item from what was emitted: payload bits (and overhead) per second."""
        if isinstance(encoded, Codes):
            bits_per_frame = sum(math.log2(s) for s in self.meta.codebook_sizes)
            return [
                Measured(int(encoded.lengths[i]) * bits_per_frame / (n / self.meta.sample_rate), 0.0,
                         int(encoded.lengths[i]), encoded.item(i).cpu().numpy())
                for i, n in enumerate(encoded.n_samples)
            ]
        return [Measured(b.payload_bits / b.duration, b.overhead_bits / b.duration, len(b.packets))
                for b in encoded]

    def roundtrip(self, items: list[np.ndarray]) -> list[tuple[np.ndarray | None, Measured]]:
        """Encode and decode a batch of [C, T] arrays at the codec rate; trims to input length.

        Encode-only op-points (``decodable=False``) return None for the audio, with what they emitted.
        """
        lengths = torch.tensor([x.shape[-1] for x in items])
        batch = torch.zeros(len(items), self.meta.channels, int(lengths.max()))
        for i, x in enumerate(items):
            batch[i, :, : x.shape[-1]] = torch.from_numpy(np.ascontiguousarray(x))
        with torch.inference_mode(), flushed_denormals():
            encoded = self.encode(batch.to(self.device), lengths)
            if not self.meta.decodable:
                return [(None, m) for m in self.measure(encoded)]
            audio, out_lengths = self.decode(encoded)
        measured = self.measure(encoded)
        out: list[tuple[np.ndarray | None, Measured]] = []
        for i in range(len(items)):
            y = audio[i, :, : int(out_lengths[i])].detach().float().cpu().numpy()
            if not np.all(np.isfinite(y)):
                raise CodecError(f"{self.meta.id} produced NaN or Inf samples")
            out.append((y, measured[i]))
        return out


class BitstreamCodec(Codec):
    """Base for classic codecs: each item is coded on its own into real packets."""

    @abstractmethod
    def encode_one(self, samples: np.ndarray) -> Bitstream:
        """[C, T] float32 at the codec rate → packets."""

    @abstractmethod
    def decode_one(self, bitstream: Bitstream) -> np.ndarray:
        """Packets → [C, n_samples] float32, delay-compensated so it aligns with the input."""

    def encode(self, audio: torch.Tensor, lengths: torch.Tensor) -> list[Bitstream]:
        arr = audio.detach().float().cpu().numpy()
        return [self.encode_one(np.ascontiguousarray(arr[i, :, : int(n)])) for i, n in enumerate(lengths)]

    def decode(self, encoded: Encoded) -> tuple[torch.Tensor, torch.Tensor]:
        assert isinstance(encoded, list)
        outs = [self.decode_one(b) for b in encoded]
        lengths = torch.tensor([o.shape[-1] for o in outs])
        batch = torch.zeros(len(outs), self.meta.channels, int(lengths.max()) if outs else 0)
        for i, o in enumerate(outs):
            batch[i, :, : o.shape[-1]] = torch.from_numpy(np.ascontiguousarray(o, dtype=np.float32))
        return batch, lengths
