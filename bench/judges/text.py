"""Text normalisation and word-error counting shared by every ASR judge and the text probe.

``whisper_english`` is Whisper's English normaliser (spelling standardisation, number words,
contractions, punctuation): taken from ``openai-whisper`` when installed, else from the
``whisper-normalizer`` package, which carries the same normaliser as a standalone module. Which
one ran is recorded in :func:`normaliser_provenance`. ``basic`` (lower case, letters, digits and
apostrophes only) is what the character probe's vocabulary can express.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass


@functools.cache
def _whisper_english() -> tuple[Callable[[str], str], str]:
    try:
        from whisper.normalizers import EnglishTextNormalizer  # openai-whisper

        source = "openai-whisper"
    except ImportError:
        try:
            from whisper_normalizer.english import EnglishTextNormalizer

            source = "whisper-normalizer"
        except ImportError as exc:
            raise RuntimeError("the whisper_english normaliser needs `pip install whisper-normalizer` "
                               "(or openai-whisper)") from exc
    from importlib.metadata import version

    return EnglishTextNormalizer(), f"{source}=={version(source)}"


_NON_WORD = re.compile(r"[^a-z0-9' ]+")


def basic(text: str) -> str:
    """Lower case; anything but letters, digits, apostrophes becomes a space; spaces collapsed."""
    return " ".join(_NON_WORD.sub(" ", text.lower().replace("’", "'")).split())


def normalise(text: str, normaliser: str) -> str:
    """Apply a named normaliser; unknown names raise (a silent default would change numbers)."""
    if normaliser == "whisper_english":
        return " ".join(_whisper_english()[0](text).split())
    if normaliser == "basic":
        return basic(text)
    raise ValueError(f"unknown text normaliser {normaliser!r} (known: whisper_english, basic)")


def normaliser_provenance(normaliser: str) -> str:
    """Which package implements the normaliser here, with its version."""
    return _whisper_english()[1] if normaliser == "whisper_english" else "bench.judges.text.basic"


@dataclass(frozen=True)
class WordErrors:
    """Edit-distance counts of one hypothesis against one reference (both normalised)."""

    substitutions: int
    deletions: int
    insertions: int
    ref_words: int

    @property
    def errors(self) -> int:
        return self.substitutions + self.deletions + self.insertions

    @property
    def wer(self) -> float:
        """Per-utterance WER; an empty reference gives 0 with no errors and inf otherwise."""
        if self.ref_words == 0:
            return 0.0 if self.errors == 0 else float("inf")
        return self.errors / self.ref_words


def word_errors(reference: str, hypothesis: str) -> WordErrors:
    """Levenshtein alignment over words (jiwer), on already-normalised strings."""
    ref_words = reference.split()
    hyp_words = hypothesis.split()
    if not ref_words:
        return WordErrors(0, 0, len(hyp_words), 0)
    if not hyp_words:
        return WordErrors(0, len(ref_words), 0, len(ref_words))
    import jiwer

    out = jiwer.process_words(" ".join(ref_words), " ".join(hyp_words))
    return WordErrors(out.substitutions, out.deletions, out.insertions, len(ref_words))
