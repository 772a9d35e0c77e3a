"""VALL-E X (Plachtaa's open reproduction of Zhang et al., 2023): multilingual VALL-E over EnCodec tokens.

Architecture: :mod:`bench.lms.valle_arch` at VALL-E X's size (1024-d, 16 heads, 12 + 12 layers,
2048 text tokens, AR BOS, prefix mode 1) plus its per-token language embeddings (en 0, zh 1, ja 2);
``vallex-checkpoint.pt`` (Plachta/VALL-E-X on the hub) loads key for key from its ``model`` entry,
read without running pickled code. Codes: EnCodec 24 kHz at 6 kbps (``encodec_24khz@6kbps``: 8
codebooks × 1024, 75 Hz), which codes the prompt and decodes the output. Upstream decodes with
Vocos (``charactr/vocos-encodec-24khz``); this wrapper uses EnCodec's own decoder, the codec the
registry scores elsewhere, because the ``vocos`` package imports torchaudio, which cannot be
imported here (so outputs are EnCodec-decoded, slightly below upstream's Vocos quality).

Text, as upstream ``utils/generation.py`` prepares it, for English: ASCII-folded, lower-cased,
abbreviations and numbers spelled out (tacotron rules: years in pairs, ordinals, currency,
decimals), converted to IPA with ``eng_to_ipa`` (CMU dictionary; unknown words kept, marked ``*``),
dark l marked ``ɫ``, ``r``→``ɹ``, ``ʤ``→``dʒ``, ``ʧ``→``tʃ``, a final ``.`` added unless the text
ends in punctuation, spaces written ``_``; then one id per character from the checkpoint
repository's phoneme tokenizer ``utils/g2p/bpe_69.json`` (a ``tokenizers`` BPE file with no merges,
fetched by URL + sha256 from the pinned GitHub commit when it is not beside the checkpoint). The
prompt transcript's ids come first, then the target text's; each id gets its language embedding.
Chinese and Japanese text would need upstream's pypinyin + jieba + cn2an and pyopenjtalk front ends,
which are not implemented: such text is refused. The language is taken as English, not guessed.

Inference settings are upstream's: sampling with top-k off and temperature 1, stop at a sampled
end-of-speech, at 16 frames per text token, or at the request's ``max_duration_s``; a prompt is
optional (without one the voice is the model's own). Only the frames after the prompt are returned.
Task: ``tts`` only, for the reason given in :mod:`bench.lms.uslm` (VALL-E continuation = the TTS
task's continuation setting).

The tiny random build keeps the real vocabularies (2048 text ids, 3 languages, 8 × 1024 codes) at
32-d, 2 heads, 1 + 1 layers, over the tiny random EnCodec; with no BPE file, characters get stable
hashed ids (:func:`~bench.lms.valle_wrapper.fold_symbol_ids`).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import torch

from bench.codecs.base import WeightsSource
from bench.codecs.weights import resolve_weights
from bench.errors import CodecError, WeightsUnavailableError
from bench.lms import register_lm
from bench.lms.base import GenerationRequest, LMMeta, WeightsAsset
from bench.lms.trainer_checkpoint import read_model_state
from bench.lms.valle_arch import ValleConfig, ValleModel, model_from_state
from bench.lms.valle_wrapper import ValleCodecLM, fold_symbol_ids

CHECKPOINT, BPE_FILE = "vallex-checkpoint.pt", "bpe_69.json"
LANGUAGES = ("en", "zh", "ja")
FULL = ValleConfig(d_model=1024, n_heads=16, n_layers=12, n_text_tokens=2048, prepend_bos=True, prefix_mode=1,
                   n_languages=len(LANGUAGES))
TINY = ValleConfig(d_model=32, n_heads=2, n_layers=1, n_text_tokens=2048, prepend_bos=True, prefix_mode=1,
                   n_languages=len(LANGUAGES))
UPSTREAM_COMMIT = "3faaf8ccadb154d63b38070caf518ce9309ea0f4"
BPE_RESERVED = 5
"""Ids 0..4 of the BPE file are its special tokens ([UNK], [CLS], [SEP], [PAD], [MASK])."""


BPE = WeightsAsset("valle-x.bpe_69", "valle-x", WeightsSource(
    uri=f"https://raw.githubusercontent.com/Plachtaa/VALL-E-X/{UPSTREAM_COMMIT}/utils/g2p/{BPE_FILE}",
    sha256="db43a20175019e43b58ae9de4324cbc0e7cc78040baff2617da171479bc301e0"))

# -- English text to IPA --------------------------------------------------------------------------

_ABBREVIATIONS = {
    "mrs": "misess", "mr": "mister", "dr": "doctor", "st": "saint", "co": "company", "jr": "junior",
    "maj": "major", "gen": "general", "drs": "doctors", "rev": "reverend", "lt": "lieutenant",
    "hon": "honorable", "sgt": "sergeant", "capt": "captain", "esq": "esquire", "ltd": "limited",
    "col": "colonel", "ft": "fort",
}
_ABBREVIATION = re.compile(r"\b(" + "|".join(_ABBREVIATIONS) + r")\.", re.IGNORECASE)
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]")
_FINAL_PUNCTUATION = ".,!?-…~"


def _money(amount: str, unit: str, sub_unit: str) -> str:
    parts = amount.split(".")
    if len(parts) > 2:
        return f"{amount} {unit}s"
    major, minor = int(parts[0] or 0), int(parts[1]) if len(parts) > 1 and parts[1] else 0
    words = [f"{n} {u if n == 1 else u + 's'}" for n, u in ((major, unit), (minor, sub_unit)) if n]
    return ", ".join(words) or f"zero {unit}s"


def spell_numbers(text: str) -> str:
    """Numbers as words the way the model's training text had them (years read in pairs)."""
    import inflect

    engine = inflect.engine()

    def integer(m: re.Match[str]) -> str:
        n = int(m.group(0))
        if not 1000 < n < 3000:
            return engine.number_to_words(n, andword="")
        if n == 2000 or 2000 < n < 2010:
            return "two thousand" + (f" {engine.number_to_words(n % 100)}" if n % 100 else "")
        if n % 100 == 0:
            return f"{engine.number_to_words(n // 100)} hundred"
        return engine.number_to_words(n, andword="", zero="oh", group=2).replace(", ", " ")

    text = re.sub(r"([0-9][0-9,]+[0-9])", lambda m: m.group(1).replace(",", ""), text)
    text = re.sub(r"£([0-9,]*[0-9]+)", r"\1 pounds", text)
    text = re.sub(r"\$([0-9.,]*[0-9]+)", lambda m: _money(m.group(1).replace(",", ""), "dollar", "cent"), text)
    text = re.sub(r"([0-9]+\.[0-9]+)", lambda m: m.group(1).replace(".", " point "), text)
    text = re.sub(r"[0-9]+(st|nd|rd|th)", lambda m: engine.number_to_words(m.group(0)), text)
    return re.sub(r"[0-9]+", integer, text)


def english_ipa(text: str) -> str:
    """VALL-E X's English phoneme string (spaces kept; see the module docstring for the steps)."""
    import eng_to_ipa
    from unidecode import unidecode

    text = _ABBREVIATION.sub(lambda m: _ABBREVIATIONS[m.group(1).lower()], unidecode(text).lower())
    ipa = re.sub(r"\s+", " ", eng_to_ipa.convert(spell_numbers(text)))
    ipa = re.sub(r"l([^aeiouæɑɔəɛɪʊ ]*(?: |$))", r"ɫ\1", ipa)  # an l with no vowel after it in its word is dark
    ipa = ipa.replace("r", "ɹ").replace("ʤ", "dʒ").replace("ʧ", "tʃ").replace("...", "…").rstrip()
    return ipa if not ipa or ipa[-1] in _FINAL_PUNCTUATION else ipa + "."


class PhonemeIds:
    """One id per phoneme character: the checkpoint's BPE file, or hashed ids in a tiny build."""

    def __init__(self, bpe_file: Path | None, vocab_size: int):
        self.vocab_size = vocab_size
        self.tokenizer = None
        if bpe_file is not None:
            from tokenizers import Tokenizer

            self.tokenizer = Tokenizer.from_file(str(bpe_file))
            if self.tokenizer.get_vocab_size() > vocab_size:
                raise CodecError(f"{bpe_file}: {self.tokenizer.get_vocab_size()} tokens; the model embeds {vocab_size}")

    def __call__(self, text: str) -> list[int]:
        """Ids of English ``text``; empty text gives none."""
        if not text.strip():
            return []
        if _CJK.search(text):
            raise CodecError("valle-x here reads English only (Chinese needs pypinyin + jieba + cn2an, Japanese "
                             "pyopenjtalk, as upstream's G2P does)")
        phonemes = english_ipa(text).replace(" ", "_")
        if self.tokenizer is None:
            return fold_symbol_ids(list(phonemes), self.vocab_size, BPE_RESERVED)
        ids = self.tokenizer.encode(phonemes).ids
        if len(ids) != len(phonemes):
            raise CodecError(f"the BPE file merged phonemes of {phonemes!r}: one language id per token is undefined")
        return ids


def find_files(root: Path) -> tuple[Path, Path | None]:
    """(vallex-checkpoint.pt, bpe_69.json if it lies beside it) in a hub snapshot, a folder, or a file's folder."""
    root = Path(root)
    ckpt = root if root.is_file() else root / CHECKPOINT
    if not ckpt.is_file():
        raise WeightsUnavailableError(f"valle-x: {root} holds no {CHECKPOINT}")
    bpe = next((f / BPE_FILE for f in (ckpt.parent, ckpt.parent / "utils" / "g2p") if (f / BPE_FILE).is_file()), None)
    return ckpt, bpe


@register_lm(LMMeta(
    id="valle-x", family="valle", kind="model", tasks=frozenset({"tts"}), sample_rate=24000,
    codec="encodec_24khz@6kbps",
    weights=WeightsSource(uri="hf://Plachta/VALL-E-X", revision="main", files=(CHECKPOINT,)),
    license="MIT (Plachtaa/VALL-E-X code and released weights); EnCodec weights CC-BY-NC-4.0",
    citation=("Z. Zhang et al., Speak Foreign Languages with Your Own Voice: Cross-Lingual Neural Codec Language "
              "Modeling (VALL-E X, arXiv:2303.03926); open reproduction github.com/Plachtaa/VALL-E-X"),
    implementation=(f"codecbench VALL-E (bench/lms/valle_arch.py) matching Plachtaa/VALL-E-X@{UPSTREAM_COMMIT[:7]} "
                    "key for key; eng_to_ipa G2P + bpe_69.json; EnCodec decoder (transformers) instead of Vocos"),
    notes=("English only (zh/ja front ends not implemented); prompt transcript then target text, both 'en'; "
           "revision 'main' (no hub commit readable offline: pin it when fetched); bpe_69.json by URL + sha256 "
           f"from GitHub commit {UPSTREAM_COMMIT[:7]}; upstream sampling (top-k off, T=1, prefix mode 1); "
           "decoded by EnCodec, not Vocos; pretrained path not run here (no weights)")))
class VallEX(ValleCodecLM):
    requires = ("eng_to_ipa", "inflect", "unidecode", "tokenizers", "transformers")
    extra = "valle"

    def build_random(self) -> ValleModel:
        self.phonemes = PhonemeIds(None, TINY.n_text_tokens)
        return ValleModel(TINY)

    def weight_sources(self) -> list[Any]:
        return [*super().weight_sources(), BPE]

    def build_pretrained(self, path: Path | None) -> ValleModel:
        ckpt, bpe = find_files(resolve_weights(self.meta, path))  # type: ignore[arg-type]  # duck-typed meta
        if bpe is None:
            bpe = resolve_weights(BPE)  # type: ignore[arg-type]  # duck-typed meta
        model = model_from_state(read_model_state(ckpt), str(ckpt), n_heads=FULL.n_heads, prefix_mode=FULL.prefix_mode)
        self.phonemes = PhonemeIds(bpe, model.cfg.n_text_tokens)
        return model

    def text_ids(self, request: GenerationRequest) -> tuple[torch.Tensor, torch.Tensor]:
        prompt, target = self.phonemes(request.prompt_text), self.phonemes(request.text)
        if not target:
            raise CodecError("valle-x: nothing to say (empty text)")
        english = LANGUAGES.index("en")
        return torch.tensor(prompt + target), torch.full((len(prompt) + len(target),), english)
