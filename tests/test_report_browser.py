"""The leaderboard page rendered by headless Chromium: tables and plots present, names stay text.

Skips only when no Chromium is installed *and* ``CI`` is unset; in CI a missing browser fails.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from bench.leaderboard import compute, parse_spec, write_board
from bench.runner.schema import ROW_SCHEMA
from bench.runner.store import row_key

EVIL = "<script>alert(1)</script>"
CANDIDATES = ("/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome")


def _chromium() -> str | None:
    for c in CANDIDATES:
        path = shutil.which(c)
        if path:
            return path
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail("CI is set but no Chromium is installed (apt-get install -y chromium)")
    pytest.skip("no Chromium installed (apt-get install -y chromium); required when CI is set")


def _synthetic_run(root: Path) -> Path:
    """Three families over a few op-points, one of them named like markup, in the row schema."""
    ops = {"alpha@1kbps": ("alpha", 1000, 2.0), "alpha@3kbps": ("alpha", 3000, 2.8), "alpha@9kbps": ("alpha", 9000, 3.6),
           "beta@2kbps": ("beta", 2000, 1.9), "beta@6kbps": ("beta", 6000, 2.9),
           EVIL: ("evil<b>fam</b>", 4000, 3.3)}
    rng = np.random.default_rng(0)
    rows = []
    for codec, (fam, bps, q) in ops.items():
        for i in range(6):
            for metric, value in (("pesq_wb", q + 0.1 * rng.standard_normal()), ("si_sdr", 4 * q + rng.standard_normal())):
                r = {"run_id": "synthetic", "codec": codec, "codec_family": fam, "dataset": "synth",
                     "manifest_sha256": "f" * 64, "item_id": f"u{i}", "task": "reconstruction", "metric": metric,
                     "metric_version": "1", "judge": None, "value": float(value), "status": "ok", "error": None,
                     "direction": "higher", "declared_bitrate_bps": float(bps),
                     "measured_bitrate_bps": float(bps), "overhead_bitrate_bps": 100.0, "duration_s": 2.0,
                     "codec_wall_s": 0.1, "metric_wall_s": 0.1, "codecbench_version": "0", "git_hash": "x",
                     "provenance": "{}"}
                r["row_key"] = row_key(r)
                rows.append(r)
    run = root / "runs" / "synthetic"
    run.mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=ROW_SCHEMA), run / "results.parquet")
    codecs = [{"id": c, "family": f, "kind": "bitstream", "bitrate_bps": b, "bitrate_tolerance": 0.01}
              for c, (f, b, _q) in ops.items()]
    (run / "run.json").write_text(json.dumps({"run_id": "synthetic", "updated": "2026-01-01", "codecs": codecs,
                                              "dataset": {"name": "synth", "manifest_sha256": "f" * 64}}))
    return run


def test_leaderboard_page_in_headless_chromium(tmp_path):
    browser = _chromium()
    run = _synthetic_run(tmp_path)
    spec = parse_spec({"name": "synth", "title": "Synthetic", "tasks": ["reconstruction"], "datasets": ["synth"],
                       "metrics": ["pesq_wb", "si_sdr"], "op_points": ["alpha@*", "beta@*", EVIL],
                       "primary": "pesq_wb"}, "synth")
    result = write_board(compute(spec, [run]), tmp_path)
    profile = tmp_path / "profile"
    cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile}"]
    dom = subprocess.run([*cmd, "--dump-dom", result.report.resolve().as_uri()], capture_output=True, text=True,
                         timeout=120, check=True).stdout
    assert "<table" in dom, "the browser produced no DOM"
    for cls in ("ranking", "pareto", "anchors", "bd-rate", "bd-quality", "ledger"):
        assert f'class="sortable {cls}"' in dom, cls
    assert dom.count('src="data:image/png;base64,') == 2  # one rate-quality figure per metric
    # the codec name stays text: escaped in the DOM, and the only <script> element is the page's own
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in dom
    assert dom.count("<script") == 1 and "alert(1)</script>" not in dom.replace("&lt;/script&gt;", "")
    assert "evil&lt;b&gt;fam&lt;/b&gt;" in dom and "<b>fam</b>" not in dom
    shot = tmp_path / "shot.png"
    subprocess.run([*cmd, f"--screenshot={shot}", "--window-size=1280,2400", result.report.resolve().as_uri()],
                   capture_output=True, timeout=120, check=True)
    assert shot.stat().st_size > 20000  # a rendered page, not a blank one
