"""The long-format result row: one per (run, op-point, dataset, utterance, task, metric).

Every report, summary and leaderboard is a pure function of these rows. Column order here is the
order in the parquet files.
"""

from __future__ import annotations

import pyarrow as pa

ROW_SCHEMA = pa.schema(
    [
        ("run_id", pa.string()),
        ("row_key", pa.string()),  # sha256 of the identity columns below; unique per run
        ("codec", pa.string()),  # op-point id, e.g. "opus@6kbps"
        ("codec_family", pa.string()),
        ("dataset", pa.string()),
        ("manifest_sha256", pa.string()),
        ("item_id", pa.string()),
        ("task", pa.string()),
        ("metric", pa.string()),
        ("metric_version", pa.string()),
        ("judge", pa.string()),  # model behind a model-based metric (id@revision), null otherwise
        ("value", pa.float64()),  # null when status == "error"
        ("status", pa.string()),  # "ok" | "error"
        ("error", pa.string()),  # the reason, for failed cells
        ("direction", pa.string()),  # "higher" | "lower" is better
        ("declared_bitrate_bps", pa.float64()),
        ("measured_bitrate_bps", pa.float64()),  # payload bits / duration, from the emitted stream
        ("overhead_bitrate_bps", pa.float64()),  # framing + container, measured separately
        ("duration_s", pa.float64()),
        ("codec_wall_s", pa.float64()),
        ("metric_wall_s", pa.float64()),
        ("codecbench_version", pa.string()),
        ("git_hash", pa.string()),
        ("provenance", pa.string()),  # JSON: package versions, platform, device
    ]
)

IDENTITY_COLUMNS = ("codec", "dataset", "manifest_sha256", "item_id", "task", "metric")
COLUMNS = [f.name for f in ROW_SCHEMA]


#: One row per (op-point, utterance) actually coded: what the encoder emitted, for the bitrate ledger.
ENCODING_SCHEMA = pa.schema(
    [
        ("row_key", pa.string()),
        ("codec", pa.string()),
        ("dataset", pa.string()),
        ("manifest_sha256", pa.string()),
        ("item_id", pa.string()),
        ("n_samples", pa.int64()),  # at the codec's sample rate
        ("sample_rate", pa.int64()),
        ("n_frames", pa.int64()),  # token frames or packets
        ("payload_bps", pa.float64()),
        ("overhead_bps", pa.float64()),
        ("codes_path", pa.string()),  # .npy of int codes [K, T] in the cache (token codecs), else null
    ]
)
ENCODING_IDENTITY = ("codec", "dataset", "manifest_sha256", "item_id")
