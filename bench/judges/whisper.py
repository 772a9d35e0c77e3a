"""Whisper large-v3 and medium.en through openai-whisper: the standard online ASR judges.

openai-whisper is not a codecbench dependency (it pulls triton, ~1 GB): ``availability`` says
what to install. Checkpoints are the official ``.pt`` files whose sha256 is part of their URL,
so the sha256 is the revision; ``WHISPER_CACHE`` / ``~/.cache/whisper`` hold them. Decoding is
greedy (temperature 0, no fallback), English, without timestamps — the usual WER setting.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from bench.judges import ASRJudge, JudgeInfo, register_judge

CHECKPOINTS = {
    "large-v3": "e5b1a55b89c1367dacf97e3e19bfd829a01529dbfdeefa8caeb59b3f1b81dadb",
    "medium.en": "d7440d1dc186f76616474e0ff0b3b6b879abc9d1a4926b7adfa41db2d497ab4f",
}


class WhisperJudge(ASRJudge):
    batch_size = 1

    def __init__(self, name: str):
        super().__init__()
        self.name = name
        sha = CHECKPOINTS[name]
        self.info = JudgeInfo(
            id=f"whisper-{name}",
            kind="asr",
            revision=sha[:12],
            sample_rate=16000,
            model=f"https://openaipublic.azureedge.net/main/whisper/models/{sha}/{name}.pt",
            implementation="whisper.load_model(name).transcribe(audio, language='en', temperature=0, "
                           "condition_on_previous_text=False, without_timestamps=True)",
            requires=("whisper",),
            install="pip install openai-whisper (pulls triton, ~1 GB); weights download on first use",
            normaliser="whisper_english",
            description=f"OpenAI Whisper {name}",
        )

    def load(self, device: str) -> None:
        import whisper

        root = os.environ.get("WHISPER_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "whisper")
        self._model = whisper.load_model(self.name, device=device, download_root=root)

    def transcribe(self, waves: Sequence[np.ndarray]) -> list[str]:
        self.ensure_loaded(self.device)
        out = []
        for wave in waves:
            res = self._model.transcribe(np.asarray(wave, dtype=np.float32), language="en", temperature=0.0,
                                         condition_on_previous_text=False, without_timestamps=True,
                                         fp16=self.device != "cpu")
            out.append(str(res["text"]).strip())
        return out


for _name in CHECKPOINTS:
    register_judge(WhisperJudge(_name))
