"""End-to-end runs on tiny data: results, summary, cache, resume after kill -9, bad inputs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch

from bench.cli import main
from bench.codecs import codecs, register_codec
from bench.codecs.base import Bitstream, BitstreamCodec, Codec, CodecMeta
from bench.errors import CodecError
from bench.runner import codec_prefill
from bench.runner.executor import InlineExecutor, executors
from bench.runner.run import RunConfig, run
from bench.runner.store import read_results

FAST_METRICS = "si_sdr,mel_distance,stoi"


def speech_like(sr: int, seconds: float, f0: float = 120.0, seed: int = 0) -> np.ndarray:
    """A voiced, syllable-modulated harmonic signal: enough speech structure for PESQ/STOI."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(sr * seconds)) / sr
    pitch = f0 * (1 + 0.1 * np.sin(2 * np.pi * 0.7 * t))
    phase = 2 * np.pi * np.cumsum(pitch) / sr
    x = sum(np.sin(k * phase) / k for k in range(1, 25) if k * f0 < sr / 2.2)
    envelope = np.clip(np.sin(2 * np.pi * 3.0 * t), 0, None) ** 0.7
    return (0.3 * x * envelope / np.max(np.abs(x)) + 0.002 * rng.standard_normal(t.size)).astype(np.float32)


def write_manifest(root: Path, rows: list[dict] | list[str]) -> Path:
    path = root / "manifest.jsonl"
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


@pytest.fixture
def tiny_data(tmp_path: Path) -> Path:
    """Three 1.2 s utterances at different rates and formats."""
    root = tmp_path / "data"
    root.mkdir()
    sf.write(root / "a.wav", speech_like(16000, 1.2, 110), 16000, subtype="PCM_16")
    sf.write(root / "b.flac", speech_like(22050, 1.2, 180, 1), 22050, subtype="PCM_24")
    sf.write(root / "c.wav", speech_like(48000, 1.2, 140, 2), 48000, subtype="FLOAT")
    return root


def run_cli(*args: str) -> int:
    return main(["run", "--quiet", "--no-report", *args])


def test_run_writes_results_summary_and_rerun_computes_nothing(tiny_data, tmp_path):
    out, cache = tmp_path / "run", tmp_path / "cache"
    common = ["--data", str(tiny_data), "--codecs", "g711@64kbps,opus@12kbps", "--metrics", FAST_METRICS,
              "--workers", "1", "--cache-dir", str(cache)]
    assert run_cli(*common, "--out", str(out)) == 0
    df = pd.read_parquet(out / "results.parquet")
    assert len(df) == 3 * 2 * 3 and df["row_key"].is_unique
    assert (df["status"] == "ok").all(), df[df.status != "ok"][["codec", "item_id", "metric", "error"]]
    assert {"provenance", "git_hash", "measured_bitrate_bps"} <= set(df.columns)
    enc = pd.read_parquet(out / "encodings.parquet")
    assert len(enc) == 6 and enc["row_key"].is_unique and (enc["n_frames"] > 0).all()
    assert enc["codes_path"].isna().all()  # classic codecs emit packets, not token codes
    opus = enc[enc.codec == "opus@12kbps"]
    assert np.allclose(opus.n_frames, np.ceil(opus.n_samples / 320), atol=2)  # 20 ms packets at 16 kHz
    summary = pd.read_csv(out / "summary.csv")
    assert set(summary["codec"]) == {"g711@64kbps", "opus@12kbps"}
    stats = json.loads((out / "run.json").read_text())["stats"]
    assert stats["cells_computed"] == 18 and stats["codec_items_computed"] == 6

    # same command again: the run directory is complete, nothing is computed
    assert run_cli(*common, "--out", str(out)) == 0
    stats = json.loads((out / "run.json").read_text())["stats"]
    assert stats["cells_computed"] == 0 and stats["codec_items_computed"] == 0
    # a new run directory with the same cache: every cell comes from the cache
    assert run_cli(*common, "--out", str(tmp_path / "run2")) == 0
    stats = json.loads((tmp_path / "run2" / "run.json").read_text())["stats"]
    assert stats["cells_computed"] == 0 and stats["codec_items_computed"] == 0
    assert stats["cells_from_cache"] == 18
    df2 = pd.read_parquet(tmp_path / "run2" / "results.parquet")
    merged = df.merge(df2, on=["codec", "item_id", "metric"])
    assert np.allclose(merged["value_x"], merged["value_y"])
    # --no-cache recomputes
    assert run_cli(*common, "--out", str(tmp_path / "run3"), "--no-cache") == 0
    assert json.loads((tmp_path / "run3" / "run.json").read_text())["stats"]["cells_computed"] == 18


def test_parallel_workers_give_the_same_table(tiny_data, tmp_path):
    common = ["--data", str(tiny_data), "--codecs", "g722@64kbps", "--metrics", FAST_METRICS, "--no-cache"]
    assert run_cli(*common, "--workers", "1", "--out", str(tmp_path / "one")) == 0
    assert run_cli(*common, "--workers", "2", "--out", str(tmp_path / "two")) == 0
    cols = ["codec", "item_id", "metric", "value", "status"]
    one = pd.read_parquet(tmp_path / "one" / "results.parquet")[cols]
    two = pd.read_parquet(tmp_path / "two" / "results.parquet")[cols]
    pd.testing.assert_frame_equal(one, two)


def test_kill_9_then_resume_loses_and_duplicates_nothing(tmp_path):
    root = tmp_path / "data"
    root.mkdir()
    for i in range(16):
        sf.write(root / f"u{i:02d}.wav", speech_like(16000, 2.0, 100 + 7 * i, i), 16000)
    out, cache = tmp_path / "run", tmp_path / "cache"
    cmd = [sys.executable, "-m", "bench.cli", "run", "--quiet", "--no-report", "--data", str(root),
           "--codecs", "opus@8kbps,opus@16kbps", "--metrics", "pesq_wb,stoi,si_sdr", "--workers", "1",
           "--cache-dir", str(cache), "--out", str(out), "--flush-seconds", "0"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and len(read_results(out)) < 20:
        time.sleep(0.2)
        assert proc.poll() is None, "the run finished before it could be killed; make it longer"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    before = read_results(out)
    assert 20 <= len(before) < 96
    assert run_cli(*cmd[4:]) == 0
    after = pd.read_parquet(out / "results.parquet")
    assert len(after) == 96 and after["row_key"].is_unique
    assert (after["status"] == "ok").all()
    stats = json.loads((out / "run.json").read_text())["stats"]
    assert stats["cells_computed"] + stats["cells_from_cache"] == 96 - len(before)
    kept = before.set_index("row_key")["value"]
    assert np.allclose(after.set_index("row_key").loc[kept.index, "value"], kept)


# -- bad input: each gives a clear message, the run goes on, nothing computed is lost ------------

def _rows(out: Path) -> pd.DataFrame:
    return pd.read_parquet(out / "results.parquet")


def _run_manifest(tmp_path: Path, rows: list, files: dict[str, np.ndarray | bytes], metrics: str = "si_sdr",
                  codecs_: str = "g711@64kbps") -> pd.DataFrame:
    root = tmp_path / "data"
    root.mkdir(exist_ok=True)
    for name, content in files.items():
        if isinstance(content, bytes):
            (root / name).write_bytes(content)
        else:
            sf.write(root / name, content, 16000)
    manifest = write_manifest(root, rows)
    out = tmp_path / "out"
    assert run_cli("--data", str(manifest), "--codecs", codecs_, "--metrics", metrics, "--workers", "1",
                   "--no-cache", "--out", str(out)) == 0
    return _rows(out)


GOOD = {"id": "good", "audio": "good.wav"}


def _good_file() -> dict[str, np.ndarray]:
    return {"good.wav": speech_like(16000, 1.0)}


def _failed(df: pd.DataFrame, item: str) -> str:
    sel = df[df.item_id == item]
    assert len(sel) and (sel.status == "error").all() and sel.value.isna().all(), sel
    assert (df[df.item_id == "good"].status == "ok").all()
    return sel.error.iloc[0]


def test_missing_file(tmp_path):
    df = _run_manifest(tmp_path, [GOOD, {"id": "gone", "audio": "gone.wav"}], _good_file())
    assert "not found" in _failed(df, "gone")


def test_corrupt_and_truncated_wav(tmp_path):
    wav = (tmp_path / "t.wav")
    sf.write(wav, speech_like(16000, 1.0), 16000)
    files = {**_good_file(), "trunc.wav": wav.read_bytes()[:30], "junk.wav": b"RIFF\x00\x00garbage" * 10}
    df = _run_manifest(tmp_path, [GOOD, {"id": "trunc", "audio": "trunc.wav"}, {"id": "junk", "audio": "junk.wav"}],
                       files)
    assert "cannot decode" in _failed(df, "trunc") or "empty" in _failed(df, "trunc")
    assert "cannot decode" in _failed(df, "junk")


def test_zero_length_audio(tmp_path):
    df = _run_manifest(tmp_path, [GOOD, {"id": "empty", "audio": "empty.wav"}],
                       {**_good_file(), "empty.wav": np.zeros(0, np.float32)})
    assert "empty" in _failed(df, "empty") or "zero" in _failed(df, "empty")


def test_50ms_clip_and_digital_silence_fail_per_metric_with_reasons(tmp_path):
    files = {**_good_file(), "short.wav": speech_like(16000, 0.05), "silence.wav": np.zeros(16000, np.float32)}
    rows = [GOOD, {"id": "short", "audio": "short.wav"}, {"id": "silence", "audio": "silence.wav"}]
    df = _run_manifest(tmp_path, rows, files, metrics="pesq_wb,si_sdr,mel_distance")
    assert (df[df.item_id == "good"].status == "ok").all()
    silent = df[(df.item_id == "silence") & (df.metric == "pesq_wb")].iloc[0]
    assert silent.status == "error" and silent.error and pd.isna(silent.value)
    for _, row in df[df.item_id.isin(["short", "silence"])].iterrows():
        assert (row.status == "ok") == pd.isna(row.error)
        assert row.status == "error" or np.isfinite(row.value)


def test_clipped_square_wave_and_stereo_and_rates(tmp_path):
    root = tmp_path / "data"
    root.mkdir()
    t = np.arange(16000) / 16000
    square = np.clip(4 * np.sign(np.sin(2 * np.pi * 220 * t)), -1, 1).astype(np.float32)
    sf.write(root / "square.wav", square, 16000)
    stereo = np.stack([speech_like(44100, 1.0), speech_like(44100, 1.0, 200, 3)], axis=1)
    sf.write(root / "stereo.wav", stereo, 44100, subtype="PCM_24")
    sf.write(root / "nb.wav", speech_like(8000, 1.0), 8000)
    out = tmp_path / "out"
    assert run_cli("--data", str(root), "--codecs", "opus@16kbps", "--metrics", "si_sdr,stoi", "--workers", "1",
                   "--no-cache", "--out", str(out)) == 0
    df = _rows(out)
    assert set(df.item_id) == {"square", "stereo", "nb"}
    assert (df.status == "ok").all(), df[["item_id", "metric", "error"]]


NAN_META = CodecMeta(id="test-nan@1kbps", family="test", kind="bitstream", sample_rate=16000, bitrate_bps=1000)


@register_codec(NAN_META)
class NanCodec(BitstreamCodec):
    """A broken codec: its decoder returns NaN and Inf."""

    def encode_one(self, samples: np.ndarray) -> Bitstream:
        return Bitstream([b"\x00"], 8, 0, samples.shape[-1], 16000)

    def decode_one(self, bitstream: Bitstream) -> np.ndarray:
        out = np.zeros((1, bitstream.n_samples), np.float32)
        out[0, ::2] = np.nan
        out[0, 1::2] = np.inf
        return out


def test_nan_inf_codec_output_is_a_failed_cell(tmp_path):
    df = _run_manifest(tmp_path, [GOOD], _good_file(), codecs_="test-nan@1kbps,g711@64kbps")
    bad = df[df.codec == "test-nan@1kbps"].iloc[0]
    assert bad.status == "error" and "NaN" in bad.error
    assert (df[df.codec == "g711@64kbps"].status == "ok").all()


def test_path_escaping_root_duplicate_ids_and_malformed_line(tmp_path, caplog):
    rows = [GOOD, {"id": "escape", "audio": "../outside.wav"}, {"id": "abs", "audio": "/etc/passwd"},
            {"id": "good", "audio": "good.wav"}, '{"id": "broken", "audio": ']
    df = _run_manifest(tmp_path, rows, _good_file())
    assert "escapes the data root" in _failed(df, "escape")
    assert "absolute" in _failed(df, "abs")
    assert (df.item_id == "good").sum() == 1
    problems = json.loads((tmp_path / "out" / "run.json").read_text())["dataset"]["problems"]
    assert any("duplicate id 'good'" in p for p in problems)
    assert any("malformed JSON" in p for p in problems)


def test_unknown_codec_or_metric_is_a_usage_error_with_suggestion(tiny_data, tmp_path, capsys):
    assert run_cli("--data", str(tiny_data), "--codecs", "opus@6kbs", "--out", str(tmp_path / "x")) == 2
    assert "Did you mean 'opus@6kbps'" in capsys.readouterr().err
    assert run_cli("--data", str(tiny_data), "--codecs", "g711@64kbps", "--metrics", "pesq_wbb",
                   "--out", str(tmp_path / "y")) == 2
    assert "Did you mean 'pesq_wb'" in capsys.readouterr().err
    assert main(["run", "--data", str(tmp_path / "nope.jsonl"), "--out", str(tmp_path / "z")]) == 2


def test_codec_raising_on_one_item_fails_only_that_item(tmp_path):
    meta = CodecMeta(id="test-picky@1kbps", family="test", kind="bitstream", sample_rate=16000, bitrate_bps=1000)

    @register_codec(meta)
    class Picky(BitstreamCodec):
        def encode_one(self, samples):
            if samples.shape[-1] > 20000:
                raise CodecError("input longer than this codec accepts")
            quantized = np.round(samples * 127).astype(np.int8)  # lossy, so SI-SDR stays finite
            return Bitstream([quantized.tobytes()], 8 * quantized.size, 0, samples.shape[-1], 16000)

        def decode_one(self, b):
            return np.frombuffer(b.packets[0], np.int8).reshape(1, -1).astype(np.float32) / 127

    files = {**_good_file(), "long.wav": speech_like(16000, 1.5)}
    df = _run_manifest(tmp_path, [GOOD, {"id": "long", "audio": "long.wav"}], files, codecs_="test-picky@1kbps")
    assert "longer than this codec accepts" in _failed(df, "long")
    assert codecs.get("test-picky@1kbps").meta.family == "test"


ENC_ONLY = CodecMeta(id="test-units@400bps", family="test", kind="tokens", sample_rate=16000, bitrate_bps=400,
                     frame_rate=50.0, codebook_sizes=(256,), decodable=False)


@register_codec(ENC_ONLY)
class FrameEnergyUnits(Codec):
    """An encode-only tokenizer: one unit per 20 ms frame from its quantised log energy."""

    def encode(self, audio, lengths):
        from bench.codecs.base import Codes

        frames = [int(-(-int(n) // 320)) for n in lengths]
        codes = torch.zeros(len(frames), 1, max(frames), dtype=torch.long)
        for i, t in enumerate(frames):
            x = torch.nn.functional.pad(audio[i, 0, : int(lengths[i])], (0, t * 320 - int(lengths[i])))
            energy = 10 * torch.log10(x.reshape(t, 320).pow(2).mean(1) + 1e-10)
            codes[i, 0, :t] = ((energy + 100) * 2).clamp(0, 255).long()
        return Codes(codes, torch.tensor(frames), [int(n) for n in lengths])

    def decode(self, encoded):
        raise CodecError("encode-only")


def test_encode_only_codec_records_codes_and_fails_resynthesis_cells(tiny_data, tmp_path):
    out = tmp_path / "out"
    assert run_cli("--data", str(tiny_data), "--codecs", "test-units@400bps", "--metrics", "si_sdr",
                   "--workers", "1", "--no-cache", "--out", str(out)) == 0
    df = _rows(out)
    assert (df.status == "error").all() and df.error.str.contains("encode-only").all()
    enc = pd.read_parquet(out / "encodings.parquet")
    assert len(enc) == 3 and enc.codes_path.notna().all()
    codes = np.load(enc.codes_path.iloc[0])
    assert codes.shape[0] == 1 and len(np.unique(codes)) > 1
    assert np.allclose(enc.payload_bps, 400, rtol=0.05)


# -- codec jobs: an executor that takes them codes ahead into the cache, the driver codes nothing ---

class CodecJobsInline(InlineExecutor):
    """Takes codec jobs and runs them at once on CPU (as the Ray executor does without GPUs), recording each."""

    calls: list[tuple[str, bool, list[str]]] = []

    def submit_codec(self, fn, job, gpu):
        self.calls.append((job.op_id, gpu, [item_id for item_id, _ in job.items]))
        return self.submit(fn, replace(job, device="cpu"))


executors.register("inline-codec-jobs", lambda workers: CodecJobsInline())


def test_codec_jobs_fill_the_cache_the_driver_reads(tiny_data, tmp_path, monkeypatch):
    monkeypatch.setattr(codec_prefill, "BATCHES_PER_JOB", 1)  # one reference per job at batch size 1
    CodecJobsInline.calls = []
    config = RunConfig(codecs=["g711@64kbps", "test-units@400bps"], tasks=["reconstruction"], data=str(tiny_data),
                       out=tmp_path / "run", metrics=["si_sdr"], cache_dir=tmp_path / "cache", progress=False,
                       executor="inline-codec-jobs", batch_size=1,
                       device="cuda")  # no CUDA here: the driver's stage must never load a codec
    out = run(config)
    calls = CodecJobsInline.calls
    assert [(op, gpu) for op, gpu, _ in calls] == [("g711@64kbps", False)] * 3 + [("test-units@400bps", True)] * 3
    assert all(len(items) == 1 for _, _, items in calls)  # chunks of BATCHES_PER_JOB × batch size
    stats = json.loads((out / "run.json").read_text())["stats"]
    assert stats["codec_items_computed"] == stats["codec_items_computed_in_jobs"] == 6
    df = _rows(out)
    assert (df[df.codec == "g711@64kbps"].status == "ok").all(), df[["codec", "item_id", "error"]]
    assert df[df.codec == "test-units@400bps"].error.str.contains("encode-only").all()
    assert len(pd.read_parquet(out / "encodings.parquet")) == 6


def test_models_flush_denormals_only_inside_their_own_calls():
    """Flushing is process-wide: a neural codec or codec-LM must not leave it on for the metrics after it."""
    import torch

    from bench.codecs import codecs
    from bench.lms import lms
    from bench.lms.base import GenerationRequest
    from bench.numerics import flushed_denormals

    def flushing() -> bool:
        return (torch.tensor([1e-40]) * 1.0).item() == 0.0

    assert not flushing()
    with flushed_denormals():
        with flushed_denormals():
            assert flushing()
        assert flushing()  # nested: still on until the outer block ends
    assert not flushing()
    codec = codecs.get("encodec_24khz@1.5kbps").build()
    codec.load(random_init=True)
    codec.roundtrip([np.zeros((1, 2400), np.float32)])
    assert not flushing()
    lm = lms.get("musicgen-small").build()
    lm.load(random_init=True)
    assert not flushing()
    lm.generate(GenerationRequest("text_to_music", text="x", max_duration_s=0.2))
    assert not flushing()
