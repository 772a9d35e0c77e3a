"""HuBERT k-means units: the discrete speech units of textless NLP (GSLM), encode only.

HuBERT-base (ls960) features of one transformer layer, assigned to the nearest of K k-means
centroids, one unit per 20 ms. GSLM (Lakhotia et al., 2021) released K = 50/100/200 on layer 6;
the K = 500 model Meta released with HuBERT (``hubert_base_ls960_L9_km500.bin``, used by
speech-resynthesis and textless S2ST) is on layer 9, and that is what ``hubert_km500`` runs.

The k-means files are joblib pickles of scikit-learn (MiniBatch)KMeans objects. They are never
unpickled: :func:`load_kmeans_centroids` reads them with a restricted unpickler that only rebuilds
numpy arrays, dtypes and scalars, turns the estimator class into an inert record of its state,
and refuses every other global, so a tampered file cannot run code.

There is no unit vocoder here, so the op-points are declared ``decodable=False``: ``decode``
raises :class:`CodecError`, the conformance check runs the encode-side checks only, and the runner
turns resynthesis tasks into failed cells that say why.
"""

from __future__ import annotations

import gzip
import io
import math
import pickle
import zlib
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from bench.codecs import register_codec
from bench.codecs.base import CodecMeta, WeightsSource
from bench.codecs.neural import TokenCodec, calibration_audio
from bench.codecs.weights import load_state_dict, resolve_weights
from bench.errors import CodecError, WeightsUnavailableError

# -- restricted k-means reader ----------------------------------------------------------------

_ESTIMATOR_MODULES = ("sklearn.cluster._kmeans", "sklearn.cluster.k_means_", "sklearn.cluster")
_ESTIMATOR_NAMES = ("KMeans", "MiniBatchKMeans")
_NUMPY_CORE = ("numpy.core.multiarray", "numpy._core.multiarray")


class KMeansRecord:
    """Inert stand-in for a pickled sklearn KMeans: keeps its state dict, has no behaviour."""

    estimator_class = ""

    def __setstate__(self, state: Any) -> None:
        if not isinstance(state, dict):
            raise pickle.UnpicklingError(f"unexpected {self.estimator_class} state of type {type(state).__name__}")
        self.state = state


class _ArrayWrapperRecord:
    """Inert stand-in for joblib's NumpyArrayWrapper; the array bytes follow it in the file."""

    def __setstate__(self, state: Any) -> None:
        if not isinstance(state, dict):
            raise pickle.UnpicklingError("unexpected joblib array wrapper state")
        self.state = state


def _reconstruct(subtype: Any, shape: Any, dtype: Any) -> np.ndarray:
    """numpy's ``_reconstruct`` for plain ndarrays only (the BUILD step fills in the data)."""
    if subtype is not np.ndarray:
        raise pickle.UnpicklingError(f"refused array subtype {subtype!r}")
    return np.ndarray.__new__(np.ndarray, shape, dtype)


def _scalar(dtype: Any, data: Any = None) -> Any:
    if not isinstance(dtype, np.dtype) or dtype.hasobject or not isinstance(data, bytes):
        raise pickle.UnpicklingError("refused numpy scalar that is not plain numeric data")
    return np.frombuffer(data, dtype=dtype, count=1)[0]


def _frombuffer(buf: Any, dtype: Any, shape: Any, order: Any) -> np.ndarray:
    """numpy's protocol-5 array reconstruction (in-band buffer), for plain numeric dtypes only."""
    if not isinstance(dtype, np.dtype) or dtype.hasobject or order not in ("C", "F"):
        raise pickle.UnpicklingError("refused protocol-5 array that is not plain numeric data")
    data = bytes(memoryview(buf))
    arr = np.frombuffer(data, dtype=dtype)
    return arr.reshape(tuple(shape), order=order).copy()


def _latin1_bytes(text: Any, encoding: Any = None) -> bytes:
    """How protocol-2 pickles spell bytes: ``_codecs.encode(str, "latin1")``; nothing else."""
    if not isinstance(text, str) or encoding != "latin1":
        raise pickle.UnpicklingError("refused _codecs.encode other than str → latin1 bytes")
    return text.encode("latin1")


def _estimator_class(name: str) -> type[KMeansRecord]:
    return type(f"{name}Record", (KMeansRecord,), {"estimator_class": name})


class _RestrictedUnpickler(pickle._Unpickler):  # type: ignore[name-defined]  # pure-Python: BUILD can be hooked
    """Rebuilds numpy arrays and an inert KMeans record; refuses every other global."""

    def __init__(self, file: io.BufferedIOBase):
        super().__init__(file)
        self._raw = file
        self.dispatch = dict(pickle._Unpickler.dispatch)  # type: ignore[attr-defined]
        self.dispatch[pickle.BUILD[0]] = _RestrictedUnpickler._load_build

    def find_class(self, module: str, name: str) -> Any:
        if module == "numpy" and name == "ndarray":
            return np.ndarray
        if module == "numpy" and name == "dtype":
            return np.dtype
        if module in _NUMPY_CORE and name == "_reconstruct":
            return _reconstruct
        if module in _NUMPY_CORE and name == "scalar":
            return _scalar
        if module in ("numpy.core.numeric", "numpy._core.numeric") and name == "_frombuffer":
            return _frombuffer
        if module == "_codecs" and name == "encode":
            return _latin1_bytes
        if module == "joblib.numpy_pickle" and name == "NumpyArrayWrapper":
            return _ArrayWrapperRecord
        if module in _ESTIMATOR_MODULES and name in _ESTIMATOR_NAMES:
            return _estimator_class(name)
        raise pickle.UnpicklingError(f"refused global {module}.{name}: only numpy arrays and sklearn "
                                     "KMeans state may appear in a k-means file")

    def _load_build(self) -> None:
        pickle._Unpickler.load_build(self)  # type: ignore[attr-defined]
        top = self.stack[-1]
        if isinstance(top, _ArrayWrapperRecord):
            self.stack[-1] = self._read_joblib_array(top.state)
        elif isinstance(top, np.ndarray) and top.dtype.hasobject:
            raise pickle.UnpicklingError("refused object array")

    def _read_joblib_array(self, state: dict[str, Any]) -> np.ndarray:
        """The raw bytes joblib writes right after an array's wrapper (C or F order)."""
        dtype, shape, order = state.get("dtype"), tuple(state.get("shape", ())), state.get("order", "C")
        if not isinstance(dtype, np.dtype) or dtype.hasobject or state.get("subclass") is not np.ndarray:
            raise pickle.UnpicklingError("refused joblib array that is not a plain numeric ndarray")
        if state.get("numpy_array_alignment_bytes") is not None:
            pad = self._raw.read(1)
            self._raw.read(int.from_bytes(pad, "little"))
        count = math.prod(int(s) for s in shape)
        data = self._raw.read(count * dtype.itemsize)
        if len(data) != count * dtype.itemsize:
            raise pickle.UnpicklingError("truncated array data")
        arr = np.frombuffer(data, dtype=dtype, count=count)
        arr = arr.reshape(shape[::-1]).T if order == "F" else arr.reshape(shape)
        return arr.copy()


def read_kmeans_state(path: Path) -> tuple[str, dict[str, Any]]:
    """(estimator class name, its state dict) from a pickled/joblib KMeans without unpickling code."""
    raw = Path(path).read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    elif raw[:1] == b"\x78":  # joblib's zlib compressor
        raw = zlib.decompress(raw)
    try:
        obj = _RestrictedUnpickler(io.BytesIO(raw)).load()
    except pickle.UnpicklingError:
        raise
    except Exception as exc:  # malformed stream
        raise pickle.UnpicklingError(f"{path}: not a readable k-means pickle ({type(exc).__name__}: {exc})") from exc
    if not isinstance(obj, KMeansRecord) or not hasattr(obj, "state"):
        raise pickle.UnpicklingError(f"{path}: top-level object is {type(obj).__name__}, not a KMeans")
    return obj.estimator_class, obj.state


def load_kmeans_centroids(path: Path) -> np.ndarray:
    """``cluster_centers_`` [K, D] float32 of a released k-means file, read safely."""
    _, state = read_kmeans_state(path)
    centers = state.get("cluster_centers_")
    if not isinstance(centers, np.ndarray) or centers.ndim != 2 or not np.issubdtype(centers.dtype, np.floating):
        raise pickle.UnpicklingError(f"{path}: no 2-D float cluster_centers_ in the KMeans state")
    return np.ascontiguousarray(centers, dtype=np.float32)


# -- model ------------------------------------------------------------------------------------


class HubertUnits(nn.Module):
    """HuBERT feature extractor cut after ``layer`` transformer layers + nearest-centroid units."""

    def __init__(self, hubert: nn.Module, layer: int, centroids: torch.Tensor):
        super().__init__()
        n_layers = len(hubert.encoder.layers)
        if not 1 <= layer <= n_layers:
            raise CodecError(f"HuBERT has {n_layers} layers; layer {layer} requested")
        hubert.encoder.layers = hubert.encoder.layers[:layer]  # later layers never influence layer L
        self.hubert = hubert
        self.layer = layer
        self.register_buffer("centroids", centroids.float())

    def features(self, wav: torch.Tensor) -> torch.Tensor:
        """[B, 1, T] raw 16 kHz waveform (no normalisation, as fairseq HuBERT-base) → [B, T', D]."""
        out = self.hubert(wav[:, 0], output_hidden_states=True)
        return out.hidden_states[self.layer]

    def forward(self, wav: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        feats = self.features(wav)
        c = self.centroids
        dist = feats.pow(2).sum(-1, keepdim=True) - 2 * feats @ c.t() + c.pow(2).sum(-1)
        units = dist.argmin(dim=-1)  # [B, T']
        return units[:, None], {"unquantized": feats.transpose(1, 2), "quantized": c[units].transpose(1, 2)}


def tiny_hubert_config() -> Any:
    """Two layers, narrow, but the base model's conv stack (320-sample hop, 400-sample field)."""
    from transformers import HubertConfig

    return HubertConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                        conv_dim=(16,) * 7, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2,
                        hidden_dropout=0.0, attention_dropout=0.0, activation_dropout=0.0,
                        feat_proj_dropout=0.0, layerdrop=0.0)


def _legacy_key(key: str) -> str:
    """Old weight-norm names in HF HuBERT checkpoints → the parametrization names torch uses now."""
    key = key.removeprefix("hubert.")
    if key.endswith(".weight_g"):
        return key[: -len(".weight_g")] + ".parametrizations.weight.original0"
    if key.endswith(".weight_v"):
        return key[: -len(".weight_v")] + ".parametrizations.weight.original1"
    return key


def load_hubert(folder: Path) -> nn.Module:
    """HuBERT from a hub snapshot (config.json + safetensors or a plain-tensor .bin), strictly."""
    from transformers import HubertConfig, HubertModel

    folder = Path(folder)
    weights = next((folder / f for f in ("model.safetensors", "pytorch_model.bin") if (folder / f).exists()), None)
    if weights is None or not (folder / "config.json").exists():
        raise WeightsUnavailableError(f"{folder}: need config.json and model.safetensors or pytorch_model.bin")
    model = HubertModel(HubertConfig.from_json_file(str(folder / "config.json")))
    state = {_legacy_key(k): v for k, v in load_state_dict(weights).items()}
    model.load_state_dict(state, strict=True)
    return model.eval()


# -- op-points --------------------------------------------------------------------------------

HUBERT_WEIGHTS = WeightsSource(
    uri="hf://facebook/hubert-base-ls960",
    revision=None,  # hub commit not readable offline: pin it when fetched (see report)
    files=("config.json", "pytorch_model.bin"),
)
#: K → (HuBERT layer, k-means URL). sha256 unknown offline: to be pinned on first fetch.
KMEANS = {
    50: (6, "https://dl.fbaipublicfiles.com/textless_nlp/gslm/hubert/km50/km.bin"),
    100: (6, "https://dl.fbaipublicfiles.com/textless_nlp/gslm/hubert/km100/km.bin"),
    200: (6, "https://dl.fbaipublicfiles.com/textless_nlp/gslm/hubert/km200/km.bin"),
    500: (9, "https://dl.fbaipublicfiles.com/hubert/hubert_base_ls960_L9_km500.bin"),
}
SAMPLE_RATE, HOP, RECEPTIVE_FIELD = 16000, 320, 400
#: nn.Parameter count of HubertModel(hubert-base-ls960): 12 layers, 768 wide, with masked_spec_embed.
N_PARAMS_HUBERT_BASE = 94_371_712


def _meta(k: int) -> CodecMeta:
    layer, url = KMEANS[k]
    frame_rate = SAMPLE_RATE / HOP
    bps = frame_rate * math.log2(k)
    source = "GSLM (fairseq examples/textless_nlp/gslm/speech2unit)" if layer == 6 else \
        "HuBERT release (fairseq examples/hubert, used by speech-resynthesis / textless S2ST)"
    return CodecMeta(
        id=f"hubert_km{k}@{bps:.0f}bps",
        family="hubert_units",
        kind="tokens",
        sample_rate=SAMPLE_RATE,
        bitrate_bps=bps,
        channels=1,
        frame_rate=frame_rate,
        codebook_sizes=(k,),
        causal=False,
        streaming=False,
        n_params=N_PARAMS_HUBERT_BASE,
        license="MIT (fairseq HuBERT and k-means models)",
        weights=HUBERT_WEIGHTS,
        citation=("K. Lakhotia et al.: On Generative Spoken Language Modeling from Raw Audio, TACL 2021; "
                  "W.-N. Hsu et al.: HuBERT, IEEE/ACM TASLP 2021"),
        implementation="transformers HubertModel + nearest k-means centroid (codecbench; no unit vocoder)",
        algorithmic_latency_s=None,
        notes=(f"Encode-only semantic units: HuBERT-base ls960 layer {layer} features, k-means K={k} from "
               f"{source}. One unit per 20 ms; frames = floor((n − 400) / 320) + 1 as HuBERT's conv stack "
               "gives (no padding). Non-causal (full-utterance self-attention, group norm over time). "
               "No vocoder: decode raises CodecError. Latents: 'unquantized' = layer features, "
               "'quantized' = the chosen centroids."),
        decodable=False,
        options={"n_clusters": k, "layer": layer, "kmeans_uri": url},
    )


def kmeans_meta(meta: CodecMeta) -> CodecMeta:
    """The k-means file as its own weights entry (config key ``<op-point id>:kmeans``)."""
    return replace(meta, id=f"{meta.id}:kmeans", weights=WeightsSource(uri=str(meta.options["kmeans_uri"])))


@register_codec(*(_meta(k) for k in KMEANS))
class HubertUnitsCodec(TokenCodec):
    """HuBERT-base layer features → k-means unit ids; there is no decoder."""

    requires = ("transformers",)

    @property
    def n_clusters(self) -> int:
        return int(self.meta.options["n_clusters"])

    def build_pretrained(self, path: Path) -> nn.Module:
        """``path``: the HuBERT snapshot folder; a ``km.bin`` inside it is used if present."""
        path = Path(path)
        km = next((p for p in (path / "km.bin", path / Path(str(self.meta.options["kmeans_uri"])).name)
                   if path.is_dir() and p.exists()), None)
        if km is None:
            km = resolve_weights(kmeans_meta(self.meta))
        centroids = load_kmeans_centroids(km)
        hubert = load_hubert(path)
        if centroids.shape != (self.n_clusters, hubert.config.hidden_size):
            raise CodecError(f"{self.meta.id}: {km} has centroids {centroids.shape}, expected "
                             f"({self.n_clusters}, {hubert.config.hidden_size})")
        return HubertUnits(hubert, int(self.meta.options["layer"]), torch.from_numpy(centroids))

    def build_random(self) -> nn.Module:
        """Tiny HuBERT, random weights; centroids drawn from its layer-2 features on a probe signal."""
        from transformers import HubertModel

        hubert = HubertModel(tiny_hubert_config()).eval()
        model = HubertUnits(hubert, 2, torch.zeros(self.n_clusters, hubert.config.hidden_size))
        with torch.no_grad():
            feats = model.features(calibration_audio(16000, seconds=3.0))[0]  # [T, D]
            g = torch.Generator().manual_seed(self.n_clusters)
            pick = torch.randint(0, feats.shape[0], (self.n_clusters,), generator=g)
            jitter = 0.3 * feats.std(dim=0, keepdim=True) * torch.randn(self.n_clusters, feats.shape[1], generator=g)
            model.centroids.copy_(feats[pick] + jitter)
        return model

    def frames_for(self, n_samples: int) -> int:
        return max(0, (n_samples - RECEPTIVE_FIELD) // HOP + 1)

    def encode_frames(self, audio: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        if audio.shape[-1] < RECEPTIVE_FIELD:
            raise CodecError(f"{self.meta.id}: input of {audio.shape[-1]} samples is shorter than "
                             f"HuBERT's {RECEPTIVE_FIELD}-sample receptive field")
        model = self._require_model()
        return model(audio)

    def decode_frames(self, codes: torch.Tensor) -> torch.Tensor:
        raise CodecError(f"{self.meta.id}: no unit vocoder — HuBERT k-means units are encode-only "
                         "(decodable=False); use them for token tasks, not reconstruction")

