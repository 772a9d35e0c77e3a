"""audiolm-pytorch SoundStream: declared op-point, safe checkpoint reading, clear unavailability."""

from __future__ import annotations

import pickle

import pytest

from bench.codecs import codecs
from bench.codecs.soundstream_audiolm import DEFAULT_CONFIG, config_mismatch, read_config


def test_declared_bitrate_is_computed_from_the_default_config():
    meta = codecs.get("soundstream_audiolm@4kbps").meta
    assert meta.frame_rate == 50.0 and meta.n_codebooks == 8
    assert meta.bitrate_bps == meta.nominal_bitrate_bps == 4000


def test_config_bytes_are_read_without_running_code(tmp_path):
    config = dict(DEFAULT_CONFIG, strides=[2, 4, 5, 8], attn_window_size=128)
    assert read_config(pickle.dumps(config)) == config
    assert config_mismatch(read_config(pickle.dumps(config))) == []
    assert config_mismatch({**config, "rq_num_quantizers": 12}) == ["rq_num_quantizers=12 (op-point declares 8)"]

    marker = tmp_path / "ran"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    with pytest.raises(pickle.UnpicklingError, match="refused global"):
        read_config(pickle.dumps({"target_sample_hz": Evil()}))
    assert not marker.exists()


def test_unavailable_without_the_optional_extra_says_what_to_install():
    codec = codecs.get("soundstream_audiolm@4kbps").build()
    ok, why = codec.availability()
    if ok:
        pytest.skip("audiolm-pytorch is importable here")
    assert "audiolm" in why
    assert codec.weights_status() == (False, codec.weights_status()[1]) and "--weights" in codec.weights_status()[1]
