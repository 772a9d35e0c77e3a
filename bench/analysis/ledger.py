"""Bitrate ledger: what each op-point really spent on the evaluated data, and whether it matches.

Hand-typed bitrates are the most common wrong number in codec comparisons, so every leaderboard
row states rates measured on the items it was scored on:

* **nominal** (token codecs): emitted frames × Σ log2(codebook size) of the codebooks actually
  emitted, over the audio duration. Padding frames (a last partial hop, look-ahead frames) are
  counted because they must be transmitted; a codebook the stream does not contain (dropped
  quantizers) is not. ``padding_bps`` is the part of it above ``frame_rate × Σ log2 sizes``.
* **entropy** (token codecs): the empirical entropy of the emitted tokens, per codebook, pooled
  over all items of the op-point: unigram ``H(X)`` and conditional on the previous frame's token
  of the same codebook ``H(X_t | X_{t-1})`` (transitions within an item only), each summed over
  codebooks and scaled by frames per second. They bound what an entropy coder could save.
* **side information**, declared in ``CodecMeta.options`` (see :func:`side_info_bits`): bits a
  decoder needs besides the tokens (a global speaker embedding, continuous vectors), costed at
  their declared precision and added to ``total_bps``.
* **bitstream codecs**: payload and overhead bits as measured from the packets they emitted.

A declared bitrate that differs from the measured one (token codecs: nominal; bitstream codecs:
payload) by more than :data:`FLAG_TOLERANCE` is *flagged*, and a flagged op-point blocks
publication of a leaderboard. One documented exception: a bitstream codec whose rate control
cannot hit its target (ABR with a bit reservoir) may declare a wider ``bitrate_tolerance`` in its
metadata, with the measurement behind it in ``notes``; a deviation inside that tolerance is
reported (``note``) but does not block, and plots always use the measured rate anyway.

Input: ``<run>/encodings.parquet`` (one row per (codec, item_id): ``n_samples``, ``sample_rate``,
``n_frames``, ``payload_bps``, ``overhead_bps``, ``codes_path`` to an ``.npy`` of int codes
``[K, T]``, null for bitstream codecs) and the ``codecs`` list of ``run.json``. Runs without
``encodings.parquet`` fall back to the per-row rates in ``results.parquet`` (no entropy then).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

FLAG_TOLERANCE = 0.01
"""Relative |measured − declared| / declared above which a declared bitrate is flagged."""

ENCODING_COLUMNS = ["codec", "item_id", "n_samples", "sample_rate", "n_frames", "payload_bps",
                    "overhead_bps", "codes_path"]

LEDGER_COLUMNS = [
    "codec", "family", "kind", "n_items", "duration_s", "declared_bps", "measured_bps", "nominal_bps",
    "padding_bps", "n_codebooks_declared", "n_codebooks_emitted", "unigram_entropy_bps",
    "conditional_entropy_bps", "side_info_bps", "total_bps", "payload_bps", "overhead_bps",
    "deviation", "flagged", "reason", "note", "source",
]

SIDE_INFO_PRECISIONS = {"float32": 32, "float16": 16, "bfloat16": 16, "int8": 8, "uint8": 8}


# -- entropy ---------------------------------------------------------------------------------
def _entropy_bits(counts: np.ndarray) -> float:
    """Shannon entropy (bits) of a histogram of counts; 0 for an empty one."""
    counts = counts[counts > 0].astype(np.float64)
    total = counts.sum()
    if total == 0:
        return 0.0
    p = counts / total
    return float(-(p * np.log2(p)).sum())


@dataclass(frozen=True)
class TokenEntropy:
    """Per-codebook empirical entropies (bits per token) pooled over items."""

    unigram: tuple[float, ...]
    conditional: tuple[float, ...]
    n_tokens: int
    """Tokens per codebook that entered the unigram counts."""
    n_transitions: int
    """Frame-to-frame pairs per codebook that entered the conditional counts."""

    @property
    def unigram_bits_per_frame(self) -> float:
        return float(sum(self.unigram))

    @property
    def conditional_bits_per_frame(self) -> float:
        return float(sum(self.conditional))


def token_entropy(streams: Iterable[np.ndarray]) -> TokenEntropy:
    """Unigram ``H(X_k)`` and first-order ``H(X_k,t | X_k,t-1)`` per codebook ``k``, in bits.

    ``streams`` are int arrays ``[K, T_i]`` (one per item, same K). Counts are pooled over items;
    transitions never cross an item boundary. The conditional entropy is ``H(prev, cur) − H(prev)``
    over the pooled pairs, i.e. the plug-in estimate (biased low when T is small against the
    alphabet: it is a bound on what the data shows, not a model of the source).
    """
    uni: list[dict[int, int]] = []
    pairs: list[dict[tuple[int, int], int]] = []
    n_tokens = n_trans = 0
    k_seen: int | None = None
    for codes in streams:
        codes = np.asarray(codes)
        if codes.ndim != 2:
            raise ValueError(f"token stream must be [K, T], got shape {codes.shape}")
        if k_seen is None:
            k_seen = codes.shape[0]
            uni = [{} for _ in range(k_seen)]
            pairs = [{} for _ in range(k_seen)]
        elif codes.shape[0] != k_seen:
            raise ValueError(f"items emit different codebook counts ({k_seen} and {codes.shape[0]})")
        codes = codes.astype(np.int64)
        n_tokens += codes.shape[1]
        n_trans += max(codes.shape[1] - 1, 0)
        for k in range(codes.shape[0]):
            vals, cnt = np.unique(codes[k], return_counts=True)
            for v, c in zip(vals.tolist(), cnt.tolist(), strict=True):
                uni[k][v] = uni[k].get(v, 0) + c
            if codes.shape[1] > 1:
                pair_ids = np.stack([codes[k, :-1], codes[k, 1:]], axis=1)
                pv, pc = np.unique(pair_ids, axis=0, return_counts=True)
                for (a, b), c in zip(pv.tolist(), pc.tolist(), strict=True):
                    pairs[k][(a, b)] = pairs[k].get((a, b), 0) + c
    if k_seen is None:
        raise ValueError("no token streams given")
    unigram, conditional = [], []
    for k in range(k_seen):
        unigram.append(_entropy_bits(np.fromiter(uni[k].values(), dtype=np.int64, count=len(uni[k]))))
        if pairs[k]:
            joint = np.fromiter(pairs[k].values(), dtype=np.int64, count=len(pairs[k]))
            prev: dict[int, int] = {}
            for (a, _b), c in pairs[k].items():
                prev[a] = prev.get(a, 0) + c
            h_prev = _entropy_bits(np.fromiter(prev.values(), dtype=np.int64, count=len(prev)))
            conditional.append(max(_entropy_bits(joint) - h_prev, 0.0))
        else:
            conditional.append(float("nan"))
    return TokenEntropy(tuple(unigram), tuple(conditional), n_tokens, n_trans)


# -- side information ------------------------------------------------------------------------
def side_info_bits(options: Mapping[str, Any], n_frames: int, n_items: int = 1) -> float:
    """Bits of declared side information for ``n_items`` items totalling ``n_frames`` frames.

    Convention (keys of ``CodecMeta.options``):

    * ``side_info_bits_per_item``: a number of bits sent once per item (e.g. a quantised global
      embedding whose exact size the codec knows);
    * ``side_info_bits_per_frame``: bits sent with every frame beside the tokens;
    * ``side_info``: a list of continuous vectors, each ``{"name", "dims", "precision", "per"}``
      where ``precision`` is bits per value or a dtype name (``float32`` → 32, ``float16`` → 16,
      ``int8`` → 8) and ``per`` is ``"item"`` (default) or ``"frame"``. A 256-d float16 speaker
      embedding per item costs 4096 bits per item.

    Undeclared side information cannot be audited; a codec that needs it must declare it here.
    """
    bits = float(options.get("side_info_bits_per_item", 0) or 0) * n_items
    bits += float(options.get("side_info_bits_per_frame", 0) or 0) * n_frames
    for vec in options.get("side_info") or []:
        precision = vec.get("precision", 32)
        if isinstance(precision, str):
            if precision not in SIDE_INFO_PRECISIONS:
                raise ValueError(f"side_info {vec.get('name')!r}: unknown precision {precision!r}")
            precision = SIDE_INFO_PRECISIONS[precision]
        per = vec.get("per", "item")
        if per not in ("item", "frame"):
            raise ValueError(f"side_info {vec.get('name')!r}: per must be 'item' or 'frame', not {per!r}")
        count = n_items if per == "item" else n_frames
        bits += float(vec["dims"]) * float(precision) * count
    return bits


# -- reading ---------------------------------------------------------------------------------
def read_encodings(run_dir: str | Path) -> pd.DataFrame:
    """The run's encodings table (consolidated file plus parts); empty when the run has none."""
    from bench.runner.store import read_encodings as _read_store

    df = _read_store(run_dir)
    missing = [c for c in ENCODING_COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"{run_dir}: encodings lack column(s) {missing}")
    return df


def _codes_file(path: Any, run_dir: Path | None) -> Path:
    p = Path(str(path))
    return p if p.is_absolute() or run_dir is None else run_dir / p


def _deviation(declared: float, measured: float) -> float:
    if not (math.isfinite(declared) and declared > 0 and math.isfinite(measured)):
        return float("nan")
    return (measured - declared) / declared


def audit(kind: str, declared: float, measured: float, tolerance: float | None = None,
          tol: float = FLAG_TOLERANCE) -> tuple[bool, str, str]:
    """``(flagged, reason, note)`` for one op-point's declared and measured bitrate.

    ``tolerance`` is the op-point's declared ``bitrate_tolerance``; it widens the limit only for
    bitstream codecs (see the module doc). Unknown rates are flagged: they cannot be audited.
    """
    if not (math.isfinite(measured) and measured > 0):
        return True, "no measured bitrate: the declared rate cannot be audited", ""
    if not (math.isfinite(declared) and declared > 0):
        return True, "no declared bitrate", ""
    dev = _deviation(declared, measured)
    if abs(dev) <= tol:
        return False, "", ""
    what = "nominal" if kind == "tokens" else "payload"
    text = (f"declared {declared / 1000:.4g} kbps but measured {what} is {measured / 1000:.4g} kbps "
            f"({dev:+.2%}, limit ±{tol:.0%})")
    if kind != "tokens" and tolerance is not None and tolerance > tol and abs(dev) <= tolerance:
        return False, "", f"{text}; within the op-point's declared rate-control tolerance ±{tolerance:.0%}"
    return True, text, ""


def _weighted(values: pd.Series, durations: pd.Series) -> float:
    v = values.to_numpy(dtype=np.float64)
    d = durations.to_numpy(dtype=np.float64)
    keep = np.isfinite(v) & np.isfinite(d) & (d > 0)
    return float((v[keep] * d[keep]).sum() / d[keep].sum()) if keep.any() else float("nan")


def _ledger_row(meta: Mapping[str, Any], enc: pd.DataFrame, run_dir: Path | None) -> dict[str, Any]:
    kind = str(meta.get("kind") or ("tokens" if meta.get("codebook_sizes") else "bitstream"))
    sizes = [int(s) for s in meta.get("codebook_sizes") or []]
    frame_rate = float(meta.get("frame_rate") or float("nan"))
    declared = float(meta.get("bitrate_bps") or float("nan"))
    durations = enc["n_samples"].astype("float64") / enc["sample_rate"].astype("float64")
    duration = float(durations.sum())
    n_frames = int(enc["n_frames"].fillna(0).sum())
    row: dict[str, Any] = {
        "codec": meta["id"], "family": meta.get("family"), "kind": kind, "n_items": len(enc),
        "duration_s": duration, "declared_bps": declared, "n_codebooks_declared": len(sizes) or None,
        "payload_bps": _weighted(enc["payload_bps"], durations),
        "overhead_bps": _weighted(enc["overhead_bps"], durations),
        "source": "encodings.parquet",
    }
    side_bits = side_info_bits(meta.get("options") or {}, n_frames, len(enc))
    row["side_info_bps"] = side_bits / duration if duration > 0 else float("nan")
    if kind == "tokens":
        streams: list[np.ndarray] = []
        if enc["codes_path"].notna().all() and len(enc):
            streams = [np.load(_codes_file(p, run_dir)) for p in enc["codes_path"]]
        k_emitted = streams[0].shape[0] if streams else len(sizes)
        bits_per_frame = sum(math.log2(s) for s in sizes[:k_emitted])
        if streams:
            n_frames = int(sum(s.shape[1] for s in streams))
            ent = token_entropy(streams)
            row["unigram_entropy_bps"] = ent.unigram_bits_per_frame * n_frames / duration
            row["conditional_entropy_bps"] = ent.conditional_bits_per_frame * n_frames / duration
        nominal = n_frames * bits_per_frame / duration if duration > 0 else float("nan")
        row.update(n_codebooks_emitted=k_emitted, nominal_bps=nominal, measured_bps=nominal,
                   padding_bps=nominal - frame_rate * bits_per_frame if math.isfinite(frame_rate) else float("nan"),
                   total_bps=nominal + row["side_info_bps"])
        if len(sizes) and k_emitted > len(sizes):
            row["note"] = f"stream has {k_emitted} codebooks, metadata declares {len(sizes)}"
    else:
        row.update(measured_bps=row["payload_bps"], total_bps=row["payload_bps"] + row["side_info_bps"])
    return row


def _finish(row: dict[str, Any], tolerance: float | None) -> dict[str, Any]:
    row["deviation"] = _deviation(row["declared_bps"], row.get("measured_bps", float("nan")))
    flagged, reason, note = audit(row["kind"], row["declared_bps"], row.get("measured_bps", float("nan")),
                                  tolerance)
    row["flagged"], row["reason"] = flagged, reason
    row["note"] = "; ".join(n for n in (row.get("note"), note) if n)
    return {c: row.get(c, float("nan") if c.endswith("_bps") else None) for c in LEDGER_COLUMNS}


def _rows_fallback(meta: Mapping[str, Any], rows: pd.DataFrame) -> dict[str, Any]:
    """Ledger row from result rows alone (no encodings.parquet): measured payload only."""
    measured = rows.dropna(subset=["measured_bitrate_bps"])
    items = (measured if len(measured) else rows).drop_duplicates("item_id")
    dur = items["duration_s"].astype("float64")
    kind = str(meta.get("kind") or "bitstream")
    declared = meta.get("bitrate_bps")
    if declared is None and rows["declared_bitrate_bps"].notna().any():
        declared = rows["declared_bitrate_bps"].dropna().iloc[0]
    payload = _weighted(items["measured_bitrate_bps"], dur)
    row = {"codec": meta["id"], "family": meta.get("family") or (rows["codec_family"].dropna().iloc[0]
                                                                if rows["codec_family"].notna().any() else None),
           "kind": kind, "n_items": len(items), "duration_s": float(dur.sum()),
           "declared_bps": float(declared) if declared is not None else float("nan"),
           "payload_bps": payload, "overhead_bps": _weighted(items["overhead_bitrate_bps"], dur),
           "measured_bps": payload, "total_bps": payload, "side_info_bps": 0.0,
           "n_codebooks_declared": len(meta.get("codebook_sizes") or []) or None,
           "source": "results.parquet (no encodings.parquet)"}
    if kind == "tokens":
        row["nominal_bps"] = payload
    return row


def bitrate_ledger(codecs: Sequence[Mapping[str, Any]], encodings: pd.DataFrame,
                   results: pd.DataFrame | None = None, run_dir: Path | None = None) -> pd.DataFrame:
    """One :data:`LEDGER_COLUMNS` row per op-point.

    ``codecs`` are ``CodecMeta.to_dict()`` entries (``run.json["codecs"]``); op-points absent from
    them but present in ``results`` get a row from the result columns alone. ``codes_path`` values
    are resolved against ``run_dir`` when relative.
    """
    metas = {str(c["id"]): c for c in codecs}
    names = sorted(set(metas) | (set(encodings["codec"]) if len(encodings) else set())
                   | (set(results["codec"].dropna()) if results is not None and len(results) else set()))
    out = []
    for name in names:
        meta = metas.get(name, {"id": name})
        enc = encodings[encodings["codec"] == name] if len(encodings) else encodings
        if len(enc):
            row = _ledger_row(meta, enc.drop_duplicates("item_id"), run_dir)
        elif results is not None and (results["codec"] == name).any():
            row = _rows_fallback(meta, results[results["codec"] == name])
        else:
            continue
        out.append(_finish(row, meta.get("bitrate_tolerance")))
    return pd.DataFrame(out, columns=LEDGER_COLUMNS)


def run_ledger(run_dir: str | Path) -> pd.DataFrame:
    """The ledger of one run directory (``run.json`` + ``encodings.parquet`` or result rows)."""
    from bench.runner.store import read_results

    run_dir = Path(run_dir)
    meta_path = run_dir / "run.json"
    meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
    return bitrate_ledger(meta.get("codecs") or [], read_encodings(run_dir), read_results(run_dir), run_dir)
