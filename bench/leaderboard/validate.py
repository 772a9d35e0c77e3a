"""Check a third-party results parquet before it can be merged into a leaderboard.

Every check returns human-readable problems rather than stopping at the first, so a submitter
sees everything to fix at once: schema, statuses and values, judges, provenance, row keys and
duplicates, missing cells (every op-point × item × metric of a dataset and task present), and
the bitrate audit of the ledger (declared vs measured, flagged beyond 1 %).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from bench.analysis.ledger import bitrate_ledger, read_encodings
from bench.runner.schema import IDENTITY_COLUMNS, ROW_SCHEMA
from bench.runner.store import row_key

MAX_LISTED = 20
"""Problems of one kind listed one by one before the rest are counted."""


def _limited(problems: list[str], what: str) -> list[str]:
    if len(problems) <= MAX_LISTED:
        return problems
    return problems[:MAX_LISTED] + [f"... and {len(problems) - MAX_LISTED} more {what}"]


def _schema_problems(table: pa.Table) -> list[str]:
    problems = []
    names = table.schema.names
    for f in ROW_SCHEMA:
        if f.name not in names:
            problems.append(f"schema: column {f.name!r} missing")
        elif not table.schema.field(f.name).type.equals(f.type) and not pa.types.is_null(
                table.schema.field(f.name).type):
            problems.append(f"schema: column {f.name!r} is {table.schema.field(f.name).type}, expected {f.type}")
    extra = [n for n in names if n not in ROW_SCHEMA.names]
    if extra:
        problems.append(f"schema: unexpected column(s) {extra}")
    return problems


def _isnull(v: object) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def _value_problems(df: pd.DataFrame) -> list[str]:
    out = []
    bad_status = df[~df["status"].isin(["ok", "error"])]
    out += [f"row {i}: status {s!r} is neither 'ok' nor 'error'" for i, s in bad_status["status"].items()]
    values = pd.to_numeric(df["value"], errors="coerce").astype("float64")
    ok_bad = df[(df["status"] == "ok") & ~np.isfinite(values.to_numpy())]
    out += [f"row {i}: status ok but value {v!r} is not finite" for i, v in ok_bad["value"].items()]
    err_bad = df[(df["status"] == "error") & df["error"].isna()]
    out += [f"row {i}: status error without an error message" for i in err_bad.index]
    bad_dir = df[~df["direction"].isin(["higher", "lower"])]
    out += [f"row {i}: direction {d!r} is neither 'higher' nor 'lower'" for i, d in bad_dir["direction"].items()]
    for metric, sub in df.groupby("metric", sort=True):
        if sub["direction"].nunique() > 1:
            out.append(f"{metric}: rows disagree on direction {sorted(sub['direction'].dropna().unique())}")
        if sub["metric_version"].nunique(dropna=False) > 1:
            out.append(f"{metric}: mixed metric versions {sorted(map(str, sub['metric_version'].unique()))}")
    return _limited(out, "value problems")


def _judge_problems(df: pd.DataFrame) -> list[str]:
    out = []
    for metric, sub in df.groupby("metric", sort=True):
        judges = sorted({"(none)" if _isnull(j) else str(j) for j in sub["judge"]})
        if len(judges) > 1:
            out.append(f"judges: {metric} mixes judges {judges}")
    return out


def _provenance_problems(df: pd.DataFrame) -> list[str]:
    out = []
    for col in ("run_id", "codecbench_version", "git_hash", "provenance", "manifest_sha256", "dataset"):
        n = int(df[col].isna().sum() + (df[col].astype(str) == "").sum())
        if n:
            out.append(f"provenance: {n} row(s) without {col}")
    bad = 0
    for text in df["provenance"].dropna().unique():
        try:
            if not isinstance(json.loads(text), dict):
                bad += 1
        except (TypeError, json.JSONDecodeError):
            bad += 1
    if bad:
        out.append(f"provenance: {bad} distinct provenance value(s) are not JSON objects")
    return out


def _key_problems(df: pd.DataFrame) -> list[str]:
    out = []
    dup = df[df.duplicated(list(IDENTITY_COLUMNS), keep=False)]
    for key, sub in dup.groupby(list(IDENTITY_COLUMNS), sort=True):
        out.append(f"duplicate cell: {' / '.join(map(str, key))} appears {len(sub)} times")
    wrong = [i for i, r in df.iterrows() if r["row_key"] != row_key(r)]
    if wrong:
        out.append(f"row_key: {len(wrong)} row(s) whose row_key is not the hash of their identity columns "
                   f"(first: row {wrong[0]})")
    return _limited(out, "duplicate cells")


def _missing_problems(df: pd.DataFrame) -> list[str]:
    out = []
    for (dataset, _manifest, task), sub in df.groupby(["dataset", "manifest_sha256", "task"], sort=True):
        codecs, items, metrics = sorted(sub["codec"].unique()), sorted(sub["item_id"].unique()), \
            sorted(sub["metric"].unique())
        have = set(zip(sub["codec"], sub["item_id"], sub["metric"], strict=True))
        for c in codecs:
            for m in metrics:
                lack = [i for i in items if (c, i, m) not in have]
                if lack:
                    shown = ", ".join(lack[:5]) + (f" (+{len(lack) - 5})" if len(lack) > 5 else "")
                    out.append(f"missing cells: {c} × {m} on {dataset}/{task}: {len(lack)} of {len(items)} "
                               f"items ({shown})")
    if df.groupby("dataset")["manifest_sha256"].nunique().gt(1).any():
        out.append("datasets: one dataset name appears with several manifest versions")
    return _limited(out, "missing-cell problems")


def _bitrate_problems(df: pd.DataFrame, run_dir: Path | None) -> list[str]:
    """Ledger flags; with a run directory its run.json metadata and encodings are used too."""
    codecs: list[dict] = []
    encodings = pd.DataFrame(columns=["codec"])
    if run_dir is not None and (run_dir / "run.json").is_file():
        codecs = json.loads((run_dir / "run.json").read_text()).get("codecs") or []
        encodings = read_encodings(run_dir)
        encodings = encodings[encodings["codec"].isin(set(df["codec"]))]
    ledger = bitrate_ledger(codecs, encodings, df, run_dir)
    ledger = ledger[ledger["codec"].isin(set(df["codec"]))]
    return [f"bitrate audit: {r['codec']}: {r['reason']}" for _, r in ledger.iterrows() if r["flagged"]]


def validate_results(path: str | Path) -> list[str]:
    """All problems of a results parquet (or a run directory's ``results.parquet``); [] if clean.

    Given a run directory, the bitrate audit also reads its ``run.json`` (declared metadata, e.g. a
    bitstream codec's documented rate-control tolerance) and ``encodings.parquet``; a bare parquet
    is audited from its rows alone, at the strict 1 % limit.
    """
    path = Path(path)
    run_dir = path if path.is_dir() else None
    if path.is_dir():
        path = path / "results.parquet"
    if not path.is_file():
        return [f"{path}: no such file"]
    try:
        table = pq.read_table(path)
    except Exception as exc:  # not a parquet file at all: that is the one problem to report
        return [f"{path}: not a readable parquet file ({type(exc).__name__}: {exc})"]
    problems = _schema_problems(table)
    if any("missing" in p for p in problems):
        return problems
    df = table.to_pandas()
    if df.empty:
        return problems + ["no rows"]
    return (problems + _value_problems(df) + _judge_problems(df) + _provenance_problems(df)
            + _key_problems(df) + _missing_problems(df) + _bitrate_problems(df, run_dir))
