"""SoundStream as implemented by lucidrains' audiolm-pytorch, for a user-supplied checkpoint.

No public pretrained SoundStream exists for this implementation: users train their own and point
codecbench at the file (``--weights PATH``). audiolm-pytorch imports torchaudio, so it is an
optional extra (``pip install 'codecbench[audiolm]'``) on machines where torchaudio imports; here
``availability`` says so. Its checkpoints are ``{"model": state_dict, "config": pickle bytes of the
constructor kwargs, "version": ...}`` (optionally ``ema_model``): the state dict is read with
``torch.load(weights_only=True)`` and the config bytes with a restricted unpickler that admits only
plain containers and scalars, so a tampered checkpoint cannot run code. The op-point declares the
package's default configuration (16 kHz, strides 2·4·5·8 = 320, 8 × 1024 codebooks = 4 kbps); a
checkpoint whose config differs is refused with the fields that differ.
"""

from __future__ import annotations

import importlib
import importlib.util
import io
import pickle
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from bench.codecs import register_codec
from bench.codecs.base import CodecMeta
from bench.codecs.neural import TokenCodec
from bench.codecs.weights import load_state_dict
from bench.errors import CodecError, WeightsUnavailableError

#: audiolm-pytorch SoundStream defaults the declared op-point stands for.
DEFAULT_CONFIG = {"target_sample_hz": 16000, "strides": (2, 4, 5, 8), "rq_num_quantizers": 8,
                  "codebook_size": 1024}

_SAFE_GLOBALS = {("builtins", n) for n in ("dict", "list", "tuple", "set", "frozenset", "int", "float",
                                            "str", "bool", "bytes", "complex", "slice")}


class _ConfigUnpickler(pickle.Unpickler):
    """Plain containers and scalars only: the constructor kwargs of a SoundStream."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _SAFE_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refused global {module}.{name} in a SoundStream config")


def read_config(blob: bytes) -> dict[str, Any]:
    """The kwargs dict audiolm-pytorch pickled into its checkpoint, read without running code."""
    config = _ConfigUnpickler(io.BytesIO(blob)).load()
    if not isinstance(config, dict):
        raise WeightsUnavailableError(f"SoundStream config is a {type(config).__name__}, not a dict")
    return config


def config_mismatch(config: dict[str, Any]) -> list[str]:
    """Fields of a checkpoint config that differ from the declared op-point."""
    out = []
    for key, want in DEFAULT_CONFIG.items():
        have = config.get(key, want)
        if (tuple(have) if isinstance(have, list) else have) != want:
            out.append(f"{key}={have!r} (op-point declares {want!r})")
    return out


def import_availability(modules: Sequence[str], extra: str) -> tuple[bool, str]:
    """Whether lucidrains' packages import here, and which optional extra installs them if not.

    They import torchaudio at import time, so being installed is not enough: a torchaudio built for
    another torch fails there, and that reason is reported instead of a traceback per cell.
    """
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        return False, (f"needs the Python package(s) {', '.join(missing)}: install the optional extra "
                       f"`pip install 'codecbench[{extra}]'` (it imports torchaudio: install it where "
                       "torchaudio matches your torch)")
    for module in modules:
        try:
            importlib.import_module(module)
        except Exception as exc:  # torchaudio beside a mismatched torch fails at import
            return False, f"{module} does not import here ({type(exc).__name__}: {exc})"
    return True, ""


def read_soundstream_checkpoint(path: Path) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """(constructor kwargs, state dict) of a SoundStream checkpoint, the EMA weights when it has them."""
    package = load_state_dict(path)
    if not isinstance(package, dict) or "config" not in package:
        raise WeightsUnavailableError(f"{path}: not an audiolm-pytorch checkpoint (no 'config' entry)")
    config = read_config(package["config"])
    state = package.get("ema_model") or package["model"]
    if "ema_model" in package:
        state = {k[len("ema_model."):]: v for k, v in state.items() if k.startswith("ema_model.")}
    return config, state


def build_soundstream(config: dict[str, Any], state: dict[str, torch.Tensor]) -> torch.nn.Module:
    """audiolm-pytorch's SoundStream with the checkpoint's weights, strictly."""
    from audiolm_pytorch import SoundStream

    model = SoundStream(**config)
    model.load_state_dict(state, strict=True)
    return model.eval()


META = CodecMeta(
    id="soundstream_audiolm@4kbps",
    family="soundstream_audiolm",
    kind="tokens",
    sample_rate=16000,
    bitrate_bps=50.0 * 8 * 10,
    frame_rate=16000 / 320,
    codebook_sizes=(1024,) * 8,
    causal=True,
    streaming=True,
    license="MIT (audiolm-pytorch); weights: the user's",
    weights=None,
    citation="N. Zeghidour et al.: SoundStream: An End-to-End Neural Audio Codec, IEEE/ACM TASLP 2021; "
             "implementation: lucidrains/audiolm-pytorch",
    implementation="audiolm-pytorch SoundStream (optional extra), user-supplied checkpoint",
    algorithmic_latency_s=320 / 16000,
    notes="Default audiolm-pytorch configuration; no public weights: pass --weights PATH to a checkpoint "
          "saved by audiolm-pytorch. Other configurations are refused, naming the differing fields.",
)


@register_codec(META)
class AudioLMSoundStreamCodec(TokenCodec):
    """Thin wrapper: the package builds the model; codecbench loads its checkpoint safely."""

    requires = ("audiolm_pytorch",)
    random_init_supported = False

    def availability(self) -> tuple[bool, str]:
        return import_availability(self.requires, "audiolm")

    def weights_status(self) -> tuple[bool, str]:
        return False, "no public weights: pass --weights PATH to your audiolm-pytorch SoundStream checkpoint"

    def build_random(self) -> torch.nn.Module:
        raise CodecError(f"{self.meta.id}: random init would need audiolm-pytorch; check it with --weights")

    def build_pretrained(self, path: Path) -> torch.nn.Module:
        config, state = read_soundstream_checkpoint(path)
        differs = config_mismatch(config)
        if differs:
            raise WeightsUnavailableError(f"{path}: config differs from {self.meta.id}: {'; '.join(differs)}")
        return build_soundstream(config, state)

    def encode_frames(self, audio: torch.Tensor) -> torch.Tensor:
        model = self._require_model()
        _, indices, _ = model(audio[:, 0], return_encoded=True)  # indices [B, T, Q]
        return indices.transpose(1, 2)

    def decode_frames(self, codes: torch.Tensor) -> torch.Tensor:
        model = self._require_model()
        return model.decode_from_codebook_indices(codes.transpose(1, 2))
