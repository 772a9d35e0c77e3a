"""Weights resolution: clear offline errors, local overrides, and loading without unpickling code."""

from __future__ import annotations

import pickle

import pytest
import torch

from bench.codecs.base import CodecMeta, WeightsSource
from bench.codecs.weights import load_state_dict, resolve_weights
from bench.errors import WeightsUnavailableError


def meta(uri: str, **kw) -> CodecMeta:
    return CodecMeta(id="x@1kbps", family="x", kind="tokens", sample_rate=16000, bitrate_bps=1000,
                     weights=WeightsSource(uri, **kw))


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("CODECBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("CODECBENCH_CONFIG", str(tmp_path / "config.yaml"))


def test_missing_hub_weights_name_what_to_fetch_and_where():
    m = meta("hf://facebook/encodec_24khz", revision="c1dbe2a", files=("model.safetensors",))
    with pytest.raises(WeightsUnavailableError) as err:
        resolve_weights(m)
    text = str(err.value)
    assert "codecbench fetch x@1kbps" in text and "hf://facebook/encodec_24khz" in text
    assert "c1dbe2a" in text and "Hugging Face cache" in text and "--weights" in text


def test_unreachable_url_is_a_clear_error(tmp_path):
    m = meta("http://127.0.0.1:9/ckpt.pth", sha256="0" * 64)
    with pytest.raises(WeightsUnavailableError, match="cannot obtain weights.*codecbench fetch"):
        resolve_weights(m)


def test_url_download_verifies_sha256(tmp_path):
    src = tmp_path / "ckpt.pth"
    torch.save({"w": torch.ones(2)}, src)
    with pytest.raises(WeightsUnavailableError, match="does not match"):
        resolve_weights(meta(src.as_uri(), sha256="0" * 64))
    import hashlib

    good = hashlib.sha256(src.read_bytes()).hexdigest()
    path = resolve_weights(meta(src.as_uri(), sha256=good))
    assert torch.equal(load_state_dict(path)["w"], torch.ones(2))


def test_explicit_and_configured_weights(tmp_path):
    ckpt = tmp_path / "mine.safetensors"
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(3)}, str(ckpt))
    m = meta("hf://org/repo")
    assert resolve_weights(m, explicit=ckpt) == ckpt
    with pytest.raises(WeightsUnavailableError, match="does not exist"):
        resolve_weights(m, explicit=tmp_path / "nope.pt")
    (tmp_path / "config.yaml").write_text(f"weights:\n  x: {ckpt}\n")
    assert resolve_weights(m) == ckpt
    assert load_state_dict(ckpt)["w"].shape == (3,)


class Evil:
    def __reduce__(self):
        return (print, ("this must never run",))


def test_pickled_code_is_refused(tmp_path, capsys):
    path = tmp_path / "evil.pt"
    with open(path, "wb") as f:
        pickle.dump({"w": Evil()}, f)
    with pytest.raises(WeightsUnavailableError, match="refused"):
        load_state_dict(path)
    assert "this must never run" not in capsys.readouterr().out
