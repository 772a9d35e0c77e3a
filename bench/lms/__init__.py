"""Codec language models: one registry and one ``generate`` interface for every codec-LM of the survey.

A codec-LM row either loads its model (kind ``"model"``: MusicGen, CSM, Moshi through transformers)
or scores a folder of audio its authors or a user generated (kind ``"outputs"``: VALL-E, MusicLM,
AudioPaLM, ... whose weights are not public), so every model the survey discusses can be listed
and scored against the same task lists and judges. Built-in rows live in one module per family;
third parties add providers through the ``codecbench.lms`` entry-point group.
"""

from __future__ import annotations

from bench.lms.base import CodecLM, Generated, GenerationRequest, LMEntry, LMMeta, LMTask
from bench.registry import Registry

BUILTIN_LMS = (
    "bench.lms.musicgen",
    "bench.lms.csm",
    "bench.lms.moshi",
    "bench.lms.bark",
    "bench.lms.dia",
    "bench.lms.audiogen",
    "bench.lms.uslm",
    "bench.lms.vallex",
    "bench.lms.audiolm",
    "bench.lms.soundstorm",
    "bench.lms.outputs",
)

lms: Registry[LMEntry] = Registry("codec-LM", "codecbench.lms", BUILTIN_LMS)


def register_lm(*metas: LMMeta):
    """Class decorator: one registry entry per metadata row, built by the decorated class."""

    def add(cls: type[CodecLM]) -> type[CodecLM]:
        for meta in metas:
            lms.register(meta.id, LMEntry(meta, cls))
        return cls

    return add


__all__ = ["CodecLM", "GenerationRequest", "Generated", "LMEntry", "LMMeta", "LMTask", "lms", "register_lm"]
