"""USLM (Zhang et al., SpeechTokenizer paper): VALL-E over SpeechTokenizer tokens, zero-shot TTS.

The AR stage generates RVQ-1 (SpeechTokenizer's semantic, HuBERT-distilled layer) from phonemes;
the NAR stages add RVQ-2..8 (timbre, acoustic detail) given the speaker prompt; SpeechTokenizer
(``speechtokenizer@4kbps``, all 8 codebooks, 16 kHz, 50 Hz) codes the prompt and decodes the
output. The network is :mod:`bench.lms.valle_arch` at USLM's size (1024-d, 16 heads, 12 + 12
layers, 512 text tokens); the official ``USLM_libritts/USLM.pt`` loads key for key (its ``model``
entry, read without running pickled code). Whether the AR input has a BOS row is read from the
checkpoint's shapes (upstream's inference default: no BOS).

Text, as USLM's ``bin/infer.py`` prepares it: the prompt transcript and the target text are
phonemized as one sentence by espeak-ng (en-us, no stress marks, punctuation kept, language-switch
flags kept) through ``phonemizer``; each word's phones become symbols, words are joined by ``_``,
and symbols are numbered as its ``TextTokenCollater`` numbers the checkpoint's own
``unique_text_tokens.k2symbols`` (``<pad>``, ``<bos>``, ``<eos>``, then the table's symbols sorted),
with ``<bos>``/``<eos>`` around the sentence. A symbol outside the table is an error (upstream: a
KeyError). espeak-ng comes from ``espeakng-loader`` when installed (a pinned library and data), else
from the system; the training data were phonemized by the espeak-ng of 2023, so rare words may
phonemize slightly differently.

Inference settings are upstream's defaults: sampling with top-k off and temperature 1, prefix mode
0 (the prompt's codebooks enter the NAR stage by stage), and the AR stage stops at a sampled or
most-likely end-of-speech, at 16 frames per text token, or at the request's ``max_duration_s``.
Only the frames after the prompt are returned.

Task: ``tts`` only. VALL-E's "continuation" setting (whole transcript + the utterance's first 3 s)
is the ``continuation`` setting of the zero-shot TTS task (empty prompt transcript, the whole
transcript as text); the text-free AudioLM-style ``continuation`` task is not something a
text-conditioned model does, so it is not claimed.

The tiny random build keeps the real vocabularies (512 text ids, 8 × 1024 codes) at 32-d, 2 heads,
1 + 1 layers, over the tiny random SpeechTokenizer; with no symbol table file, phoneme symbols get
stable hashed ids (:func:`~bench.lms.valle_wrapper.fold_symbol_ids`).
"""

from __future__ import annotations

import re
from pathlib import Path

import torch

from bench.codecs.base import WeightsSource
from bench.codecs.weights import resolve_weights
from bench.errors import CodecError, WeightsUnavailableError
from bench.lms import register_lm
from bench.lms.base import GenerationRequest, LMMeta
from bench.lms.trainer_checkpoint import read_model_state
from bench.lms.valle_arch import Sampling, ValleConfig, ValleModel, model_from_state
from bench.lms.valle_wrapper import ValleCodecLM, fold_symbol_ids

CHECKPOINT, SYMBOLS = "USLM_libritts/USLM.pt", "USLM_libritts/unique_text_tokens.k2symbols"
FULL = ValleConfig(d_model=1024, n_heads=16, n_layers=12, n_text_tokens=512, prefix_mode=0)
TINY = ValleConfig(d_model=32, n_heads=2, n_layers=1, n_text_tokens=512, prefix_mode=0)
PAD, BOS, EOS = "<pad>", "<bos>", "<eos>"
WORD = "_"


class EspeakPhonemizer:
    """English phoneme symbols as lifeiteng's ``TextTokenizer`` (espeak backend) produces them."""

    def __init__(self) -> None:
        from phonemizer.backend import EspeakBackend
        from phonemizer.backend.espeak.wrapper import EspeakWrapper
        from phonemizer.punctuation import Punctuation
        from phonemizer.separator import Separator

        try:
            import espeakng_loader
        except ImportError:
            espeakng_loader = None  # phonemizer looks for the system's libespeak-ng
        if espeakng_loader is not None:
            EspeakWrapper.set_library(espeakng_loader.get_library_path())
            EspeakWrapper.set_data_path(espeakng_loader.get_data_path())
        self.separator = Separator(word=WORD, syllable="-", phone="|")
        self.backend = EspeakBackend("en-us", punctuation_marks=Punctuation.default_marks(),
                                     preserve_punctuation=True, with_stress=False, tie=False,
                                     language_switch="keep-flags", words_mismatch="ignore")
        self.version = ".".join(str(v) for v in self.backend.version())

    def __call__(self, text: str) -> list[str]:
        """Symbols of ``text``: each word's phones (a run of word characters stays one symbol), ``_`` between words."""
        line = self.backend.phonemize([text.strip()], separator=self.separator, strip=True, njobs=1)[0]
        symbols: list[str] = []
        for word in line.split(WORD):
            symbols += [s for s in re.findall(r"\w+|[^\w\s]", word) if s != self.separator.phone] + [WORD]
        return symbols[:-1]


class SymbolIds:
    """Text-token ids: ``<pad>``, ``<bos>``, ``<eos>``, then a k2 symbol table's symbols in sorted order."""

    def __init__(self, symbols: list[str] | None, vocab_size: int):
        self.vocab_size = vocab_size
        self.index = None if symbols is None else {s: i for i, s in enumerate([PAD, BOS, EOS, *sorted(symbols)])}
        if self.index is not None and len(self.index) > vocab_size:
            raise CodecError(f"symbol table has {len(self.index)} ids; the model embeds {vocab_size}")

    @classmethod
    def from_k2_file(cls, path: Path, vocab_size: int) -> SymbolIds:
        """A k2 ``SymbolTable`` file (``symbol id`` lines); id 0 is ``<eps>`` when the file names none."""
        table = {}
        for line in Path(path).read_text(encoding="utf-8").splitlines():
            parts = line.split()
            if parts:
                if len(parts) != 2:
                    raise CodecError(f"{path}: expected 'symbol id' lines, got {line!r}")
                table[int(parts[1])] = parts[0]
        table.setdefault(0, "<eps>")
        return cls(list(table.values()), vocab_size)

    def encode(self, symbols: list[str]) -> list[int]:
        """``<bos>`` + ids of ``symbols`` + ``<eos>``; tiny builds hash symbols into the vocabulary."""
        if self.index is None:
            return [1, *fold_symbol_ids(symbols, self.vocab_size, 3), 2]
        unknown = sorted({s for s in symbols if s not in self.index})
        if unknown:
            raise CodecError(f"phoneme symbols {unknown} are not in the checkpoint's symbol table")
        return [self.index[BOS], *(self.index[s] for s in symbols), self.index[EOS]]


def find_files(root: Path) -> tuple[Path, Path]:
    """(USLM.pt, unique_text_tokens.k2symbols) in a hub snapshot, a folder, or beside a checkpoint file."""
    root = Path(root)
    folder = root.parent if root.is_file() else root
    ckpt = root if root.is_file() else next((f / "USLM.pt" for f in (root / "USLM_libritts", root)
                                             if (f / "USLM.pt").is_file()), None)
    if ckpt is None:
        raise WeightsUnavailableError(f"uslm: {root} holds no {CHECKPOINT} (nor USLM.pt)")
    symbols = next((f / "unique_text_tokens.k2symbols" for f in (ckpt.parent, folder)
                    if (f / "unique_text_tokens.k2symbols").is_file()), None)
    if symbols is None:
        raise WeightsUnavailableError(f"uslm: no unique_text_tokens.k2symbols beside {ckpt} (it is {SYMBOLS} "
                                      "in fnlp/USLM)")
    return ckpt, symbols


@register_lm(LMMeta(
    id="uslm", family="uslm", kind="model", tasks=frozenset({"tts"}), sample_rate=16000,
    codec="speechtokenizer@4kbps",
    weights=WeightsSource(uri="hf://fnlp/USLM", revision="main", files=(CHECKPOINT, SYMBOLS)),
    license="not stated by 0nutation/USLM (built on Apache-2.0 lifeiteng/vall-e; SpeechTokenizer Apache-2.0)",
    citation=("X. Zhang, D. Zhang, S. Li, Y. Zhou, X. Qiu: SpeechTokenizer: Unified Speech Tokenizer for Speech "
              "Language Models, ICLR 2024 (arXiv:2308.16692), USLM section"),
    implementation=("codecbench VALL-E (bench/lms/valle_arch.py) matching 0nutation/USLM@b6cbe07 key for key; "
                    "espeak-ng via phonemizer; SpeechTokenizer re-implementation"),
    notes=("USLM_libritts (trained on LibriTTS); revision 'main' (no hub commit readable offline: pin it when "
           "fetched); the prompt transcript and target text are phonemized together, the prompt's 8 codebooks "
           "are the prefix, only new frames are returned; upstream sampling (top-k off, T=1, prefix mode 0); "
           "VALL-E continuation = the TTS task's continuation setting; pretrained path not run here (no weights)")))
class USLM(ValleCodecLM):
    requires = ("phonemizer",)
    extra = "valle"
    sampling = Sampling(stop_on_greedy_eos=True)
    requires_prompt = True

    def build_random(self) -> ValleModel:
        self.phonemizer = EspeakPhonemizer()
        self.symbols = SymbolIds(None, TINY.n_text_tokens)
        return ValleModel(TINY)

    def build_pretrained(self, path: Path | None) -> ValleModel:
        ckpt, symbols = find_files(resolve_weights(self.meta, path))  # type: ignore[arg-type]  # duck-typed meta
        model = model_from_state(read_model_state(ckpt), str(ckpt), n_heads=FULL.n_heads, prefix_mode=FULL.prefix_mode)
        self.phonemizer = EspeakPhonemizer()
        self.symbols = SymbolIds.from_k2_file(symbols, model.cfg.n_text_tokens)
        return model

    def text_ids(self, request: GenerationRequest) -> tuple[torch.Tensor, None]:
        symbols = self.phonemizer(f"{request.prompt_text} {request.text}".strip())
        if not symbols:
            raise CodecError("uslm: nothing to say (empty text)")
        return torch.tensor(self.symbols.encode(symbols)), None
