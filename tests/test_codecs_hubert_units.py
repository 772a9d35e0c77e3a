"""HuBERT k-means units: safe k-means reading, encode-side conformance, strict loading, no decode.

The op-points are declared ``decodable=False``: tests/test_conformance.py runs only the
encode-side checks on them; the ones here add the safe k-means reader and strict loading.
"""

from __future__ import annotations

import io
import math
import pickle
import sys
import types

import numpy as np
import pytest
import torch

from bench.codecs import codecs
from bench.codecs.conformance import speech_inputs
from bench.errors import CodecError

OP_POINTS = ["hubert_km50@282bps", "hubert_km100@332bps", "hubert_km200@382bps", "hubert_km500@448bps"]


@pytest.fixture(scope="module")
def hu():
    import bench.codecs.hubert_units as module  # registers the op-points

    return module


pytestmark = pytest.mark.usefixtures("one_thread")


# -- restricted k-means reader ----------------------------------------------------------------


@pytest.fixture
def standin(monkeypatch):
    """A class that pickles as ``sklearn.cluster._kmeans.MiniBatchKMeans`` (module swapped in)."""
    module = types.ModuleType("sklearn.cluster._kmeans")

    class MiniBatchKMeans:
        set_state_called = False

        def __init__(self, centers: np.ndarray):
            self.cluster_centers_ = centers
            self.inertia_ = np.float64(12.5)
            self.n_iter_ = 7
            self.labels_ = np.arange(6, dtype=np.int32)
            self.counts_ = np.ones(len(centers), dtype=np.float64)
            self._sklearn_version = "0.24.2"

        def __setstate__(self, state):  # must never run while reading
            type(self).set_state_called = True
            self.__dict__.update(state)

    MiniBatchKMeans.__module__ = module.__name__
    MiniBatchKMeans.__qualname__ = "MiniBatchKMeans"
    module.MiniBatchKMeans = MiniBatchKMeans
    monkeypatch.setitem(sys.modules, module.__name__, module)
    return MiniBatchKMeans


CENTERS = np.random.default_rng(0).standard_normal((5, 3)).astype(np.float32)


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_plain_pickle_of_a_kmeans_yields_its_centroids_without_running_it(tmp_path, standin, protocol, hu):
    path = tmp_path / "km.bin"
    path.write_bytes(pickle.dumps(standin(CENTERS.astype(np.float64)), protocol=protocol))
    standin.set_state_called = False
    cls_name, state = hu.read_kmeans_state(path)
    assert cls_name == "MiniBatchKMeans" and not standin.set_state_called
    assert state["n_iter_"] == 7 and state["inertia_"] == 12.5 and state["labels_"].tolist() == list(range(6))
    got = hu.load_kmeans_centroids(path)
    assert got.dtype == np.float32 and np.array_equal(got, CENTERS)


@pytest.mark.parametrize("compress", [0, 3])
def test_joblib_dump_is_read_with_its_out_of_band_arrays(tmp_path, standin, compress, hu):
    joblib = pytest.importorskip("joblib")
    path = tmp_path / "km.bin"
    fortran = np.asfortranarray(np.arange(24, dtype=np.float64).reshape(4, 6))
    joblib.dump(standin(fortran), path, compress=compress)
    standin.set_state_called = False
    assert np.array_equal(hu.load_kmeans_centroids(path), fortran.astype(np.float32))
    assert not standin.set_state_called


def test_real_sklearn_minibatch_kmeans_from_joblib(tmp_path, hu):
    joblib = pytest.importorskip("joblib")
    cluster = pytest.importorskip("sklearn.cluster")
    x = np.random.default_rng(1).standard_normal((200, 4))
    km = cluster.MiniBatchKMeans(n_clusters=6, random_state=0, n_init=1, batch_size=64).fit(x)
    joblib.dump(km, tmp_path / "km.bin")
    np.testing.assert_array_equal(hu.load_kmeans_centroids(tmp_path / "km.bin"), km.cluster_centers_.astype(np.float32))


class _Evil:
    def __init__(self, target: str):
        self.target = target

    def __reduce__(self):
        import os

        return (os.system, (f"touch {self.target}",))


def test_malicious_reduce_is_refused_and_never_runs(tmp_path, hu):
    marker = tmp_path / "pwned"
    path = tmp_path / "km.bin"
    path.write_bytes(pickle.dumps(_Evil(str(marker)), protocol=4))
    with pytest.raises(pickle.UnpicklingError, match="refused global (posix|os|nt).system"):
        hu.load_kmeans_centroids(path)
    assert not marker.exists()
    with pytest.raises(Exception, match="refused global"):  # stdlib pickle would have run it
        hu._RestrictedUnpickler(io.BytesIO(path.read_bytes())).load()
    assert not marker.exists()


def test_malicious_object_inside_the_kmeans_state_is_refused(tmp_path, standin, hu):
    marker = tmp_path / "pwned"
    km = standin(CENTERS)
    km.init = _Evil(str(marker))
    path = tmp_path / "km.bin"
    path.write_bytes(pickle.dumps(km, protocol=4))
    with pytest.raises(pickle.UnpicklingError, match="refused global"):
        hu.load_kmeans_centroids(path)
    assert not marker.exists()


def test_other_payloads_are_refused(tmp_path, standin, hu):
    path = tmp_path / "km.bin"
    path.write_bytes(pickle.dumps({"cluster_centers_": CENTERS}))
    with pytest.raises(pickle.UnpicklingError, match="not a KMeans"):
        hu.load_kmeans_centroids(path)
    path.write_bytes(pickle.dumps(standin(np.array([[1, "x"]], dtype=object))))
    with pytest.raises(pickle.UnpicklingError, match="refused"):
        hu.load_kmeans_centroids(path)
    path.write_bytes(pickle.dumps(standin(np.arange(4.0))))  # 1-D: not centroids
    with pytest.raises(pickle.UnpicklingError, match="cluster_centers_"):
        hu.load_kmeans_centroids(path)
    path.write_bytes(pickle.dumps(standin(CENTERS))[:-20])
    with pytest.raises(pickle.UnpicklingError):
        hu.load_kmeans_centroids(path)


# -- op-points --------------------------------------------------------------------------------


def test_registered_op_points_rates_layers_and_encode_only_flag(hu):
    assert sorted(n for n, op in codecs.items() if op.meta.family == "hubert_units") == sorted(OP_POINTS)
    metas = {codecs.get(n).meta.options["n_clusters"]: codecs.get(n).meta for n in OP_POINTS}
    assert sorted(metas) == [50, 100, 200, 500]
    expected_bps = {50: 282.2, 100: 332.2, 200: 382.2, 500: 448.3}
    for k, meta in metas.items():
        assert meta.codebook_sizes == (k,) and meta.frame_rate == 50.0
        assert meta.bitrate_bps == pytest.approx(expected_bps[k], abs=0.05) == meta.nominal_bitrate_bps
        assert meta.decodable is False
        assert meta.options["layer"] == (9 if k == 500 else 6)
        assert meta.options["kmeans_uri"].startswith("https://dl.fbaipublicfiles.com/")
    transformers = pytest.importorskip("transformers")
    with torch.device("meta"):
        base = transformers.HubertModel(transformers.HubertConfig())  # defaults = HuBERT-base
    assert sum(p.numel() for p in base.parameters()) == metas[50].n_params


@pytest.fixture(scope="module")
def loaded(hu):
    pytest.importorskip("transformers")
    out = {}
    for name in OP_POINTS:
        codec = codecs.get(name).build()
        codec.load(random_init=True)
        out[name] = codec
    return out


def _batch(items: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    lengths = torch.tensor([x.shape[-1] for x in items])
    out = torch.zeros(len(items), 1, int(lengths.max()))
    for i, x in enumerate(items):
        out[i, :, : x.shape[-1]] = torch.from_numpy(x)
    return out, lengths


@pytest.mark.parametrize("name", OP_POINTS)
def test_encode_side_conformance_random_init(loaded, name):
    """What check_codec verifies, minus decoding: determinism, batch == singles, varied codes, rate."""
    codec = loaded[name]
    meta = codec.meta
    inputs = speech_inputs(meta.sample_rate, 1)
    with torch.inference_mode():
        enc = codec.encode(*_batch(inputs))
        again = codec.encode(*_batch(inputs))
        singles = [codec.encode(*_batch([x])) for x in inputs]
    assert torch.equal(enc.codes, again.codes)
    for i, (x, s) in enumerate(zip(inputs, singles, strict=True)):
        n = x.shape[-1]
        assert int(enc.lengths[i]) == (n - 400) // 320 + 1 == int(s.lengths[0])
        assert torch.equal(enc.item(i), s.item(0))
        for view in ("quantized", "unquantized"):
            torch.testing.assert_close(enc.latents[view][i, :, : int(enc.lengths[i])], s.latents[view][0])
    k = meta.codebook_sizes[0]
    assert enc.codes.shape[1] == 1 and int(enc.codes.max()) < k and int(enc.codes.min()) >= 0
    assert torch.unique(enc.codes[:, 0, : int(enc.lengths.min())]).numel() > min(10, k // 5)
    rates = [m.payload_bps for m in codec.measure(enc)]
    mean_rate = float(np.average(rates, weights=[x.shape[-1] for x in inputs]))
    slack = max(meta.sample_rate / x.shape[-1] for x in inputs) * 320 / meta.sample_rate
    assert abs(mean_rate - meta.nominal_bitrate_bps) <= (0.01 + slack) * meta.nominal_bitrate_bps
    assert mean_rate == pytest.approx(meta.bitrate_bps, rel=0.03)


def test_quantized_latent_is_the_chosen_centroid(loaded):
    codec = loaded["hubert_km100@332bps"]
    x = speech_inputs(16000, 1)[0]
    enc = codec.encode(*_batch([x]))
    cents = codec.model.centroids
    torch.testing.assert_close(enc.latents["quantized"][0].t(), cents[enc.codes[0, 0]])
    feats = enc.latents["unquantized"][0].t()
    assert torch.equal(torch.cdist(feats, cents).argmin(-1), enc.codes[0, 0])


@pytest.mark.parametrize("name", OP_POINTS[:1])
def test_decode_is_refused_with_a_clear_error(loaded, name):
    codec = loaded[name]
    x = speech_inputs(16000, 1)[0]
    enc = codec.encode(*_batch([x]))
    with pytest.raises(CodecError, match="encode-only"):
        codec.decode(enc)


def test_too_short_input_is_a_codec_error(loaded):
    codec = loaded[OP_POINTS[0]]
    with pytest.raises(CodecError, match="receptive field"):
        codec.encode(torch.zeros(1, 1, 399), torch.tensor([399]))
    assert codec.frames_for(399) == 0 and codec.frames_for(400) == 1 and codec.frames_for(16000) == 49


# -- pretrained path with a synthetic snapshot ------------------------------------------------


def _snapshot(hu, tmp_path, standin, n_layers: int, k: int):
    transformers = pytest.importorskip("transformers")
    cfg = hu.tiny_hubert_config()
    cfg.num_hidden_layers = n_layers
    torch.manual_seed(3)
    model = transformers.HubertModel(cfg).eval()
    folder = tmp_path / "hubert"
    folder.mkdir()
    cfg.to_json_file(str(folder / "config.json"))
    legacy = {}
    for key, value in model.state_dict().items():  # the old weight-norm names HF checkpoints carry
        key = key.replace("parametrizations.weight.original0", "weight_g")
        legacy[key.replace("parametrizations.weight.original1", "weight_v")] = value
    torch.save(legacy, folder / "pytorch_model.bin")
    centers = np.random.default_rng(k).standard_normal((k, cfg.hidden_size)) * 0.5
    (folder / "km.bin").write_bytes(pickle.dumps(standin(centers), protocol=4))
    return folder, model, torch.from_numpy(centers).float()


def test_pretrained_snapshot_loads_strictly_and_matches_a_reference(tmp_path, standin, hu):
    folder, reference, centers = _snapshot(hu, tmp_path, standin, n_layers=7, k=50)
    codec = codecs.get("hubert_km50@282bps").build()
    codec.load(weights=folder)
    assert len(codec.model.hubert.encoder.layers) == 6  # cut after GSLM's layer 6
    x = torch.from_numpy(speech_inputs(16000, 1)[1])[None]
    enc = codec.encode(x, torch.tensor([x.shape[-1]]))
    with torch.no_grad():
        feats = reference(x[:, 0], output_hidden_states=True).hidden_states[6][0]
    torch.testing.assert_close(enc.latents["unquantized"][0].t(), feats, rtol=1e-4, atol=1e-5)
    assert torch.equal(enc.codes[0, 0], torch.cdist(feats, centers).argmin(-1))


def test_pretrained_with_wrong_centroids_or_keys_is_refused(tmp_path, standin, hu):
    folder, _, _ = _snapshot(hu, tmp_path, standin, n_layers=6, k=40)
    with pytest.raises(CodecError, match="centroids"):
        codecs.get("hubert_km50@282bps").build().load(weights=folder)
    state = torch.load(folder / "pytorch_model.bin", weights_only=True)
    state["encoder.extra.weight"] = torch.zeros(1)
    torch.save(state, folder / "pytorch_model.bin")
    (folder / "km.bin").write_bytes(pickle.dumps(standin(np.zeros((50, 32))), protocol=4))
    with pytest.raises(RuntimeError, match="Unexpected key"):
        codecs.get("hubert_km50@282bps").build().load(weights=folder)


def test_bitrate_formula(hu):
    for k, meta in ((k, codecs.get(n).meta) for n in OP_POINTS for k in [codecs.get(n).meta.options["n_clusters"]]):
        assert meta.bitrate_bps == pytest.approx(50 * math.log2(k))
