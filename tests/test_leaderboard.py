"""A user-defined leaderboard built from a tiny real run; refusals; validation of submissions."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import soundfile as sf
import yaml
from conftest import make_speechlike

from bench.cli import main
from bench.errors import UsageError
from bench.leaderboard import LeaderboardRefused, build, load_spec, parse_spec, validate_results
from bench.runner.run import RunConfig, run
from bench.runner.schema import ROW_SCHEMA

OPS = ["opus@6kbps", "opus@12kbps", "opus@24kbps", "mp3@16kbps", "mp3@32kbps", "g711@64kbps"]
SPEC = {
    "name": "tiny",
    "title": "Tiny <b>board</b>",
    "tasks": ["reconstruction"],
    "datasets": ["tinyset"],
    "metrics": ["stoi", "si_sdr"],
    "op_points": ["opus@*kbps", "mp3@16kbps", "mp3@32kbps", "g711@64kbps"],
    "primary": "stoi",
    "reported": [{"codec": "opus@12kbps", "metric": "stoi", "value": 0.9, "dataset": "tinyset",
                  "source": {"repository": "example/opus-eval", "commit": "0123abc", "path": "table.csv"}}],
}


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("lb")
    data = root / "tinyset"
    data.mkdir()
    for i, f0 in enumerate((0, 1, 2)):
        sf.write(data / f"u{i}.wav", make_speechlike(16000, 1.5, seed=f0)[0], 16000, subtype="PCM_16")
    cfg = RunConfig(codecs=OPS, tasks=["reconstruction"], data=str(data), out=root / "runs" / "r1",
                    metrics=["stoi", "si_sdr"], workers=1, cache_dir=root / "cache", progress=False)
    return run(cfg)


def _spec_file(root: Path, doc: dict) -> Path:
    (root / "leaderboards").mkdir(parents=True, exist_ok=True)
    path = root / "leaderboards" / f"{doc['name']}.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def test_missing_op_points_are_named_with_the_command(tiny_run, tmp_path):
    spec = _spec_file(tmp_path, SPEC)  # opus@*kbps also names opus@8/16/32kbps, which were not run
    with pytest.raises(LeaderboardRefused) as exc:
        build(spec, [tiny_run.parent], root=tmp_path)
    text = str(exc.value)
    assert "missing: opus@8kbps on tinyset/reconstruction (no rows at all): stoi, si_sdr" in text
    assert "opus@6kbps on" not in text
    assert ("codecbench run --codecs opus@8kbps,opus@16kbps,opus@32kbps --tasks reconstruction "
            "--metrics stoi,si_sdr --data tinyset") in text
    assert not (tmp_path / "leaderboards" / "tiny").exists()


def test_build_writes_data_and_report(tiny_run, tmp_path, capsys):
    doc = {**SPEC, "op_points": ["opus@6kbps", "opus@12kbps", "opus@24kbps", "mp3@*2kbps", "mp3@16kbps", "g711@*"]}
    spec = _spec_file(tmp_path, doc)
    assert main(["leaderboard", "build", str(spec), "--runs", str(tiny_run), "--root", str(tmp_path)]) == 0
    data = tmp_path / "leaderboards" / "tiny"
    ranking = pd.read_csv(data / "ranking.csv")
    assert sorted(ranking["codec"]) == sorted(OPS)
    assert list(ranking["rank"]) == list(range(1, 7))
    assert ranking["stoi_mean"].is_monotonic_decreasing  # ranked by the primary metric, higher is better
    assert not ranking["flagged"].any()
    doc_json = json.loads((data / "leaderboard.json").read_text())
    assert doc_json["spec"]["primary"] == "stoi" and "PCHIP" in doc_json["methods"]["bd"]
    rq = {r["metric"]: r for r in doc_json["rate_quality"]}
    assert set(rq) == {"stoi", "si_sdr"} and rq["stoi"]["pareto"]
    bd = pd.read_csv(data / "bd.csv", dtype=str, keep_default_na=False)
    pair = bd[(bd["reference"] == "g711") & (bd["test"] == "opus") & (bd["metric"] == "stoi")].iloc[0]
    assert "at least 2" in pair["bd_rate_refused"]  # g711 has one op-point: refused, with the reason
    both = bd[(bd["reference"] == "mp3") & (bd["test"] == "opus")]
    assert all((r["bd_rate_pct"] != "") != bool(r["bd_rate_refused"]) for _, r in both.iterrows())
    reported = pd.read_csv(data / "reported.csv")
    assert reported.loc[0, "source"] == "example/opus-eval @ 0123abc: table.csv"
    assert reported.loc[0, "gap"] == pytest.approx(reported.loc[0, "reproduced"] - 0.9)
    html = (tmp_path / "reports" / "tiny" / "index.html").read_text()
    assert "Tiny &lt;b&gt;board&lt;/b&gt;" in html and "BD-rate matrix" in html and "Pareto front" in html
    readme = (tmp_path / "reports" / "tiny" / "README.md").read_text()
    assert "plots/01-stoi-rate-quality.png" in readme
    assert (tmp_path / "reports" / "tiny" / "plots" / "01-stoi-rate-quality.png").stat().st_size > 1000
    # rebuilding from the same rows gives the same data files
    before = (data / "ranking.csv").read_bytes()
    build(spec, [tiny_run], root=tmp_path)
    assert (data / "ranking.csv").read_bytes() == before


def test_flagged_bitrate_blocks_publication_unless_allowed(tiny_run, tmp_path):
    copy = tmp_path / "runs" / "r1"
    shutil.copytree(tiny_run, copy)
    meta = json.loads((copy / "run.json").read_text())
    for c in meta["codecs"]:
        if c["id"] == "opus@6kbps":
            c["bitrate_bps"] = 7000  # a declaration that disagrees with what the encoder emitted
    (copy / "run.json").write_text(json.dumps(meta))
    spec = _spec_file(tmp_path, {**SPEC, "op_points": OPS})
    with pytest.raises(LeaderboardRefused, match=r"bitrate flagged: opus@6kbps: declared 7 kbps"):
        build(spec, [copy], root=tmp_path)
    result = build(spec, [copy], root=tmp_path, allow_flagged=True)
    assert any("allow-flagged" in n for n in result.board.notes)
    assert "FLAGGED" in result.report.read_text()


def _rows(path: Path) -> pd.DataFrame:
    return pq.read_table(path).to_pandas()


def _write(df: pd.DataFrame, path: Path) -> Path:
    pq.write_table(pa.Table.from_pandas(df, schema=ROW_SCHEMA, preserve_index=False), path)
    return path


def test_validate_clean_and_broken_submissions(tiny_run, tmp_path, capsys):
    assert validate_results(tiny_run / "results.parquet") == []
    assert main(["leaderboard", "validate", str(tiny_run)]) == 0
    df = _rows(tiny_run / "results.parquet")
    broken = pd.concat([df.iloc[1:], df.iloc[[5]]], ignore_index=True)  # one cell gone, one twice
    broken.loc[broken["metric"] == "stoi", "judge"] = None
    broken.loc[broken.index[broken["metric"] == "stoi"][0], "judge"] = "some-model@v1"
    broken.loc[broken["codec"] == "g711@64kbps", "declared_bitrate_bps"] = 32000.0
    broken.loc[3, "provenance"] = None
    path = _write(broken, tmp_path / "sub.parquet")
    problems = validate_results(path)
    text = "\n".join(problems)
    first = df.iloc[0]
    assert f"missing cells: {first['codec']} × {first['metric']}" in text
    assert "duplicate cell" in text
    assert "judges: stoi mixes judges" in text
    assert "bitrate audit: g711@64kbps: declared 32 kbps" in text
    assert "provenance: 1 row(s) without provenance" in text
    assert main(["leaderboard", "validate", str(path)]) == 1
    assert "problem(s)" in capsys.readouterr().err
    assert validate_results(tmp_path / "nope.parquet") == [f"{tmp_path / 'nope.parquet'}: no such file"]
    pq.write_table(pa.table({"codec": ["x"]}), tmp_path / "bad.parquet")
    assert any("column 'row_key' missing" in p for p in validate_results(tmp_path / "bad.parquet"))


def test_spec_errors_and_the_shipped_default():
    with pytest.raises(UsageError, match="primary"):
        parse_spec({**SPEC, "primary": "pesq_wb"}, "tiny")
    with pytest.raises(UsageError, match="paper \\+ table, or repository \\+ commit"):
        parse_spec({**SPEC, "reported": [{"codec": "a", "metric": "stoi", "value": 1, "source": {"paper": "x"}}]},
                   "tiny")
    with pytest.raises(UsageError, match="unknown key"):
        parse_spec({**SPEC, "rankby": "x"}, "tiny")
    default = load_spec(Path(__file__).resolve().parents[1] / "leaderboards" / "embedded-classic.yaml")
    assert default.primary == "pesq_wb" and default.datasets == ("embedded",)
    from bench.task import tasks

    assert set(default.metrics) == set(tasks.get("reconstruction").default_metrics)


def test_shipped_specs_name_registered_metrics_judges_and_models():
    """Every leaderboards/*.yaml parses; its stored metrics, judges and codec-LMs exist in the registries."""
    from bench.judges import judges
    from bench.lms import lms
    from bench.metrics import metrics
    from bench.task import tasks

    for name, _ in tasks.items():  # generation tasks register their judge metrics when built
        tasks.get(name)
    for path in sorted((Path(__file__).resolve().parents[1] / "leaderboards").glob("*.yaml")):
        spec = load_spec(path)
        assert all(m in metrics for m in spec.stored_metrics), path
        for metric, judge in spec.judges.items():
            assert judge is not None and judge.split("@")[0] == metric.split(":")[1], (path, metric)
            assert judges.get(judge.split("@")[0]).info.ref == judge, (path, judge)
        for lm_id in spec.lms:
            assert lm_id in lms and set(spec.tasks) <= {"zero_shot_tts", "continuation"}
            assert {"zero_shot_tts": "tts"}.get(spec.tasks[0], "continuation") in lms.get(lm_id).meta.tasks
