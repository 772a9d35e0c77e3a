"""AudioLM (Borsos et al., 2022) through lucidrains' audiolm-pytorch, for the user's own checkpoints.

No official AudioLM weights exist; audiolm-pytorch users train the SoundStream codec and the three
transformers themselves. ``--lm-path audiolm=FOLDER`` points at a folder holding them::

    FOLDER/
      config.json      {"semantic": {SemanticTransformer kwargs}, "coarse": {CoarseTransformer kwargs},
                        "fine": {FineTransformer kwargs}, "hubert_layer": 9, "unique_consecutive": true}
      soundstream.pt   SoundStream.save() / SoundStreamTrainer.save() (holds its own config)
      semantic.pt      SemanticTransformerTrainer.save() (or any {"model": state_dict})
      coarse.pt        CoarseTransformerTrainer.save()
      fine.pt          FineTransformerTrainer.save()
      hubert/          transformers HuBERT snapshot: config.json + model.safetensors or pytorch_model.bin
                       (facebook/hubert-base-ls960 is the conversion of fairseq's hubert_base_ls960.pt)
      hubert/km.bin    the k-means file the semantic tokens were made with (hubert_base_ls960_L9_km500.bin)

The transformer checkpoints hold no config, hence config.json (plain JSON, never code).
``hubert_layer`` (default 9, upstream ``HubertWithKmeans``' ``output_layer``) and
``unique_consecutive`` (default true, upstream ``AudioLM``'s) are optional. Semantic tokens come from
codecbench's HuBERT k-means units (the same layer features and nearest centroid as upstream's
``HubertWithKmeans``) instead of ``HubertWithKmeans``, which unpickles the fairseq checkpoint and
the joblib k-means file; here neither is unpickled (``bench.codecs.hubert_units``).
Every missing file is named in one error before the package is imported.

Generation ("continuation" only: AudioLM has no text input) runs upstream's three stages with the
prompt as token primes: semantic ids of the prompt (HuBERT) prime the semantic transformer, the
prompt's SoundStream codes prime the coarse and fine transformers, and the codec decodes the whole
sequence; the prompt frames are cut off. ``max_time_steps`` bounds the coarse stage (it counts new
frames after the prime), so the request's duration is honoured instead of ``AudioLM.forward``'s
fixed 512 frames; a stage that ends (EOS) earlier makes a shorter continuation. Upstream builds the
transformers' T5 config (``t5_name``, google/t5-v1_1-base by default) even without text
conditioning: on an offline machine it must be in the Hugging Face cache. audiolm-pytorch imports
torchaudio and fairseq, so it is an optional extra; there is no tiny random build.
"""

from __future__ import annotations

import json
import math
from abc import abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bench.codecs.hubert_units import HOP as SEMANTIC_HOP
from bench.codecs.hubert_units import RECEPTIVE_FIELD as SEMANTIC_RECEPTIVE_FIELD
from bench.codecs.hubert_units import SAMPLE_RATE as SEMANTIC_SAMPLE_RATE
from bench.codecs.hubert_units import HubertUnits, load_hubert, load_kmeans_centroids
from bench.codecs.soundstream_audiolm import (
    build_soundstream,
    import_availability,
    read_soundstream_checkpoint,
)
from bench.codecs.weights import load_state_dict
from bench.errors import CodecError, WeightsUnavailableError
from bench.lms import register_lm
from bench.lms.base import CodecLM, Generated, GenerationRequest, LMMeta, resample

PAD_ID = -1
"""What upstream writes after an end-of-sequence token (``mask_out_after_eos_id``)."""
SEMANTIC_RATE = SEMANTIC_SAMPLE_RATE / SEMANTIC_HOP
DEFAULT_HUBERT_LAYER = 9

FolderEntry = tuple[tuple[str, ...], str]
"""(alternative relative paths, any one of which will do; what the file is)."""

SOUNDSTREAM_FILES: tuple[FolderEntry, ...] = (
    (("config.json",), "constructor kwargs of the transformers (JSON)"),
    (("soundstream.pt",), "audiolm-pytorch SoundStream checkpoint"),
    (("hubert/config.json",), "transformers HuBERT config"),
    (("hubert/model.safetensors", "hubert/pytorch_model.bin"), "transformers HuBERT weights"),
    (("hubert/km.bin",), "k-means file of the semantic tokens"),
)


def check_folder(lm_id: str, folder: Path, entries: Sequence[FolderEntry]) -> Path:
    """The folder, if every listed file is in it; otherwise one error naming each missing file."""
    folder = Path(folder)
    if not folder.is_dir():
        raise WeightsUnavailableError(f"{lm_id}: {folder} is not a folder (pass --lm-path {lm_id}=FOLDER)")
    missing = [f"{' or '.join(names)} ({what})" for names, what in entries
               if not any((folder / n).is_file() for n in names)]
    if missing:
        raise WeightsUnavailableError(f"{lm_id}: {folder} is missing {'; '.join(missing)} "
                                      f"(layout: see bench/lms/{lm_id}.py)")
    return folder


def read_folder_config(lm_id: str, folder: Path, sections: Sequence[str]) -> dict[str, Any]:
    """config.json, with each named section a dict of constructor kwargs."""
    path = folder / "config.json"
    try:
        config = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise WeightsUnavailableError(f"{lm_id}: {path} is not valid JSON ({exc})") from exc
    if not isinstance(config, dict):
        raise WeightsUnavailableError(f"{lm_id}: {path} must hold a JSON object")
    absent = [s for s in sections if not isinstance(config.get(s), dict)]
    if absent:
        raise WeightsUnavailableError(f"{lm_id}: {path} lacks the kwargs object(s) {', '.join(absent)}")
    return config


def load_model_state(path: Path) -> dict[str, torch.Tensor]:
    """The ``model`` state dict of a trainer checkpoint, as upstream's ``.load`` reads it (tensors only)."""
    package = load_state_dict(path)
    if not isinstance(package, dict) or not isinstance(package.get("model"), dict):
        raise WeightsUnavailableError(f"{path}: not an audiolm-pytorch checkpoint (no 'model' state dict)")
    return package["model"]


def build_transformer(cls: type[torch.nn.Module], kwargs: dict[str, Any], path: Path) -> torch.nn.Module:
    """One of upstream's transformers from config.json kwargs, its checkpoint loaded strictly."""
    model = cls(**kwargs)
    model.load_state_dict(load_model_state(path), strict=True)
    return model.eval()


def load_semantic_units(folder: Path, layer: int) -> HubertUnits:
    """HuBERT layer features → nearest k-means centroid: the semantic tokens the LM was trained on."""
    hubert = load_hubert(folder / "hubert")
    centroids = load_kmeans_centroids(folder / "hubert" / "km.bin")
    if centroids.shape[1] != hubert.config.hidden_size:
        raise WeightsUnavailableError(f"{folder / 'hubert' / 'km.bin'}: centroids of width {centroids.shape[1]}, "
                                      f"HuBERT features are {hubert.config.hidden_size} wide")
    return HubertUnits(hubert, layer, torch.from_numpy(centroids)).eval()


def frames_before_padding(codes: torch.Tensor) -> int:
    """Frames of a [1, N, Q] sequence before the first one holding a pad (what follows an EOS)."""
    padded = (codes[0] == PAD_ID).any(dim=-1).nonzero()
    return int(padded[0, 0]) if padded.numel() else codes.shape[1]


class SoundStreamSpeechLM(CodecLM):
    """Shared part of the lucidrains LMs: folder checks, SoundStream + HuBERT tokens, prompt cut."""

    extra = "audiolm"
    files: tuple[FolderEntry, ...] = SOUNDSTREAM_FILES
    sections: tuple[str, ...] = ()

    def availability(self) -> tuple[bool, str]:
        return import_availability(self.requires, self.extra)

    def load(self, device: str | torch.device = "cpu", path: Path | None = None, random_init: bool = False) -> None:
        lm_id = self.meta.id
        if random_init:
            raise CodecError(f"{lm_id}: no tiny random build (it would need {', '.join(self.requires)}); "
                             f"pass --lm-path {lm_id}=FOLDER with your checkpoints")
        if path is None:
            listing = ", ".join(" or ".join(names) for names, _ in self.files)
            raise WeightsUnavailableError(f"{lm_id}: there are no official weights; pass --lm-path {lm_id}=FOLDER "
                                          f"holding your checkpoints: {listing} (layout: bench/lms/{lm_id}.py)")
        folder = check_folder(lm_id, Path(path), self.files)
        config = read_folder_config(lm_id, folder, self.sections)
        self.device = torch.device(device)
        layer = int(config.get("hubert_layer", DEFAULT_HUBERT_LAYER))
        self.units = load_semantic_units(folder, layer).to(self.device)
        self.codec = build_soundstream(*read_soundstream_checkpoint(folder / "soundstream.pt")).to(self.device)
        self.sample_rate = int(self.codec.target_sample_hz)
        self.hop = int(self.codec.seq_len_multiple_of)
        self.frame_rate = self.sample_rate / self.hop
        self.build(folder, config)
        self.loaded = True

    @abstractmethod
    def build(self, folder: Path, config: dict[str, Any]) -> None:
        """Build the family's transformers from the folder (the codec and tokens are loaded)."""

    def check_vocabulary(self, num_semantic_tokens: int) -> None:
        k = int(self.units.centroids.shape[0])
        if num_semantic_tokens != k:
            raise WeightsUnavailableError(f"{self.meta.id}: hubert/km.bin has {k} clusters but the semantic "
                                          f"vocabulary is num_semantic_tokens={num_semantic_tokens}")

    def prompt_tokens(self, request: GenerationRequest) -> tuple[torch.Tensor, torch.Tensor]:
        """(semantic ids [1, S], SoundStream codes [1, N, Q]) of the prompt."""
        self.check_task(request)
        if not self.loaded:
            raise CodecError(f"{self.meta.id}: call load() first")
        if request.prompt_audio is None or request.prompt_sample_rate is None:
            raise CodecError(f"{self.meta.id}: continuation needs prompt audio")
        semantic_in = resample(request.prompt_audio, request.prompt_sample_rate, SEMANTIC_SAMPLE_RATE)
        codec_in = resample(request.prompt_audio, request.prompt_sample_rate, self.sample_rate)
        if semantic_in.size < SEMANTIC_RECEPTIVE_FIELD or codec_in.size < self.hop:
            raise CodecError(f"{self.meta.id}: the prompt is too short to tokenise")
        with torch.inference_mode():
            units, _ = self.units(torch.from_numpy(semantic_in)[None, None].to(self.device))
            _, codes, _ = self.codec(torch.from_numpy(codec_in)[None].to(self.device), return_encoded=True)
        return units[:, 0], codes

    def new_frames(self, request: GenerationRequest) -> tuple[int, int]:
        """(SoundStream frames, semantic tokens) that ``max_duration_s`` of continuation takes."""
        seconds = request.max_duration_s
        return max(1, round(seconds * self.frame_rate)), max(1, math.ceil(seconds * SEMANTIC_RATE))

    def continuation(self, wave: torch.Tensor, prompt_frames: int, codes: torch.Tensor | None) -> Generated:
        """The decoded sequence minus the prompt's frames; an empty continuation is an error, not audio."""
        audio = wave.reshape(-1)[prompt_frames * self.hop:]
        if audio.numel() == 0:
            raise CodecError(f"{self.meta.id}: the model ended the sequence at the prompt (no continuation)")
        return Generated(audio.float().cpu().numpy().astype(np.float32), self.sample_rate,
                         None if codes is None else codes[:, prompt_frames:].transpose(1, 2).cpu().numpy())

    @property
    def has_codec(self) -> bool:
        return True

    def resynthesize(self, audio: np.ndarray, sample_rate: int) -> Generated:
        x = torch.from_numpy(resample(audio, sample_rate, self.sample_rate))[None].to(self.device)
        with torch.inference_mode():
            _, codes, _ = self.codec(x, return_encoded=True)
            y = self.codec.decode_from_codebook_indices(codes)
        return Generated(y.reshape(-1)[: x.shape[-1]].float().cpu().numpy().astype(np.float32), self.sample_rate,
                         codes.transpose(1, 2).cpu().numpy())


@register_lm(LMMeta(
    id="audiolm", family="audiolm", kind="model", tasks=frozenset({"continuation"}),
    codec="audiolm-pytorch SoundStream (user checkpoint; soundstream_audiolm@4kbps at the package defaults) "
          "+ HuBERT k-means semantic tokens",
    weights=None, license="MIT (audiolm-pytorch); weights: the user's",
    citation="Borsos et al., AudioLM: a Language Modeling Approach to Audio Generation (arXiv:2209.03143); "
             "implementation: lucidrains/audiolm-pytorch",
    implementation="audiolm-pytorch AudioLM semantic/coarse/fine stages (optional extra 'audiolm') with "
                   "codecbench's HuBERT k-means units",
    notes="no official weights: --lm-path audiolm=FOLDER with config.json, soundstream.pt, semantic.pt, "
          "coarse.pt, fine.pt, hubert/ (+ km.bin); continuation only, prompt frames cut off",
    options={"extra": "audiolm"}))
class AudioLM(SoundStreamSpeechLM):
    requires = ("audiolm_pytorch",)
    files = SOUNDSTREAM_FILES + (
        (("semantic.pt",), "SemanticTransformer checkpoint"),
        (("coarse.pt",), "CoarseTransformer checkpoint"),
        (("fine.pt",), "FineTransformer checkpoint"),
    )
    sections = ("semantic", "coarse", "fine")

    def build(self, folder: Path, config: dict[str, Any]) -> None:
        import audiolm_pytorch as alm

        semantic = build_transformer(alm.SemanticTransformer, config["semantic"], folder / "semantic.pt")
        self.check_vocabulary(int(semantic.num_semantic_tokens))
        coarse = build_transformer(alm.CoarseTransformer, config["coarse"], folder / "coarse.pt")
        fine = build_transformer(alm.FineTransformer, config["fine"], folder / "fine.pt")
        self.model = alm.AudioLM(wav2vec=None, codec=self.codec, semantic_transformer=semantic,
                                 coarse_transformer=coarse, fine_transformer=fine,
                                 unique_consecutive=bool(config.get("unique_consecutive", True)))
        self.model = self.model.eval().to(self.device)

    def generate(self, request: GenerationRequest) -> Generated:
        semantic_prime, prompt_codes = self.prompt_tokens(request)
        prompt_frames = prompt_codes.shape[1]
        new_frames, new_semantic = self.new_frames(request)
        n_coarse = int(self.model.coarse.num_coarse_quantizers)
        primed = (torch.unique_consecutive(semantic_prime[0]).numel() if self.model.semantic.unique_consecutive
                  else semantic_prime.shape[1])  # the semantic wrapper deduplicates its prime the same way
        torch.manual_seed(request.seed)
        semantic = self.model.semantic.generate(prime_ids=semantic_prime, max_length=primed + new_semantic)
        coarse = self.model.coarse.generate(semantic_token_ids=semantic,
                                            prime_coarse_token_ids=prompt_codes[..., :n_coarse].flatten(1),
                                            max_time_steps=new_frames)
        coarse = coarse[:, :frames_before_padding(coarse)]
        if coarse.shape[1] <= prompt_frames:
            raise CodecError(f"{self.meta.id}: the coarse stage ended at the prompt (no continuation)")
        fine = self.model.fine.generate(coarse_token_ids=coarse,
                                        prime_fine_token_ids=prompt_codes[..., n_coarse:].flatten(1))
        codes = torch.cat((coarse, fine), dim=-1)
        with torch.inference_mode():
            wave = self.codec.decode_from_codebook_indices(codes)
        return self.continuation(wave, prompt_frames, codes)
