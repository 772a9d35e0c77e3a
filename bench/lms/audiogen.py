"""AudioGen (Kreuk et al., 2022): text-to-audio with a delayed-pattern LM over 16 kHz EnCodec tokens.

``facebook/audiogen-medium`` (audiocraft's v2 AudioGen, 1.5B) is released only in audiocraft's own
format: ``state_dict.bin`` holds the LM and its training config, ``compression_state_dict.bin`` its
16 kHz EnCodec (4 codebooks × 2048, 50 Hz). audiocraft cannot be installed beside this torch (it pins
torch 2.1 and needs torchaudio), but its LM is MusicGen's architecture, so both files are converted at
load time into transformers' ``MusicgenForConditionalGeneration``: the T5-large text encoder from
``google-t5/t5-large`` (audiocraft downloads it too, it is not in the checkpoint), the decoder, and an
``EncodecModel`` with the checkpoint's 16 kHz configuration. Generation and resynthesis are MusicGen's.

The conversion refuses rather than guesses. Every config field that changes the computation is checked
against what the transformers classes compute (pre-norm layers without biases, sinusoidal positions,
delays 0..K-1, T5 cross-attention conditioning, a non-causal weight-normed SEANet without
renormalisation, ...), and a checkpoint that differs is refused naming the fields. The weights must
then match, key for key and shape for shape, the layout audiocraft's modules produce for that config
(:func:`lm_layout`, :func:`compression_layout`), and every tensor of the transformers model is filled
exactly once. The tiny random build runs the same conversion on a tiny seeded audiocraft checkpoint.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from bench.codecs.base import WeightsSource
from bench.codecs.weights import resolve_weights
from bench.errors import CodecError, WeightsUnavailableError
from bench.lms import register_lm
from bench.lms.audiocraft_package import AudiocraftConfig, read_audiocraft_package
from bench.lms.base import Generated, GenerationRequest, LMMeta, WeightsAsset
from bench.lms.musicgen import MusicGen

LM_FILE, CODEC_FILE = "state_dict.bin", "compression_state_dict.bin"
#: audiocraft's T5Conditioner names → the hub repository holding that encoder and its tokenizer.
T5_SOURCES = {"t5-large": WeightsSource(uri="hf://google-t5/t5-large",
                                        files=("config.json", "model.safetensors", "tokenizer.json",
                                               "spiece.model"))}
#: audiocraft's AudioGen.set_generation_params defaults (what ``AudioGen.generate`` samples with).
SAMPLING = {"do_sample": True, "top_k": 250, "temperature": 1.0, "guidance_scale": 3.0}

META = LMMeta(
    id="audiogen-medium", family="audiogen", kind="model", tasks=frozenset({"text_to_audio"}), sample_rate=16000,
    codec="AudioGen EnCodec 16 kHz (4 codebooks × 2048, 50 Hz, delay pattern)",
    weights=WeightsSource(uri="hf://facebook/audiogen-medium", files=(LM_FILE, CODEC_FILE)),
    license="CC-BY-NC-4.0 (weights); MIT (audiocraft code)",
    citation="Kreuk et al., AudioGen: Textually Guided Audio Generation, ICLR 2023 (arXiv:2209.15352)",
    implementation="audiocraft checkpoint converted at load time into transformers MusicgenForConditionalGeneration "
                   "(T5-large text encoder, EncodecModel 16 kHz)",
    notes="audiocraft's v2 AudioGen (10 s training windows, retrained 16 kHz EnCodec); the T5-large text encoder "
          "comes from hf://google-t5/t5-large (not in the checkpoint); sampling as audiocraft's defaults "
          "(top-k 250, CFG 3.0); requests beyond the 10 s window are refused (audiocraft would extend them "
          "with a sliding window); hub revisions are not pinned")


class UnsupportedCheckpoint(WeightsUnavailableError):
    """An audiocraft checkpoint whose config or weights the converter would not reproduce faithfully."""


@dataclass(frozen=True)
class LMSettings:
    """The AudioGen LM hyper-parameters the conversion needs, read from ``xp.cfg``."""

    dim: int
    num_heads: int
    num_layers: int
    ffn_dim: int
    n_q: int
    card: int
    text_encoder: str
    """audiocraft's T5 name (``t5-large``)."""
    segment_duration: float


@dataclass(frozen=True)
class CodecSettings:
    """The EnCodec (SEANet + RVQ) hyper-parameters the conversion needs, read from ``xp.cfg``."""

    sample_rate: int
    channels: int
    dimension: int
    n_filters: int
    n_residual_layers: int
    ratios: tuple[int, ...]
    kernel_size: int
    last_kernel_size: int
    residual_kernel_size: int
    dilation_base: int
    compress: int
    lstm: int
    true_skip: bool
    pad_mode: str
    n_q: int
    bins: int

    @property
    def hop_length(self) -> int:
        return math.prod(self.ratios)

    @property
    def bandwidth_kbps(self) -> float:
        return self.n_q * (self.bins - 1).bit_length() * (self.sample_rate // self.hop_length) / 1000


_REQUIRED = object()


class _Checks:
    """Reads config values and collects every unsupported one, so one error names them all."""

    def __init__(self, cfg: AudiocraftConfig, what: str):
        self.cfg, self.what, self.problems = cfg, what, []

    def expect(self, path: str, supported: Any, default: Any = _REQUIRED) -> None:
        if default is _REQUIRED and not self.cfg.has(path):
            self.problems.append(f"{path} is missing")
            return
        have = self.cfg.get(path, default)
        allowed = supported if isinstance(supported, tuple) else (supported,)
        if have not in allowed:
            self.problems.append(f"{path}={have!r} (supported: {' or '.join(repr(a) for a in allowed)})")

    def require(self, ok: bool, problem: str) -> None:
        if not ok:
            self.problems.append(problem)

    def done(self) -> None:
        if self.problems:
            raise UnsupportedCheckpoint(f"{self.what}: the converter does not reproduce this config: "
                                        + "; ".join(self.problems))


#: (xp.cfg path, supported value(s), audiocraft's default when the path is absent).
_LM_REQUIREMENTS: tuple[tuple[str, Any, Any], ...] = (
    ("lm_model", "transformer_lm", _REQUIRED),
    ("transformer_lm.norm", "layer_norm", "layer_norm"),
    ("transformer_lm.norm_first", True, False),
    ("transformer_lm.bias_ff", False, True),
    ("transformer_lm.bias_attn", False, True),
    ("transformer_lm.bias_proj", False, True),
    ("transformer_lm.activation", "gelu", "relu"),
    ("transformer_lm.causal", True, False),
    ("transformer_lm.past_context", None, None),
    ("transformer_lm.positional_embedding", "sin", "sin"),
    ("transformer_lm.max_period", 10000, 10000),
    ("transformer_lm.positional_scale", 1.0, 1.0),
    ("transformer_lm.layer_scale", None, None),
    ("transformer_lm.qk_layer_norm", False, False),
    ("transformer_lm.qk_layer_norm_cross", False, False),
    ("transformer_lm.kv_repeat", 1, 1),
    ("codebooks_pattern.modeling", "delay", _REQUIRED),
    ("codebooks_pattern.delay.flatten_first", 0, 0),
    ("codebooks_pattern.delay.empty_initial", 0, 0),
    ("fuser.cross_attention_pos_emb", False, False),
    ("conditioners.description.model", "t5", _REQUIRED),
    ("conditioners.description.t5.name", tuple(T5_SOURCES), _REQUIRED),
    ("conditioners.description.t5.finetune", False, _REQUIRED),
    ("conditioners.description.t5.normalize_text", False, False),
)


def lm_settings(cfg: AudiocraftConfig) -> LMSettings:
    """The LM settings of ``state_dict.bin``'s config, or :class:`UnsupportedCheckpoint` naming what differs."""
    checks = _Checks(cfg, "AudioGen LM config")
    for path, supported, default in _LM_REQUIREMENTS:
        checks.expect(path, supported, default)
    t = "transformer_lm."
    dim, heads, n_q = int(cfg.get(t + "dim")), int(cfg.get(t + "num_heads")), int(cfg.get(t + "n_q"))
    checks.require(dim % heads == 0, f"{t}dim={dim} is not a multiple of num_heads={heads}")
    checks.expect("codebooks_pattern.delay.delays", ([*range(n_q)], None), None)
    fuser = {k: list(cfg.get(f"fuser.{k}", [])) for k in ("sum", "prepend", "input_interpolate")}
    checks.require(list(cfg.get("fuser.cross")) == ["description"] and not any(fuser.values()),
                   f"fuser cross={cfg.get('fuser.cross')!r} {fuser} (supported: T5 'description' by cross-attention only)")
    conditioners = sorted(k for k in cfg.get("conditioners") if k != "args")
    checks.require(conditioners == ["description"], f"conditioners={conditioners} (supported: ['description'])")
    checks.done()
    return LMSettings(dim=dim, num_heads=heads, num_layers=int(cfg.get(t + "num_layers")),
                      ffn_dim=int(cfg.get(t + "hidden_scale", 4) * dim), n_q=n_q, card=int(cfg.get(t + "card")),
                      text_encoder=str(cfg.get("conditioners.description.t5.name")),
                      segment_duration=float(cfg.get("dataset.segment_duration")))


_CODEC_REQUIREMENTS: tuple[tuple[str, Any, Any], ...] = (
    ("compression_model", "encodec", _REQUIRED),
    ("encodec.autoencoder", "seanet", _REQUIRED),
    ("encodec.quantizer", "rvq", _REQUIRED),
    ("encodec.causal", False, False),
    ("encodec.renormalize", False, False),
    ("seanet.causal", False, False),
    ("seanet.activation", "ELU", "ELU"),
    ("seanet.activation_params", {"alpha": 1.0}, {"alpha": 1.0}),
    ("seanet.norm", "weight_norm", "none"),
    ("seanet.norm_params", {}, {}),
    ("seanet.pad_mode", ("constant", "reflect"), "reflect"),
    ("seanet.disable_norm_outer_blocks", 0, 0),
    ("seanet.encoder", {}, {}),
    ("seanet.decoder.final_activation", None, None),
    ("seanet.decoder.trim_right_ratio", 1.0, 1.0),
)


def codec_settings(cfg: AudiocraftConfig) -> CodecSettings:
    """The EnCodec settings of ``compression_state_dict.bin``'s config, or :class:`UnsupportedCheckpoint`."""
    checks = _Checks(cfg, "AudioGen EnCodec config")
    for path, supported, default in _CODEC_REQUIREMENTS:
        checks.expect(path, supported, default)
    overrides = set(cfg.get("seanet.decoder", {})) - {"trim_right_ratio", "final_activation", "final_activation_params"}
    checks.require(not overrides, f"seanet.decoder overrides {sorted(overrides)} (supported: none)")
    channels = int(cfg.get("channels"))
    checks.require(channels == 1 and int(cfg.get("seanet.channels", channels)) == 1,
                   f"channels={channels} (supported: 1)")
    s = CodecSettings(
        sample_rate=int(cfg.get("sample_rate")), channels=channels, dimension=int(cfg.get("seanet.dimension", 128)),
        n_filters=int(cfg.get("seanet.n_filters", 32)), n_residual_layers=int(cfg.get("seanet.n_residual_layers", 3)),
        ratios=tuple(int(r) for r in cfg.get("seanet.ratios", [8, 5, 4, 2])),
        kernel_size=int(cfg.get("seanet.kernel_size", 7)), last_kernel_size=int(cfg.get("seanet.last_kernel_size", 7)),
        residual_kernel_size=int(cfg.get("seanet.residual_kernel_size", 3)),
        dilation_base=int(cfg.get("seanet.dilation_base", 2)), compress=int(cfg.get("seanet.compress", 2)),
        lstm=int(cfg.get("seanet.lstm", 0)), true_skip=bool(cfg.get("seanet.true_skip", True)),
        pad_mode=str(cfg.get("seanet.pad_mode", "reflect")), n_q=int(cfg.get("rvq.n_q", 8)),
        bins=int(cfg.get("rvq.bins", 1024)))
    checks.require(s.lstm >= 1, f"seanet.lstm={s.lstm} (transformers' EnCodec always has an LSTM)")
    checks.require(s.n_residual_layers >= 1, f"seanet.n_residual_layers={s.n_residual_layers} (supported: >= 1)")
    checks.require(s.sample_rate % s.hop_length == 0,
                   f"sample_rate={s.sample_rate} is not a multiple of the hop {s.hop_length}")
    rvq_dimension = int(cfg.get("rvq.dimension", s.dimension))
    checks.require(rvq_dimension == s.dimension,
                   f"rvq.dimension={rvq_dimension} differs from seanet.dimension={s.dimension}")
    checks.done()
    return s


@dataclass(frozen=True)
class Move:
    """One checkpoint tensor and the transformers tensor(s) it becomes (a packed q/k/v splits in rows)."""

    source: str
    shape: tuple[int, ...]
    targets: tuple[str, ...]

    def target_shapes(self) -> dict[str, tuple[int, ...]]:
        rows = self.shape[0] // len(self.targets)
        return {t: (rows, *self.shape[1:]) for t in self.targets}


DECODER = "decoder.model.decoder"


def _layer_norm(source: str, target: str, dim: int) -> list[Move]:
    return [Move(f"{source}.{p}", (dim,), (f"{target}.{p}",)) for p in ("weight", "bias")]


def _attention(source: str, target: str, dim: int) -> list[Move]:
    return [Move(f"{source}in_proj_weight", (3 * dim, dim), tuple(f"{target}.{p}_proj.weight" for p in "qkv")),
            Move(f"{source}out_proj.weight", (dim, dim), (f"{target}.out_proj.weight",))]


def lm_layout(s: LMSettings, text_dim: int) -> list[Move]:
    """audiocraft ``LMModel`` state-dict entries (T5 not stored) → ``MusicgenForConditionalGeneration`` ones.

    Attention weights are named as audiocraft's own attention saves them (``self_attn.in_proj_weight``);
    see :func:`unwrap_torch_attention` for checkpoints saved through torch's MultiheadAttention.
    """
    d = s.dim
    moves = [Move("condition_provider.conditioners.description.output_proj.weight", (d, text_dim),
                  ("enc_to_dec_proj.weight",)),
             Move("condition_provider.conditioners.description.output_proj.bias", (d,), ("enc_to_dec_proj.bias",))]
    moves += [Move(f"emb.{k}.weight", (s.card + 1, d), (f"{DECODER}.embed_tokens.{k}.weight",)) for k in range(s.n_q)]
    for i in range(s.num_layers):
        src, dst = f"transformer.layers.{i}.", f"{DECODER}.layers.{i}."
        moves += [*_attention(f"{src}self_attn.", f"{dst}self_attn", d),
                  Move(f"{src}linear1.weight", (s.ffn_dim, d), (f"{dst}fc1.weight",)),
                  Move(f"{src}linear2.weight", (d, s.ffn_dim), (f"{dst}fc2.weight",)),
                  *_layer_norm(f"{src}norm1", f"{dst}self_attn_layer_norm", d),
                  *_layer_norm(f"{src}norm2", f"{dst}final_layer_norm", d),
                  *_attention(f"{src}cross_attention.", f"{dst}encoder_attn", d),
                  *_layer_norm(f"{src}norm_cross", f"{dst}encoder_attn_layer_norm", d)]
    moves += _layer_norm("out_norm", f"{DECODER}.layer_norm", d)
    moves += [Move(f"linears.{k}.weight", (s.card, d), (f"decoder.lm_heads.{k}.weight",)) for k in range(s.n_q)]
    return moves


def unwrap_torch_attention(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """audiocraft without its custom attention saves ``self_attn.mha.in_proj_weight``; its loader reads both
    namings into either module, and so does this (same tensors, same order)."""
    return {k.replace("self_attn.mha.", "self_attn.").replace("cross_attention.mha.", "cross_attention."): v
            for k, v in state.items()}


def _conv(source: str, target: str, c_in: int, c_out: int, kernel: int, transposed: bool = False) -> list[Move]:
    """A weight-normed (torch.nn.utils.weight_norm: g, v) conv → transformers' parametrised conv."""
    kind = "convtr" if transposed else "conv"
    weight = (c_in, c_out, kernel) if transposed else (c_out, c_in, kernel)
    src, dst = f"{source}.{kind}.{kind}", f"{target}.conv"
    return [Move(f"{src}.bias", (c_out,), (f"{dst}.bias",)),
            Move(f"{src}.weight_g", (weight[0], 1, 1), (f"{dst}.parametrizations.weight.original0",)),
            Move(f"{src}.weight_v", weight, (f"{dst}.parametrizations.weight.original1",))]


def _resnet_block(source: str, target: str, s: CodecSettings, dim: int) -> list[Move]:
    hidden = dim // s.compress
    moves = _conv(f"{source}.block.1", f"{target}.block.1", dim, hidden, s.residual_kernel_size)
    moves += _conv(f"{source}.block.3", f"{target}.block.3", hidden, dim, 1)
    if not s.true_skip:
        moves += _conv(f"{source}.shortcut", f"{target}.shortcut", dim, dim, 1)
    return moves


def _lstm(source: str, target: str, s: CodecSettings, dim: int) -> list[Move]:
    return [Move(f"{source}.lstm.{p}_l{n}", (4 * dim, dim) if p.startswith("weight") else (4 * dim,),
                 (f"{target}.lstm.{p}_l{n}",))
            for n in range(s.lstm) for p in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]


def compression_layout(s: CodecSettings) -> list[Move]:
    """audiocraft ``EncodecModel`` (SEANet + RVQ) entries → ``MusicgenForConditionalGeneration.audio_encoder`` ones.

    Both sides list the SEANet layers in the same order (conv, [resblocks, ELU, strided conv] per
    ratio, LSTM, ELU, conv; mirrored in the decoder), so layer indices carry over.
    """
    moves: list[Move] = []

    def at(side: str, index: int) -> tuple[str, str]:
        return f"{side}.model.{index}", f"audio_encoder.{side}.layers.{index}"

    nf, index, mult = s.n_filters, 0, 1
    moves += _conv(*at("encoder", index), s.channels, nf, s.kernel_size)
    for ratio in reversed(s.ratios):
        for _ in range(s.n_residual_layers):
            index += 1
            moves += _resnet_block(*at("encoder", index), s, mult * nf)
        index += 2  # ELU, then the strided conv
        moves += _conv(*at("encoder", index), mult * nf, 2 * mult * nf, 2 * ratio)
        mult *= 2
    index += 1
    moves += _lstm(*at("encoder", index), s, mult * nf)
    index += 2  # ELU, then the last conv
    moves += _conv(*at("encoder", index), mult * nf, s.dimension, s.last_kernel_size)

    index = 0
    moves += _conv(*at("decoder", index), s.dimension, mult * nf, s.kernel_size)
    index += 1
    moves += _lstm(*at("decoder", index), s, mult * nf)
    for ratio in s.ratios:
        index += 2  # ELU, then the transposed conv
        moves += _conv(*at("decoder", index), mult * nf, mult * nf // 2, 2 * ratio, transposed=True)
        mult //= 2
        for _ in range(s.n_residual_layers):
            index += 1
            moves += _resnet_block(*at("decoder", index), s, mult * nf)
    index += 2
    moves += _conv(*at("decoder", index), nf, s.channels, s.last_kernel_size)

    for q in range(s.n_q):
        src, dst = f"quantizer.vq.layers.{q}._codebook", f"audio_encoder.quantizer.layers.{q}.codebook"
        moves += [Move(f"{src}.{name}", shape, (f"{dst}.{name}",)) for name, shape in
                  (("inited", (1,)), ("cluster_size", (s.bins,)), ("embed", (s.bins, s.dimension)),
                   ("embed_avg", (s.bins, s.dimension)))]
    return moves


def target_shapes(layout: Iterable[Move]) -> dict[str, tuple[int, ...]]:
    """Every transformers tensor a layout fills, with its shape; a tensor filled twice is a layout bug."""
    out: dict[str, tuple[int, ...]] = {}
    for move in layout:
        for name, shape in move.target_shapes().items():
            if name in out:
                raise AssertionError(f"layout fills {name} twice")
            out[name] = shape
    return out


def check_layout(state: dict[str, torch.Tensor], layout: list[Move], what: str) -> None:
    """The checkpoint has exactly the layout's keys, with its shapes; otherwise name the differences."""
    expected = {m.source: m.shape for m in layout}
    missing = sorted(expected.keys() - state.keys())
    unexpected = sorted(state.keys() - expected.keys())
    wrong = [f"{k} {tuple(state[k].shape)} (expected {expected[k]})" for k in expected
             if k in state and tuple(state[k].shape) != expected[k]]
    if missing or unexpected or wrong:
        parts = [f"{label} ({len(keys)}): {', '.join(keys[:6])}{' ...' if len(keys) > 6 else ''}"
                 for label, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong)) if keys]
        raise UnsupportedCheckpoint(f"{what} does not have the layout its config implies — " + "; ".join(parts))


def conversion_plan(sources: Iterable[tuple[dict[str, torch.Tensor], list[Move], str]],
                    targets: dict[str, tuple[int, ...]], leave: str = "text_encoder.") -> list[tuple[str, torch.Tensor]]:
    """(transformers name, checkpoint tensor or row block) for every target outside ``leave``, each exactly once.

    ``sources`` are (checkpoint state, its layout, file name); ``targets`` the model's tensor shapes.
    """
    plan: dict[str, torch.Tensor] = {}
    for state, layout, what in sources:
        check_layout(state, layout, what)
        for move in layout:
            for name, piece in zip(move.targets, state[move.source].chunk(len(move.targets), dim=0), strict=True):
                if name in plan or targets.get(name) != tuple(piece.shape):
                    raise UnsupportedCheckpoint(f"{what}: {move.source} → {name} does not fit the transformers model "
                                                f"(expects {targets.get(name)}, already filled: {name in plan})")
                plan[name] = piece
    unfilled = sorted(k for k in targets.keys() - plan.keys() if not k.startswith(leave))
    if unfilled:
        raise UnsupportedCheckpoint(f"transformers tensors left without a checkpoint value: {', '.join(unfilled[:8])}")
    return list(plan.items())


def fill(model: torch.nn.Module, sources: Iterable[tuple[dict[str, torch.Tensor], list[Move], str]]) -> None:
    """Copy the checkpoints into ``model`` following :func:`conversion_plan` (dtype cast on copy)."""
    targets = model.state_dict()
    with torch.no_grad():
        for name, piece in conversion_plan(sources, {k: tuple(v.shape) for k, v in targets.items()}):
            targets[name].copy_(piece)


def decoder_config(s: LMSettings) -> Any:
    from transformers import MusicgenDecoderConfig

    return MusicgenDecoderConfig(vocab_size=s.card, hidden_size=s.dim, num_hidden_layers=s.num_layers,
                                 num_attention_heads=s.num_heads, ffn_dim=s.ffn_dim, num_codebooks=s.n_q,
                                 audio_channels=1, activation_function="gelu", max_position_embeddings=2048,
                                 dropout=0.0, attention_dropout=0.0, activation_dropout=0.0, layerdrop=0.0,
                                 scale_embedding=False, tie_word_embeddings=False,
                                 pad_token_id=s.card, bos_token_id=s.card)


def encodec_config(s: CodecSettings) -> Any:
    from transformers import EncodecConfig

    config = EncodecConfig(sampling_rate=s.sample_rate, audio_channels=s.channels,
                           target_bandwidths=[s.bandwidth_kbps], upsampling_ratios=list(s.ratios),
                           norm_type="weight_norm", kernel_size=s.kernel_size, last_kernel_size=s.last_kernel_size,
                           residual_kernel_size=s.residual_kernel_size, dilation_growth_rate=s.dilation_base,
                           use_causal_conv=False, pad_mode=s.pad_mode, compress=s.compress,
                           num_lstm_layers=s.lstm, trim_right_ratio=1.0, num_filters=s.n_filters,
                           num_residual_layers=s.n_residual_layers, hidden_size=s.dimension,
                           codebook_size=s.bins, codebook_dim=s.dimension, use_conv_shortcut=not s.true_skip,
                           normalize=False, chunk_length_s=None, overlap=None)
    if config.num_quantizers != s.n_q or config.frame_rate * s.hop_length != s.sample_rate:
        raise UnsupportedCheckpoint(f"transformers' EncodecConfig derives {config.num_quantizers} codebooks at "
                                    f"{config.frame_rate} Hz from {s.bandwidth_kbps} kbps; the checkpoint has {s.n_q} "
                                    f"at {s.sample_rate / s.hop_length} Hz")
    return config


def assemble(lm_state: dict[str, torch.Tensor], codec_state: dict[str, torch.Tensor], lm: LMSettings,
             codec: CodecSettings, text_encoder: Any) -> Any:
    """The transformers model holding the converted LM and EnCodec beside ``text_encoder``, ready to sample."""
    from transformers import MusicgenConfig, MusicgenForConditionalGeneration

    if (lm.n_q, lm.card) != (codec.n_q, codec.bins):
        raise UnsupportedCheckpoint(f"the LM models {lm.n_q} × {lm.card} codes, the EnCodec has {codec.n_q} × {codec.bins}")
    config = MusicgenConfig(text_encoder=text_encoder.config.to_dict(), audio_encoder=encodec_config(codec).to_dict(),
                            decoder=decoder_config(lm).to_dict(), decoder_start_token_id=lm.card, pad_token_id=lm.card)
    with _no_init_weights():
        model = MusicgenForConditionalGeneration(config=config, text_encoder=text_encoder)
    text_dim = int(text_encoder.config.d_model)
    fill(model, [(unwrap_torch_attention(lm_state), lm_layout(lm, text_dim), LM_FILE),
                 (codec_state, compression_layout(codec), CODEC_FILE)])
    generation = model.generation_config
    generation.decoder_start_token_id = generation.pad_token_id = lm.card
    for key, value in SAMPLING.items():
        setattr(generation, key, value)
    return model


def _no_init_weights() -> Any:
    """transformers' context that skips random init of tensors about to be overwritten (moved in v5)."""
    try:
        from transformers.initialization import no_init_weights
    except ImportError:  # transformers 4.x
        from transformers.modeling_utils import no_init_weights
    return no_init_weights()


#: A tiny AudioGen in audiocraft's config form: same sections and switches as audiogen-medium, small sizes.
TINY_LM_CONFIG: dict[str, Any] = {
    "lm_model": "transformer_lm",
    "transformer_lm": {"dim": 32, "num_heads": 4, "num_layers": 2, "hidden_scale": 2, "n_q": 4, "card": 64,
                       "activation": "gelu", "norm": "layer_norm", "norm_first": True, "bias_ff": False,
                       "bias_attn": False, "bias_proj": False, "causal": True, "positional_embedding": "sin",
                       "memory_efficient": True, "layer_scale": None},
    "codebooks_pattern": {"modeling": "delay", "delay": {"delays": [0, 1, 2, 3], "flatten_first": 0,
                                                         "empty_initial": 0}},
    "fuser": {"cross_attention_pos_emb": False, "sum": [], "prepend": [], "cross": ["description"],
              "input_interpolate": []},
    "conditioners": {"description": {"model": "t5", "t5": {"name": "t5-large", "finetune": False,
                                                           "normalize_text": False}}},
    "dataset": {"segment_duration": 10},
}
TINY_CODEC_CONFIG: dict[str, Any] = {
    "sample_rate": 16000, "channels": 1, "compression_model": "encodec",
    "encodec": {"autoencoder": "seanet", "quantizer": "rvq", "sample_rate": "${sample_rate}",
                "channels": "${channels}", "causal": False, "renormalize": False},
    "seanet": {"dimension": 16, "channels": "${channels}", "causal": "${encodec.causal}", "n_filters": 4,
               "n_residual_layers": 1, "ratios": [8, 5, 4, 2], "activation": "ELU", "activation_params": {"alpha": 1.0},
               "norm": "weight_norm", "norm_params": {}, "kernel_size": 7, "residual_kernel_size": 3,
               "last_kernel_size": 7, "dilation_base": 2, "pad_mode": "constant", "true_skip": True, "compress": 2,
               "lstm": 2, "disable_norm_outer_blocks": 0, "encoder": {},
               "decoder": {"trim_right_ratio": 1.0, "final_activation": None, "final_activation_params": None}},
    "rvq": {"n_q": 4, "bins": 64},
}
TINY_TEXT_DIM = 24


def random_state(layout: list[Move], seed: int) -> dict[str, torch.Tensor]:
    """Seeded tensors in a layout: unit layer-norm gains, conv magnitudes and codebook counts, small random
    everything else (so the random EnCodec passes a signal through at a usable level)."""
    g = torch.Generator().manual_seed(seed)
    state = {}
    for m in layout:
        if m.source.endswith(("inited", "cluster_size", "weight_g")) or ("norm" in m.source and m.source.endswith("weight")):
            state[m.source] = torch.ones(m.shape)
        else:
            state[m.source] = 0.1 * torch.randn(m.shape, generator=g)
    return state


@register_lm(META)
class AudioGen(MusicGen):
    """AudioGen through MusicGen's wrapper: only loading differs (audiocraft checkpoint → transformers)."""

    def build_pretrained(self, path: Path | None) -> Any:
        from transformers import AutoTokenizer, T5EncoderModel

        root = resolve_weights(self.meta, path)  # type: ignore[arg-type]  # duck-typed meta
        files = [root / LM_FILE, root / CODEC_FILE]
        if not all(f.is_file() for f in files):
            raise WeightsUnavailableError(f"{self.meta.id}: {root} must hold {LM_FILE} and {CODEC_FILE} "
                                          f"(from {self.meta.weights.uri if self.meta.weights else 'the hub'})")
        lm_pkg, codec_pkg = read_audiocraft_package(files[0]), read_audiocraft_package(files[1])
        lm, codec = lm_settings(lm_pkg.config), codec_settings(codec_pkg.config)
        t5_root = self._text_encoder_weights(lm.text_encoder)
        model = assemble(lm_pkg.state, codec_pkg.state, lm, codec, T5EncoderModel.from_pretrained(t5_root))
        self.max_duration_s = lm.segment_duration
        self.processor = AutoTokenizer.from_pretrained(t5_root)
        return model

    def _t5_meta(self, name: str) -> WeightsAsset:
        return WeightsAsset(id=name, owner=self.meta.id, weights=T5_SOURCES[name])

    def weight_sources(self) -> list[Any]:
        return [*super().weight_sources(), *(self._t5_meta(name) for name in T5_SOURCES)]

    def _text_encoder_weights(self, name: str) -> Path:
        try:
            return resolve_weights(self._t5_meta(name), None)  # type: ignore[arg-type]  # duck-typed meta
        except WeightsUnavailableError as exc:
            raise WeightsUnavailableError(f"{self.meta.id}: its text conditioner {name} is not part of the "
                                          f"AudioGen checkpoint and must be fetched separately — {exc}") from exc

    def build_random(self) -> Any:
        from transformers import T5Config, T5EncoderModel

        lm, codec = lm_settings(AudiocraftConfig(TINY_LM_CONFIG)), codec_settings(AudiocraftConfig(TINY_CODEC_CONFIG))
        text = T5EncoderModel(T5Config(vocab_size=256, d_model=TINY_TEXT_DIM, d_ff=48, d_kv=6, num_layers=1,
                                       num_heads=4))
        model = assemble(random_state(lm_layout(lm, TINY_TEXT_DIM), seed=1),
                         random_state(compression_layout(codec), seed=2), lm, codec, text)
        self.max_duration_s = lm.segment_duration
        self.processor = None
        return model

    def generate(self, request: GenerationRequest) -> Generated:
        self.check_task(request)
        if self.loaded and request.max_duration_s > self.max_duration_s:
            raise CodecError(f"{self.meta.id} was trained on {self.max_duration_s:g} s windows; asked for "
                             f"{request.max_duration_s:g} s (longer clips need audiocraft's sliding-window extension)")
        return super().generate(request)
