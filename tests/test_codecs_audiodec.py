"""AudioDec: checkpoint layout vs the official manifests, streaming semantics, release-zip loading,
and conformance of every op-point with the tiny random-init configuration."""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

import pytest
import torch

import bench.codecs.audiodec as ad
from bench.codecs import codecs
from bench.codecs._hifigan import HiFiGANVocoder
from bench.errors import WeightsUnavailableError

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "checkpoint_manifests"
FIXTURE = Path(__file__).parent / "fixtures" / "audiodec_state_dicts.json"
OP_POINTS = ["audiodec_24khz@6.4kbps", "audiodec_24khz_sym@6.4kbps", "audiodec_48khz@12.8kbps",
             "audiodec_48khz_sym@12.8kbps"]
# manifest name → how that released generator is built here (full configuration)
LAYOUTS = {
    "symAD_libritts_24000_hop300": lambda: ad.StreamGenerator(**ad.AUTOENCODER),
    "symAD_vctk_48000_hop300": lambda: ad.StreamGenerator(**ad.AUTOENCODER),
    "vocoder_AudioDec_v0_symAD_vctk_48000_hop300_clean": lambda: HiFiGANVocoder(**ad.VOCODERS["v0"]),
    "vocoder_AudioDec_v1_symAD_libritts_24000_hop300_clean": lambda: HiFiGANVocoder(**ad.VOCODERS["v1"]),
    "vocoder_AudioDec_v1_symAD_vctk_48000_hop300_clean": lambda: HiFiGANVocoder(**ad.VOCODERS["v1"]),
    "vocoder_AudioDec_v2_symAD_vctk_48000_hop300_clean": lambda: HiFiGANVocoder(**ad.VOCODERS["v2"]),
    "vocoder_AudioDec_v3_symADuniv_vctk_48000_hop300_clean": lambda: HiFiGANVocoder(**ad.VOCODERS["v3"]),
}


def _meta_build(name: str) -> torch.nn.Module:
    with torch.device("meta"):  # full size without allocating
        return LAYOUTS[name]()


def _lines(model: torch.nn.Module) -> list[str]:
    return [f"{k}:{','.join(map(str, v.shape))}" for k, v in model.state_dict().items()]


@pytest.mark.parametrize("name", sorted(LAYOUTS))
def test_state_dict_matches_committed_fixture(name):
    want = json.loads(FIXTURE.read_text())[name]
    model = _meta_build(name)
    lines = _lines(model)
    assert len(lines) == want["n_entries"]
    assert sum(p.numel() for p in model.parameters()) == want["n_parameters"]
    assert len(list(model.buffers())) == want["buffers"]
    shapes = {k: list(v.shape) for k, v in model.state_dict().items()}
    assert {k: shapes.get(k) for k in want["samples"]} == want["samples"]
    assert hashlib.sha256("\n".join(lines).encode()).hexdigest() == want["sha256"]


@pytest.mark.skipif(not SHARED.is_dir(), reason=f"official manifests not present at {SHARED}")
@pytest.mark.parametrize("name", sorted(LAYOUTS))
def test_state_dict_matches_official_manifest(name):
    manifest = json.loads((SHARED / f"audiodec__{name}.json").read_text())
    model = _meta_build(name)
    got = [(k, list(v.shape)) for k, v in model.state_dict().items()]
    assert got == [(k, s) for k, s, _ in manifest["state_dict"]]  # keys, shapes and order
    assert {k for k, _ in model.named_buffers()} == set(manifest["buffers_in_state_dict"])
    assert sum(p.numel() for p in model.parameters()) == manifest["n_parameters"]


def test_declared_rates_and_official_counts():
    expected = {"audiodec_24khz@6.4kbps": (24000, 80.0, 6400.0), "audiodec_24khz_sym@6.4kbps": (24000, 80.0, 6400.0),
                "audiodec_48khz@12.8kbps": (48000, 160.0, 12800.0),
                "audiodec_48khz_sym@12.8kbps": (48000, 160.0, 12800.0)}
    with torch.device("meta"):
        enc = ad.StreamGenerator(**ad.AUTOENCODER)
        v1 = HiFiGANVocoder(**ad.VOCODERS["v1"])
    used = sum(p.numel() for m in (enc.encoder, enc.projector) for p in m.parameters())
    for op_id, (sr, fr, bps) in expected.items():
        meta = codecs.get(op_id).meta
        assert (meta.sample_rate, meta.frame_rate, meta.bitrate_bps) == (sr, fr, bps)
        assert meta.nominal_bitrate_bps == bps and meta.codebook_sizes == (1024,) * 8
        assert meta.algorithmic_latency_s == pytest.approx(300 / sr)
        decoder = v1 if "sym" not in op_id else enc.decoder
        assert meta.n_params == used + sum(p.numel() for p in decoder.parameters())
        assert all(f.startswith("exp/") for f in meta.weights.files) and meta.weights.sha256 is None


def _tiny(model: str = "libritts_v1") -> ad.AudioDecPipeline:
    torch.manual_seed(0)
    pipe = ad.build_pipeline(model, tiny=True)
    ad._init_random(pipe)
    return pipe.eval()


@pytest.fixture(scope="module")
def tiny24():
    return _tiny()


def test_frames_for_matches_model_and_encoder_is_causal(tiny24, speechlike):
    codec = codecs.get("audiodec_24khz@6.4kbps").build()
    x = torch.from_numpy(speechlike(24000, 0.5))[None]
    with torch.inference_mode():
        full, _, _ = tiny24.encode(x)
        for n in (1, 299, 300, 301, 4500, 4801):
            codes, _, _ = tiny24.encode(x[..., :n])
            assert codes.shape[-1] == codec.frames_for(n) == -(-n // 300)
            # causal: a prefix codes like the start of the whole signal (frame j ends at sample 300 j)
            assert torch.equal(codes, full[..., : codes.shape[-1]])
        y = tiny24.decode(full)
    assert y.shape[-1] == full.shape[-1] * 300


def test_one_call_equals_hop_by_hop_streaming(tiny24, speechlike):
    """The demo codes a file in one call from the warm state; a live stream of 300-sample chunks
    carrying the causal contexts must give the same codes and audio."""
    x = torch.from_numpy(speechlike(24000, 0.3, seed=1))[None][..., :3000]
    with torch.inference_mode():
        codes, _, z = tiny24.encode(x)
        audio = tiny24.decode(codes)
        enc_warm, dec_warm = tiny24._warm_state(x.device)
        enc_ctx, dec_ctx = dict(enc_warm), dict(dec_warm)
        z_chunks, y_chunks = [], []
        for start in range(0, x.shape[-1], 300):
            zc = tiny24.analyzer.encode(x[..., start:start + 300], enc_ctx)
            cc, zq = tiny24.analyzer.quantizer.encode(zc)
            z_chunks.append(zc)
            y_chunks.append(tiny24.synthesizer.decode(tiny24.analyzer.quantizer.decode(cc), dec_ctx))
    torch.testing.assert_close(torch.cat(z_chunks, -1), z, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(torch.cat(y_chunks, -1), audio, rtol=1e-4, atol=1e-5)
    # the warm-up is not a no-op: starting from zero contexts changes the first frames
    with torch.inference_mode():
        cold = tiny24.analyzer.encode(x, {})
    assert not torch.allclose(cold[..., :2], z[..., :2])


# -- release zip in the official nested layout -----------------------------------------------------

def _training_checkpoint(generator: torch.nn.Module) -> dict:
    """What trainer/trainerGAN.py saves: model/optimizer/scheduler dicts, steps, epochs."""
    params = [p for p in generator.parameters()]
    opt = torch.optim.Adam([torch.nn.Parameter(p.detach().clone()) for p in params[:2]], lr=1e-4)
    opt.zero_grad()
    for p in opt.param_groups[0]["params"]:
        p.grad = torch.ones_like(p)
    opt.step()
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=[200000, 400000], gamma=0.5)
    return {"optimizer": {"generator": opt.state_dict(), "discriminator": opt.state_dict()},
            "scheduler": {"generator": sched.state_dict(), "discriminator": sched.state_dict()},
            "steps": 500000, "epochs": 42,
            "model": {"generator": generator.state_dict(), "discriminator": {"w": torch.zeros(3)}}}


@pytest.fixture()
def tiny_release(monkeypatch, tmp_path):
    """Official-size configs swapped for the tiny ones so a fake exp.zip stays small."""
    monkeypatch.setenv("CODECBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(ad, "AUTOENCODER", ad.TINY_AUTOENCODER)
    monkeypatch.setattr(ad, "VOCODERS", {**ad.VOCODERS, "v1": ad.TINY_VOCODER})
    return tmp_path


def _write_zip(path: Path, members: dict[str, dict]) -> None:
    with zipfile.ZipFile(path, "w") as zf:
        for name, ckpt in members.items():
            with zf.open(name, "w") as f:
                torch.save(ckpt, f)
        zf.writestr("exp/autoencoder/symAD_libritts_24000_hop300/config.yml", "model_type: symAudioDec\n")


@pytest.mark.parametrize("op_id", ["audiodec_24khz@6.4kbps", "audiodec_24khz_sym@6.4kbps"])
def test_release_zip_loads_strictly_and_decodes(tiny_release, op_id, speechlike):
    op = codecs.get(op_id)
    ref = _tiny(op.meta.options["model"])
    enc_file, dec_file = op.meta.weights.files
    archive = tiny_release / "exp.zip"
    _write_zip(archive, {enc_file: _training_checkpoint(ref.analyzer),
                         dec_file: _training_checkpoint(ref.synthesizer)})

    x = torch.from_numpy(speechlike(24000, 0.4))[None]
    with torch.inference_mode():
        want_codes, _, _ = ref.encode(x)
        want_audio = ref.decode(want_codes)
    for source in (archive, "folder"):
        codec = op.build()
        if source == "folder":  # the extracted release folder works too
            folder = tiny_release / "unpacked"
            zipfile.ZipFile(archive).extractall(folder)
            source = folder
        codec.load("cpu", weights=Path(source))
        for key, value in ref.state_dict().items():
            assert torch.equal(codec.model.state_dict()[key], value), key
        with torch.inference_mode():
            enc = codec.encode(x, torch.tensor([x.shape[-1]]))
            audio, lengths = codec.decode(enc)
        assert torch.equal(enc.item(0), want_codes[0])
        assert int(lengths[0]) == x.shape[-1]
        torch.testing.assert_close(audio[0, :, : x.shape[-1]], want_audio[0, :, : x.shape[-1]])
        assert enc.latents["quantized"].shape == (1, 16, want_codes.shape[-1])
    extracted = (tiny_release / "cache" / "weights" / "audiodec").rglob("*.pkl")
    assert {p.as_posix().split("/exp/", 1)[1] for p in extracted} == {f.removeprefix("exp/") for f in (enc_file, dec_file)}


def test_release_zip_rejects_traversal_missing_members_and_foreign_layouts(tiny_release):
    op = codecs.get("audiodec_24khz@6.4kbps")
    enc_file, dec_file = op.meta.weights.files
    ref = _tiny()
    evil = tiny_release / "evil.zip"
    _write_zip(evil, {"../" + enc_file.removeprefix("exp/"): _training_checkpoint(ref.analyzer),
                      dec_file: _training_checkpoint(ref.synthesizer)})
    with pytest.raises(WeightsUnavailableError, match="unsafe member"):
        op.build().load("cpu", weights=evil)
    assert not (tiny_release.parent / "autoencoder").exists()

    partial = tiny_release / "partial.zip"
    _write_zip(partial, {enc_file: _training_checkpoint(ref.analyzer)})
    with pytest.raises(WeightsUnavailableError, match="no member"):
        op.build().load("cpu", weights=partial)

    foreign = tiny_release / "foreign.zip"
    _write_zip(foreign, {enc_file: {"state": {"x": torch.zeros(1)}}, dec_file: {"state": {}}})
    with pytest.raises(WeightsUnavailableError, match="not an AudioDec checkpoint"):
        op.build().load("cpu", weights=foreign)

    with pytest.raises(WeightsUnavailableError, match="exp.zip"):
        op.build().load("cpu", weights=Path(__file__))


# Random-init conformance of every op-point runs in tests/test_conformance.py.

@pytest.mark.parametrize("transpose", [False, True])
def test_weight_norm_conv_equals_torch_weight_norm(transpose):
    """``weight_g`` / ``weight_v`` mean what torch.nn.utils.weight_norm (dim 0) stored in the release."""
    from bench.codecs._hifigan import WNConv1d

    torch.manual_seed(0)
    conv = WNConv1d(6, 4, 4, stride=2, transpose=transpose)
    with torch.no_grad():
        conv.weight_g.mul_(torch.rand_like(conv.weight_g) + 0.5)
    x = torch.randn(2, 6, 9)
    weight = torch._weight_norm(conv.weight_v, conv.weight_g, 0)
    fn = torch.nn.functional.conv_transpose1d if transpose else torch.nn.functional.conv1d
    torch.testing.assert_close(conv(x), fn(x, weight, conv.bias, 2))
