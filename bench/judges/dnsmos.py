"""DNSMOS P.835 (OVRL) through ``speechmos``: an offline, non-intrusive MOS judge.

The ONNX models (``sig_bak_ovr.onnx``, ``model_v8.onnx``) ship inside the ``speechmos`` wheel.
The score is the overall-quality (OVRL) output, the one codec papers quote as "DNSMOS"; input is
clipped to [-1, 1] (speechmos refuses anything else) at 16 kHz.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version

import numpy as np

from bench.judges import JudgeInfo, MOSJudge, judge_class


def _version() -> str:
    try:
        return version("speechmos")
    except PackageNotFoundError:
        return "0.0.1.1"


@judge_class
class DNSMOSJudge(MOSJudge):
    info = JudgeInfo(
        id="dnsmos-ovrl",
        kind="mos",
        revision=f"speechmos-{_version()}-sig_bak_ovr",
        sample_rate=16000,
        model="package:speechmos (dnsmos_models/sig_bak_ovr.onnx, model_v8.onnx)",
        implementation="speechmos.dnsmos.run(wav, 16000, return_df=False)['ovrl_mos']",
        requires=("speechmos", "onnxruntime", "librosa"),
        install="pip install speechmos",
        offline=True,
        description="DNSMOS P.835 overall quality",
    )

    def load(self, device: str) -> None:
        from speechmos import dnsmos

        self._run = dnsmos.run

    def score(self, waves: Sequence[np.ndarray]) -> list[float]:
        self.ensure_loaded()
        return [float(self._run(np.clip(np.asarray(w, dtype=np.float32), -1.0, 1.0), self.info.sample_rate,
                                return_df=False)["ovrl_mos"]) for w in waves]
