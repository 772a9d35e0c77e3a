"""VALL-E's codec language model as lifeiteng/vall-e lays it out; USLM and VALL-E X are trained with it.

Why one module: USLM (SpeechTokenizer tokens) and VALL-E X (EnCodec tokens, plus language
embeddings) both come out of lifeiteng's VALL-E trainer, so their checkpoints share one state-dict
layout. This is codecbench's own inference-only implementation of that layout, with the same module
names and shapes, so both official checkpoints load with ``strict=True``:

* **AR stage**: a pre-norm transformer over ``[phonemes ; RVQ-1 codes]``. Phonemes attend to phonemes
  only; codes attend to every phoneme and to earlier codes. Sampled (temperature, top-k) with a
  KV cache until end-of-speech (id = codebook size), a frame cap, or upstream's 16 frames per phoneme.
* **NAR stages**: a pre-norm bidirectional transformer whose layer norms take their gain and bias
  from a learned per-stage embedding (adaptive layer norm); stage k predicts RVQ-(k+1) greedily
  from the summed embeddings of RVQ-1..k.
* **Prefix modes** (how the acoustic prompt enters the NAR): 0 adds the prompt's codebooks stage
  by stage like the generated ones (USLM's inference default); 1 sums all of the prompt's codebooks
  up front (VALL-E X). Modes 2 and 4 (training-time prompt sampling) are not inference settings of
  either release and are refused.
* Text and audio positions are separate sinusoidal tables scaled by a stored ``alpha``; the NAR
  output layers of RVQ-2..7 share their weights with the RVQ-3..8 input embeddings
  (``share_embedding``), as upstream ties them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from bench.errors import CodecError


@dataclass(frozen=True)
class ValleConfig:
    """Structure of one VALL-E checkpoint (``norm_first=True``, no prenets, NAR scale factor 1)."""

    d_model: int = 1024
    n_heads: int = 16
    n_layers: int = 12
    n_text_tokens: int = 512
    n_audio_tokens: int = 1024
    """Codebook size; id ``n_audio_tokens`` is end-of-speech, ``n_audio_tokens + 1`` the AR BOS."""
    n_quantizers: int = 8
    prepend_bos: bool = False
    prefix_mode: int = 0
    n_languages: int = 0
    """VALL-E X adds a language embedding (en, zh, ja) to each text token; 0 = none (USLM)."""
    share_embedding: bool = True

    def __post_init__(self) -> None:
        if self.prefix_mode not in (0, 1):
            raise CodecError(f"VALL-E prefix mode {self.prefix_mode} is a training setting; inference uses 0 or 1")
        if self.n_quantizers < 2:
            raise CodecError("VALL-E needs at least 2 quantizers (an AR stage and a NAR stage)")

    @property
    def eos(self) -> int:
        return self.n_audio_tokens

    @property
    def bos(self) -> int:
        return self.n_audio_tokens + 1

    @classmethod
    def from_state_dict(cls, state: dict[str, torch.Tensor], **given: Any) -> ValleConfig:
        """The structure a checkpoint's shapes reveal; heads and prefix mode must be ``given``."""
        try:
            n_text, d = state["ar_text_embedding.word_embeddings.weight"].shape
            n_audio = state["nar_audio_embeddings.1.word_embeddings.weight"].shape[0]
            ar_rows = state["ar_audio_embedding.word_embeddings.weight"].shape[0]
            lang = state.get("ar_language_embedding.word_embeddings.weight")
        except KeyError as exc:
            raise CodecError(f"not a VALL-E checkpoint: it has no {exc.args[0]!r}") from None
        layers = {k.split(".")[2] for k in state if k.startswith("ar_decoder.layers.")}
        n_q = sum(1 for k in state if k.startswith("nar_audio_embeddings.") and k.endswith(".weight"))
        derived = dict(d_model=int(d), n_layers=len(layers), n_text_tokens=int(n_text), n_audio_tokens=int(n_audio),
                       n_quantizers=n_q, prepend_bos=ar_rows == n_audio + 2,
                       n_languages=0 if lang is None else int(lang.shape[0]))
        known = {f.name for f in fields(cls)}
        return cls(**{**derived, **{k: v for k, v in given.items() if k in known}})


# -- layers -------------------------------------------------------------------------------------


class TokenEmbedding(nn.Module):
    """An embedding one level down (``<name>.word_embeddings.weight``), as the checkpoints store it."""

    def __init__(self, dim: int, vocab: int):
        super().__init__()
        self.word_embeddings = nn.Embedding(vocab, dim)

    @property
    def weight(self) -> nn.Parameter:
        return self.word_embeddings.weight

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.word_embeddings(ids)


class SinePositions(nn.Module):
    """``x + alpha · [sin, cos](position · 10000^(-2i/d))``, positions counted from ``start``."""

    def __init__(self, dim: int):
        super().__init__()
        self.dim = dim
        self.alpha = nn.Parameter(torch.ones(1))

    def table(self, start: int, length: int, device: torch.device) -> torch.Tensor:
        position = torch.arange(start, start + length, dtype=torch.float32, device=device)[:, None]
        rate = torch.exp(torch.arange(0, self.dim, 2, dtype=torch.float32, device=device)
                         * -(math.log(10000.0) / self.dim))
        pe = torch.zeros(length, self.dim, device=device)
        pe[:, 0::2] = torch.sin(position * rate)
        pe[:, 1::2] = torch.cos(position * rate)
        return pe

    def forward(self, x: torch.Tensor, start: int = 0) -> torch.Tensor:
        return x + self.alpha * self.table(start, x.shape[1], x.device).to(x.dtype)


class KVCache:
    """Keys and values of one attention layer for the positions decoded so far."""

    def __init__(self) -> None:
        self.k: torch.Tensor | None = None
        self.v: torch.Tensor | None = None

    def extend(self, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self.k = k if self.k is None else torch.cat([self.k, k], dim=2)
        self.v = v if self.v is None else torch.cat([self.v, v], dim=2)
        return self.k, self.v


class SelfAttention(nn.Module):
    """Multi-head self-attention with packed q/k/v projections (``in_proj_weight``, ``out_proj``)."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.in_proj_weight = nn.Parameter(torch.empty(3 * dim, dim))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * dim))
        self.out_proj = nn.Linear(dim, dim)
        nn.init.xavier_uniform_(self.in_proj_weight)
        nn.init.zeros_(self.out_proj.bias)

    def forward(self, x: torch.Tensor, allowed: torch.Tensor | None = None, cache: KVCache | None = None
                ) -> torch.Tensor:
        """``allowed[i, j]``: query i may attend to key j (None: everything, incl. all cached keys)."""
        b, t, d = x.shape
        q, k, v = (z.view(b, t, self.heads, -1).transpose(1, 2)
                   for z in F.linear(x, self.in_proj_weight, self.in_proj_bias).chunk(3, dim=-1))
        if cache is not None:
            k, v = cache.extend(k, v)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed)
        return self.out_proj(y.transpose(1, 2).reshape(b, t, d))


class AdaptiveLayerNorm(nn.Module):
    """LayerNorm whose gain and bias are projected from the NAR stage embedding."""

    def __init__(self, dim: int):
        super().__init__()
        self.project_layer = nn.Linear(dim, 2 * dim)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor, stage: torch.Tensor) -> torch.Tensor:
        gain, bias = self.project_layer(stage).chunk(2, dim=-1)
        return gain * self.norm(x) + bias


def _normalise(norm: nn.Module, x: torch.Tensor, stage: torch.Tensor | None) -> torch.Tensor:
    return norm(x, stage) if isinstance(norm, AdaptiveLayerNorm) else norm(x)


class Block(nn.Module):
    """Pre-norm transformer layer: x + attn(norm1 x), then x + W2 relu(W1 norm2 x)."""

    def __init__(self, dim: int, heads: int, adaptive: bool):
        super().__init__()
        self.self_attn = SelfAttention(dim, heads)
        self.linear1 = nn.Linear(dim, 4 * dim)
        self.linear2 = nn.Linear(4 * dim, dim)
        self.norm1: nn.Module = AdaptiveLayerNorm(dim) if adaptive else nn.LayerNorm(dim)
        self.norm2: nn.Module = AdaptiveLayerNorm(dim) if adaptive else nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor, stage: torch.Tensor | None, allowed: torch.Tensor | None,
                cache: KVCache | None) -> torch.Tensor:
        x = x + self.self_attn(_normalise(self.norm1, x, stage), allowed, cache)
        return x + self.linear2(F.relu(self.linear1(_normalise(self.norm2, x, stage))))


class Stack(nn.Module):
    """``layers`` then a final ``norm`` (adaptive in the NAR stack)."""

    def __init__(self, dim: int, heads: int, n_layers: int, adaptive: bool):
        super().__init__()
        self.layers = nn.ModuleList(Block(dim, heads, adaptive) for _ in range(n_layers))
        self.norm: nn.Module = AdaptiveLayerNorm(dim) if adaptive else nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor, stage: torch.Tensor | None = None, allowed: torch.Tensor | None = None,
                caches: list[KVCache] | None = None) -> torch.Tensor:
        for i, layer in enumerate(self.layers):
            x = layer(x, stage, allowed, caches[i] if caches is not None else None)
        return _normalise(self.norm, x, stage)


# -- sampling -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sampling:
    """AR sampling settings; upstream inference uses top-k off (-100) and temperature 1."""

    top_k: int = -100
    """Keep the k most likely codes; ≤ 0 keeps all."""
    temperature: float = 1.0
    stop_on_greedy_eos: bool = False
    """USLM also stops when end-of-speech is the most likely code, even if another was sampled."""


def sample_code(logits: torch.Tensor, sampling: Sampling, generator: torch.Generator) -> int:
    """One code from ``logits`` [V] with temperature and top-k, drawn from ``generator``."""
    logits = logits.float() / sampling.temperature if sampling.temperature != 1.0 else logits.float()
    if sampling.top_k > 0:
        kth = logits.topk(min(sampling.top_k, logits.numel())).values[-1]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    return int(torch.multinomial(logits.softmax(-1), 1, generator=generator))


# -- the model ----------------------------------------------------------------------------------


class ValleModel(nn.Module):
    """AR + NAR codec LM; attribute names (and so state-dict keys) as lifeiteng's ``VALLE``/``VALLF``."""

    def __init__(self, cfg: ValleConfig):
        super().__init__()
        self.cfg = cfg
        d, a, k = cfg.d_model, cfg.n_audio_tokens, cfg.n_quantizers
        self.ar_text_embedding = TokenEmbedding(d, cfg.n_text_tokens)
        self.nar_text_embedding = TokenEmbedding(d, cfg.n_text_tokens)
        self.ar_audio_embedding = TokenEmbedding(d, a + 1 + int(cfg.prepend_bos))
        self.ar_text_position = SinePositions(d)
        self.ar_audio_position = SinePositions(d)
        self.ar_decoder = Stack(d, cfg.n_heads, cfg.n_layers, adaptive=False)
        self.ar_predict_layer = nn.Linear(d, a + 1, bias=False)
        self.nar_audio_embeddings = nn.ModuleList(
            [TokenEmbedding(d, a + 1)] + [TokenEmbedding(d, a) for _ in range(k - 1)])
        self.nar_text_position = SinePositions(d)
        self.nar_audio_position = SinePositions(d)
        self.nar_decoder = Stack(d, cfg.n_heads, cfg.n_layers, adaptive=True)
        self.nar_predict_layers = nn.ModuleList(nn.Linear(d, a, bias=False) for _ in range(k - 1))
        self.nar_stage_embeddings = nn.ModuleList(TokenEmbedding(d, 1) for _ in range(k - 1))
        if cfg.share_embedding:
            for j in range(k - 2):
                self.nar_predict_layers[j].weight = self.nar_audio_embeddings[j + 2].weight
        if cfg.n_languages:
            self.ar_language_embedding = TokenEmbedding(d, cfg.n_languages)
            self.nar_language_embedding = TokenEmbedding(d, cfg.n_languages)

    # -- text ------------------------------------------------------------------------------------
    def _text(self, stage: str, text: torch.Tensor, languages: torch.Tensor | None) -> torch.Tensor:
        """Embedded, position-coded phonemes [1, S, D] for the ``"ar"`` or ``"nar"`` stage."""
        x = getattr(self, f"{stage}_text_embedding")(text)[None]
        if self.cfg.n_languages:
            if languages is None or languages.shape != text.shape:
                raise CodecError("this VALL-E has language embeddings: give one language id per text token")
            x = x + getattr(self, f"{stage}_language_embedding")(languages)[None]
        return getattr(self, f"{stage}_text_position")(x)

    # -- AR: RVQ-1 ---------------------------------------------------------------------------------
    @torch.inference_mode()
    def generate_first_codebook(self, text: torch.Tensor, prompt: torch.Tensor, max_frames: int,
                                generator: torch.Generator, sampling: Sampling | None = None,
                                languages: torch.Tensor | None = None) -> torch.Tensor:
        """RVQ-1 codes [T] following ``prompt`` [P] (RVQ-1 of the acoustic prompt), at most ``max_frames``."""
        cfg, sampling = self.cfg, sampling or Sampling()
        x = self._text("ar", text, languages)
        audio = torch.cat([prompt.new_tensor([cfg.bos]), prompt]) if cfg.prepend_bos else prompt
        y = self.ar_audio_position(self.ar_audio_embedding(audio)[None])
        s, t = x.shape[1], y.shape[1]
        allowed = torch.ones(s + t, s + t, dtype=torch.bool, device=x.device)
        allowed[:s, s:] = False  # phonemes never see codes
        allowed[s:, s:] = torch.ones(t, t, dtype=torch.bool, device=x.device).tril()
        caches = [KVCache() for _ in self.ar_decoder.layers]
        h = self.ar_decoder(torch.cat([x, y], dim=1), allowed=allowed, caches=caches)
        out: list[int] = []
        while len(out) < max_frames:
            logits = self.ar_predict_layer(h[0, -1])
            code = sample_code(logits, sampling, generator)
            if code == cfg.eos or (sampling.stop_on_greedy_eos and int(logits.argmax()) == cfg.eos):
                break
            out.append(code)
            step = self.ar_audio_embedding(prompt.new_tensor([[code]]))
            h = self.ar_decoder(self.ar_audio_position(step, start=t + len(out) - 1), caches=caches)
        if not out:
            raise CodecError("the AR stage ended speech before its first frame")
        return prompt.new_tensor(out)

    # -- NAR: RVQ-2..K -----------------------------------------------------------------------------
    @torch.inference_mode()
    def generate_other_codebooks(self, text: torch.Tensor, prompt: torch.Tensor, first: torch.Tensor,
                                 languages: torch.Tensor | None = None) -> torch.Tensor:
        """All K codebooks [K, T] of the new frames, from their RVQ-1 ``first`` [T] and ``prompt`` [P, K]."""
        cfg, emb = self.cfg, self.nar_audio_embeddings
        x = self._text("nar", text, languages)
        s, p = x.shape[1], prompt.shape[0]
        y = emb[0](torch.cat([prompt[:, 0], first]))[None].clone()
        if cfg.prefix_mode == 1 and p:
            y[:, :p] += sum(emb[j](prompt[:, j]) for j in range(1, cfg.n_quantizers))
        codes = [first]
        for i in range(cfg.n_quantizers - 1):
            stage = self.nar_stage_embeddings[i].weight
            h = self.nar_decoder(torch.cat([x, self.nar_audio_position(y)], dim=1), stage=stage)
            pred = self.nar_predict_layers[i](h[0, s + p:]).argmax(-1)
            codes.append(pred)
            if i < cfg.n_quantizers - 2:
                if cfg.prefix_mode == 0 and p:
                    y[:, :p] += emb[i + 1](prompt[:, i + 1])
                y[:, p:] += emb[i + 1](pred)
        return torch.stack(codes)

    def generate(self, text: torch.Tensor, prompt: torch.Tensor, max_frames: int, generator: torch.Generator,
                 sampling: Sampling | None = None, languages: torch.Tensor | None = None) -> torch.Tensor:
        """Codes [K, T] of the speech after ``prompt`` [P, K] for phoneme ids ``text`` [S] (prompt's text first)."""
        first = self.generate_first_codebook(text, prompt[:, 0], max_frames, generator, sampling, languages)
        return self.generate_other_codebooks(text, prompt, first, languages)


def model_from_state(state: dict[str, torch.Tensor], what: str, **given: Any) -> ValleModel:
    """The model a checkpoint describes, holding its tensors; any missing, extra or mis-shaped key is an error.

    Built on the meta device and filled by assignment (no 370M-parameter random init first); the
    shared NAR output/embedding weights are tied again afterwards, as upstream ties them.
    """
    state = {k: v.float() for k, v in state.items()}  # upstream runs in float32
    cfg = ValleConfig.from_state_dict(state, **given)
    with torch.device("meta"):
        model = ValleModel(cfg)
    try:
        model.load_state_dict(state, strict=True, assign=True)
    except RuntimeError as exc:
        raise CodecError(f"{what} does not match the VALL-E layout of {cfg}: {exc}") from exc
    if cfg.share_embedding:
        for j in range(cfg.n_quantizers - 2):
            model.nar_predict_layers[j].weight = model.nar_audio_embeddings[j + 2].weight
    return model
