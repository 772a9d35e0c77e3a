"""Lyra v2 (SoundStream) as Google released it: three TFLite models run with LiteRT.

Why TFLite and not a PyTorch port: Google never published SoundStream weights in any other form.
The files ``soundstream_encoder.tflite`` (320 samples at 16 kHz → 64 features, int8 partly),
``quantizer.tflite`` (a 46-stage residual VQ with 16-entry codebooks, signatures ``encode`` and
``decode``) and ``lyragan.tflite`` (64 features → 320 samples) ship inside github.com/google/lyra
(v1.3.2, pinned commit below). The call sequence follows ``lyra/soundstream_encoder.cc``,
``residual_vector_quantizer.cc`` and ``lyra_gan_model.cc``: per 20 ms hop, int16 audio scaled to
[-1, 1) → encoder → ``encode(input_frames, num_quantizers)`` → the first n indices (the packet
holds n × 4 bits; 16 / 30 / 46 quantizers give 3.2 / 6 / 9.2 kbps) → ``decode(indices, -1 for
unused stages)`` → LyraGAN → samples clipped and truncated to int16 (``UnitToInt16``).

The encoder and LyraGAN are streaming models whose convolution states live inside the
interpreter, so every item gets fresh interpreters (about 1 ms): that keeps a batch equal to its
singles and encoding deterministic. The packet-loss concealment, comfort noise and DTX of the
Lyra C++ API are not part of the codec path here (no packet is ever lost and DTX is off, which is
the C++ default for ``encoder_main``).

There is no random-init variant: without TensorFlow nothing can build these graphs with other
weights, so ``load(random_init=True)`` refuses with the reason (``random_init_supported = False``).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bench.codecs import register_codec
from bench.codecs.base import CodecMeta, WeightsSource
from bench.codecs.neural import TokenCodec
from bench.codecs.weights import configured_weights, weights_cache_dir
from bench.errors import CodecError, WeightsUnavailableError
from bench.runner.atomic import atomic_path

#: google/lyra commit the model files are pinned to (tag v1.3.2, 2022-12-20).
LYRA_COMMIT = "47698dadf0010abff6a848e02642f55f806d4842"
LYRA_URL = f"https://raw.githubusercontent.com/google/lyra/{LYRA_COMMIT}/lyra/model_coeffs"
#: sha256 of each released file at LYRA_COMMIT.
LYRA_FILES: Mapping[str, str] = {
    "soundstream_encoder.tflite": "237da0b16226fb0a68d49551c81bebf614e42142af72764448359f68581e88f1",
    "quantizer.tflite": "841ee05989687d32d1f616a8ad1419fc7eda37599d3c05c7cf5a0d60ccf8ac5c",
    "lyragan.tflite": "50e7839cda4f30599a3a34cfaddcd9c98449b049eee884e1a74295780448ad06",
}
SAMPLE_RATE = 16000
HOP = 320  # kNumSamplesPerHop at 16 kHz: 50 frames/s
FEATURES = 64  # kNumFeatures
MAX_QUANTIZERS = 46  # kMaxNumQuantizedBits 184 / 4 bits per quantizer
CODEBOOK_SIZE = 16  # bits_per_quantizer 4, read from the quantizer's 'encode' output_1
QUANTIZERS = {3.2: 16, 6: 30, 9.2: 46}  # kbps → quantizers (64 / 120 / 184 bits per packet)

Spec = tuple[tuple[int, ...], str]
#: Signature name → (inputs, outputs), each name → (shape, dtype): the interface the C++ calls use.
SIGNATURES: Mapping[str, Mapping[str, tuple[Mapping[str, Spec], Mapping[str, Spec]]]] = {
    "soundstream_encoder.tflite": {
        "serving_default": ({"input_audio": ((1, HOP), "float32")},
                            {"output_0": ((1, 1, FEATURES), "float32")}),
    },
    "quantizer.tflite": {
        "encode": ({"input_frames": ((1, 1, FEATURES), "float32"), "num_quantizers": ((), "int32")},
                   {"output_0": ((MAX_QUANTIZERS, 1, 1), "int32"), "output_1": ((), "int32")}),
        "decode": ({"encoding_indices": ((MAX_QUANTIZERS, 1, 1), "int32")},
                   {"output_0": ((1, 1, FEATURES), "float32")}),
    },
    "lyragan.tflite": {
        "serving_default": ({"input_audio": ((1, 1, FEATURES), "float32")},
                            {"output_0": ((1, HOP), "float32")}),
    },
}

#: (model bytes, use the default XNNPACK delegate) → a LiteRT-like interpreter.
InterpreterFactory = Callable[[bytes, bool], Any]


def litert_interpreter(content: bytes, xnnpack: bool) -> Any:
    """A single-threaded LiteRT interpreter; XNNPACK only where upstream enables it."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    resolver = OpResolverType.AUTO if xnnpack else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    return Interpreter(model_content=content, num_threads=1, experimental_op_resolver_type=resolver)


def _spec(detail: Mapping[str, Any]) -> Spec:
    return tuple(int(s) for s in detail["shape"]), np.dtype(detail["dtype"]).name


@dataclass
class LyraModels:
    """The three released graphs as bytes, run one item at a time on fresh interpreters."""

    blobs: Mapping[str, bytes]
    factory: InterpreterFactory = litert_interpreter

    def _runners(self, name: str) -> dict[str, Any]:
        # upstream: XNNPACK for the encoder and LyraGAN, the plain builtin ops for the quantizer
        interp = self.factory(self.blobs[name], name != "quantizer.tflite")
        return {sig: interp.get_signature_runner(sig) for sig in SIGNATURES[name]}

    def check_interface(self) -> None:
        """Refuse files whose signatures differ from what the call sequence needs."""
        for name, sigs in SIGNATURES.items():
            for sig, runner in self._runners(name).items():
                want_in, want_out = sigs[sig]
                got_in = {k: _spec(v) for k, v in runner.get_input_details().items()}
                got_out = {k: _spec(v) for k, v in runner.get_output_details().items()}
                if got_in != dict(want_in) or got_out != dict(want_out):
                    raise CodecError(f"{name} signature {sig!r}: inputs {got_in}, outputs {got_out}; "
                                     f"expected inputs {dict(want_in)}, outputs {dict(want_out)}")
        bits = int(np.asarray(self._quantize(self._runners("quantizer.tflite")["encode"],
                                             np.zeros((1, 1, FEATURES), np.float32), 1)[1]))
        if bits != 4:
            raise CodecError(f"quantizer.tflite reports {bits} bits per quantizer; Lyra v2 uses 4")

    @staticmethod
    def _quantize(runner: Any, features: np.ndarray, n_q: int) -> tuple[np.ndarray, np.ndarray]:
        out = runner(input_frames=features, num_quantizers=np.array(n_q, dtype=np.int32))
        return np.asarray(out["output_0"]), np.asarray(out["output_1"])

    def encode(self, audio: np.ndarray, n_q: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """[T] float audio (T a multiple of HOP) → codes [n_q, F], features and quantized [64, F]."""
        encoder = self._runners("soundstream_encoder.tflite")["serving_default"]
        quantizer = self._runners("quantizer.tflite")
        pcm = to_int16_unit(audio)
        frames = pcm.reshape(-1, HOP)
        codes = np.zeros((n_q, len(frames)), np.int64)
        feats = np.zeros((FEATURES, len(frames)), np.float32)
        quant = np.zeros((FEATURES, len(frames)), np.float32)
        for t, frame in enumerate(frames):
            f = np.asarray(encoder(input_audio=frame[None, :])["output_0"], np.float32)
            idx, _ = self._quantize(quantizer["encode"], f, n_q)
            codes[:, t] = idx.reshape(-1)[:n_q]
            feats[:, t] = f.reshape(-1)
            quant[:, t] = self._dequantize(quantizer["decode"], codes[:, t])
        if codes.size and (codes.min() < 0 or codes.max() >= CODEBOOK_SIZE):
            raise CodecError(f"quantizer.tflite returned indices outside [0, {CODEBOOK_SIZE})")
        return codes, feats, quant

    @staticmethod
    def _dequantize(runner: Any, codes: np.ndarray) -> np.ndarray:
        indices = np.full((MAX_QUANTIZERS, 1, 1), -1, np.int32)  # -1: stage not transmitted
        indices[: len(codes), 0, 0] = codes
        return np.asarray(runner(encoding_indices=indices)["output_0"], np.float32).reshape(-1)

    def decode(self, codes: np.ndarray) -> np.ndarray:
        """codes [n_q, F] → [F × HOP] float audio on the int16 grid."""
        decode = self._runners("quantizer.tflite")["decode"]
        gan = self._runners("lyragan.tflite")["serving_default"]
        out = np.zeros((codes.shape[1], HOP), np.float32)
        for t in range(codes.shape[1]):
            z = self._dequantize(decode, codes[:, t]).reshape(1, 1, FEATURES)
            out[t] = np.asarray(gan(input_audio=z)["output_0"], np.float32).reshape(-1)
        return from_unit_to_int16_grid(out.reshape(-1))


def to_int16_unit(x: np.ndarray) -> np.ndarray:
    """Float audio as the int16 PCM Lyra's API takes, back in [-1, 1) (``Int16ToUnitScalar``)."""
    return (np.clip(np.round(x * 32768.0), -32768, 32767) / 32768.0).astype(np.float32)


def from_unit_to_int16_grid(y: np.ndarray) -> np.ndarray:
    """LyraGAN output as ``UnitToInt16`` emits it (scale, clip, truncate), back in [-1, 1)."""
    return (np.trunc(np.clip(y * 32768.0, -32768, 32767)) / 32768.0).astype(np.float32)


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_model_dir(folder: Path) -> dict[str, bytes]:
    """The three files from ``folder``, each checked against its pinned sha256."""
    blobs: dict[str, bytes] = {}
    for name, digest in LYRA_FILES.items():
        path = folder / name
        if not path.is_file():
            raise WeightsUnavailableError(f"{folder} has no {name} (need {', '.join(LYRA_FILES)})")
        data = path.read_bytes()
        if sha256_bytes(data) != digest:
            raise WeightsUnavailableError(f"{path}: sha256 {sha256_bytes(data)} is not the released Lyra v1.3.2 "
                                          f"file ({digest}, google/lyra@{LYRA_COMMIT[:12]})")
        blobs[name] = data
    return blobs


def lyra_cache_dir() -> Path:
    return weights_cache_dir() / "lyra_v2" / LYRA_COMMIT


def download_models(target: Path, base_url: str = LYRA_URL) -> Path:
    """Fetch the three pinned files into ``target`` (sha256-checked, atomic)."""
    for name, digest in LYRA_FILES.items():
        path = target / name
        if path.is_file() and sha256_bytes(path.read_bytes()) == digest:
            continue
        with atomic_path(path) as tmp:
            with urllib.request.urlopen(f"{base_url}/{name}", timeout=60) as response, open(tmp, "wb") as out:
                shutil.copyfileobj(response, out, 1 << 20)
            got = sha256_bytes(tmp.read_bytes())
            if got != digest:
                raise WeightsUnavailableError(f"{base_url}/{name}: sha256 {got} does not match the pinned {digest}")
    return target


def _meta(kbps: float) -> CodecMeta:
    n_q = QUANTIZERS[kbps]
    frame_rate = SAMPLE_RATE / HOP
    sizes = (CODEBOOK_SIZE,) * n_q
    return CodecMeta(
        id=f"lyra_soundstream@{kbps:g}kbps",
        family="lyra_soundstream",
        kind="tokens",
        sample_rate=SAMPLE_RATE,
        bitrate_bps=frame_rate * n_q * float(np.log2(CODEBOOK_SIZE)),
        channels=1,
        frame_rate=frame_rate,
        codebook_sizes=sizes,
        causal=True,
        streaming=True,
        n_params=None,
        license="Apache-2.0",
        weights=WeightsSource(uri=LYRA_URL, revision=LYRA_COMMIT, files=tuple(LYRA_FILES)),
        citation=("Zeghidour, Luebs, Omran, Skoglund, Tagliasacchi: SoundStream: An End-to-End Neural Audio "
                  "Codec, IEEE/ACM TASLP 2021; Lyra v2 (google/lyra v1.3.2)"),
        implementation=f"google/lyra v1.3.2 TFLite models (commit {LYRA_COMMIT[:12]}) run with LiteRT "
                       "(ai-edge-litert), one thread, XNNPACK for encoder and LyraGAN as upstream",
        algorithmic_latency_s=HOP / SAMPLE_RATE,
        notes=(f"{n_q} of the 46 residual-VQ stages (16 entries, 4 bits each) per 20 ms frame: {n_q * 4} bits a "
               "packet, no header bits. Causal streaming encoder and decoder (one hop in, one hop out; measured "
               "output lag on speech 0–1 sample), so the latency is the 20 ms frame. Audio crosses the models on "
               "the int16 grid as in the C++ API. Packet-loss concealment, comfort noise and DTX are not exercised. "
               "n_params is not stated: the graphs are TFLite with partly int8 weights and Google gives no count. "
               "No random-init variant exists (TFLite only)."),
        options={"n_quantizers": n_q, "file_sha256": dict(LYRA_FILES)},
    )


@register_codec(*(_meta(k) for k in QUANTIZERS))
class LyraSoundStreamCodec(TokenCodec):
    """Lyra v2's SoundStream at 3.2 / 6 / 9.2 kbps: the first n quantizer stages of one model."""

    requires = ("ai_edge_litert",)
    random_init_supported = False
    """TFLite graphs cannot be rebuilt with random weights here; conformance needs the real files."""

    def __init__(self, meta: CodecMeta, factory: InterpreterFactory = litert_interpreter):
        super().__init__(meta)
        self.factory = factory
        self.runtime: LyraModels | None = None

    # -- weights -----------------------------------------------------------------------------
    def _local_dir(self, explicit: Path | None) -> Path | None:
        if explicit is not None:
            return Path(explicit)
        configured = configured_weights(self.meta)
        if configured is not None:
            return configured
        cached = lyra_cache_dir()
        return cached if all((cached / n).is_file() for n in LYRA_FILES) else None

    def weights_status(self) -> tuple[bool, str]:
        if self._local_dir(None) is not None:
            return True, ""
        return False, (f"weights not on this machine: the three files of {LYRA_URL} ({', '.join(LYRA_FILES)}) "
                       f"go into {lyra_cache_dir()}, or pass --weights DIR (a google/lyra checkout's "
                       "lyra/model_coeffs)")

    def fetch_weights(self) -> Path | None:
        return self.resolve_model_dir()

    def resolve_model_dir(self, explicit: Path | None = None, download: bool = True) -> Path:
        """A folder with the three pinned files: --weights, the config file, the cache, or a download."""
        found = self._local_dir(explicit)
        if found is not None:
            if not found.is_dir():
                raise WeightsUnavailableError(f"{self.meta.id}: {found} is not a folder holding {', '.join(LYRA_FILES)}")
            return found
        _, hint = self.weights_status()
        if not download:
            raise WeightsUnavailableError(f"{self.meta.id}: {hint}")
        try:
            return download_models(lyra_cache_dir())
        except WeightsUnavailableError:
            raise
        except Exception as exc:  # offline, 404: the same clear instruction
            raise WeightsUnavailableError(f"{self.meta.id}: cannot download ({type(exc).__name__}: {exc}); "
                                          f"{hint}") from exc

    def load(self, device: str | torch.device = "cpu", weights: Path | None = None,
             random_init: bool = False) -> None:
        if random_init:
            raise CodecError(f"{self.meta.id}: no random-init variant — Lyra v2 exists only as TFLite graphs, "
                             "which cannot be rebuilt with other weights without TensorFlow; run the "
                             "conformance check with the released files instead (they are 3.6 MB)")
        self.device = torch.device(device)
        self.weights_path = self.resolve_model_dir(weights)
        self.runtime = self.build_pretrained(self.weights_path)
        self.model = None

    def build_pretrained(self, path: Path) -> LyraModels:  # type: ignore[override]
        runtime = LyraModels(read_model_dir(Path(path)), self.factory)
        runtime.check_interface()
        return runtime

    def build_random(self) -> torch.nn.Module:
        raise CodecError(f"{self.meta.id}: no random-init variant (TFLite graphs only)")

    # -- model calls -------------------------------------------------------------------------
    def _require_model(self) -> LyraModels:  # type: ignore[override]
        if self.runtime is None:
            raise CodecError(f"{self.meta.id}: call load() before encoding")
        return self.runtime

    def encode_frames(self, audio: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        runtime = self._require_model()
        n_q = int(self.meta.options["n_quantizers"])
        x = audio.detach().float().cpu().numpy()[:, 0]
        frames = self.frames_for(x.shape[-1])
        x = np.pad(x, ((0, 0), (0, frames * HOP - x.shape[-1])))  # zero-pad the last hop
        results = [runtime.encode(item, n_q) for item in x]
        codes = torch.from_numpy(np.stack([r[0] for r in results]))
        views = {"unquantized": torch.from_numpy(np.stack([r[1] for r in results])),
                 "quantized": torch.from_numpy(np.stack([r[2] for r in results]))}
        return codes, views

    def decode_frames(self, codes: torch.Tensor) -> torch.Tensor:
        runtime = self._require_model()
        arr = codes.detach().cpu().numpy()
        audio = np.stack([runtime.decode(item) for item in arr])[:, None, :]
        return torch.from_numpy(audio).to(self.device)


def default_model_dir() -> Path | None:
    """Where a local copy of the three files may be: ``$LYRA_MODEL_DIR`` or the weights cache."""
    env = os.environ.get("LYRA_MODEL_DIR")
    if env:
        return Path(env)
    cached = lyra_cache_dir()
    return cached if all((cached / n).is_file() for n in LYRA_FILES) else None


__all__ = ["LYRA_COMMIT", "LYRA_FILES", "SIGNATURES", "LyraModels", "LyraSoundStreamCodec", "default_model_dir"]
