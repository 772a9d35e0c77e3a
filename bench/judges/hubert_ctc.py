"""HuBERT-Large fine-tuned on LibriSpeech 960 h with CTC (transformers ``HubertForCTC``).

The judge used by VALL-E and many codec papers for WER. Greedy CTC decoding over the model's
character vocabulary. The model can also be injected (``HubertCTCJudge.from_model``) so tests
drive the real code path with a tiny random model.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from bench.judges import ASRJudge, JudgeInfo, hf_weights_status, judge_class

REPO = "facebook/hubert-large-ls960-ft"


@judge_class
class HubertCTCJudge(ASRJudge):
    info = JudgeInfo(
        id="hubert-large-ctc",
        kind="asr",
        revision="main",
        sample_rate=16000,
        model=f"hf://{REPO}",
        implementation="transformers HubertForCTC + Wav2Vec2Processor, greedy CTC (argmax, collapse, drop blank)",
        requires=("transformers", "torch"),
        install="pip install transformers; weights from the Hugging Face hub (HF_HOME)",
        normaliser="whisper_english",
        description="HuBERT-Large CTC on LibriSpeech 960 h",
    )

    @classmethod
    def from_model(cls, model, vocab: dict[str, int], judge_id: str, revision: str) -> HubertCTCJudge:
        """A judge around an already built model (tests, local fine-tunes); ``vocab`` maps token → id."""
        judge = cls()
        judge.info = replace(cls.info, id=judge_id, revision=revision, model="in-memory")
        judge._model = model.eval()
        judge._id_to_token = {i: t for t, i in vocab.items()}
        judge._loaded = True
        return judge

    def availability(self) -> tuple[bool, str]:
        ok, why = super().availability()
        return (ok, why) if not ok or self.info.model == "in-memory" else hf_weights_status(REPO, self.info.revision)

    def load(self, device: str) -> None:
        from transformers import HubertForCTC, Wav2Vec2Processor

        self._processor = Wav2Vec2Processor.from_pretrained(REPO, revision=self.info.revision)
        self._model = HubertForCTC.from_pretrained(REPO, revision=self.info.revision).eval().to(device)
        vocab = self._processor.tokenizer.get_vocab()
        self._id_to_token = {i: t for t, i in vocab.items()}

    def transcribe(self, waves: Sequence[np.ndarray]) -> list[str]:
        import torch

        self.ensure_loaded(self.device)
        cfg = self._model.config
        blank = cfg.pad_token_id
        out = []
        for wave in waves:  # one at a time: padding would change the un-masked group-norm model
            x = torch.from_numpy(np.asarray(wave, dtype=np.float32))[None]
            x = (x - x.mean()) / (x.std() + 1e-7)  # the processor's do_normalize=True
            with torch.inference_mode():
                ids = self._model(x.to(self._model.device)).logits.argmax(-1)[0].tolist()
            chars, prev = [], None
            for i in ids:
                if i != prev and i != blank:
                    chars.append(self._id_to_token.get(i, ""))
                prev = i
            text = "".join(c for c in chars if not (c.startswith("<") and c.endswith(">")))
            out.append(" ".join(text.replace("|", " ").split()).lower())
        return out
