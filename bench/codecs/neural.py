"""Base for neural token codecs: build the real architecture, load weights safely, code in batches.

A family implements ``build_pretrained`` (the official checkpoint, loaded key for key),
``build_random`` (the same architecture with a tiny config and seeded random weights, so anyone
can run the conformance check without downloading anything) and the two model calls
``encode_frames`` / ``decode_frames``. Batching is exact: items are grouped by length, because a
padded neighbour must never change an item's codes (reflect padding and non-causal convolutions
would); a family whose model takes a padding mask may set ``exact_padding = True``.
"""

from __future__ import annotations

import importlib.util
import math
from abc import abstractmethod
from collections import defaultdict
from pathlib import Path

import torch

from bench.codecs.base import Codec, Codes, Encoded
from bench.codecs.weights import local_weights, resolve_weights
from bench.errors import CodecError


def stack_padded(outs: dict[int, torch.Tensor], channels: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-item decoded audio {batch index: [C, T_i]} → zero-padded [B, C, max T] and the lengths."""
    lengths = torch.tensor([outs[i].shape[-1] for i in range(len(outs))])
    batch = torch.zeros(len(outs), channels, int(lengths.max()), device=device)
    for i, y in outs.items():
        batch[i, :, : y.shape[-1]] = y
    return batch, lengths


class TokenCodec(Codec):
    """A neural codec emitting integer codes ``[B, K, T]``."""

    requires: tuple[str, ...] = ()
    """Import names the implementation needs (checked by ``availability``)."""
    random_init_supported = True
    exact_padding: bool = False

    def __init__(self, meta):
        super().__init__(meta)
        self.model: torch.nn.Module | None = None
        self.weights_path: Path | None = None

    # -- availability and loading ----------------------------------------------------------
    def availability(self) -> tuple[bool, str]:
        missing = [name for name in self.requires if importlib.util.find_spec(name) is None]
        if missing:
            return False, f"needs the Python package(s) {', '.join(missing)}"
        return True, ""

    def weights_status(self) -> tuple[bool, str]:
        if local_weights(self.meta) is not None:
            return True, ""
        src = self.meta.weights
        where = f"{src.uri} (revision {src.revision or 'main'})" if src else "a user checkpoint (--weights)"
        return False, f"weights not on this machine: `codecbench fetch {self.meta.id}` gets {where}"

    def fetch_weights(self) -> Path | None:
        return resolve_weights(self.meta) if self.meta.weights is not None else None

    def load(self, device: str | torch.device = "cpu", weights: Path | None = None,
             random_init: bool = False) -> None:
        self.device = torch.device(device)
        if random_init:
            torch.manual_seed(0)
            model = self.build_random()
        else:
            self.weights_path = resolve_weights(self.meta, weights)
            model = self.build_pretrained(self.weights_path)
        self.model = model.eval().to(self.device)

    @abstractmethod
    def build_pretrained(self, path: Path) -> torch.nn.Module:
        """The official architecture with the official weights from ``path``."""

    @abstractmethod
    def build_random(self) -> torch.nn.Module:
        """The same architecture, tiny, seeded random weights, codebooks that give varied codes."""

    # -- model calls -------------------------------------------------------------------------
    @abstractmethod
    def encode_frames(self, audio: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """[B, C, T] equal-length audio at the codec rate → codes [B, K, T_frames].

        May also return continuous views ``{"quantized": [B, D, T_frames], "unquantized": ...}``.
        """

    @abstractmethod
    def decode_frames(self, codes: torch.Tensor) -> torch.Tensor:
        """codes [B, K, T_frames] → audio [B, C, T']."""

    def frames_for(self, n_samples: int) -> int:
        """Frames the codec emits for ``n_samples`` input samples (ceil by default)."""
        assert self.meta.frame_rate
        hop = self.meta.sample_rate / self.meta.frame_rate
        return int(-(-n_samples // hop))

    # -- Codec interface ---------------------------------------------------------------------
    def _require_model(self) -> torch.nn.Module:
        if self.model is None:
            raise CodecError(f"{self.meta.id}: call load() before encoding")
        return self.model

    def encode(self, audio: torch.Tensor, lengths: torch.Tensor) -> Codes:
        self._require_model()
        groups = self._groups([int(n) for n in lengths])
        per_item: dict[int, torch.Tensor] = {}
        latents: dict[str, dict[int, torch.Tensor]] = defaultdict(dict)
        for n, idx in groups.items():
            out = self.encode_frames(audio[idx, :, :n].to(self.device))
            codes, views = out if isinstance(out, tuple) else (out, {})
            if codes.dtype.is_floating_point:
                raise CodecError(f"{self.meta.id}: encoder returned non-integer codes")
            for j, i in enumerate(idx):
                per_item[i] = codes[j, :, : self.frames_for(n)]
                for name, view in views.items():
                    latents[name][i] = view[j, :, : self.frames_for(n)].detach().cpu()
        order = range(len(lengths))
        result = _stack_codes([per_item[i] for i in order], [int(n) for n in lengths])
        for name, items in latents.items():
            t_max = max(x.shape[-1] for x in items.values())
            stacked = torch.zeros(len(items), items[0].shape[0], t_max)
            for i, x in items.items():
                stacked[i, :, : x.shape[-1]] = x
            result.latents[name] = stacked
        return result

    def decode(self, encoded: Encoded) -> tuple[torch.Tensor, torch.Tensor]:
        assert isinstance(encoded, Codes)
        if not self.meta.decodable:
            raise CodecError(f"{self.meta.id} is encode-only: it has no decoder to resynthesise audio")
        self._require_model()
        frame_lengths = [int(t) for t in encoded.lengths]
        outs: dict[int, torch.Tensor] = {}
        for t, idx in self._groups(frame_lengths).items():
            audio = self.decode_frames(encoded.codes[idx, :, :t].to(self.device))
            for j, i in enumerate(idx):
                outs[i] = audio[j, :, : encoded.n_samples[i]]
        return stack_padded(outs, self.meta.channels, self.device)

    def _groups(self, lengths: list[int]) -> dict[int, list[int]]:
        if self.exact_padding:
            return {max(lengths): list(range(len(lengths)))}
        groups: dict[int, list[int]] = defaultdict(list)
        for i, n in enumerate(lengths):
            groups[n].append(i)
        return groups


def _stack_codes(items: list[torch.Tensor], n_samples: list[int]) -> Codes:
    k = items[0].shape[0]
    t_max = max(x.shape[-1] for x in items)
    codes = torch.zeros(len(items), k, t_max, dtype=torch.long)
    for i, x in enumerate(items):
        codes[i, :, : x.shape[-1]] = x.long().cpu()
    return Codes(codes, torch.tensor([x.shape[-1] for x in items]), n_samples)


def count_parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def calibration_audio(sample_rate: int, seconds: float = 2.0, channels: int = 1, seed: int = 0
                      ) -> torch.Tensor:
    """A seeded, speech-band signal [1, C, T]: harmonic tones with a moving pitch plus noise.

    Codebooks are drawn from the encoder's responses to it, so they sit where real inputs land.
    """
    g = torch.Generator().manual_seed(seed)
    n = int(sample_rate * seconds)
    t = torch.arange(n) / sample_rate
    f0 = 140 + 40 * torch.sin(2 * math.pi * 0.7 * t)
    phase = 2 * math.pi * torch.cumsum(f0, 0) / sample_rate
    x = sum(torch.sin(k * phase) / k for k in range(1, 12) if k * 140 < sample_rate / 2)
    x = x * (0.5 + 0.5 * torch.sin(2 * math.pi * 3 * t)) + 0.3 * torch.randn(n, generator=g)
    x = 0.3 * x / x.abs().max()
    return x.repeat(channels, 1)[None].float()
