"""SNAC 24/32/44.1 kHz through the ``snac`` package: declared rates from the released configs, the
multi-scale codes layout, checkpoint loading (legacy weight-norm keys included), exact lengths,
seeded decoder noise, and the decoder's attention padding. Tiny random models, short inputs; the
full conformance check of every op-point runs in tests/test_conformance.py."""

from __future__ import annotations

import hashlib
import json
import math

import pytest
import torch
from conftest import make_speechlike

pytest.importorskip("snac")

import bench.codecs.snac as S  # noqa: E402
from bench.codecs import codecs  # noqa: E402
from bench.errors import CodecError  # noqa: E402

#: (parameter count, state_dict entries, sha256[:16] of the sorted key/shape list) of the released
#: architectures, built from CONFIGS on the meta device; the counts are the README's 19.8 M / 54.5 M.
RELEASED = {"snac_24khz": (19_842_914, 269, "9a3da8134fe72498"),
            "snac_32khz": (54_546_338, 286, "a0c2356cd705edc5"),
            "snac_44khz": (54_546_338, 286, "a0c2356cd705edc5")}


def _codec(name: str, random_init: bool = True):
    codec = codecs.get(name).build()
    codec.load(random_init=random_init)
    return codec


def test_declared_rates_follow_the_level_rates():
    m24, m32, m44 = (codecs.get(i).meta for i in S.SNAC_IDS)
    assert S.SNAC_IDS == ("snac_24khz@0.98kbps", "snac_32khz@1.9kbps", "snac_44khz@2.6kbps")
    # Σ_level rate × 12 bits: 24 kHz levels at 24000/512/{4,2,1} Hz
    assert m24.bitrate_bps == pytest.approx(sum(24000 / 512 / s * 12 for s in (4, 2, 1))) == 984.375
    assert m32.bitrate_bps == pytest.approx(sum(32000 / 384 / s * 12 for s in (8, 4, 2, 1))) == 1875.0
    assert m44.bitrate_bps == pytest.approx(sum(44100 / 384 / s * 12 for s in (8, 4, 2, 1)))
    assert (m24.n_codebooks, m32.n_codebooks, m44.n_codebooks) == (7, 15, 15)
    for m in (m24, m32, m44):
        assert m.nominal_bitrate_bps == pytest.approx(m.bitrate_bps)
        assert m.weights and m.weights.uri.startswith("hf://hubertsiuzdak/snac_") and len(m.weights.revision) == 40


@pytest.mark.parametrize("name", list(S.CONFIGS))
def test_released_architecture_fixture(name):
    from snac import SNAC

    with torch.device("meta"):
        model = SNAC(**S.CONFIGS[name])
    sd = model.state_dict()
    rows = sorted((k, tuple(v.shape)) for k, v in sd.items())
    n_params, n_keys, digest = RELEASED[name]
    assert sum(p.numel() for p in model.parameters()) == n_params == S.N_PARAMS[name]
    assert len(sd) == n_keys and hashlib.sha256(repr(rows).encode()).hexdigest()[:16] == digest
    assert ("quantizer.quantizers.0.codebook.weight", (4096, 8)) in rows


def test_flatten_is_level_by_level_in_time_order():
    cfg = S.CONFIGS["snac_24khz"]
    levels = [torch.arange(3)[None], 10 + torch.arange(6)[None], 100 + torch.arange(12)[None]]
    flat = S.flatten_levels(levels, cfg)
    assert flat.shape == (1, 7, 3)
    assert flat[0, :, 1].tolist() == [1, 12, 13, 104, 105, 106, 107]  # frame 1: 1 + 2 + 4 codes
    back = S.unflatten_levels(flat, cfg)
    assert all(torch.equal(a, b) for a, b in zip(back, levels, strict=True))


@pytest.mark.parametrize("name", ["snac_24khz@0.98kbps", "snac_32khz@1.9kbps"])
def test_random_roundtrip_lengths_codes_and_determinism(name):
    codec = _codec(name)
    sr = codec.meta.sample_rate
    coarse = sr / codec.meta.frame_rate
    x = torch.from_numpy(make_speechlike(sr, 0.4))[None]
    n = x.shape[-1]
    enc = codec.encode(x, torch.tensor([n]))
    assert enc.codes.shape == (1, codec.meta.n_codebooks, math.ceil(n / coarse))
    assert int(enc.codes.max()) < 4096 and len(torch.unique(enc.codes)) > 3
    y1, len1 = codec.decode(enc)
    torch.manual_seed(123)  # the caller's RNG stream is left alone
    y2, _ = codec.decode(enc)
    a = torch.rand(1)
    torch.manual_seed(123)
    assert torch.equal(a, torch.rand(1))
    assert int(len1[0]) == n and torch.equal(y1, y2)  # seeded decoder noise
    assert float(y1.std()) > 0.01 * float(x.std())


def test_attention_models_pad_codes_to_whole_windows():
    codec = _codec("snac_32khz@1.9kbps")
    codes = torch.randint(0, 4096, (1, 15, 5))  # 5 coarse frames: not a multiple of 4
    y = codec.decode_frames(codes)
    assert y.shape[-1] == 8 * 384 * 8  # padded to 8 coarse frames, trimmed later by decode()
    same_prefix = codec.decode_frames(torch.cat([codes, codes[..., -1:].expand(-1, -1, 3)], -1))
    assert torch.equal(y, same_prefix)


def test_checkpoint_loads_strictly_including_legacy_weight_norm_keys(tmp_path, monkeypatch):
    """The hub files are config.json + pytorch_model.bin; old-style weight_g / weight_v keys load too."""
    from snac import SNAC

    tiny = {**S.CONFIGS["snac_24khz"], **S.TINY}
    monkeypatch.setitem(S.CONFIGS, "snac_24khz", tiny)
    torch.manual_seed(1)
    ref = SNAC(**tiny).eval()
    legacy = {}
    for k, v in ref.state_dict().items():
        k = k.replace("parametrizations.weight.original0", "weight_g").replace("parametrizations.weight.original1",
                                                                                 "weight_v")
        legacy[k] = v
    (tmp_path / "config.json").write_text(json.dumps(tiny))
    torch.save(legacy, tmp_path / "pytorch_model.bin")
    codec = codecs.get("snac_24khz@0.98kbps").build()
    codec.load(weights=tmp_path)
    x = torch.from_numpy(make_speechlike(24000, 0.3))[None]
    with torch.inference_mode():
        assert torch.equal(codec.encode_frames(x), S.flatten_levels(ref.encode(x), tiny)[..., :4])
    torch.save({**legacy, "extra.weight": torch.zeros(1)}, tmp_path / "pytorch_model.bin")
    with pytest.raises(RuntimeError, match="extra.weight"):
        codec.load(weights=tmp_path)


def test_a_config_that_is_not_the_release_is_refused(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({**S.CONFIGS["snac_24khz"], "vq_strides": [8, 4, 2, 1]}))
    torch.save({}, tmp_path / "pytorch_model.bin")
    with pytest.raises(CodecError, match="vq_strides"):
        codecs.get("snac_24khz@0.98kbps").build().load(weights=tmp_path)
