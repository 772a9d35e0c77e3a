"""Build a leaderboard from raw run results: collect, check, compute, write.

``build(spec)`` never reads a previous leaderboard: it gathers the result rows of the runs it is
given (or finds under ``runs/``), keeps those the spec selects, refuses with the list of reasons
when cells are missing, judges are mixed or a declared bitrate is flagged by the ledger, and
otherwise computes the ranking, the rate–quality analysis and the reported-vs-reproduced gaps.
Writing (CSV + JSON under ``leaderboards/<name>/``, HTML + README under ``reports/<name>/``) is
:func:`write_board`; the page itself is :mod:`bench.report.leaderboard_page`.
"""

from __future__ import annotations

import fnmatch
import json
import math
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench.analysis.bd import METHOD as BD_METHOD
from bench.analysis.ledger import FLAG_TOLERANCE, run_ledger
from bench.analysis.rate_quality import (
    ANCHOR_METHOD,
    ANCHORS_KBPS,
    anchor_table,
    bd_matrices,
    family_curves,
    pareto_front,
    rate_quality_points,
)
from bench.analysis.summary import summarize
from bench.errors import CodecBenchError
from bench.leaderboard.spec import LeaderboardSpec, load_spec
from bench.runner.atomic import atomic_write_bytes
from bench.runner.schema import IDENTITY_COLUMNS
from bench.runner.store import read_results

DEFAULT_RUNS_DIR = Path("runs")


class LeaderboardRefused(CodecBenchError):
    """The leaderboard cannot be published; ``problems`` lists every reason (and the fix)."""

    def __init__(self, name: str, problems: list[str]):
        self.problems = problems
        super().__init__(f"leaderboard {name!r} not built:\n" + "\n".join(f"  - {p}" for p in problems))


@dataclass
class RunSource:
    run_dir: Path
    run_id: str
    updated: str
    meta: dict[str, Any]


@dataclass
class RateQuality:
    """One (dataset, task, metric): points, curves' anchors, Pareto front and BD matrices."""

    dataset: str
    task: str
    metric: str
    direction: str
    points: pd.DataFrame
    pareto: pd.DataFrame
    anchors: pd.DataFrame
    bd: pd.DataFrame


@dataclass
class Board:
    """Everything one leaderboard states, computed from the rows."""

    spec: LeaderboardSpec
    sources: list[RunSource]
    results: pd.DataFrame
    ledger: pd.DataFrame
    ranking: pd.DataFrame
    summary: pd.DataFrame
    rate_quality: list[RateQuality]
    reported: pd.DataFrame
    metric_info: dict[str, dict[str, Any]]
    codec_meta: dict[str, dict[str, Any]]
    notes: list[str] = field(default_factory=list)


# -- collecting ------------------------------------------------------------------------------
def find_runs(paths: list[Path] | None = None) -> list[Path]:
    """Run directories (holding ``run.json``) given directly or one level below each path."""
    out: list[Path] = []
    for p in paths or [DEFAULT_RUNS_DIR]:
        p = Path(p)
        if (p / "run.json").is_file():
            out.append(p)
        elif p.is_dir():
            out.extend(sorted(c for c in p.iterdir() if (c / "run.json").is_file()))
    return out


def _load_sources(run_dirs: list[Path]) -> list[RunSource]:
    sources = []
    for d in run_dirs:
        meta = json.loads((d / "run.json").read_text(encoding="utf-8"))
        sources.append(RunSource(d, str(meta.get("run_id") or d.name),
                                 str(meta.get("updated") or meta.get("created") or ""), meta))
    return sorted(sources, key=lambda s: (s.updated, s.run_id))


def expand_names(patterns: tuple[str, ...], registered: list[str], present: set[str]) -> tuple[list[str], list[str]]:
    """(ids the patterns name, patterns that match nothing) over a registry's ids ∪ ids in the results."""
    universe = registered + sorted(present - set(registered))  # registry order: opus@6kbps before @12kbps
    names: list[str] = []
    unmatched = []
    for pat in patterns:
        hits = [n for n in universe if fnmatch.fnmatchcase(n, pat)]
        if not hits:
            unmatched.append(pat)
        names.extend(h for h in hits if h not in names)
    return names, unmatched


def _select(spec: LeaderboardSpec, sources: list[RunSource]) -> tuple[pd.DataFrame, list[str]]:
    """Rows the spec asks for; a newer run's row replaces an older one for the same cell."""
    frames = []
    for order, src in enumerate(sources):
        df = read_results(src.run_dir)
        df = df[df["task"].isin(spec.tasks) & df["dataset"].isin(spec.datasets) & df["metric"].isin(spec.stored_metrics)]
        frames.append(df.assign(_order=order))
    notes: list[str] = []
    if not frames:
        return pd.DataFrame(columns=[*IDENTITY_COLUMNS, "_order"]), notes
    rows = pd.concat(frames, ignore_index=True)
    # one manifest per dataset: the newest run's; others are a different version of the data
    keep = []
    for ds, sub in rows.groupby("dataset", sort=True):
        newest = sub.loc[sub["_order"].idxmax(), "manifest_sha256"]
        dropped = sub["manifest_sha256"] != newest
        if dropped.any():
            notes.append(f"{ds}: {int(dropped.sum())} row(s) from another manifest version left out "
                         f"(kept manifest {str(newest)[:12]})")
        keep.append(sub[~dropped])
    rows = pd.concat(keep, ignore_index=True) if keep else rows.iloc[0:0]
    rows = rows.sort_values("_order", kind="stable").drop_duplicates(list(IDENTITY_COLUMNS), keep="last")
    return rows.reset_index(drop=True), notes


def _run_command(members: list[str], task: str, metrics: list[str], dataset: str, lms: bool) -> str:
    return shlex.join(["codecbench", "run", "--lms" if lms else "--codecs", ",".join(members), "--tasks", task,
                       "--metrics", ",".join(metrics), "--data", dataset])


def missing_cells(spec: LeaderboardSpec, rows: pd.DataFrame, ops: list[str], lm_ids: list[str] = ()) -> list[str]:
    """Every op-point (or codec-LM) × stored metric lacking cells on some item, with the command that produces them."""
    problems: list[str] = []
    for dataset in spec.datasets:
        ds_rows = rows[rows["dataset"] == dataset]
        items = set(ds_rows["item_id"])
        for task in spec.tasks:
            t_rows = ds_rows[ds_rows["task"] == task]
            need: dict[tuple[tuple[str, ...], bool], list[str]] = {}
            for member in [*ops, *lm_ids]:
                own = t_rows[t_rows["codec"] == member]
                lacking, counts = [], []
                for metric in spec.stored_metrics:
                    have = set(own.loc[own["metric"] == metric, "item_id"])
                    if not items or items - have:
                        lacking.append(metric)
                        n = len(items - have)
                        counts.append(metric if not items or n == len(items) else f"{metric} ({n} of {len(items)} items)")
                if lacking:
                    whole = " (no rows at all)" if own.empty else ""
                    problems.append(f"missing: {member} on {dataset}/{task}{whole}: {', '.join(counts)}")
                    need.setdefault((tuple(lacking), member in lm_ids), []).append(member)
            for (metrics, is_lm), group in need.items():
                problems.append(f"to produce them: {_run_command(group, task, list(metrics), dataset, is_lm)}")
    return problems


def judge_problems(spec: LeaderboardSpec, rows: pd.DataFrame) -> list[str]:
    """A metric's rows must all name the judge the spec requires (none for plain metrics)."""
    problems = []
    for metric, sub in rows.groupby("metric", sort=True):
        judges = {None if (j is None or (isinstance(j, float) and math.isnan(j))) else str(j)
                  for j in sub["judge"]}
        want = spec.expected_judge(str(metric))
        if len(judges) > 1:
            problems.append(f"{metric}: mixed judges {sorted(judges, key=str)}")
        elif judges != {want}:
            problems.append(f"{metric}: rows name judge {next(iter(judges))!r}, the spec requires {want!r}")
    return problems


# -- computing -------------------------------------------------------------------------------
def _ledger(sources: list[RunSource], rows: pd.DataFrame, ops: list[str]) -> pd.DataFrame:
    """Per op-point, the ledger of the newest run holding its rows."""
    frames = []
    newest = rows.groupby("codec")["_order"].max().to_dict() if len(rows) else {}
    for order, src in enumerate(sources):
        mine = [op for op in ops if newest.get(op) == order]
        if mine:
            led = run_ledger(src.run_dir)
            frames.append(led[led["codec"].isin(mine)].assign(run_id=src.run_id))
    if not frames:
        return pd.DataFrame()
    return pd.concat(frames, ignore_index=True).sort_values("codec").reset_index(drop=True)


def metric_direction(summary: pd.DataFrame, metric: str, info: dict[str, dict[str, Any]]) -> str:
    d = summary.loc[summary["metric"] == metric, "direction"].dropna()
    return str(d.iloc[0]) if len(d) else str(info.get(metric, {}).get("direction") or "higher")


def _ranking(spec: LeaderboardSpec, summary: pd.DataFrame, ledger: pd.DataFrame,
             info: dict[str, dict[str, Any]]) -> pd.DataFrame:
    led = ledger.set_index("codec") if len(ledger) else pd.DataFrame()
    out = []
    for (dataset, task), sub in summary.groupby(["dataset", "task"], sort=True):
        rows = []
        for codec, own in sub.groupby("codec", sort=True):
            fam = own["codec_family"].dropna()
            r: dict[str, Any] = {"dataset": dataset, "task": task, "codec": codec,
                                 "family": fam.iloc[0] if len(fam) else None}
            lr = led.loc[codec] if codec in led.index else None
            for col in ("kind", "declared_bps", "measured_bps", "overhead_bps", "unigram_entropy_bps",
                        "conditional_entropy_bps", "side_info_bps", "total_bps", "flagged", "reason", "note"):
                r[col] = lr[col] if lr is not None else None
            for m in spec.metrics:
                mr = own[own["metric"] == m]
                mr = mr.iloc[0] if len(mr) else None
                for col in ("mean", "ci_low", "ci_high", "n", "n_failed"):
                    r[f"{m}_{col}"] = mr[col] if mr is not None else np.nan
            rows.append(r)
        frame = pd.DataFrame(rows)
        key = frame[f"{spec.primary}_mean"].astype("float64")
        frame["_key"] = -key if metric_direction(sub, spec.primary, info) == "higher" else key
        frame = frame.sort_values(["_key", "codec"], na_position="last").drop(columns="_key")
        frame.insert(2, "rank", np.arange(1, len(frame) + 1))
        frame.loc[frame[f"{spec.primary}_mean"].isna(), "rank"] = np.nan
        out.append(frame)
    return pd.concat(out, ignore_index=True) if out else pd.DataFrame()


def _reported(spec: LeaderboardSpec, summary: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for r in spec.reported:
        sel = (summary["codec"] == r.codec) & (summary["metric"] == r.metric)
        if r.dataset:
            sel &= summary["dataset"] == r.dataset
        if r.task:
            sel &= summary["task"] == r.task
        mine = summary[sel]
        reproduced = float(mine["mean"].iloc[0]) if len(mine) == 1 else float("nan")
        rows.append({"codec": r.codec, "metric": r.metric, "dataset": r.dataset, "task": r.task,
                     "reported": r.value, "reported_kbps": r.bitrate_kbps, "reproduced": reproduced,
                     "reproduced_ci_low": float(mine["ci_low"].iloc[0]) if len(mine) == 1 else float("nan"),
                     "reproduced_ci_high": float(mine["ci_high"].iloc[0]) if len(mine) == 1 else float("nan"),
                     "gap": reproduced - r.value, "source": r.citation(), "note": r.note})
    cols = ["codec", "metric", "dataset", "task", "reported", "reported_kbps", "reproduced", "reproduced_ci_low",
            "reproduced_ci_high", "gap", "source", "note"]
    return pd.DataFrame(rows, columns=cols)


def compute(spec: LeaderboardSpec, run_dirs: list[Path] | None = None, *, allow_flagged: bool = False) -> Board:
    """Collect and check the rows, then compute every table; raises LeaderboardRefused."""
    sources = _load_sources(find_runs(run_dirs))
    rows, notes = _select(spec, sources)
    from bench.codecs import codecs
    from bench.lms import lms

    present = set(rows["codec"]) if len(rows) else set()
    ops, unmatched = expand_names(spec.op_points, codecs.names(), present - set(lms.names()))
    lm_ids, lm_unmatched = expand_names(spec.lms, lms.names(), present - set(codecs.names()) - set(ops))
    problems = [f"op-point pattern {p!r} matches no registered op-point and no result row" for p in unmatched]
    problems += [f"codec-LM pattern {p!r} matches no registered codec-LM and no result row" for p in lm_unmatched]
    if not sources:
        where = ", ".join(str(p) for p in (run_dirs or [DEFAULT_RUNS_DIR]))
        problems.append(f"no run directory (with run.json) found in {where}")
    rows = rows[rows["codec"].isin([*ops, *lm_ids])] if len(rows) else rows
    problems += missing_cells(spec, rows, ops, lm_ids)
    problems += judge_problems(spec, rows)
    ledger = _ledger(sources, rows, ops)
    flagged = ledger[ledger["flagged"].astype(bool)] if len(ledger) else ledger
    for _, f in flagged.iterrows():
        text = f"bitrate flagged: {f['codec']}: {f['reason']}"
        if allow_flagged:
            notes.append(text + " (published with --allow-flagged)")
        else:
            problems.append(text + " (fix the declaration, or pass --allow-flagged to publish it marked)")
    if problems:
        raise LeaderboardRefused(spec.name, problems)

    info: dict[str, dict[str, Any]] = {}
    codec_meta: dict[str, dict[str, Any]] = {}
    for src in sources:
        info.update({str(m["id"]): m for m in src.meta.get("metrics") or [] if isinstance(m, dict)})
        codec_meta.update({str(c["id"]): c for c in [*(src.meta.get("codecs") or []), *(src.meta.get("lms") or [])]
                           if isinstance(c, dict)})
    summary = summarize(rows.drop(columns="_order"))
    rates = dict(zip(ledger["codec"], ledger["measured_bps"].astype("float64"), strict=True)) if len(ledger) else {}
    rq = []
    coded = summary[summary["codec"].isin(ops)]  # codec-LMs have no bitrate axis
    for (dataset, task, metric), sub in coded.groupby(["dataset", "task", "metric"], sort=True):
        if metric not in spec.metrics:
            continue
        direction = metric_direction(summary, str(metric), info)
        points = rate_quality_points(sub, rates)
        curves = family_curves(points)
        rq.append(RateQuality(str(dataset), str(task), str(metric), direction, points,
                              pareto_front(points, direction), anchor_table(curves), bd_matrices(curves, direction)))
    rq.sort(key=lambda x: (x.dataset, x.task, spec.metrics.index(x.metric)))
    return Board(spec=spec, sources=sources, results=rows.drop(columns="_order"), ledger=ledger,
                 ranking=_ranking(spec, summary, ledger, info), summary=summary, rate_quality=rq,
                 reported=_reported(spec, summary), metric_info=info,
                 codec_meta={c: codec_meta[c] for c in [*ops, *lm_ids] if c in codec_meta},
                 notes=notes)


# -- writing ---------------------------------------------------------------------------------
def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is pd.NA or value is pd.NaT:
        return None
    return value


def _records(df: pd.DataFrame) -> list[dict[str, Any]]:
    return [_jsonable(r) for r in df.to_dict(orient="records")]


def _csv(df: pd.DataFrame) -> bytes:
    return df.to_csv(index=False, float_format="%.6g").encode("utf-8")


def methods() -> dict[str, str]:
    """How each derived number is computed, stated in the JSON and on the page."""
    return {
        "ci": "mean over ok items with a 95 % percentile bootstrap interval (2000 resamples, seed 0)",
        "bitrate": "measured on the evaluated items: token codecs frames × Σ log2 codebook sizes / duration "
                   "(padding counted), bitstream codecs payload bits / duration",
        "bitrate_audit": f"declared vs measured differing by more than {FLAG_TOLERANCE:.0%} is flagged and "
                         "blocks publication (bitstream codecs may declare a measured rate-control tolerance)",
        "anchors": f"{ANCHOR_METHOD}; anchors {', '.join(f'{a:g}' for a in ANCHORS_KBPS)} kbps",
        "bd": f"{BD_METHOD}; over the overlapping quality (BD-rate) or log-rate (BD-quality) interval of "
              "the two families' curves; refused when a curve has < 2 points, is not monotonic, or they "
              "do not overlap",
        "pareto": "op-points no other op-point beats on both measured bitrate and mean quality",
    }


def board_json(board: Board) -> dict[str, Any]:
    spec = board.spec
    return _jsonable({
        "name": spec.name, "title": spec.title, "description": spec.description,
        "spec": {"tasks": spec.tasks, "datasets": spec.datasets, "metrics": spec.metrics,
                 "judges": spec.judges, "op_points": spec.op_points, "primary": spec.primary},
        "methods": methods(),
        "sources": [{"run_id": s.run_id, "updated": s.updated, "git": (s.meta.get("provenance") or {}).get("git"),
                     "dataset": s.meta.get("dataset", {}).get("name"),
                     "manifest_sha256": s.meta.get("dataset", {}).get("manifest_sha256")} for s in board.sources],
        "ranking": _records(board.ranking),
        "ledger": _records(board.ledger),
        "rate_quality": [{"dataset": r.dataset, "task": r.task, "metric": r.metric, "direction": r.direction,
                          "points": _records(r.points), "pareto": list(r.pareto["codec"]),
                          "anchors": _records(r.anchors), "bd": _records(r.bd)} for r in board.rate_quality],
        "reported": _records(board.reported),
        "notes": board.notes,
    })


@dataclass
class BuildResult:
    board: Board
    data_dir: Path
    report: Path


def write_board(board: Board, root: Path = Path(".")) -> BuildResult:
    """``root/leaderboards/<name>/`` (CSV + JSON) and ``root/reports/<name>/`` (HTML + README)."""
    from bench.report.leaderboard_page import write_leaderboard_report

    data_dir = Path(root) / "leaderboards" / board.spec.name
    data_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(data_dir / "ranking.csv", _csv(board.ranking))
    atomic_write_bytes(data_dir / "ledger.csv", _csv(board.ledger))
    atomic_write_bytes(data_dir / "reported.csv", _csv(board.reported))
    rq = [(r, r.anchors.assign(dataset=r.dataset, task=r.task, metric=r.metric)) for r in board.rate_quality]
    if rq:
        atomic_write_bytes(data_dir / "anchors.csv", _csv(pd.concat([a for _, a in rq], ignore_index=True)))
        atomic_write_bytes(data_dir / "bd.csv", _csv(pd.concat(
            [r.bd.assign(dataset=r.dataset, task=r.task, metric=r.metric) for r, _ in rq], ignore_index=True)))
        atomic_write_bytes(data_dir / "pareto.csv", _csv(pd.concat(
            [r.pareto.assign(dataset=r.dataset, task=r.task, metric=r.metric) for r, _ in rq], ignore_index=True)))
    atomic_write_bytes(data_dir / "leaderboard.json",
                       json.dumps(board_json(board), indent=2, ensure_ascii=False).encode("utf-8"))
    report = write_leaderboard_report(board, Path(root) / "reports" / board.spec.name)
    return BuildResult(board, data_dir, report)


def build(name: str | Path, runs: list[Path] | None = None, *, root: Path = Path("."),
          allow_flagged: bool = False) -> BuildResult:
    """Load ``leaderboards/<name>.yaml``, compute from the runs, write data and report."""
    spec = load_spec(name)
    return write_board(compute(spec, runs, allow_flagged=allow_flagged), root)
