"""Lyra v2 (SoundStream, TFLite): the signature handling and call sequence against a mocked
interpreter (always), the pinned interface against the checkpoint manifest (when shared/ exists),
and the released models through the full conformance check (when a local copy exists:
``$LYRA_MODEL_DIR`` or the weights cache)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import make_speechlike

import bench.codecs.lyra as lyra
from bench.codecs import codecs
from bench.codecs.conformance import ConformanceReport, check_codec, run_checks
from bench.errors import CodecError, WeightsUnavailableError

IDS = ["lyra_soundstream@3.2kbps", "lyra_soundstream@6kbps", "lyra_soundstream@9.2kbps"]
MANIFEST = (Path(__file__).resolve().parents[1].parent / "shared" / "checkpoint_manifests"
            / "lyra_soundstream__lyra_v2_model_coeffs.json")


def _signature_rows(sigs: Any) -> list[tuple]:
    rows = []
    for name, per in sigs.items():
        for sig, (inputs, outputs) in per.items():
            for io, specs in (("in", inputs), ("out", outputs)):
                for key, (shape, dtype) in specs.items():
                    rows.append((name, sig, io, key, tuple(shape), dtype))
    return sorted(rows)


# -- a LiteRT stand-in that behaves like the released graphs' interface ------------------------
FAKE_BLOBS = {"soundstream_encoder.tflite": b"enc", "quantizer.tflite": b"quant", "lyragan.tflite": b"gan"}
_CODEBOOKS = np.random.default_rng(0).standard_normal((lyra.MAX_QUANTIZERS, 16, 64)).astype(np.float32)
_CODEBOOKS *= (0.7 ** np.arange(lyra.MAX_QUANTIZERS))[:, None, None].astype(np.float32)


class FakeRunner:
    def __init__(self, inputs, outputs, fn):
        self.inputs, self.outputs, self.fn = inputs, outputs, fn

    @staticmethod
    def _details(specs):
        return {k: {"shape": np.array(s, np.int32), "dtype": getattr(np, d)} for k, (s, d) in specs.items()}

    def get_input_details(self):
        return self._details(self.inputs)

    def get_output_details(self):
        return self._details(self.outputs)

    def __call__(self, **kwargs):
        assert set(kwargs) == set(self.inputs), kwargs.keys()
        for k, v in kwargs.items():
            shape, dtype = self.inputs[k]
            assert np.asarray(v).shape == tuple(shape) and np.asarray(v).dtype == np.dtype(dtype), (k, v)
        return self.fn(**kwargs)


class FakeInterpreter:
    """Streaming state inside the interpreter (like the real encoder and LyraGAN); call log."""

    log: list[tuple] = []
    shape_override: dict[str, tuple] = {}

    def __init__(self, content: bytes, xnnpack: bool):
        self.name = {v: k for k, v in FAKE_BLOBS.items()}[content]
        self.state = np.zeros(64, np.float32)
        FakeInterpreter.log.append(("create", self.name, xnnpack))

    def _encoder(self, input_audio):
        frame = input_audio.reshape(-1).astype(np.float64)
        feats = np.array([frame[i::5].sum() for i in range(64)], np.float32) * 4 + 0.3 * self.state
        self.state = feats
        return {"output_0": feats.reshape(1, 1, 64)}

    def _encode(self, input_frames, num_quantizers):
        n, residual = int(num_quantizers), input_frames.reshape(-1).copy()
        out = np.full((lyra.MAX_QUANTIZERS, 1, 1), -1, np.int32)
        for k in range(n):
            idx = int(np.argmin(((_CODEBOOKS[k] - residual) ** 2).sum(1)))
            out[k] = idx
            residual -= _CODEBOOKS[k, idx]
        FakeInterpreter.log.append(("encode", n))
        return {"output_0": out, "output_1": np.array(4, np.int32)}

    def _decode(self, encoding_indices):
        idx = encoding_indices.reshape(-1)
        FakeInterpreter.log.append(("decode", int((idx >= 0).sum()), bool((idx[(idx >= 0).sum():] == -1).all())))
        z = sum((_CODEBOOKS[k, i] for k, i in enumerate(idx) if i >= 0), np.zeros(64, np.float32))
        return {"output_0": z.reshape(1, 1, 64).astype(np.float32)}

    def _gan(self, input_audio):
        z = input_audio.reshape(-1) + 0.5 * self.state
        self.state = input_audio.reshape(-1).copy()
        return {"output_0": (0.05 * np.repeat(z, 5)).reshape(1, 320).astype(np.float32)}

    def get_signature_runner(self, sig: str = "serving_default"):
        inputs, outputs = lyra.SIGNATURES[self.name][sig]
        outputs = {**outputs, **FakeInterpreter.shape_override.get(f"{self.name}:{sig}", {})}
        fn = {("soundstream_encoder.tflite", "serving_default"): self._encoder,
              ("quantizer.tflite", "encode"): self._encode, ("quantizer.tflite", "decode"): self._decode,
              ("lyragan.tflite", "serving_default"): self._gan}[(self.name, sig)]
        return FakeRunner(inputs, outputs, fn)


def _mocked(name: str) -> lyra.LyraSoundStreamCodec:
    codec = codecs.get(name).build()
    assert isinstance(codec, lyra.LyraSoundStreamCodec)
    codec.runtime = lyra.LyraModels(FAKE_BLOBS, FakeInterpreter)
    codec.runtime.check_interface()
    FakeInterpreter.log = []
    return codec


def _inputs() -> list[np.ndarray]:
    x = make_speechlike(lyra.SAMPLE_RATE, 2.0)
    return [np.ascontiguousarray(x[:, :n]) for n in (16000, 21920, 27841)]


# -- metadata --------------------------------------------------------------------------------
def test_op_points_registered_with_computed_bitrates():
    rates = {n: codecs.get(n).meta for n in IDS}
    assert [m.bitrate_bps for m in rates.values()] == [3200.0, 6000.0, 9200.0]
    for m in rates.values():
        assert m.frame_rate == 50.0 and set(m.codebook_sizes) == {16}
        assert m.nominal_bitrate_bps == m.bitrate_bps and m.options["n_quantizers"] == len(m.codebook_sizes)
        assert m.weights and m.weights.revision == lyra.LYRA_COMMIT and lyra.LYRA_COMMIT in m.weights.uri
        assert m.causal and m.streaming and m.algorithmic_latency_s == 0.02
    assert lyra.LyraSoundStreamCodec.random_init_supported is False


def test_signatures_fixture():
    rows = _signature_rows(lyra.SIGNATURES)
    assert len(rows) == 10
    assert ("quantizer.tflite", "encode", "out", "output_0", (46, 1, 1), "int32") in rows
    assert ("lyragan.tflite", "serving_default", "out", "output_0", (1, 320), "float32") in rows
    digest = hashlib.sha256(repr(rows).encode()).hexdigest()[:16]
    assert digest == "981589fdd9c13c65", digest


def test_interface_matches_manifest():
    if not MANIFEST.is_file():
        pytest.skip(f"checkpoint manifest not here ({MANIFEST})")
    doc = json.loads(MANIFEST.read_text())
    assert doc["source_commit"] == lyra.LYRA_COMMIT
    want = {name: {sig: ({k: (tuple(s), d) for k, (s, d) in v["inputs"].items()},
                         {k: (tuple(s), d) for k, (s, d) in v["outputs"].items()})
                   for sig, v in m["signatures"].items()}
            for name, m in doc["tflite_models"].items() if "signatures" in m}
    assert _signature_rows(want) == _signature_rows(lyra.SIGNATURES)
    assert {n: m["sha256"] for n, m in doc["tflite_models"].items() if n.endswith(".tflite")} == dict(lyra.LYRA_FILES)
    cfg = doc["config"]
    assert (cfg["hop_length"], cfg["n_codebooks_max"], cfg["codebook_size"], cfg["latent_dim"]) == (
        lyra.HOP, lyra.MAX_QUANTIZERS, lyra.CODEBOOK_SIZE, lyra.FEATURES)
    assert {int(k): v for k, v in cfg["n_quantizers_per_bitrate"].items()} == {
        int(codecs.get(n).meta.bitrate_bps): codecs.get(n).meta.options["n_quantizers"] for n in IDS}


# -- mocked interpreter: call sequence and the codec contract ----------------------------------
@pytest.mark.parametrize("name", IDS)
def test_mocked_call_sequence_passes_conformance(name):
    codec = _mocked(name)
    n_q = codec.meta.options["n_quantizers"]
    report = ConformanceReport(name)
    run_checks(codec, _inputs(), report)
    assert report.passed, json.dumps(report.to_dict(), indent=1)
    encodes = [e for e in FakeInterpreter.log if e[0] == "encode"]
    decodes = [e for e in FakeInterpreter.log if e[0] == "decode"]
    assert encodes and all(n == n_q for _, n in encodes)
    assert decodes and all(n == n_q and tail_unused for _, n, tail_unused in decodes)
    # XNNPACK for encoder and LyraGAN, not for the quantizer (as lyra/*.cc create them)
    created = {(n, x) for e, n, x in (c for c in FakeInterpreter.log if c[0] == "create")}
    assert created == {("soundstream_encoder.tflite", True), ("lyragan.tflite", True), ("quantizer.tflite", False)}


def test_mocked_codes_latents_and_prefix_property():
    x = _inputs()[1]
    import torch

    encs = {}
    for name in IDS:
        codec = _mocked(name)
        encs[name] = codec.encode(torch.from_numpy(x)[None], torch.tensor([x.shape[-1]]))
    c16, c46 = encs[IDS[0]].codes, encs[IDS[2]].codes
    assert c16.shape == (1, 16, 69) and c46.shape == (1, 46, 69)  # ceil(21920 / 320) frames
    assert torch.equal(c46[:, :16], c16)  # residual VQ: a lower rate is a prefix of a higher one
    lat = encs[IDS[0]].latents
    assert lat["quantized"].shape == lat["unquantized"].shape == (1, 64, 69)
    assert not torch.equal(lat["quantized"], lat["unquantized"])


def test_fresh_state_per_item():
    """Streaming state must not leak from one item to the next (else batch != singles)."""
    codec = _mocked(IDS[0])
    x = _inputs()[0][0]
    a = codec.runtime.encode(np.pad(x, (0, 0)), 16)[0]
    b = codec.runtime.encode(np.pad(x, (0, 0)), 16)[0]
    assert np.array_equal(a, b)


def test_wrong_signature_is_refused():
    FakeInterpreter.shape_override = {"lyragan.tflite:serving_default": {"output_0": ((1, 640), "float32")}}
    try:
        with pytest.raises(CodecError, match="lyragan.tflite"):
            lyra.LyraModels(FAKE_BLOBS, FakeInterpreter).check_interface()
    finally:
        FakeInterpreter.shape_override = {}


def test_int16_grid_matches_upstream_conversions():
    x = np.array([0.0, 1.0, -1.0, 0.5, 1e-6, -2.0, 0.99999], np.float32)
    assert np.allclose(lyra.to_int16_unit(x) * 32768, [0, 32767, -32768, 16384, 0, -32768, 32767])
    y = np.array([0.7 / 32768, -0.7 / 32768, 1.5, -1.5], np.float32)
    assert np.allclose(lyra.from_unit_to_int16_grid(y) * 32768, [0, 0, 32767, -32768])  # truncation, clip


# -- no random init, and weights errors that say what to fetch ---------------------------------
def test_random_init_is_refused_with_reason():
    codec = codecs.get(IDS[1]).build()
    with pytest.raises(CodecError, match="TFLite"):
        codec.load(random_init=True)
    report = check_codec(codecs.get(IDS[1]), random_init=True)
    assert not report.passed and "random" in (report.error or "")


def test_missing_or_wrong_files_name_what_to_fetch(tmp_path, monkeypatch):
    monkeypatch.setenv("CODECBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("CODECBENCH_CONFIG", str(tmp_path / "none.yaml"))
    codec = codecs.get(IDS[0]).build()
    ok, why = codec.weights_status()
    assert not ok and "lyragan.tflite" in why and lyra.LYRA_COMMIT in why
    with pytest.raises(WeightsUnavailableError, match="raw.githubusercontent.com/google/lyra"):
        codec.resolve_model_dir(download=False)
    bad = tmp_path / "coeffs"
    bad.mkdir()
    for name in lyra.LYRA_FILES:
        (bad / name).write_bytes(b"not a model")
    with pytest.raises(WeightsUnavailableError, match="sha256"):
        codec.load(weights=bad)
    (bad / "soundstream_encoder.tflite").unlink()
    with pytest.raises(WeightsUnavailableError, match="no soundstream_encoder.tflite"):
        lyra.read_model_dir(bad)


# -- the released models, when a local copy exists --------------------------------------------
@pytest.fixture(scope="module")
def model_dir() -> Path:
    found = lyra.default_model_dir()
    if found is None:
        pytest.skip("no local copy of the Lyra v2 models: set LYRA_MODEL_DIR to google/lyra's "
                    "lyra/model_coeffs (or fetch them into the weights cache)")
    return found


@pytest.mark.parametrize("name", IDS)
def test_released_models_conform(name, model_dir):
    report = check_codec(codecs.get(name), weights=str(model_dir))
    assert report.passed, json.dumps(report.to_dict(), indent=1)


def test_released_models_reconstruct_speech(model_dir):
    import torch

    x = make_speechlike(lyra.SAMPLE_RATE, 2.0)
    codes = {}
    for name in IDS:
        codec = codecs.get(name).build()
        codec.load(weights=model_dir)
        enc = codec.encode(torch.from_numpy(x)[None], torch.tensor([x.shape[-1]]))
        codes[name] = enc.codes
        y, _ = codec.decode(enc)
        y = y[0, 0].numpy()
        # a GAN decoder does not match the waveform; it must keep the level and the envelope
        assert 0.3 < y.std() / x.std() < 2.0
        env_x = np.abs(x[0]).reshape(-1, 320).mean(1)
        env_y = np.abs(y).reshape(-1, 320).mean(1)
        assert np.corrcoef(env_x, env_y)[0, 1] > 0.8
    assert torch.equal(codes[IDS[2]][:, :16], codes[IDS[0]])
