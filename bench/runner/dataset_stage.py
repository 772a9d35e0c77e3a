"""Dataset-level tasks: tasks that need every utterance's tokens of one op-point at once.

A task with ``dataset_level = True`` (e.g. text alignment, which trains a probe) is not scored
per (reference, decoded) pair by workers. After an op-point's codec stage, the driver gathers
the token codes the stage recorded for the train and held-out utterances (``codes_path`` of each
cached entry; the codec stage is cached, so this re-reads rather than re-codes), calls
``task.evaluate_dataset`` once, and writes one row per held-out utterance and metric. The result
is cached under (task identity, op-point, every codes file), so a rerun writes rows without
training again.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np

from bench.codecs import OpPoint
from bench.data import resolve_dataset
from bench.data.manifest import Dataset, Item
from bench.runner.cache import DecodedEntry, content_key
from bench.runner.codec_stage import CodecStage, RefAudio, load_reference
from bench.runner.store import row_key

if TYPE_CHECKING:
    from bench.runner.run import Run

log = logging.getLogger(__name__)


def _refs(dataset: Dataset, items: list[Item]) -> Iterator[RefAudio]:
    for item in items:
        ref = load_reference(item.id, dataset.path_of(item))
        if ref.audio is None:
            log.warning("%s: cannot load %s for a dataset-level task: %s", dataset.name, item.id, ref.error)
            continue
        yield ref


def _entries(stage: CodecStage, dataset: Dataset, items: list[Item]) -> dict[str, DecodedEntry]:
    return {ref.item_id: entry for ref, entry in stage.process(_refs(dataset, items)) if entry.error is None}


def run_dataset_tasks(run: Run, op: OpPoint, stage: CodecStage) -> None:
    """Evaluate every dataset-level task of the run on ``op``; rows go to the run's store."""
    from bench.tasks.text_alignment import TokenItem  # the token container dataset-level tasks share

    for name, task in run.task_objs.items():
        if not getattr(task, "dataset_level", False):
            continue
        ids = run.metric_ids[name]
        usable = [it for it in run.dataset.items if not it.error and it.text]
        train_name = task.train_dataset(run.dataset.name)
        if train_name:
            train_ds = resolve_dataset(train_name)
            train_items, test_items = [it for it in train_ds.items if not it.error and it.text], usable
        else:
            train_ds = run.dataset
            train_items, test_items = task.split(usable)
        base = {"codec": op.meta.id, "dataset": run.dataset.name, "manifest_sha256": run.dataset.manifest_sha256,
                "task": name}
        if all(row_key({**base, "item_id": it.id, "metric": m}) in run.store.done for it in test_items for m in ids):
            continue
        by_id = {it.id: it for it in test_items}

        def fail(reason: str, items: list[Item] = test_items, task_name: str = name, metric_ids: list[str] = ids) -> None:
            run.store.add([run.row(op, it, task_name, m, error=reason) for it in items for m in metric_ids])

        if op.meta.kind != "tokens" or not op.meta.codebook_sizes:
            fail(f"{name} needs a token codec; {op.meta.id} emits a bitstream")
            continue
        test_entries = _entries(stage, run.dataset, test_items)
        train_entries = _entries(stage, train_ds, train_items)
        if stage.load_error:
            fail(stage.load_error)
            continue
        missing = [it.id for it in test_items if it.id not in test_entries or not test_entries[it.id].codes_path]
        if missing:
            log.warning("%s on %s: no codes for %d held-out item(s)", name, op.meta.id, len(missing))

        def tokens(entries: dict[str, DecodedEntry], items: list[Item]) -> list[TokenItem]:
            out = []
            for it in items:
                e = entries.get(it.id)
                if e is not None and e.codes_path:
                    out.append(TokenItem(it.id, np.load(e.codes_path), it.text or "",
                                         (e.n_samples or 0) / e.sample_rate if e.n_samples else (it.duration or 0.0)))
            return out

        train_tok, test_tok = tokens(train_entries, train_items), tokens(test_entries, test_items)
        key_base = content_key("dataset-v1", task.identity(run.dataset.name), op.meta.to_dict(), stage._weights_id,
                               [(t.item_id, train_entries[t.item_id].codes_path) for t in train_tok],
                               [(t.item_id, test_entries[t.item_id].codes_path) for t in test_tok])
        keys = {(t.item_id, m): content_key(key_base, t.item_id, m) for t in test_tok for m in ids}
        cached = run.cache.get_values(list(keys.values()))
        if test_tok and len(cached) == len(keys):
            rows = [run.row(op, by_id[i], name, m, value=cached[k][0], error=cached[k][1], entry=test_entries[i],
                            metric_wall=cached[k][2]) for (i, m), k in keys.items()]
            run.stats["cells_from_cache"] += len(rows)
            run.store.add(rows)
            continue
        try:
            outcomes = task.evaluate_dataset(op.meta.codebook_sizes, op.meta.frame_rate or 0.0, run.dataset.name,
                                             train_tok, test_tok, ids)
        except Exception as exc:  # one reason for every held-out cell; the run goes on
            fail(f"{type(exc).__name__}: {exc}")
            continue
        rows, cache_rows = [], []
        for d in outcomes:
            o = d.outcome
            rows.append(run.row(op, by_id[d.item_id], name, o.metric, value=o.value, error=o.error,
                                entry=test_entries.get(d.item_id), metric_wall=o.wall_s, judge=o.judge,
                                duration=d.duration))
            if (d.item_id, o.metric) in keys:
                cache_rows.append((keys[(d.item_id, o.metric)], o.value, o.error, o.wall_s))
        run.cache.put_values(cache_rows)
        run.store.add(rows)
        run.stats["cells_computed"] += len(rows)
        done = {d.item_id for d in outcomes}
        fail(f"no token codes for this item from {op.meta.id}", [it for it in test_items if it.id not in done])
