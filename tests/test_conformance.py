"""Every registered op-point passes the conformance check (rate, length, determinism, batching, bitrate)."""

from __future__ import annotations

import json

import pytest

from bench.cli import main
from bench.codecs import codecs
from bench.codecs.conformance import check_codec
from bench.codecs.neural import TokenCodec

OP_POINTS = [name for name, op in codecs.items() if op.meta.family != "test"]


@pytest.mark.parametrize("name", OP_POINTS)
def test_op_point_conforms(name):
    op = codecs.get(name)
    codec = op.build()
    available, reason = codec.availability()
    if not available:
        pytest.skip(f"{name} unavailable here: {reason}")
    # neural op-points: the real architecture, tiny config, random weights (no downloads in CI);
    # an implementation that cannot be built with random weights (a fixed TFLite graph) needs its own
    random_init = isinstance(codec, TokenCodec) and codec.random_init_supported
    if isinstance(codec, TokenCodec) and not random_init:
        has_weights, why = codec.weights_status()
        if not has_weights:
            pytest.skip(f"{name}: no random-init variant and {why}")
    report = check_codec(op, random_init=random_init)
    assert report.passed, json.dumps(report.to_dict(), indent=1)
    assert report.costs["encode_rtf"] > 0
    assert report.costs["decode_rtf"] is None if not op.meta.decodable else report.costs["decode_rtf"] > 0


def test_check_cli_reports_json(capsys):
    assert main(["check", "g711@64kbps", "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out[0]["codec"] == "g711@64kbps" and out[0]["passed"]
    assert {c["name"] for c in out[0]["checks"]} == {
        "rate_and_length", "finite_and_not_silent", "deterministic_encode", "batch_equals_singles",
        "batch_equals_singles_audio", "bitrate"}


def test_codecs_cli_json_lists_required_keys(capsys):
    assert main(["codecs", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    required = {"id", "family", "kind", "sample_rate", "frame_rate", "n_codebooks", "codebook_sizes",
                "bitrate_bps", "available", "reason"}
    assert rows and all(required <= set(r) for r in rows)
    assert {r["id"] for r in rows} >= {"opus@6kbps", "opus@32kbps", "codec2@0.7kbps"}
