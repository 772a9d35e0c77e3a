"""Throughput benchmark: reference metric loop vs codecbench, side by side in one run.

Prints, for the same N (reference, codec output) pairs of the embedded corpus:
  (a) a bare sequential loop of the reference metric calls,
  (b) codecbench with 1 worker, (c) with all cores, (d) a warm rerun (everything cached),
and the ratios the project targets: b/a ≤ 1.05, a/c ≥ 1.8 on 2 cores, d/c ≤ 0.02.
Codec outputs are produced once beforehand, so every timed path does the same metric work.

    python tests/benchmarks/throughput.py [--n 24] [--codec opus@12kbps] [--metrics ...]
"""

from __future__ import annotations

import os

# Per-core comparison: (a) and (b) run on one core, as each worker of (c) does. Set before any
# numerical library is imported (torch, BLAS and numba size their thread pools at import).
from bench.runner.executor import SINGLE_THREAD_ENV  # light import: no numerical library

os.environ.update(SINGLE_THREAD_ENV)

import argparse  # noqa: E402
import contextlib  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402


def bare_loop(pairs: list[tuple[Path, Path, int]], metric_ids: list[str]) -> float:
    """What a researcher would write: load, resample, align, call each metric — no framework."""
    from bench.audio import Audio, load_audio, prepare_pair
    from bench.metrics import metrics

    start = time.perf_counter()
    for ref_path, deg_path, deg_rate in pairs:
        ref = load_audio(ref_path)
        deg = Audio(np.load(deg_path), deg_rate)
        prepared: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        for m in metric_ids:
            metric = metrics.get(m)
            rate = metric.info.sample_rate
            if rate not in prepared:
                prepared[rate] = prepare_pair(ref, deg, rate)
            with contextlib.suppress(Exception):  # a failure costs time too; values are not used here
                metric.compute(*prepared[rate])
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=30, help="utterances of the embedded corpus (max 30)")
    ap.add_argument("--codecs", default="opus@12kbps,lc3@24kbps",
                    help="op-points whose outputs are scored: N × len(codecs) pairs")
    ap.add_argument("--metrics", default=None, help="comma list (default: all reconstruction metrics)")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)

    from bench.data import resolve_dataset
    from bench.data.manifest import write_manifest
    from bench.runner.codec_stage import decoded_key
    from bench.runner.run import RunConfig, run
    from bench.task import tasks

    codec_ids = args.codecs.split(",")
    metric_ids = args.metrics.split(",") if args.metrics else list(tasks.get("reconstruction").default_metrics)
    ds = resolve_dataset("embedded")
    items = sorted(ds.items, key=lambda it: it.id)[: args.n]
    tmp = Path(tempfile.mkdtemp(prefix="codecbench-bench-"))
    # a subset manifest over symlinks to the corpus audio (manifests hold relative paths)
    root = tmp / "data"
    root.mkdir()
    manifest = root / "subset.jsonl"
    for it in items:
        os.symlink(ds.path_of(it), root / Path(it.audio).name)
    write_manifest([it.__class__(**{**it.__dict__, "audio": Path(it.audio).name}) for it in items], manifest)

    cache = tmp / "cache"

    def cfg(out: str, workers: int) -> RunConfig:
        return RunConfig(codecs=codec_ids, tasks=["reconstruction"], data=str(manifest), out=tmp / out,
                         metrics=metric_ids, workers=workers, cache_dir=cache, progress=False)

    # warm the codec stage once; every timed path below starts from the same decoded audio
    run(RunConfig(codecs=codec_ids, tasks=["reconstruction"], data=str(manifest), out=tmp / "warm",
                  metrics=["si_sdr"], workers=1, cache_dir=cache, progress=False))
    from bench.audio import load_audio
    from bench.codecs import codecs
    from bench.runner.cache import Cache

    c = Cache(cache)
    pairs = []
    for codec_id in codec_ids:
        for it in items:
            ref_path = root / Path(it.audio).name
            entry = c.get_decoded(decoded_key(codecs.get(codec_id), load_audio(ref_path).sha256()))
            assert entry is not None and entry.error is None, entry
            pairs.append((ref_path, entry.path, entry.sample_rate))

    def timed_run(out: str, workers: int) -> float:
        (cache / "values.sqlite").unlink(missing_ok=True)
        for suffix in ("-wal", "-shm"):
            (cache / f"values.sqlite{suffix}").unlink(missing_ok=True)
        start = time.perf_counter()
        run(cfg(out, workers))
        return time.perf_counter() - start

    a = bare_loop(pairs, metric_ids)
    b = timed_run("one", 1)
    c_time = timed_run("all", args.workers)
    start = time.perf_counter()
    run(cfg("warm-rerun", args.workers))
    d = time.perf_counter() - start

    audio_s = sum(load_audio(p).duration for p, _, _ in pairs)
    print(f"pairs: {len(pairs)} ({audio_s:.1f} s of audio), codecs {args.codecs}, metrics {','.join(metric_ids)}")
    print("(a) and (b) run on one core (thread pools limited to 1); (c) runs one such worker per core")
    print(f"(a) bare reference loop      {a:8.2f} s")
    print(f"(b) codecbench, 1 worker     {b:8.2f} s   b/a = {b / a:.3f}   (target ≤ 1.05)")
    print(f"(c) codecbench, {args.workers} workers    {c_time:8.2f} s   a/c = {a / c_time:.2f}x  (target ≥ 1.8 on 2 cores)")
    print(f"(d) warm rerun, all cached   {d:8.2f} s   d/c = {d / c_time:.3%}  (target ≤ 2 %)")
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
