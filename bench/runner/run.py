"""One evaluation run: data × op-points × tasks → result rows, streamed, cached and resumable.

The flow: each op-point's codec stage turns references into decoded audio in bounded batches;
each (task, item) pair whose rows are missing becomes a scoring job for the executor; values
already in the cache become rows without work. Rows go to the append-only store as they arrive.
An executor that takes codec jobs (Ray) codes ahead into the decoded cache (codec_prefill), and
the codec stage then reads instead of coding.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from tqdm import tqdm

import bench
from bench.codecs import OpPoint, codecs
from bench.data import resolve_dataset
from bench.data.manifest import Dataset, Item
from bench.errors import UsageError
from bench.lms import lms
from bench.metrics import metrics
from bench.runner.atomic import atomic_path, atomic_write_bytes
from bench.runner.cache import Cache, DecodedEntry, content_key, default_cache_dir
from bench.runner.codec_prefill import CodecPrefill, codec_jobs
from bench.runner.codec_stage import CodecStage, RefAudio, load_reference
from bench.runner.dataset_stage import run_dataset_tasks
from bench.runner.executor import Executor, make_executor
from bench.runner.jobs import ScoreJob, score_job, warm_metrics
from bench.runner.lm_stage import run_lm_tasks
from bench.runner.provenance import git_hash, provenance, provenance_json
from bench.runner.schema import ENCODING_IDENTITY, ENCODING_SCHEMA
from bench.runner.store import ResultStore, row_key
from bench.task import CellOutcome, tasks

log = logging.getLogger(__name__)

DEFAULT_CODECS = ("opus@*", "mp3@*", "aac@*", "amrnb@*", "g722@*", "g711@*", "codec2@*", "lc3@*")


@dataclass
class RunConfig:
    codecs: list[str]
    tasks: list[str]
    data: str = "embedded"
    out: Path | None = None
    metrics: list[str] | None = None
    workers: int = 1
    use_cache: bool = True
    cache_dir: Path = field(default_factory=default_cache_dir)
    device: str = "cpu"
    batch_size: int = 8
    executor: str = "local"
    progress: bool = True
    max_in_flight: int = 64
    flush_seconds: float = 10.0
    weights: dict[str, str] = field(default_factory=dict)
    """Op-point id → local weights path (``--weights``), overriding the registered source."""
    address: str | None = None
    """Cluster to run scoring jobs on (``--executor ray --address auto``); None starts Ray locally."""
    lms: list[str] = field(default_factory=list)
    """Codec-LM ids (``--lms``) that generation tasks (``zero_shot_tts``) run on."""
    lm_paths: dict[str, str] = field(default_factory=dict)
    """Codec-LM id → local weights, or folder of generated audio for output-only rows (``--lm-path``)."""
    lm_random_init: bool = False
    """Tiny seeded random codec-LMs (tests, smoke runs): their audio is noise."""
    n_seeds: int = 1
    """Generations per list entry (seeds 0..n-1); each entry's value is the mean over them."""
    list_seed: int = 0
    """Seed of the generation task's list builder (cross-sentence prompt choice)."""
    lm_max_seconds: float | None = None
    """Cap on generated seconds per request (smoke runs); None: the target utterance's duration."""

    def identity(self) -> dict[str, Any]:
        return {"codecs": sorted(self.codecs), "tasks": sorted(self.tasks), "data": self.data,
                "metrics": sorted(self.metrics) if self.metrics else None,
                **({"lms": sorted(self.lms), "lm_random_init": self.lm_random_init, "n_seeds": self.n_seeds,
                    "list_seed": self.list_seed, "lm_max_seconds": self.lm_max_seconds} if self.lms else {})}


def default_run_dir(dataset: Dataset, config: RunConfig) -> Path:
    return Path("runs") / f"{dataset.name}-{content_key(config.identity())[:8]}"


class Run:
    """State of one run while it executes: dataset, store, cache, executor and row factory."""

    def __init__(self, config: RunConfig):
        self.config = config
        self.dataset = resolve_dataset(config.data)
        for problem in self.dataset.problems:
            log.warning("%s", problem)
        self.task_objs = {name: tasks.get(name) for name in config.tasks}
        self.metric_ids = {name: t.metric_ids(config.metrics) for name, t in self.task_objs.items()}
        self.all_metric_ids = sorted({m for ids in self.metric_ids.values() for m in ids})
        self.ops: list[OpPoint] = [codecs.get(c) for c in config.codecs]
        self.run_dir = Path(config.out) if config.out else default_run_dir(self.dataset, config)
        self.run_id = self.run_dir.name
        self._check_run_dir()
        self.store = ResultStore(self.run_dir, flush_seconds=config.flush_seconds)
        self.encodings = ResultStore(self.run_dir, flush_seconds=config.flush_seconds, name="encodings",
                                     schema=ENCODING_SCHEMA)
        self.cache = Cache(config.cache_dir if config.use_cache else self.run_dir / ".scratch-cache",
                           read=config.use_cache)
        self.stats = {"codec_items_computed": 0, "codec_items_computed_in_jobs": 0, "cells_computed": 0,
                      "cells_from_cache": 0, "cells_skipped": 0}
        self._prov = provenance_json()
        self._git = git_hash()

    # -- run directory -----------------------------------------------------------------------
    def _check_run_dir(self) -> None:
        meta_path = self.run_dir / "run.json"
        if meta_path.exists():
            old = json.loads(meta_path.read_text())
            if old.get("dataset", {}).get("manifest_sha256") != self.dataset.manifest_sha256:
                raise UsageError(f"{self.run_dir} holds a run on another dataset or manifest version; "
                                 "choose another --out")

    def write_run_json(self) -> None:
        meta_path = self.run_dir / "run.json"
        old = json.loads(meta_path.read_text()) if meta_path.exists() else {}
        codec_meta = {c["id"]: c for c in old.get("codecs", [])}
        codec_meta.update({op.meta.id: op.meta.to_dict() for op in self.ops})
        metric_meta = {m["id"]: m for m in old.get("metrics", [])}
        for ids in self.metric_ids.values():
            metric_meta.update({m: metrics.get(m).info.to_dict() for m in ids})
        doc = {
            "run_id": self.run_id,
            "created": old.get("created") or datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "updated": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "config": {**asdict(self.config), "out": str(self.run_dir), "cache_dir": str(self.config.cache_dir)},
            "provenance": provenance(),
            "codecs": list(codec_meta.values()),
            "metrics": list(metric_meta.values()),
            "tasks": sorted(set(old.get("tasks", [])) | set(self.config.tasks)),
            "lms": list({**{m["id"]: m for m in old.get("lms", [])},
                         **{i: lms.get(i).meta.to_dict() for i in self.config.lms}}.values()),
            "dataset": {"name": self.dataset.name, "root": str(self.dataset.root),
                        "manifest_sha256": self.dataset.manifest_sha256, "n_items": len(self.dataset.items),
                        "problems": self.dataset.problems},
            "stats": self.stats,
        }
        atomic_write_bytes(meta_path, json.dumps(doc, indent=2, default=str).encode())

    # -- rows --------------------------------------------------------------------------------
    def row(self, op: OpPoint, item: Item, task: str, metric_id: str, *, value: float | None = None,
            error: str | None = None, entry: DecodedEntry | None = None, metric_wall: float | None = None,
            judge: str | None = None, duration: float | None = None) -> dict[str, Any]:
        info = metrics.get(metric_id).info
        r: dict[str, Any] = {
            "run_id": self.run_id, "codec": op.meta.id, "codec_family": op.meta.family,
            "dataset": self.dataset.name, "manifest_sha256": self.dataset.manifest_sha256,
            "item_id": item.id, "task": task, "metric": metric_id, "metric_version": info.version,
            "judge": judge or info.settings.get("judge"), "value": value if error is None else None,
            "status": "ok" if error is None else "error", "error": error, "direction": info.direction,
            "declared_bitrate_bps": float(op.meta.bitrate_bps),
            "measured_bitrate_bps": entry.payload_bps if entry else None,
            "overhead_bitrate_bps": entry.overhead_bps if entry else None,
            "duration_s": duration if duration is not None else item.duration, "codec_wall_s": entry.codec_wall_s if entry else None,
            "metric_wall_s": metric_wall, "codecbench_version": bench.__version__,
            "git_hash": self._git, "provenance": self._prov,
        }
        r["row_key"] = row_key(r)
        return r

    def missing(self, op: OpPoint, item: Item) -> dict[str, list[str]]:
        """Per task, the metrics of this (op-point, item) that have no row yet."""
        out: dict[str, list[str]] = {}
        for task, ids in self.metric_ids.items():
            if getattr(self.task_objs[task], "dataset_level", False):  # scored in run_dataset_tasks
                continue
            if getattr(self.task_objs[task], "lm_task", None):  # generation: codec-LMs only (lm_stage)
                continue
            base = {"codec": op.meta.id, "dataset": self.dataset.name,
                    "manifest_sha256": self.dataset.manifest_sha256, "item_id": item.id, "task": task}
            todo = [m for m in ids if row_key({**base, "metric": m}) not in self.store.done]
            if todo:
                out[task] = todo
        return out

    # -- execution ---------------------------------------------------------------------------
    def _references(self, items: Iterator[Item]) -> Iterator[RefAudio]:
        for item in items:
            yield (RefAudio(item.id, None, None, item.error) if item.error
                   else load_reference(item.id, self.dataset.path_of(item)))

    def _start_codec_jobs(self, executor: Executor, order: list[Item]) -> tuple[CodecPrefill, Cache]:
        """Codec jobs on the executor, and the cache the driver's codec stages then read.

        That is the run's cache, unless the run reads no cache (``--no-cache``): then the jobs
        write into a fresh directory that only this execution reads, so nothing coded before is
        reused and the codecs still run on the executor.
        """
        root = self.cache.root if self.cache.read else self.run_dir / ".scratch-cache" / f"jobs-{uuid.uuid4().hex}"
        prefill = CodecPrefill(executor, codec_jobs(self, order, root), max_pending=max(2, 2 * executor.workers))
        if prefill.active and not self.cache.read:
            return prefill, Cache(root)
        return prefill, self.cache

    def execute(self, executor: Executor) -> None:
        by_id = {item.id: item for item in self.dataset.items}
        # longest first (manifest durations), so the codec stage's bounded windows keep LPT order;
        # items to do are found lazily per op-point, nothing per item is held for the whole run
        order = sorted(self.dataset.items, key=lambda it: -(it.duration or 0.0))
        total_items = sum(1 for op in self.ops for it in order if self.missing(op, it))
        in_flight: dict[Future, tuple[OpPoint, Item, ScoreJob, DecodedEntry, list[str], float]] = {}
        bar = tqdm(total=total_items, desc="codec×item", unit="pair", disable=not self.config.progress,
                   dynamic_ncols=True)
        open_jobs: dict[tuple[str, str], int] = {}  # (op-point, item) → scoring jobs not yet back
        warmed = False

        def collect(block: bool) -> None:
            if not in_flight:
                return
            done, _ = wait(list(in_flight), timeout=None if block else 0, return_when=FIRST_COMPLETED)
            for fut in done:
                op, item, job, entry, keys, duration = in_flight.pop(fut)
                try:
                    outcomes = fut.result()
                except Exception as exc:  # a worker died: the cells fail with the reason, the run goes on
                    outcomes = [CellOutcome(m, None, f"worker failed: {type(exc).__name__}: {exc}", 0.0)
                                for m in job.metric_ids]
                rows, cache_rows = [], []
                for outcome, key in zip(outcomes, keys, strict=True):
                    rows.append(self.row(op, item, job.task, outcome.metric, value=outcome.value,
                                         error=outcome.error, entry=entry, metric_wall=outcome.wall_s,
                                         judge=outcome.judge, duration=duration))
                    cache_rows.append((key, outcome.value, outcome.error, outcome.wall_s))
                self.cache.put_values(cache_rows)
                self.store.add(rows)
                self.stats["cells_computed"] += len(rows)
                pair = (op.meta.id, item.id)
                open_jobs[pair] -= 1
                if open_jobs[pair] == 0:
                    del open_jobs[pair]
                    bar.update(1)

        try:
            prefill, decoded_cache = self._start_codec_jobs(executor, order)
            for op in self.ops:
                items = (it for it in order if self.missing(op, it))
                bar.set_postfix_str(op.meta.id)
                weights = self.config.weights.get(op.meta.id)
                stage = CodecStage(op, decoded_cache, self.config.device, self.config.batch_size,
                                   Path(weights) if weights else None)
                for result in prefill.finish(op.meta.id, lambda: collect(block=False)):
                    self.stats["codec_items_computed"] += result.n_computed
                    self.stats["codec_items_computed_in_jobs"] += result.n_computed
                ref_iter = self._partition_failures(op, self._references(items), by_id, bar)
                for ref, entry in stage.process(ref_iter):
                    item = by_id[ref.item_id]
                    if not warmed and stage.n_computed:  # real work ahead: start workers while codecs run
                        executor.warm_up(warm_metrics, self.all_metric_ids)
                        warmed = True
                    submitted = self._submit(op, item, ref, entry, executor, in_flight)
                    if submitted and not warmed:
                        executor.warm_up(warm_metrics, self.all_metric_ids)
                        warmed = True
                    if submitted:
                        open_jobs[(op.meta.id, item.id)] = submitted
                    else:
                        bar.update(1)
                    while len(in_flight) >= self.config.max_in_flight:
                        collect(block=True)
                    collect(block=False)
                    prefill.top_up()
                run_dataset_tasks(self, op, stage)
                self.stats["codec_items_computed"] += stage.n_computed
            run_lm_tasks(self)
            while in_flight:
                collect(block=True)
        finally:
            bar.close()
            self.store.flush()

    def _record_encoding(self, op: OpPoint, item: Item, entry: DecodedEntry) -> None:
        row: dict[str, Any] = {
            "codec": op.meta.id, "dataset": self.dataset.name, "manifest_sha256": self.dataset.manifest_sha256,
            "item_id": item.id, "n_samples": entry.n_samples, "sample_rate": entry.sample_rate,
            "n_frames": entry.n_frames, "payload_bps": entry.payload_bps, "overhead_bps": entry.overhead_bps,
            "codes_path": entry.codes_path,
        }
        row["row_key"] = row_key(row, ENCODING_IDENTITY)
        self.encodings.add([row])

    def _partition_failures(self, op: OpPoint, refs: Iterator[RefAudio], by_id: dict[str, Item],
                            bar: tqdm) -> Iterator[RefAudio]:
        """Pass loadable references on; unusable ones become error rows right here."""
        for ref in refs:
            if ref.audio is not None:
                yield ref
                continue
            item = by_id[ref.item_id]
            rows = [self.row(op, item, task, m, error=f"input: {ref.error}")
                    for task, ids in self.missing(op, item).items() for m in ids]
            self.store.add(rows)
            bar.update(1)

    def _submit(self, op: OpPoint, item: Item, ref: RefAudio, entry: DecodedEntry, executor: Executor,
                in_flight: dict) -> int:
        """Write the rows the cache already holds; submit one job per task for the rest."""
        submitted = 0
        assert ref.audio is not None
        duration = ref.audio.duration
        if entry.error is None:
            self._record_encoding(op, item, entry)
        for task, ids in self.missing(op, item).items():
            reason = entry.error or (None if entry.decodable else
                                     f"{op.meta.id} is encode-only (no decoder): {task} scores resynthesised audio")
            if reason:
                self.store.add([self.row(op, item, task, m, error=reason, entry=entry, duration=duration)
                                for m in ids])
                continue
            keys = {m: content_key("value-v1", ref.sha256, entry.sha256, m, metrics.get(m).info.version)
                    for m in ids}
            cached = self.cache.get_values(list(keys.values()))
            rows, todo = [], []
            for m in ids:
                hit = cached.get(keys[m])
                if hit is None:
                    todo.append(m)
                    continue
                value, error, wall = hit
                rows.append(self.row(op, item, task, m, value=value, error=error, entry=entry, metric_wall=wall,
                                     duration=duration))
            self.stats["cells_from_cache"] += len(rows)
            self.store.add(rows)
            if todo:
                job = ScoreJob(task, item, str(self.dataset.path_of(item)), str(entry.path), entry.sample_rate, todo)
                in_flight[executor.submit(score_job, job)] = (op, item, job, entry, [keys[m] for m in todo], duration)
                submitted += 1
        return submitted


def run(config: RunConfig) -> Path:
    """Execute a run to completion (or resume one) and write results and summary; return its dir."""
    from bench.analysis.summary import summarize

    started = time.perf_counter()
    state = Run(config)
    state.run_dir.mkdir(parents=True, exist_ok=True)
    state.write_run_json()
    executor = make_executor(config.executor, config.workers, config.address)
    try:
        state.execute(executor)
    finally:
        executor.shutdown()
        state.store.flush()
        state.encodings.flush()
        state.cache.close()
    state.encodings.consolidate()
    df = state.store.consolidate()
    summary = summarize(df)
    with atomic_path(state.run_dir / "summary.csv") as tmp:
        summary.to_csv(tmp, index=False)
    with atomic_path(state.run_dir / "summary.parquet") as tmp:
        summary.to_parquet(tmp, index=False)
    state.stats["wall_s"] = round(time.perf_counter() - started, 3)
    state.write_run_json()
    return state.run_dir
