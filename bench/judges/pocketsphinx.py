"""PocketSphinx 5 with its bundled US-English acoustic model, LM and dictionary: an offline ASR judge.

Far less accurate than Whisper, but it ships inside the wheel, so the embedded CPU run produces
real WER numbers without a download. Its revision is the package version (the model is the
package's). Decoding is per utterance, with the default (continuous LM) search.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version

import numpy as np

from bench.judges import ASRJudge, JudgeInfo, judge_class


def _version() -> str:
    try:
        return version("pocketsphinx")
    except PackageNotFoundError:
        return "5.1.1"


@judge_class
class PocketSphinxJudge(ASRJudge):
    info = JudgeInfo(
        id="pocketsphinx",
        kind="asr",
        revision=_version(),
        sample_rate=16000,
        model="package:pocketsphinx (en-us acoustic model, en-us.lm.bin, cmudict-en-us.dict)",
        implementation="pocketsphinx.Decoder(samprate=16000), process_raw(int16, full_utt=True)",
        requires=("pocketsphinx",),
        install="pip install pocketsphinx",
        normaliser="whisper_english",
        offline=True,
        description="offline CMU Sphinx ASR; weak but packaged",
    )

    def load(self, device: str) -> None:
        from pocketsphinx import Decoder

        self._decoder = Decoder(samprate=self.info.sample_rate, loglevel="FATAL")

    def transcribe(self, waves: Sequence[np.ndarray]) -> list[str]:
        self.ensure_loaded()
        out = []
        for wave in waves:
            pcm = (np.clip(wave, -1.0, 1.0) * 32767.0).round().astype("<i2").tobytes()
            self._decoder.start_utt()
            self._decoder.process_raw(pcm, full_utt=True)
            self._decoder.end_utt()
            hyp = self._decoder.hyp()
            out.append(hyp.hypstr if hyp is not None else "")
        return out
