"""Bitrate ledger on synthetic token streams with known entropy, written in the runner's layout."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from bench.analysis.ledger import audit, run_ledger, side_info_bits, token_entropy
from bench.runner.schema import ENCODING_IDENTITY, ENCODING_SCHEMA
from bench.runner.store import row_key

SR = 16000
HOP = 320  # 50 frames/s


def _meta(cid: str, sizes: list[int], declared: float | None = None, **options) -> dict:
    nominal = 50.0 * sum(math.log2(s) for s in sizes)
    return {"id": cid, "family": cid.split("@")[0], "kind": "tokens", "sample_rate": SR, "frame_rate": 50.0,
            "codebook_sizes": sizes, "bitrate_bps": declared if declared is not None else nominal,
            "bitrate_tolerance": 0.01, "options": options}


def _write_run(tmp: Path, streams: dict[str, list[np.ndarray]], metas: list[dict],
               classic: dict[str, tuple[float, float]] | None = None) -> Path:
    """A run directory with run.json, encodings.parquet and codes .npy files (the runner's contract)."""
    run = tmp / "run"
    (run / "codes").mkdir(parents=True)
    rows = []
    for codec, items in streams.items():
        for i, codes in enumerate(items):
            path = run / "codes" / f"{codec}-{i}.npy"
            np.save(path, codes)
            n_frames = codes.shape[1]
            rows.append({"codec": codec, "item_id": f"u{i}", "n_samples": n_frames * HOP, "sample_rate": SR,
                         "n_frames": n_frames, "payload_bps": None, "overhead_bps": None,
                         "codes_path": str(path)})
    for codec, (payload, overhead) in (classic or {}).items():
        for i in range(3):
            rows.append({"codec": codec, "item_id": f"u{i}", "n_samples": SR * (i + 1), "sample_rate": SR,
                         "n_frames": 50 * (i + 1), "payload_bps": payload * (1 + 0.01 * (i - 1)),
                         "overhead_bps": overhead, "codes_path": None})
    for r in rows:
        r.update(dataset="synthetic", manifest_sha256="0" * 64)
        r["row_key"] = row_key(r, ENCODING_IDENTITY)
    pq.write_table(pa.Table.from_pylist(rows, schema=ENCODING_SCHEMA), run / "encodings.parquet")
    (run / "run.json").write_text(json.dumps({"run_id": "run", "codecs": metas}))
    return run


def test_uniform_tokens_have_b_bits_and_iid_conditional_close_to_b():
    rng = np.random.default_rng(0)
    streams = [rng.integers(0, 256, size=(2, 20000)) for _ in range(3)]
    ent = token_entropy(streams)
    assert ent.unigram == pytest.approx((8.0, 8.0), abs=0.02)
    # plug-in conditional entropy of iid data: b bits minus a small-sample bias (65536 pairs, 60k samples)
    assert all(7.0 < h <= 8.0 for h in ent.conditional)
    exact = token_entropy([np.tile(np.arange(16), (1, 64))])  # each of 16 symbols exactly equally often
    assert exact.unigram == (pytest.approx(4.0, abs=1e-12),)


def test_deterministic_markov_chain_has_zero_conditional_entropy():
    # x_{t+1} = (5 x_t + 3) mod 64 visits all 64 states: unigram 6 bits, conditional 0
    x = [7]
    for _ in range(64 * 50 - 1):
        x.append((5 * x[-1] + 3) % 64)
    codes = np.array([x, x[::-1]])
    ent = token_entropy([codes[:, :1000], codes[:, 1000:]])
    assert ent.unigram[0] == pytest.approx(6.0, abs=0.01)
    assert ent.conditional == (pytest.approx(0.0, abs=1e-12), pytest.approx(0.0, abs=1e-12))
    assert ent.n_transitions == 3198  # transitions never cross the item boundary


def test_ledger_nominal_entropy_side_info_and_flags(tmp_path):
    rng = np.random.default_rng(1)
    uniform = [rng.integers(0, 16, size=(4, 250)) for _ in range(2)]  # 4 × 4 bits × 50 Hz = 0.8 kbps
    constant = [np.zeros((2, 100), dtype=np.int64)]
    dropped = [rng.integers(0, 1024, size=(6, 100))]  # declares 8 codebooks, emits 6
    padded = [rng.integers(0, 1024, size=(1, 110))]  # 10 frames more than n_samples / hop
    metas = [
        _meta("uni@0.8kbps", [16] * 4, side_info_bits_per_item=512,
              side_info=[{"name": "spk", "dims": 4, "precision": "float16", "per": "frame"}]),
        _meta("const@1kbps", [1024] * 2),
        _meta("drop@4kbps", [1024] * 8),
        _meta("pad@0.5kbps", [1024]),
        _meta("typo@6kbps", [16] * 4, declared=6000.0),  # hand-typed rate, wrong
        {"id": "mp3@8kbps", "family": "mp3", "kind": "bitstream", "bitrate_bps": 8000, "bitrate_tolerance": 0.01},
        {"id": "aac@16kbps", "family": "aac", "kind": "bitstream", "bitrate_bps": 16000, "bitrate_tolerance": 0.75},
    ]
    streams = {"uni@0.8kbps": uniform, "const@1kbps": constant, "drop@4kbps": dropped, "pad@0.5kbps": padded,
               "typo@6kbps": uniform}
    run = _write_run(tmp_path, streams, metas, classic={"mp3@8kbps": (8000.0, 400.0), "aac@16kbps": (17600.0, 0.0)})
    led = run_ledger(run).set_index("codec")

    u = led.loc["uni@0.8kbps"]
    assert u["nominal_bps"] == pytest.approx(800.0) and not u["flagged"]
    assert u["unigram_entropy_bps"] == pytest.approx(800.0, rel=0.01)  # uniform: entropy ≈ nominal
    assert u["conditional_entropy_bps"] < u["unigram_entropy_bps"]
    # 512 bits per item over 2 × 5 s, plus 4 × 16 bits per frame at 50 frames/s
    assert u["side_info_bps"] == pytest.approx(512 * 2 / 10 + 4 * 16 * 50)
    assert u["total_bps"] == pytest.approx(u["nominal_bps"] + u["side_info_bps"])

    c = led.loc["const@1kbps"]
    assert c["unigram_entropy_bps"] == 0 and c["conditional_entropy_bps"] == 0 and not c["flagged"]

    d = led.loc["drop@4kbps"]
    assert (d["n_codebooks_emitted"], d["n_codebooks_declared"]) == (6, 8)
    assert d["nominal_bps"] == pytest.approx(3000.0) and d["flagged"] and "-25.00%" in d["reason"]

    t = led.loc["typo@6kbps"]
    assert t["flagged"] and "declared 6 kbps" in t["reason"] and "nominal is 0.8 kbps" in t["reason"]

    m = led.loc["mp3@8kbps"]
    assert m["measured_bps"] == pytest.approx(8000.0 * (1 / 6 * 0.99 + 2 / 6 * 1.0 + 3 / 6 * 1.01))
    assert m["overhead_bps"] == pytest.approx(400.0) and not m["flagged"]
    a = led.loc["aac@16kbps"]  # +10 % over target: inside its declared, measured rate-control tolerance
    assert not a["flagged"] and "tolerance" in a["note"]


def test_padding_frames_are_counted(tmp_path):
    rng = np.random.default_rng(2)
    run = _write_run(tmp_path, {"pad@0.5kbps": [rng.integers(0, 1024, size=(1, 110))]},
                     [_meta("pad@0.5kbps", [1024])])
    table = pq.read_table(run / "encodings.parquet").to_pandas()
    table["n_samples"] = 100 * HOP  # the audio was 100 hops long; the codec emitted 110 frames
    table["row_key"] = [row_key(r, ENCODING_IDENTITY) for r in table.to_dict("records")]
    pq.write_table(pa.Table.from_pandas(table, schema=ENCODING_SCHEMA, preserve_index=False),
                   run / "encodings.parquet")
    p = run_ledger(run).iloc[0]
    assert p["nominal_bps"] == pytest.approx(550.0) and p["padding_bps"] == pytest.approx(50.0)
    assert p["flagged"] and "+10.00%" in p["reason"]


def test_side_info_convention_and_audit_edges():
    assert side_info_bits({"side_info": [{"name": "e", "dims": 256, "precision": "float16"}]}, 500, 2) == 2 * 4096
    assert side_info_bits({"side_info_bits_per_frame": 3}, 500) == 1500
    with pytest.raises(ValueError, match="precision"):
        side_info_bits({"side_info": [{"name": "e", "dims": 2, "precision": "float8"}]}, 1)
    assert audit("tokens", 6000, 6059)[0] is False and audit("tokens", 6000, 6061)[0] is True
    assert audit("bitstream", 6000, float("nan"))[0] is True
    # a token codec's tolerance is never widened: the nominal rate is arithmetic
    assert audit("tokens", 6000, 6600, tolerance=0.5)[0] is True
