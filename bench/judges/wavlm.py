"""WavLM-Base-Plus speaker verification (transformers ``WavLMForXVector``): an online speaker judge.

``microsoft/wavlm-base-plus-sv`` fine-tuned on VoxCeleb1 with an x-vector head; the embedding
is the model's ``embeddings`` output. The WavLM-Large + ECAPA-TDNN model of the SpeechTokenizer
paper (UniSpeech ``wavlm_large_finetune.pth``) is not loadable through transformers: it needs
the UniSpeech/s3prl model code and a checkpoint hosted on Google Drive, so it is not registered.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from bench.judges import JudgeInfo, SpeakerJudge, hf_weights_status, judge_class

REPO = "microsoft/wavlm-base-plus-sv"


@judge_class
class WavLMXVectorJudge(SpeakerJudge):
    info = JudgeInfo(
        id="wavlm-base-plus-sv",
        kind="speaker",
        revision="main",
        sample_rate=16000,
        model=f"hf://{REPO}",
        implementation="transformers WavLMForXVector(...).embeddings after Wav2Vec2FeatureExtractor "
                       "(zero-mean unit-variance input)",
        requires=("transformers", "torch"),
        install="pip install transformers; weights from the Hugging Face hub (HF_HOME)",
        description="WavLM-Base-Plus x-vector speaker verification",
    )

    @classmethod
    def from_model(cls, model, judge_id: str, revision: str) -> WavLMXVectorJudge:
        """A judge around an already built ``WavLMForXVector`` (tests, local models)."""
        judge = cls()
        judge.info = replace(cls.info, id=judge_id, revision=revision, model="in-memory")
        judge._model = model.eval()
        judge._loaded = True
        return judge

    def availability(self) -> tuple[bool, str]:
        ok, why = super().availability()
        return (ok, why) if not ok or self.info.model == "in-memory" else hf_weights_status(REPO, self.info.revision)

    def load(self, device: str) -> None:
        from transformers import WavLMForXVector

        self._model = WavLMForXVector.from_pretrained(REPO, revision=self.info.revision).eval().to(device)

    def embed(self, waves: Sequence[np.ndarray]) -> list[np.ndarray]:
        import torch

        self.ensure_loaded(self.device)
        out = []
        for wave in waves:
            x = torch.from_numpy(np.asarray(wave, dtype=np.float32))[None]
            x = (x - x.mean()) / torch.sqrt(x.var() + 1e-7)
            with torch.inference_mode():
                emb = self._model(x.to(self._model.device)).embeddings[0]
            out.append(emb.double().cpu().numpy())
        return out
