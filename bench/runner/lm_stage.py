"""Generation tasks on codec-LMs (``--lms``): list entries → generate (per seed) → judges → rows.

Codec-LMs are not codec op-points: they take text and a prompt rather than a reference to code, so
they do not go through the codec stage. A task with ``lm_task`` set (``zero_shot_tts``) builds its
list from the run's dataset; here, in the driver, each LM is loaded once and every entry whose rows
are missing is generated ``n_seeds`` times and scored. Rows use the run's schema, with the LM id in
the ``codec`` column and its family in ``codec_family`` (declared bitrate NaN: an LM has none), so
summaries, CIs and reports treat LM rows like any other.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from tqdm import tqdm

from bench.data.manifest import Item
from bench.lms import lms
from bench.lms.base import LMMeta
from bench.runner.store import row_key

if TYPE_CHECKING:
    from bench.runner.run import Run

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _RowMeta:
    id: str
    family: str
    bitrate_bps: float = float("nan")


@dataclass(frozen=True)
class LMRowSource:
    """What :meth:`Run.row` reads from an op-point, for a codec-LM."""

    meta: _RowMeta

    @classmethod
    def of(cls, meta: LMMeta) -> LMRowSource:
        return cls(_RowMeta(meta.id, meta.family))


def run_lm_tasks(run: Run) -> None:
    """Evaluate every generation task of the run on every requested codec-LM."""
    gen_tasks = {n: t for n, t in run.task_objs.items() if getattr(t, "lm_task", None)}
    if not gen_tasks or not run.config.lms:
        return
    for lm_id in run.config.lms:
        entry = lms.get(lm_id)
        src = LMRowSource.of(entry.meta)
        model = None
        load_error: str | None = None
        for name, task in gen_tasks.items():
            ids = run.metric_ids[name]
            base = {"codec": lm_id, "dataset": run.dataset.name, "manifest_sha256": run.dataset.manifest_sha256,
                    "task": name}
            todo = [e for e in task.entries(run.dataset, seed=run.config.list_seed)
                    if any(row_key({**base, "item_id": e.id, "metric": m}) not in run.store.done for m in ids)]
            if not todo:
                continue

            def item_of(e) -> Item:
                return Item(e.id, e.target_path, e.target_duration, text=e.target_text, speaker=e.speaker)

            def fail(reason: str, entries=todo, task_name=name, metric_ids=ids, src=src) -> None:
                run.store.add([run.row(src, item_of(e), task_name, m, error=reason)
                               for e in entries for m in metric_ids])

            if task.lm_task not in entry.meta.tasks:
                fail(f"{lm_id} does not do {task.lm_task!r} (it does {', '.join(sorted(entry.meta.tasks))})")
                continue
            if model is None and load_error is None:
                model = entry.build()
                ok, why = model.availability()
                try:
                    if not ok:
                        raise RuntimeError(why)
                    path = run.config.lm_paths.get(lm_id)
                    model.load(run.config.device, Path(path) if path else None,
                               random_init=run.config.lm_random_init and entry.meta.kind == "model")
                except Exception as exc:  # every cell of this LM fails with the reason; the run goes on
                    load_error = f"load: {type(exc).__name__}: {exc}"
            if load_error:
                fail(load_error)
                continue
            for e in tqdm(todo, desc=f"{lm_id} {name}", unit="entry", disable=not run.config.progress):
                outcomes = task.evaluate_entry(model, e, ids, n_seeds=run.config.n_seeds,
                                               max_seconds=run.config.lm_max_seconds)
                item = item_of(e)
                run.store.add([run.row(src, item, name, o.metric, value=o.value, error=o.error,
                                       metric_wall=o.wall_s, judge=o.judge) for o in outcomes])
                run.stats["cells_computed"] += len(outcomes)
