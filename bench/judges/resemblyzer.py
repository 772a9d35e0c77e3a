"""Resemblyzer's GE2E speaker encoder (256-d d-vectors): an offline speaker judge.

The pretrained weights ship inside the ``resemblyzer`` wheel, so the embedded run gets real SIM
numbers without a download. Its voice-activity trimming needs ``webrtcvad`` (install
``webrtcvad-wheels``, the maintained binary build). Audio is resampled by codecbench (soxr) to
16 kHz and handed over with ``source_sr=16000``, so resemblyzer's own resampler is not used.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version

import numpy as np

from bench.judges import JudgeInfo, SpeakerJudge, judge_class


def _version() -> str:
    try:
        return version("resemblyzer")
    except PackageNotFoundError:
        return "0.1.4"


@judge_class
class ResemblyzerJudge(SpeakerJudge):
    info = JudgeInfo(
        id="resemblyzer",
        kind="speaker",
        revision=_version(),
        sample_rate=16000,
        model="package:resemblyzer (pretrained.pt, GE2E LSTM)",
        implementation="VoiceEncoder('cpu').embed_utterance(preprocess_wav(wav, source_sr=16000))",
        requires=("resemblyzer", "webrtcvad"),
        install="pip install resemblyzer webrtcvad-wheels",
        offline=True,
        description="GE2E d-vector speaker encoder shipped with resemblyzer",
    )

    def load(self, device: str) -> None:
        from resemblyzer import VoiceEncoder

        self._encoder = VoiceEncoder(device="cpu", verbose=False)

    def embed(self, waves: Sequence[np.ndarray]) -> list[np.ndarray]:
        from resemblyzer import preprocess_wav

        self.ensure_loaded()
        out = []
        for wave in waves:
            wav = preprocess_wav(np.asarray(wave, dtype=np.float32), source_sr=self.info.sample_rate)
            if wav.size < self.info.sample_rate // 10:  # VAD removed (nearly) everything: embed as is
                wav = np.asarray(wave, dtype=np.float32)
            out.append(np.asarray(self._encoder.embed_utterance(wav), dtype=np.float64))
        return out
