"""Codec-LMs and zero-shot TTS: tiny random models end to end, generated-folder adapter, list builders, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

import bench.lms.bark  # noqa: F401
import bench.lms.csm  # noqa: F401  (registers)
import bench.lms.dia  # noqa: F401
import bench.lms.moshi  # noqa: F401
import bench.lms.musicgen  # noqa: F401
import bench.lms.outputs  # noqa: F401
from bench.lms import lms
from bench.lms.base import GenerationRequest

pytest.importorskip("transformers")

EMBEDDED = Path(__file__).resolve().parents[1] / "data_manifests" / "embedded"
SURVEY = {"audiolm", "audiogen", "valle", "musiclm", "viola", "musicgen", "audiopalm", "speechx", "lauragpt",
          "uniaudio", "uslm", "moshi", "csm", "soundstorm", "bark", "dia"}


def _speech(seconds: float = 1.0, sr: int = 16000, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    return (0.2 * np.sin(2 * np.pi * 180 * t) * (1 + np.sin(2 * np.pi * 3 * t)) + 0.02 * rng.standard_normal(t.size)
            ).astype(np.float32)


def test_every_survey_model_has_a_row():
    families = {e.meta.family for _, e in lms.items()}
    assert families >= SURVEY
    for _, e in lms.items():
        assert e.meta.kind in ("model", "outputs")
        assert e.meta.tasks <= {"tts", "continuation", "text_to_music", "text_to_audio"} and e.meta.tasks
        assert e.meta.citation


@pytest.mark.parametrize("lm_id,task", [("musicgen-small", "text_to_music"), ("musicgen-melody", "text_to_music"),
                                        ("csm-1b", "tts"), ("bark-small", "tts"),
                                        ("dia-1.6b", "tts")])
def test_tiny_random_lm_text_to_audio(lm_id, task):
    lm = lms.get(lm_id).build()
    lm.load(random_init=True)
    req = dict(text="a short test", prompt_audio=_speech(1.0), prompt_sample_rate=16000, prompt_text="hello",
               max_duration_s=0.4)
    a = lm.generate(GenerationRequest(task, seed=1, **req))
    b = lm.generate(GenerationRequest(task, seed=1, **req))
    c = lm.generate(GenerationRequest(task, seed=2, **req))
    assert a.audio.ndim == 1 and np.all(np.isfinite(a.audio))
    assert 0.2 * a.sample_rate <= a.audio.size <= 1.0 * a.sample_rate
    assert np.sqrt(np.mean(a.audio ** 2)) > 1e-4
    np.testing.assert_array_equal(a.audio, b.audio)  # seeded
    assert a.audio.shape != c.audio.shape or not np.array_equal(a.audio, c.audio)
    r = lm.resynthesize(_speech(0.5), 16000)
    assert abs(r.audio.size - 0.5 * r.sample_rate) <= 0.02 * r.sample_rate and r.codes is not None
    with pytest.raises(Exception, match="does not do"):
        lm.generate(GenerationRequest("continuation", **req))


def test_tiny_random_moshi_continues_the_prompt():
    lm = lms.get("moshiko").build()
    lm.load(random_init=True)
    outputs_only = {e.meta.family for _, e in lms.items() if e.meta.kind == "outputs"}
    assert not outputs_only & {"moshi", "bark", "dia"}  # loadable now: no folder-only duplicate rows
    req = dict(prompt_audio=_speech(1.0), prompt_sample_rate=16000, max_duration_s=0.8)
    a = lm.generate(GenerationRequest("continuation", seed=1, **req))
    b = lm.generate(GenerationRequest("continuation", seed=1, **req))
    c = lm.generate(GenerationRequest("continuation", seed=2, **req))
    assert a.codes is not None and a.codes.shape[:2] == (1, 4) and a.codes.min() >= 0 and a.codes.max() < 64
    assert abs(a.audio.size - 0.8 * a.sample_rate) <= 0.1 * a.sample_rate  # continuation only, prompt cut off
    assert np.all(np.isfinite(a.audio)) and np.sqrt(np.mean(a.audio ** 2)) > 1e-4
    np.testing.assert_array_equal(a.audio, b.audio)
    assert not np.array_equal(a.codes, c.codes)
    r = lm.resynthesize(_speech(0.5), 16000)
    assert abs(r.audio.size - 0.5 * r.sample_rate) <= 0.02 * r.sample_rate and r.codes is not None
    with pytest.raises(Exception, match="does not do"):
        lm.generate(GenerationRequest("tts", text="hi", **req))
    with pytest.raises(Exception, match="needs prompt audio"):
        lm.generate(GenerationRequest("continuation", max_duration_s=0.5))


def _fake_librispeech(root: Path) -> Path:
    """A LibriSpeech-layout test-clean copy, built into a manifest like a user's (returns the manifest)."""
    from bench.data.builders import build

    durs = {"11-100": [4.5, 5.0, 2.0, 11.0], "22-200": [6.0, 4.2]}
    corpus = root / "LibriSpeech" / "test-clean"
    for chap, ds in durs.items():
        spk, ch = chap.split("-")
        d = corpus / spk / ch
        d.mkdir(parents=True)
        lines = []
        for i, dur in enumerate(ds):
            uid = f"{spk}-{ch}-{i:04d}"
            sf.write(d / f"{uid}.flac", _speech(dur, seed=i), 16000)
            lines.append(f"{uid} WORDS OF UTTERANCE {i}")
        (d / f"{spk}-{ch}.trans.txt").write_text("\n".join(lines) + "\n")
    return build("librispeech-test-clean", root, root / "librispeech-test-clean.jsonl").manifest


def test_librispeech_list_is_deterministic_and_follows_the_protocol(tmp_path):
    from bench.tasks.zero_shot_tts import manifest_list

    from bench.data import resolve_dataset

    ds = resolve_dataset(str(_fake_librispeech(tmp_path)))
    a, b = manifest_list(ds, seed=3), manifest_list(ds, seed=3)
    assert a == b
    ids = {e.id for e in a}
    assert "11-100-0002.cont" not in ids and "11-100-0003.cont" not in ids  # 2 s and 11 s are outside 4-10 s
    assert {"11-100-0000.cont", "11-100-0000.cross", "22-200-0001.cross"} <= ids
    for e in a:
        assert e.prompt_end == 3.0
        if e.setting == "cross":
            assert Path(e.prompt_path).name.split("-")[0] == e.speaker and e.prompt_path != e.target_path
        else:
            assert e.prompt_path == e.target_path


def test_seed_tts_eval_builds_a_manifest_whose_list_keeps_its_prompts(tmp_path):
    from bench.tasks.zero_shot_tts import manifest_list

    from bench.data import resolve_dataset
    from bench.data.builders import build
    from bench.errors import UsageError

    root = tmp_path / "seedtts_testset" / "en"
    (root / "prompt-wavs").mkdir(parents=True)
    (root / "wavs").mkdir()
    for i, name in enumerate(["p1", "p2"]):
        sf.write(root / "prompt-wavs" / f"{name}.wav", _speech(2.0, seed=i), 16000)
    sf.write(root / "wavs" / "u1.wav", _speech(3.0, seed=7), 16000)  # u2 has no ground truth: left out, reported
    (root / "meta.lst").write_text("u1|hi there|prompt-wavs/p1.wav|say this\nu2|again|prompt-wavs/p2.wav|and that\n"
                                   "broken line\n")
    result = build("seed-tts-eval-en", tmp_path, tmp_path / "seed.jsonl")
    assert result.items == 1 and any("u2: missing wavs/u2.wav" in p for p in result.problems)
    assert any("meta.lst:3" in p for p in result.problems)
    out = manifest_list(resolve_dataset(str(result.manifest)))
    assert [(e.id, e.setting, e.target_text, e.prompt_text) for e in out] == [("u1", "cross", "say this", "hi there")]
    assert Path(out[0].prompt_path) == (root / "prompt-wavs" / "p1.wav").resolve() and out[0].prompt_end is None
    with pytest.raises(UsageError, match="no checksummed official archive"):
        from bench.data.download import download

        download("seed-tts-eval-en", tmp_path / "dl")


def _subset_manifest(folder: Path, n_per_speaker: int = 2, speakers: int = 1) -> Path:
    rows = [json.loads(x) for x in (EMBEDDED / "manifest.jsonl").read_text().splitlines() if x.strip()]
    keep = []
    for spk in sorted({r["speaker"] for r in rows})[:speakers]:
        keep += [r for r in rows if r["speaker"] == spk][:n_per_speaker]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "audio").symlink_to(EMBEDDED / "audio")
    path = folder / "embedded-subset.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in keep))
    return path


def test_generated_folder_adapter_scores_files_and_fails_missing_ones(tmp_path):
    from bench.data import resolve_dataset
    from bench.task import tasks

    ds = resolve_dataset(str(_subset_manifest(tmp_path / "data")))
    task = tasks.get("zero_shot_tts")
    entries = task.entries(ds)
    assert len(entries) == 4 and entries[0].prompt_end == 1.5  # embedded corpus: 1.5 s prompts
    out = tmp_path / "valle_out"
    out.mkdir()
    present = entries[0]
    sf.write(out / f"{present.id}_0.wav", _speech(2.0, sr=24000, seed=5), 24000)
    lm = lms.get("valle").build()
    lm.load(path=out)
    ids = ["sim_o:resemblyzer", "sim_r:resemblyzer", "sim_o_ceiling:resemblyzer"]
    ok = {o.metric: o for o in task.evaluate_entry(lm, present, ids)}
    assert ok["sim_o:resemblyzer"].error is None and -1 <= ok["sim_o:resemblyzer"].value <= 1
    assert ok["sim_o_ceiling:resemblyzer"].value > ok["sim_o:resemblyzer"].value  # real speech vs a tone
    assert "no codec" in ok["sim_r:resemblyzer"].error
    missing = task.evaluate_entry(lm, entries[1], ids)
    assert all(o.value is None and f"{entries[1].id}_0.wav" in o.error for o in missing)


def test_cli_run_zero_shot_tts_end_to_end(tmp_path):
    from bench.cli import main

    data = _subset_manifest(tmp_path / "data", n_per_speaker=2, speakers=1)
    folder = tmp_path / "gen"
    folder.mkdir()
    for i, name in enumerate(sorted(json.loads(x)["id"] for x in data.read_text().splitlines())):
        for s in (0, 1):
            sf.write(folder / f"{name}.cross_{s}.wav", _speech(1.5, seed=10 * i + s), 16000)
    rc = main(["run", "--lms", "csm-1b,uslm,valle,musicgen-small", "--lm-random-init", "--lm-path", f"valle={folder}",
               "--data", str(data), "--out", str(tmp_path / "run"), "--cache-dir", str(tmp_path / "cache"),
               "--report-dir", str(tmp_path / "report"), "--n-seeds", "2", "--lm-max-seconds", "1.0",
               "--workers", "1", "-q"])
    assert rc == 0
    res = pd.read_parquet(tmp_path / "run" / "results.parquet")
    csm = res[res.codec == "csm-1b"]
    assert len(csm) == 4 * 13 and (csm.status == "ok").all(), csm[csm.status != "ok"].error.unique()
    uslm = res[res.codec == "uslm"]  # ok with the 'valle' extra (CI), else every cell names the extra
    assert len(uslm) == 4 * 13 and ((uslm.status == "ok").all() or uslm.error.str.contains("codecbench\\[valle\\]").all())
    valle = res[res.codec == "valle"]
    assert (valle[valle.item_id.str.endswith(".cross")].metric.isin(["sim_o:resemblyzer"])).any()
    assert valle[valle.item_id.str.endswith(".cont")].error.str.contains("no generated file").all()
    assert res[res.codec == "musicgen-small"].error.str.contains("does not do 'tts'").all()
    summary = pd.read_csv(tmp_path / "run" / "summary.csv")
    row = summary[(summary.codec == "csm-1b") & (summary.metric == "wer:pocketsphinx")]
    assert len(row) == 1 and row.ci_low.iloc[0] <= row["mean"].iloc[0] <= row.ci_high.iloc[0]
    assert {"wer_ceiling:pocketsphinx", "wer_resyn:pocketsphinx", "sim_o:resemblyzer", "sim_r:resemblyzer"} <= set(
        summary[summary.codec == "csm-1b"].metric)
    resyn = summary[(summary.codec == "csm-1b") & (summary.metric == "wer_resyn:pocketsphinx")].iloc[0]
    wide = csm.pivot_table(index="item_id", columns="metric", values="value")
    assert resyn["mean"] == pytest.approx(wide["asr_errors_resyn:pocketsphinx"].sum()
                                          / wide["asr_ref_words:pocketsphinx"].sum())
    html = (tmp_path / "report" / "index.html").read_text()
    assert "zero_shot_tts (codec-LM leaderboard)" in html and "Codec-LM metadata" in html
    for label in ("WER (pocketsphinx)", "WER ground truth (pocketsphinx)", "WER codec resynthesis (pocketsphinx)",
                  "SIM-r (resemblyzer)", "MOS codec resynthesis (dnsmos-ovrl)", "Tiny random-weight models"):
        assert label in html, label
    md = (tmp_path / "report" / "README.md").read_text()
    assert "codec-LM leaderboard" in md and "WER ground truth" in md and "Bitrate vs quality" not in md


def test_continuation_lists(tmp_path):
    from bench.data import resolve_dataset
    from bench.task import tasks

    task = tasks.get("continuation")
    ls = resolve_dataset(str(_fake_librispeech(tmp_path / "ls")))
    a = task.entries(ls)
    assert a == task.entries(ls)
    assert [e.id for e in a] == ["11-100-0000", "11-100-0001", "22-200-0000", "22-200-0001"]  # 4-10 s only
    assert all(e.prompt_end == 3.0 and e.prompt_path == e.target_path and e.setting == "continuation" for e in a)
    ds = resolve_dataset(str(_subset_manifest(tmp_path / "data", n_per_speaker=3)))
    entries = task.entries(ds)
    assert len(entries) == 3 and all(e.prompt_end == 1.5 and e.target_duration - 1.5 >= 1.0 for e in entries)


def test_cli_run_continuation_end_to_end(tmp_path):
    from bench.cli import main

    data = _subset_manifest(tmp_path / "data", n_per_speaker=2, speakers=1)
    names = sorted(json.loads(x)["id"] for x in data.read_text().splitlines())
    folder = tmp_path / "gen"
    folder.mkdir()
    sf.write(folder / f"{names[0]}_0.wav", _speech(1.5, seed=3), 16000)  # only the first utterance, seed 0
    rc = main(["run", "--lms", "moshiko,valle,csm-1b", "--tasks", "continuation", "--lm-random-init",
               "--lm-path", f"valle={folder}", "--data", str(data), "--out", str(tmp_path / "run"),
               "--cache-dir", str(tmp_path / "cache"), "--report-dir", str(tmp_path / "report"), "--n-seeds", "1",
               "--lm-max-seconds", "1.0", "--workers", "1", "-q"])
    assert rc == 0
    res = pd.read_parquet(tmp_path / "run" / "results.parquet")
    assert set(res.task) == {"continuation"}
    moshi = res[res.codec == "moshiko"]
    assert len(moshi) == 2 * 11 and (moshi.status == "ok").all(), moshi[moshi.status != "ok"].error.unique()
    sims = moshi[moshi.metric == "sim_o_ceiling:resemblyzer"].value
    assert ((sims > 0.3) & (sims <= 1.0)).all()  # the real continuation is the prompt's speaker
    valle = res[res.codec == "valle"]
    ok = valle[valle.item_id == names[0]].set_index("metric")
    assert ok.loc["sim_o:resemblyzer", "status"] == "ok" and "no codec" in ok.loc["sim_r:resemblyzer", "error"]
    assert valle[valle.item_id == names[1]].error.str.contains("no generated file").all()
    assert res[res.codec == "csm-1b"].error.str.contains("does not do 'continuation'").all()
    summary = pd.read_csv(tmp_path / "run" / "summary.csv")
    row = summary[(summary.codec == "moshiko") & (summary.metric == "wer:pocketsphinx")]
    assert len(row) == 1 and row.ci_low.iloc[0] <= row["mean"].iloc[0] <= row.ci_high.iloc[0]


def test_codec_lm_leaderboard_is_rebuilt_from_raw_rows(tmp_path):
    """A published codec-LM board: corpus WER ranked from stored counts, no bitrate ledger, refusals name --lms."""
    from bench.cli import main
    from bench.leaderboard.build import LeaderboardRefused, build

    data = _subset_manifest(tmp_path / "data", n_per_speaker=2, speakers=1)
    rows = [json.loads(x) for x in data.read_text().splitlines()]
    ids = sorted(r["id"] for r in rows)
    real = {r["id"]: str(EMBEDDED / r["audio"]) for r in rows}
    for lm_id, source in (("valle", "real"), ("viola", "noise")):  # two different outputs
        folder = tmp_path / lm_id
        folder.mkdir()
        for n, name in enumerate(ids):
            audio, sr = sf.read(real[name]) if source == "real" else (_speech(2.0, seed=n), 16000)
            sf.write(folder / f"{name}.cross.wav", audio, sr)
    metrics = "asr_errors:pocketsphinx,asr_ref_words:pocketsphinx,asr_errors_ceiling:pocketsphinx"
    common = ["--data", str(data), "--cache-dir", str(tmp_path / "cache"), "--no-report", "--workers", "1", "-q",
              "--tasks", "zero_shot_tts", "--metrics", metrics]
    assert main(["run", "--lms", "valle,viola", "--lm-path", f"valle={tmp_path / 'valle'}", "--lm-path",
                 f"viola={tmp_path / 'viola'}", "--out", str(tmp_path / "runs" / "a"), *common]) == 0
    res = pd.read_parquet(tmp_path / "runs" / "a" / "results.parquet")
    judge = res.loc[res.metric == "asr_errors:pocketsphinx", "judge"].iloc[0]
    dataset = res["dataset"].iloc[0]
    spec = {"name": "lm-board", "tasks": ["zero_shot_tts"], "datasets": [dataset],
            "metrics": ["wer:pocketsphinx", "wer_ceiling:pocketsphinx"],
            "judges": {"wer:pocketsphinx": judge, "wer_ceiling:pocketsphinx": judge},
            "lms": ["valle", "viola", "speechx"], "primary": "wer:pocketsphinx"}
    import yaml

    path = tmp_path / "lm-board.yaml"
    path.write_text(yaml.safe_dump(spec))
    with pytest.raises(LeaderboardRefused) as refused:
        build(path, [tmp_path / "runs"], root=tmp_path / "pub")
    assert any("--lms speechx" in p for p in refused.value.problems)  # the command that fills the gap

    spec["lms"] = ["valle", "viola"]
    path.write_text(yaml.safe_dump(spec))
    build(path, [tmp_path / "runs"], root=tmp_path / "pub")
    ranking = pd.read_csv(tmp_path / "pub" / "leaderboards" / "lm-board" / "ranking.csv")
    ok = res[(res.status == "ok") & res.item_id.str.endswith(".cross")]
    wide = ok.pivot_table(index=["codec", "item_id"], columns="metric", values="value")
    wer = wide.groupby("codec").sum()
    wer = wer["asr_errors:pocketsphinx"] / wer["asr_ref_words:pocketsphinx"]
    assert wer.nunique() == 2 and list(ranking["codec"]) == list(wer.sort_values().index)
    assert ranking["wer:pocketsphinx_mean"].tolist() == pytest.approx(wer.sort_values().tolist(), rel=1e-5)  # CSV: 6 digits
    md = (tmp_path / "pub" / "reports" / "lm-board" / "README.md").read_text()
    assert "| Rank | Codec-LM |" in md and "Bitrate ledger" not in md and "kbps" not in md.split("## Methods")[0]


def test_fetch_names_codec_lms_and_their_extra_sources(tmp_path, monkeypatch, capsys):
    """`codecbench fetch` takes codec-LM ids too and fetches what else they need (codec, text encoder)."""
    import huggingface_hub.constants

    from bench.cli import main

    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("CODECBENCH_CONFIG", str(tmp_path / "config.yaml"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    assert [m.id for m in lms.get("audiogen-medium").build().weight_sources()] == ["audiogen-medium", "t5-large"]
    assert [m.id for m in lms.get("uslm").build().weight_sources()] == ["uslm", "speechtokenizer@4kbps"]
    assert lms.get("valle").build().weight_sources() == []  # generated-folder rows fetch nothing
    assert main(["fetch", "g711@64kbps", "csm-1b", "valle"]) != 0
    out, err = capsys.readouterr()
    assert "1 op-point(s) or codec-LM(s) could not be fetched" in err
    assert "g711@64kbps: nothing to fetch" in out and "valle: nothing to fetch" in out
    assert "csm-1b:" in err and "hf://sesame/csm-1b" in err and "--lm-path csm-1b=PATH" in err


def test_cli_lists_codec_lms_with_availability(capsys):
    from bench.cli import main

    assert main(["lms", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {r["family"] for r in rows} >= SURVEY and len(rows) == len(lms.names())
    for r in rows:
        assert isinstance(r["available"], bool) and (r["available"] or r["reason"])


def test_generation_tasks_without_lms_use_every_loadable_codec_lm_that_does_them():
    from bench.cli import default_lms

    tts = default_lms(["zero_shot_tts"])
    assert {"csm-1b", "uslm", "valle-x", "dia-1.6b"} <= set(tts)
    assert not {"valle", "musicgen-small", "moshiko", "audiogen-medium"} & set(tts)  # folders, other tasks
    assert {"moshiko", "audiolm", "soundstorm"} <= set(default_lms(["continuation"]))
    assert default_lms(["reconstruction"]) == []
