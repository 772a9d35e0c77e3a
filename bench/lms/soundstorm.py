"""SoundStorm (Borsos et al., 2023) through lucidrains' soundstorm-pytorch, for the user's own checkpoints.

SoundStorm only turns semantic tokens into SoundStream codes (masked parallel decoding, coarse
to fine over the RVQ levels); it does not invent what comes next. Speech continuation therefore
runs the pipeline of the paper, where SoundStorm replaces AudioLM's acoustic stages: the user's
AudioLM SemanticTransformer continues the prompt's semantic tokens, then SoundStorm generates the
codes of prompt + continuation with the prompt's codes given (``prompt_acoustic_token_ids``), the
attached SoundStream decodes them and the prompt is cut off. ``--lm-path soundstorm=FOLDER``::

    FOLDER/
      config.json      {"conformer": {ConformerWrapper kwargs}, "soundstorm": {SoundStorm kwargs},
                        "semantic": {SemanticTransformer kwargs}, "hubert_layer": 9}
      soundstream.pt   SoundStream.save() / SoundStreamTrainer.save()
      soundstorm.pt    SoundStormTrainer.save() (or any {"model": state_dict})
      semantic.pt      SemanticTransformer checkpoint trained on frame-level semantic tokens
      hubert/          transformers HuBERT snapshot + hubert/km.bin, as for ``audiolm``

SoundStorm aligns its conditioning to the codec frames by rate (``wav2vec_downsample_factor`` /
``wav2vec_target_sample_hz``), so the semantic model must produce one token per HuBERT frame: train
it with ``SemanticTransformerWrapper(unique_consecutive=False)``; a model trained on deduplicated
tokens (the trainer's default) cannot be told apart from its weights and would come out
time-compressed. codecbench sets SoundStorm's semantic settings from the HuBERT units
(16 kHz, hop 320, K clusters) and attaches soundstream.pt; ``soundstream.*`` entries in
soundstorm.pt, if any, overwrite it as upstream's ``SoundStorm.load`` does. A ``wav2vec.*`` copy of
the tokenizer in soundstorm.pt is checked against km.bin and not loaded (tokens come from hubert/).

Not offered: "tts" through spear-tts-pytorch's TextToSemantic. Its text tokenizer is a Python
callable given at construction (no file holds it) and a SoundStorm trained with one attached
shares its semantic embedding, so no folder layout rebuilds it faithfully; such checkpoints
(``text_to_semantic.*`` entries) are refused with that reason.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from bench.errors import CodecError, WeightsUnavailableError
from bench.lms import register_lm
from bench.lms.audiolm import (
    PAD_ID,
    SEMANTIC_HOP,
    SEMANTIC_SAMPLE_RATE,
    SOUNDSTREAM_FILES,
    SoundStreamSpeechLM,
    build_transformer,
    load_model_state,
)
from bench.lms.base import Generated, GenerationRequest, LMMeta

ATTACHED_ELSEWHERE = ("soundstream", "wav2vec", "spear_tts_text_to_semantic")
"""SoundStorm kwargs config.json must not set: codecbench attaches (or refuses) these itself."""


@register_lm(LMMeta(
    id="soundstorm", family="soundstorm", kind="model", tasks=frozenset({"continuation"}),
    codec="audiolm-pytorch SoundStream RVQ (user checkpoint) conditioned on HuBERT k-means semantic tokens",
    weights=None, license="MIT (soundstorm-pytorch, audiolm-pytorch); weights: the user's",
    citation="Borsos et al., SoundStorm: Efficient Parallel Audio Generation (arXiv:2305.09636); "
             "implementation: lucidrains/soundstorm-pytorch",
    implementation="soundstorm-pytorch SoundStorm after an audiolm-pytorch SemanticTransformer (optional extra "
                   "'soundstorm') with codecbench's HuBERT k-means units",
    notes="no official weights: --lm-path soundstorm=FOLDER with config.json, soundstream.pt, soundstorm.pt, "
          "semantic.pt (frame-level tokens), hubert/ (+ km.bin); continuation only (no TextToSemantic TTS)",
    options={"extra": "soundstorm"}))
class SoundStorm(SoundStreamSpeechLM):
    requires = ("soundstorm_pytorch", "audiolm_pytorch")
    extra = "soundstorm"
    files = SOUNDSTREAM_FILES + (
        (("soundstorm.pt",), "SoundStorm checkpoint"),
        (("semantic.pt",), "SemanticTransformer checkpoint (frame-level tokens)"),
    )
    sections = ("conformer", "soundstorm", "semantic")

    def build(self, folder: Path, config: dict[str, Any]) -> None:
        import audiolm_pytorch as alm
        import soundstorm_pytorch as ss

        semantic = build_transformer(alm.SemanticTransformer, config["semantic"], folder / "semantic.pt")
        self.check_vocabulary(int(semantic.num_semantic_tokens))
        self.semantic = alm.SemanticTransformerWrapper(transformer=semantic, wav2vec=None, unique_consecutive=False)
        self.semantic = self.semantic.eval().to(self.device)
        net = ss.ConformerWrapper(**config["conformer"])
        self.model = ss.SoundStorm(net, soundstream=self.codec, **self.soundstorm_kwargs(config["soundstorm"]))
        self.load_soundstorm_state(folder / "soundstorm.pt")
        self.model = self.model.eval().to(self.device)

    def soundstorm_kwargs(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        """config.json's SoundStorm kwargs plus the semantic settings the HuBERT units fix."""
        attached = sorted(set(kwargs) & set(ATTACHED_ELSEWHERE))
        if attached:
            raise WeightsUnavailableError(f"{self.meta.id}: config.json 'soundstorm' sets {', '.join(attached)}; "
                                          "codecbench attaches soundstream.pt and the HuBERT units itself")
        fixed = {"wav2vec_target_sample_hz": SEMANTIC_SAMPLE_RATE, "wav2vec_downsample_factor": SEMANTIC_HOP,
                 "num_semantic_token_ids": int(self.units.centroids.shape[0])}
        differs = [f"{k}={kwargs[k]!r} (the HuBERT units give {v!r})" for k, v in fixed.items()
                   if k in kwargs and kwargs[k] != v]
        if differs:
            raise WeightsUnavailableError(f"{self.meta.id}: config.json 'soundstorm': {'; '.join(differs)}")
        return {**kwargs, **fixed}

    def load_soundstorm_state(self, path: Path) -> None:
        """Upstream's strict load, except that the attached SoundStream may be absent from the file."""
        state = load_model_state(path)
        if any(k.startswith("text_to_semantic.") for k in state):
            raise WeightsUnavailableError(f"{path}: trained with a spear-tts TextToSemantic attached, which "
                                          "codecbench cannot rebuild (its tokenizer is code, not a file)")
        centers = state.get("wav2vec.cluster_centers")
        if centers is not None and not torch.equal(centers.float().cpu(), self.units.centroids.cpu()):
            raise WeightsUnavailableError(f"{path}: its wav2vec k-means centroids differ from hubert/km.bin")
        state = {k: v for k, v in state.items() if not k.startswith("wav2vec.")}
        result = self.model.load_state_dict(state, strict=False)
        missing = [k for k in result.missing_keys if not k.startswith("soundstream.")]
        if missing or result.unexpected_keys:
            raise WeightsUnavailableError(f"{path}: does not match config.json (missing {missing[:5]}, "
                                          f"unexpected {list(result.unexpected_keys)[:5]})")

    def generate(self, request: GenerationRequest) -> Generated:
        semantic_prime, prompt_codes = self.prompt_tokens(request)
        primed = semantic_prime.shape[1]
        covered = primed * SEMANTIC_HOP * self.sample_rate // (SEMANTIC_SAMPLE_RATE * self.hop)
        prompt_frames = min(prompt_codes.shape[1], covered)  # codec frames the prompt's semantic tokens span
        _, new_semantic = self.new_frames(request)
        torch.manual_seed(request.seed)
        semantic = self.semantic.generate(prime_ids=semantic_prime, max_length=primed + new_semantic)
        semantic = semantic[:, : int((semantic[0] != PAD_ID).sum())]  # batch of one: pads only trail an EOS
        if semantic.shape[1] <= primed:
            raise CodecError(f"{self.meta.id}: the semantic stage ended at the prompt (no continuation)")
        wave = self.model.generate(cond_semantic_token_ids=semantic,
                                   prompt_acoustic_token_ids=prompt_codes[:, :prompt_frames])
        return self.continuation(wave, prompt_frames, None)
