"""Summary numbers and the HTML/markdown report, on a synthetic run built here."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from bench.analysis.summary import op_point_bitrates, paired_difference, summarize
from bench.report import write_report
from bench.report.markdown import md_escape
from bench.runner.schema import COLUMNS, ROW_SCHEMA

EVIL = "<script>alert(1)</script>"
EVIL_FAMILY = "evil|fam*_"
ERROR_MSG = "Traceback (most recent call last):\n  File x\nMetricError: <b>boom</b> | no speech detected"
# (op-point, family, declared bps, measured bps, overhead bps)
CODECS = [
    ("opus@6kbps", "opus", 6000.0, 6100.0, 400.0),
    ("opus@12kbps", "opus", 12000.0, 12050.0, 400.0),
    ("encodec@1.5kbps", "encodec", 1500.0, 1500.0, 0.0),
    ("encodec@6kbps", "encodec", 6000.0, 6000.0, 0.0),
    (EVIL, EVIL_FAMILY, 3000.0, 2900.0, 10.0),
]
METRICS = [("pesq", "higher"), ("mel_distance", "lower")]
N_ITEMS = 12


def _rows() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    durations = rng.uniform(1.0, 6.0, size=N_ITEMS)
    rows = []
    for c_idx, (codec, family, declared, measured, overhead) in enumerate(CODECS):
        for i in range(N_ITEMS):
            # measured bitrate varies per item so duration weighting matters
            item_rate = measured * (1 + 0.05 * np.sin(i))
            for metric, direction in METRICS:
                value = float(1.5 + 0.4 * c_idx + rng.normal(0, 0.3)) if metric == "pesq" \
                    else float(2.0 - 0.2 * c_idx + rng.normal(0, 0.2))
                status, error = "ok", None
                if codec == "encodec@1.5kbps" and metric == "pesq" and i < 2:
                    status, error, value = "error", ERROR_MSG, None
                if codec == EVIL and metric == "mel_distance" and i % 3 == 0:
                    status, error, value = "error", "bad | pipe\nsecond line", None
                rows.append({
                    "run_id": "run-test", "row_key": f"{c_idx}-{i}-{metric}", "codec": codec,
                    "codec_family": family, "dataset": "synthetic", "manifest_sha256": "ab" * 32,
                    "item_id": f"utt{i:03d}", "task": "resynthesis", "metric": metric,
                    "metric_version": "1", "judge": None, "value": value, "status": status,
                    "error": error, "direction": direction, "declared_bitrate_bps": declared,
                    "measured_bitrate_bps": item_rate, "overhead_bitrate_bps": overhead,
                    "duration_s": float(durations[i]), "codec_wall_s": 0.01, "metric_wall_s": 0.01,
                    "codecbench_version": "0.1.0", "git_hash": "deadbeef", "provenance": "{}",
                })
    return pd.DataFrame(rows, columns=COLUMNS)


def _run_json() -> dict:
    return {
        "run_id": "run-test",
        "created": "2025-01-01T00:00:00Z",
        "config": {"codecs": [c[0] for c in CODECS], "note": EVIL},
        "provenance": {"codecbench": "0.1.0", "git": "cafe1234", "platform": "test"},
        "codecs": [
            {"id": c, "family": f, "kind": "bitstream", "sample_rate": 48000, "bitrate_bps": d,
             "channels": 1, "frame_rate": 50.0, "codebook_sizes": [1024] * 4, "causal": True,
             "streaming": False, "n_params": 14_900_000, "license": "MIT", "weights": None,
             "citation": f"{c} et al.", "implementation": f"impl of {c}", "bitrate_tolerance": 0.01,
             "notes": "", "options": {"mode": c}, "n_codebooks": 4}
            for c, f, d, _m, _o in CODECS
        ],
        "metrics": [
            {"id": m, "version": "1", "direction": d, "sample_rate": 16000,
             "reference": f"pkg.{m}(ref, deg) | {EVIL}", "settings": {"mode": "wb"}, "unit": "",
             "description": f"{m} metric"}
            for m, d in METRICS
        ],
        "dataset": {"name": "synthetic", "manifest_sha256": "ab" * 32, "n_items": N_ITEMS,
                    "problems": [f"line 3: bad id {EVIL}"]},
    }


@pytest.fixture(scope="module")
def results() -> pd.DataFrame:
    return _rows()


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory, results: pd.DataFrame) -> Path:
    run_dir = tmp_path_factory.mktemp("run")
    (run_dir / "run.json").write_text(json.dumps(_run_json()))
    table = pa.Table.from_pandas(results, schema=ROW_SCHEMA, preserve_index=False)
    pq.write_table(table, run_dir / "results.parquet")
    out = tmp_path_factory.mktemp("report")
    index = write_report(run_dir, out)
    assert index == out / "index.html"
    return out


# -- summary -------------------------------------------------------------------------------------
def test_summary_equals_pandas(results: pd.DataFrame) -> None:
    s = summarize(results).set_index(["codec", "task", "metric"])
    ok = results[results["status"] == "ok"]
    by = ["codec", "task", "metric"]
    pd_mean = ok.groupby(by)["value"].mean()
    pd_median = ok.groupby(by)["value"].median()
    pd_std = ok.groupby(by)["value"].std()
    n_ok = ok.groupby(by).size()
    n_failed = results.groupby(by)["status"].apply(lambda x: int((x != "ok").sum()))
    assert len(s) == len(CODECS) * len(METRICS)
    for key in s.index:
        row = s.loc[key]
        assert row["mean"] == pytest.approx(pd_mean[key])
        assert row["median"] == pytest.approx(pd_median[key])
        assert row["std"] == pytest.approx(pd_std[key])
        assert row["n"] == n_ok[key] and row["n_failed"] == n_failed[key]
        assert row["ci_low"] <= row["mean"] <= row["ci_high"]
    assert s.loc[("encodec@1.5kbps", "resynthesis", "pesq"), "n_failed"] == 2
    assert s.loc[(EVIL, "resynthesis", "mel_distance"), "n_failed"] == 4
    assert s.loc[("opus@6kbps", "resynthesis", "pesq"), "direction"] == "higher"


def test_measured_bitrate_is_total_bits_over_total_seconds(results: pd.DataFrame) -> None:
    s = summarize(results).set_index(["codec", "task", "metric"])
    per_item = results[(results["codec"] == "opus@6kbps") & (results["metric"] == "pesq")]
    expected = (per_item["measured_bitrate_bps"] * per_item["duration_s"]).sum() / per_item["duration_s"].sum()
    got = s.loc[("opus@6kbps", "resynthesis", "pesq"), "measured_bitrate_bps"]
    assert got == pytest.approx(expected)
    assert got != pytest.approx(per_item["measured_bitrate_bps"].mean(), rel=1e-9)
    assert s.loc[("opus@6kbps", "resynthesis", "pesq"), "declared_bitrate_bps"] == 6000.0
    assert s.loc[("opus@6kbps", "resynthesis", "pesq"), "overhead_bitrate_bps"] == pytest.approx(400.0)
    rates = op_point_bitrates(results, by=("codec", "task")).set_index("codec")
    assert rates.loc["opus@6kbps", "measured_bitrate_bps"] == pytest.approx(expected)


def test_failed_cells_are_counted_never_averaged(results: pd.DataFrame) -> None:
    poisoned = results.copy()
    failed = poisoned["status"] == "error"
    poisoned.loc[failed, "value"] = 1e6  # a stray number on a failed cell must not leak in
    poisoned.loc[poisoned.index[0], "value"] = np.inf  # "ok" but non-finite: also a failed cell
    a = summarize(results).set_index(["codec", "metric"])
    b = summarize(poisoned).set_index(["codec", "metric"])
    key = ("encodec@1.5kbps", "pesq")
    assert b.loc[key, "mean"] == pytest.approx(a.loc[key, "mean"])
    assert b.loc[key, "n"] == N_ITEMS - 2
    first = (poisoned.loc[poisoned.index[0], "codec"], poisoned.loc[poisoned.index[0], "metric"])
    assert b.loc[first, "n_failed"] == a.loc[first, "n_failed"] + 1


def test_all_failed_group_has_nan_mean_and_summary_is_deterministic(results: pd.DataFrame) -> None:
    broken = results.copy()
    sel = broken["codec"] == "opus@12kbps"
    broken.loc[sel, ["status", "value", "error"]] = ["error", None, "codec crashed"]
    s = summarize(broken).set_index(["codec", "metric"])
    assert s.loc[("opus@12kbps", "pesq"), "n"] == 0
    assert np.isnan(s.loc[("opus@12kbps", "pesq"), "mean"])
    pd.testing.assert_frame_equal(summarize(results), summarize(results))
    with pytest.raises(ValueError, match="required column"):
        summarize(results.drop(columns=["status"]))
    assert summarize(results.iloc[0:0]).empty


def test_paired_difference_aligns_items(results: pd.DataFrame) -> None:
    d = paired_difference(results, "opus@12kbps", "encodec@1.5kbps", "resynthesis", "pesq")
    assert d.n == N_ITEMS - 2  # encodec failed on two items
    ok = results[results["status"] == "ok"]
    a = ok[(ok.codec == "opus@12kbps") & (ok.metric == "pesq")].set_index("item_id")["value"]
    b = ok[(ok.codec == "encodec@1.5kbps") & (ok.metric == "pesq")].set_index("item_id")["value"]
    assert d.diff == pytest.approx((a - b).dropna().mean())


# -- report --------------------------------------------------------------------------------------
def test_report_files_exist(report: Path) -> None:
    html = (report / "index.html").read_text()
    md = (report / "README.md").read_text()
    assert html.startswith("<!DOCTYPE html>")
    for name in re.findall(r"\]\((plots/[^)]+\.png)\)", md):
        assert (report / name).is_file()
    pngs = sorted((report / "plots").glob("*.png"))
    assert len(pngs) == 2 * len(METRICS)  # quality + distribution per metric
    assert all(p.read_bytes().startswith(b"\x89PNG") for p in pngs)


def test_html_content(report: Path) -> None:
    html = (report / "index.html").read_text()
    assert html.count("<table") >= 4  # leaderboard, failures, metrics, codecs
    assert "data:image/png;base64," in html or "<svg" in html
    for text in ("run-test", "ab" * 32, "0.1.0", "cafe1234", "2025-01-01T00:00:00Z", "Failures (6)"):
        assert text in html
    for codec, *_ in CODECS[:4]:
        assert codec in html
    assert "pesq ↑" in html and "mel_distance ↓" in html
    assert "MetricError: &lt;b&gt;boom&lt;/b&gt; | no speech detected" in html  # traceback → last line


def test_html_references_nothing_external(report: Path) -> None:
    html = (report / "index.html").read_text()
    assert "http://" not in html and "https://" not in html
    assert not re.search(r"""(?:src|href)\s*=\s*["']?(?!["'#]|data:)""", html)
    assert not re.search(r"url\(|@import", html)
    assert html.count("<script") == 1  # only the inline sorter


def test_malicious_strings_are_escaped(report: Path) -> None:
    html = (report / "index.html").read_text()
    md = (report / "README.md").read_text()
    assert EVIL not in html and "<b>boom" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "bad id &lt;script&gt;" in html  # dataset problems note
    assert EVIL not in md and "<script" not in md and "<b>" not in md
    assert "&lt;script&gt;alert\\(1\\)&lt;/script&gt;" in md
    assert "evil&#124;fam\\*\\_" in md


def test_markdown_tables_keep_their_shape(report: Path) -> None:
    md = (report / "README.md").read_text()
    blocks = re.split(r"\n\s*\n", md)
    tables = [b for b in blocks if b.startswith("| ")]
    assert len(tables) >= 5
    for block in tables:
        widths = {len(re.findall(r"(?<!\\)\|", line)) for line in block.splitlines()}
        assert len(widths) == 1, block


def test_md_escape() -> None:
    assert md_escape("a|b\nc") == "a&#124;b c"
    assert md_escape("[x](y)") == "\\[x\\]\\(y\\)"
    assert md_escape("<i>") == "&lt;i&gt;"


def test_report_from_parts_without_consolidated(tmp_path: Path, results: pd.DataFrame) -> None:
    run_dir = tmp_path / "run"
    (run_dir / "results").mkdir(parents=True)
    meta = _run_json()
    del meta["codecs"], meta["metrics"]
    (run_dir / "run.json").write_text(json.dumps(meta))
    small = results[results["codec"].isin(["opus@6kbps", "encodec@6kbps"]) & (results["metric"] == "pesq")]
    half = len(small) // 2
    small.iloc[:half].to_parquet(run_dir / "results" / "part-000.parquet")
    small.iloc[half:].to_parquet(run_dir / "results" / "part-001.parquet")
    out = write_report(run_dir, tmp_path / "out")
    html = out.read_text()
    assert "no results.parquet; 2 unconsolidated part file(s)" in html
    assert "run.json lists no codecs." in html
    assert "No failed cells." in html


def test_consolidated_plus_parts_are_merged_by_row_key(tmp_path: Path, results: pd.DataFrame) -> None:
    from bench.report.loading import read_results

    (tmp_path / "results").mkdir()
    results.iloc[:60].to_parquet(tmp_path / "results.parquet")
    results.iloc[40:].to_parquet(tmp_path / "results" / "part-001.parquet")  # overlaps by 20
    frame, notes = read_results(tmp_path)
    assert len(frame) == len(results) and frame["row_key"].is_unique
    assert "results.parquet and 1 unconsolidated" in notes[0]


def test_bitrate_without_durations_falls_back_to_item_mean(results: pd.DataFrame) -> None:
    no_dur = results.assign(duration_s=None)
    s = summarize(no_dur).set_index(["codec", "metric"])
    per_item = results[(results["codec"] == "opus@6kbps") & (results["metric"] == "pesq")]
    assert s.loc[("opus@6kbps", "pesq"), "measured_bitrate_bps"] == pytest.approx(
        per_item["measured_bitrate_bps"].mean())
