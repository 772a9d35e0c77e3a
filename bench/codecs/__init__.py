"""Codec registry: op-point id → :class:`OpPoint`. Families register themselves on import."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from bench.codecs.base import Codec, CodecMeta
from bench.registry import Registry

BUILTIN_FAMILIES = (
    "bench.codecs.opus",
    "bench.codecs.mp3",
    "bench.codecs.aac",
    "bench.codecs.amrnb",
    "bench.codecs.g722",
    "bench.codecs.g711",
    "bench.codecs.codec2",
    "bench.codecs.lc3",
    "bench.codecs.lyra",
    "bench.codecs.soundstream_audiolm",
    "bench.codecs.audiodec",
    "bench.codecs.hificodec",
    "bench.codecs.speechtokenizer",
    "bench.codecs.hubert_units",
    "bench.codecs.funcodec",
    "bench.codecs.encodec",
    "bench.codecs.dac",
    "bench.codecs.mimi",
    "bench.codecs.xcodec",
    "bench.codecs.xcodec2",
    "bench.codecs.neucodec",
    "bench.codecs.snac",
)


@dataclass(frozen=True)
class OpPoint:
    """A registered operating point: metadata now, the implementation built on demand."""

    meta: CodecMeta
    factory: Callable[[CodecMeta], Codec]

    def build(self) -> Codec:
        return self.factory(self.meta)


codecs: Registry[OpPoint] = Registry("codec", "codecbench.codecs", BUILTIN_FAMILIES)


def register_codec(*metas: CodecMeta) -> Callable[[type[Codec]], type[Codec]]:
    """Class decorator: register one op-point per metadata record, built as ``cls(meta)``."""

    def add(cls: type[Codec]) -> type[Codec]:
        for meta in metas:
            codecs.register(meta.id, OpPoint(meta, cls))
        return cls

    return add


def get_codec(name: str) -> Codec:
    return codecs.get(name).build()
