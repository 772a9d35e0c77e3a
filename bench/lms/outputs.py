"""Codec-LMs without public weights: score a folder of audio they generated.

VALL-E, MusicLM, AudioPaLM and the others below cannot be run here, but their authors (or a user
with access) can generate the task's list and drop the files in a folder; this adapter serves those
files through the same ``generate`` call, so the same judges score them next to the loadable models.

Folder convention (pass it with ``--lm-path ID=FOLDER``):

* ``<item_id>_<seed>.wav`` for each list entry and seed (seed = 0, 1, ... n_seeds-1); or
* ``<item_id>.wav`` when only one generation exists (served for seed 0 only).

``item_id`` is the id of the task's list entry (for zero-shot TTS, the target utterance id plus the
setting, e.g. ``1089-134686-0000.cross``; see ``tasks/zero_shot_tts.py``; for ``continuation``, the
utterance id, the file holding the continuation only, without the prompt; see ``tasks/continuation.py``).
Any format soundfile reads (.wav, .flac) is accepted. A missing file fails that cell with the expected file names, never silently.
"""

from __future__ import annotations

from pathlib import Path

import torch

from bench.audio import load_audio
from bench.errors import CodecError
from bench.lms import register_lm
from bench.lms.base import CodecLM, Generated, GenerationRequest, LMMeta, to_mono

AUDIO_EXTENSIONS = (".wav", ".flac")


def _row(id: str, family: str, tasks: set[str], codec: str, citation: str, notes: str = "") -> LMMeta:
    return LMMeta(id=id, family=family, kind="outputs", tasks=frozenset(tasks), codec=codec, citation=citation,
                  implementation="generated-folder adapter (bench.lms.outputs)",
                  notes=notes or "no public weights: scores a folder of generated audio")


ROWS = (
    _row("valle", "valle", {"tts", "continuation"}, "encodec_24khz@6kbps",
         "Wang et al., Neural Codec Language Models are Zero-Shot Text to Speech Synthesizers (arXiv:2301.02111)"),
    _row("musiclm", "musiclm", {"text_to_music"}, "SoundStream 24 kHz + w2v-BERT + MuLan tokens",
         "Agostinelli et al., MusicLM: Generating Music From Text (arXiv:2301.11325)"),
    _row("viola", "viola", {"tts", "continuation"}, "encodec_24khz@6kbps",
         "Wang et al., VioLA: Unified Codec Language Models for Speech Recognition, Synthesis, and Translation "
         "(arXiv:2305.16107)"),
    _row("audiopalm", "audiopalm", {"tts", "continuation"}, "USM/w2v-BERT k-means tokens + SoundStorm/AudioLM decoder",
         "Rubenstein et al., AudioPaLM: A Large Language Model That Can Speak and Listen (arXiv:2306.12925)"),
    _row("speechx", "speechx", {"tts", "continuation"}, "encodec_24khz@6kbps",
         "Wang et al., SpeechX: Neural Codec Language Model as a Versatile Speech Transformer (arXiv:2308.06873)"),
    _row("lauragpt", "lauragpt", {"tts"}, "funcodec (improved EnCodec)",
         "Chen et al., LauraGPT: Listen, Attend, Understand, and Regenerate Audio with GPT (arXiv:2310.04673)"),
    _row("uniaudio", "uniaudio", {"tts", "continuation", "text_to_music", "text_to_audio"}, "UniAudio codec (16 kHz)",
         "Yang et al., UniAudio: An Audio Foundation Model Toward Universal Audio Generation (arXiv:2310.00704)",
         ("its release (github yangdongchao/UniAudio, hf Dongchao/UniAudio) runs only inside its own repository: a "
         "multi-scale transformer over seven tokenizers, incl. its own 16 kHz codec, a HuBERT k-means semantic "
         "tokenizer and a lexicon-based phone tokenizer; not ported here, so it is scored from its generated audio")),
)


@register_lm(*ROWS)
class GeneratedFolder(CodecLM):
    """Serves ``<folder>/<item_id>_<seed>.wav`` (or ``<item_id>.wav`` for seed 0) as the model's output."""

    def load(self, device: str | torch.device = "cpu", path: Path | None = None, random_init: bool = False) -> None:
        if path is None:
            raise CodecError(f"{self.meta.id} has no public weights: pass --lm-path {self.meta.id}=FOLDER "
                             "holding <item_id>_<seed>.wav files generated for the task's list")
        self.folder = Path(path)
        if not self.folder.is_dir():
            raise CodecError(f"{self.meta.id}: {self.folder} is not a folder of generated audio")
        self.loaded = True

    def candidates(self, item_id: str, seed: int) -> list[Path]:
        names = [f"{item_id}_{seed}{ext}" for ext in AUDIO_EXTENSIONS]
        if seed == 0:
            names += [f"{item_id}{ext}" for ext in AUDIO_EXTENSIONS]
        return [self.folder / n for n in names]

    def generate(self, request: GenerationRequest) -> Generated:
        self.check_task(request)
        if not self.loaded:
            raise CodecError(f"{self.meta.id}: call load() first")
        paths = self.candidates(request.item_id, request.seed)
        for p in paths:
            if p.is_file():
                audio = load_audio(p)
                return Generated(to_mono(audio.samples), audio.sample_rate)
        raise CodecError(f"{self.meta.id}: no generated file for {request.item_id} seed {request.seed} in "
                         f"{self.folder} (expected one of {', '.join(p.name for p in paths)})")
