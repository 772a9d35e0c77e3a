"""Leaderboard specifications: ``leaderboards/<name>.yaml``, parsed and checked.

A leaderboard is code: the YAML states what is compared (tasks, datasets, metrics with the judge
each model-based metric must use, op-points as ids or globs) and how it is ranked (the primary
metric); every number is then rebuilt from raw run results. Figures published elsewhere may sit
beside the reproduced ones as ``reported`` rows, each with the source it comes from::

    name: my-board
    title: Opus against G.711
    tasks: [reconstruction]
    datasets: [embedded]
    metrics: [si_sdr, stoi]
    judges: {}                      # metric -> "model@revision" for model-based metrics
    op_points: ["opus@*", g711@64kbps]
    primary: stoi
    # a codec-LM board lists `lms: [csm-1b, "valle*"]` (ids or globs) with generation tasks, and may
    # rank summary metrics such as wer:whisper-large-v3 (built from the stored asr_errors / asr_ref_words)
    reported:
      - {codec: opus@6kbps, metric: stoi, value: 0.9, dataset: embedded,
         source: {paper: "Author et al. 2024, arXiv 0000.00000", table: "Table 2"}}
      # or source: {repository: "owner/name", commit: "abc1234", path: "file.csv"}
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bench.errors import UsageError

SPEC_DIR = "leaderboards"


@dataclass(frozen=True)
class ReportedRow:
    """A figure published elsewhere, shown beside the reproduced one with its source."""

    codec: str
    metric: str
    value: float
    source: dict[str, str]
    dataset: str | None = None
    task: str | None = None
    bitrate_kbps: float | None = None
    note: str = ""

    def citation(self) -> str:
        s = self.source
        if s.get("paper"):
            return f"{s['paper']}, {s['table']}"
        text = f"{s['repository']} @ {s['commit']}"
        return text + (f": {s['path']}" if s.get("path") else "")


@dataclass(frozen=True)
class LeaderboardSpec:
    name: str
    tasks: tuple[str, ...]
    datasets: tuple[str, ...]
    metrics: tuple[str, ...]
    op_points: tuple[str, ...]
    primary: str
    lms: tuple[str, ...] = ()
    """Codec-LM ids or globs (generation tasks); a board lists op-points, codec-LMs, or both."""
    title: str = ""
    description: str = ""
    judges: dict[str, str | None] = field(default_factory=dict)
    """Metric → the judge its rows must name; metrics not listed must have no judge."""
    reported: tuple[ReportedRow, ...] = ()
    path: Path | None = None

    def expected_judge(self, metric: str) -> str | None:
        """The judge a stored metric's rows must name: its own entry, or that of a summary metric built from it."""
        if metric in self.judges:
            return self.judges[metric]
        from bench.analysis.corpus import inputs_of

        return next((j for m, j in self.judges.items() if metric in inputs_of(m)), None)

    @property
    def stored_metrics(self) -> tuple[str, ...]:
        """The per-utterance metrics the rows must hold (summary metrics such as ``wer:J`` need their inputs)."""
        from bench.analysis.corpus import inputs_of

        out: list[str] = []
        for m in self.metrics:
            out.extend(x for x in inputs_of(m) if x not in out)
        return tuple(out)


def _strings(doc: dict[str, Any], key: str, where: str) -> tuple[str, ...]:
    value = doc.get(key)
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
        raise UsageError(f"{where}: '{key}' must be a non-empty list of strings")
    return tuple(value)


def _reported(raw: Any, where: str) -> tuple[ReportedRow, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise UsageError(f"{where}: 'reported' must be a list")
    rows = []
    for i, r in enumerate(raw):
        at = f"{where}: reported[{i}]"
        if not isinstance(r, dict):
            raise UsageError(f"{at} must be a mapping")
        for key in ("codec", "metric", "value", "source"):
            if key not in r:
                raise UsageError(f"{at} lacks '{key}'")
        src = r["source"]
        if not isinstance(src, dict):
            raise UsageError(f"{at}: source must be a mapping")
        src = {str(k): str(v) for k, v in src.items() if v is not None}
        if not ((src.get("paper") and src.get("table")) or (src.get("repository") and src.get("commit"))):
            raise UsageError(f"{at}: source needs paper + table, or repository + commit")
        try:
            value = float(r["value"])
            kbps = float(r["bitrate_kbps"]) if r.get("bitrate_kbps") is not None else None
        except (TypeError, ValueError) as exc:
            raise UsageError(f"{at}: value and bitrate_kbps must be numbers") from exc
        rows.append(ReportedRow(codec=str(r["codec"]), metric=str(r["metric"]), value=value, source=src,
                                dataset=r.get("dataset"), task=r.get("task"), bitrate_kbps=kbps,
                                note=str(r.get("note", ""))))
    return tuple(rows)


def parse_spec(doc: Any, name: str, path: Path | None = None) -> LeaderboardSpec:
    """Check a loaded YAML document and turn it into a :class:`LeaderboardSpec`."""
    where = str(path or name)
    if not isinstance(doc, dict):
        raise UsageError(f"{where}: a leaderboard spec must be a YAML mapping")
    known = {"name", "title", "description", "tasks", "datasets", "metrics", "judges", "op_points", "lms",
             "primary", "reported"}
    unknown = sorted(set(doc) - known)
    if unknown:
        raise UsageError(f"{where}: unknown key(s) {unknown}; known: {sorted(known)}")
    if doc.get("name", name) != name:
        raise UsageError(f"{where}: name {doc['name']!r} does not match the file name {name!r}")
    metrics = _strings(doc, "metrics", where)
    primary = doc.get("primary")
    if primary not in metrics:
        raise UsageError(f"{where}: primary {primary!r} must be one of the metrics {list(metrics)}")
    judges = doc.get("judges") or {}
    if not isinstance(judges, dict) or not all(k in metrics for k in judges):
        raise UsageError(f"{where}: 'judges' must map listed metrics to judge ids")
    if not doc.get("op_points") and not doc.get("lms"):
        raise UsageError(f"{where}: list 'op_points' (codecs), 'lms' (codec-LMs), or both")
    return LeaderboardSpec(
        name=name, title=str(doc.get("title") or name), description=str(doc.get("description") or ""),
        tasks=_strings(doc, "tasks", where), datasets=_strings(doc, "datasets", where), metrics=metrics,
        op_points=_strings(doc, "op_points", where) if doc.get("op_points") else (),
        lms=_strings(doc, "lms", where) if doc.get("lms") else (), primary=str(primary),
        judges={str(k): (str(v) if v is not None else None) for k, v in judges.items()},
        reported=_reported(doc.get("reported"), where), path=path,
    )


def spec_search_dirs() -> list[Path]:
    """``./leaderboards`` first, then the one beside the installed package (the repo checkout)."""
    here = Path(__file__).resolve().parents[2] / SPEC_DIR
    dirs = [Path.cwd() / SPEC_DIR]
    if here.resolve() != dirs[0].resolve():
        dirs.append(here)
    return dirs


def find_spec(name: str) -> Path:
    """Path of a spec given its name or a path to a ``.yaml`` file."""
    p = Path(name)
    if p.suffix in (".yaml", ".yml"):
        if not p.is_file():
            raise UsageError(f"leaderboard spec {p} not found")
        return p
    for d in spec_search_dirs():
        for ext in (".yaml", ".yml"):
            if (d / f"{name}{ext}").is_file():
                return d / f"{name}{ext}"
    known = sorted({f.stem for d in spec_search_dirs() if d.is_dir() for f in d.glob("*.y*ml")})
    raise UsageError(f"no leaderboard spec {name!r} in {', '.join(str(d) for d in spec_search_dirs())}; "
                     f"known: {', '.join(known) or 'none'}")


def load_spec(name_or_path: str | Path) -> LeaderboardSpec:
    """Read and check ``leaderboards/<name>.yaml`` (or an explicit path)."""
    path = find_spec(str(name_or_path))
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise UsageError(f"{path}: not valid YAML: {exc}") from exc
    return parse_spec(doc, path.stem, path)
