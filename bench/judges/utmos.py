"""UTMOS22 strong learner (the SpeechMOS packaging of the VoiceMOS 2022 winner): an online MOS judge.

Loaded through ``torch.hub`` from ``tarepan/SpeechMOS`` at the pinned tag, which downloads the
model code and the weights on first use (hub cache: ``TORCH_HOME``). Not available offline; no
weights are on this machine.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from bench.judges import JudgeInfo, MOSJudge, judge_class

HUB_REPO = "tarepan/SpeechMOS:v1.2.0"


@judge_class
class UTMOSJudge(MOSJudge):
    info = JudgeInfo(
        id="utmos22-strong",
        kind="mos",
        revision="v1.2.0",
        sample_rate=16000,
        model=f"torch.hub:{HUB_REPO} utmos22_strong",
        implementation="torch.hub.load('tarepan/SpeechMOS:v1.2.0', 'utmos22_strong', trust_repo=True)(wav, 16000)",
        requires=("torch",),
        install="network access on first use (torch.hub downloads code and weights)",
        description="UTMOS22 strong learner",
    )

    def availability(self) -> tuple[bool, str]:
        import os

        import torch

        ok, why = super().availability()
        if not ok:
            return ok, why
        hub = torch.hub.get_dir()
        if not any(d.startswith("tarepan_SpeechMOS") for d in (os.listdir(hub) if os.path.isdir(hub) else [])):
            return False, (f"UTMOS is fetched by torch.hub ({HUB_REPO}) into {hub}: run once with network access")
        return True, ""

    def load(self, device: str) -> None:
        import torch

        self._model = torch.hub.load(HUB_REPO, "utmos22_strong", trust_repo=True).eval().to(device)

    def score(self, waves: Sequence[np.ndarray]) -> list[float]:
        import torch

        self.ensure_loaded(self.device)
        out = []
        for wave in waves:
            x = torch.from_numpy(np.asarray(wave, dtype=np.float32))[None]
            with torch.inference_mode():
                out.append(float(self._model(x, self.info.sample_rate)[0]))
        return out
