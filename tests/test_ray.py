"""The Ray executor: same table as the local executor with codec inference in Ray tasks, a failing
codec job changes nothing, and a worker killed mid-task loses and duplicates nothing.

Starts one local Ray instance with 2 CPUs for the module. Skipped when ray is not installed,
except in CI (CI=true), where the optional extra must be present and these tests must run.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch

if os.environ.get("CI", "").lower() != "true":
    pytest.importorskip("ray")
import ray  # noqa: E402

from bench.codecs import OpPoint, codecs  # noqa: E402
from bench.codecs.encodec import EncodecCodec  # noqa: E402
from bench.codecs.g711 import G711Codec  # noqa: E402
from bench.errors import CodecError  # noqa: E402
from bench.runner.executor import executors, make_executor  # noqa: E402
from bench.runner.jobs import CodecJob, ScoreJob, codec_job, score_job  # noqa: E402
from bench.runner.ray_executor import RayExecutor  # noqa: E402
from bench.runner.run import RunConfig, run  # noqa: E402
from bench.runner.store import read_results  # noqa: E402

METRICS = ["si_sdr", "stoi", "mel_distance"]
CODECS = ["g711@64kbps", "g722@64kbps"]
N_ITEMS = 3


@pytest.fixture(scope="module")
def ray_cluster():
    import cloudpickle
    import ray.cloudpickle

    # workers cannot import this test module: ship its functions and classes by value (ray
    # serialises task arguments with its own copy of cloudpickle, which keeps its own list)
    picklers = {cloudpickle, ray.cloudpickle}
    for pickler in picklers:
        pickler.register_pickle_by_value(sys.modules[__name__])
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}})
    yield
    ray.shutdown()
    for pickler in picklers:
        pickler.unregister_pickle_by_value(sys.modules[__name__])


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("data")
    rng = np.random.default_rng(0)
    sr = 16000
    t = np.arange(int(1.3 * sr)) / sr
    for i in range(N_ITEMS):
        f0 = 110 + 30 * i
        phase = 2 * np.pi * np.cumsum(f0 * (1 + 0.1 * np.sin(2 * np.pi * 0.7 * t))) / sr
        x = sum(np.sin(k * phase) / k for k in range(1, 20))
        env = np.clip(np.sin(2 * np.pi * 3.0 * t), 0, None) ** 0.7
        y = 0.3 * x * env / np.max(np.abs(x)) + 0.002 * rng.standard_normal(t.size)
        sf.write(root / f"u{i}.wav", y.astype(np.float32), sr, subtype="PCM_16")
    return root


def _config(data: Path, tmp: Path, name: str, executor: str, codecs: list[str] = CODECS,
            use_cache: bool = True) -> RunConfig:
    return RunConfig(codecs=codecs, tasks=["reconstruction"], data=str(data), out=tmp / name, metrics=METRICS,
                     workers=2, cache_dir=tmp / f"cache-{name}", executor=executor, progress=False,
                     max_in_flight=4, use_cache=use_cache)


def _stats(run_dir: Path) -> dict:
    return json.loads((run_dir / "run.json").read_text())["stats"]


def _cells(run_dir: Path) -> pd.DataFrame:
    df = read_results(run_dir)
    return df.set_index(["codec", "item_id", "task", "metric"])[["value", "status", "error"]].sort_index()


def test_ray_executor_is_lazy_and_registered() -> None:
    assert "ray" in executors.names()
    import subprocess

    code = ("import sys, bench.runner.run, bench.runner.executor as e; e.executors.names(); "
            "assert 'ray' not in sys.modules, 'core imported ray'")
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.fixture(scope="module")
def local_table(tiny_data, tmp_path_factory) -> pd.DataFrame:
    return _cells(run(_config(tiny_data, tmp_path_factory.mktemp("local"), "local", "local")))


def test_ray_table_equals_local_table(ray_cluster, tiny_data, local_table, tmp_path) -> None:
    remote = run(_config(tiny_data, tmp_path, "ray", "ray"))
    a, b = local_table, _cells(remote)
    assert len(a) == len(CODECS) * N_ITEMS * len(METRICS)
    assert (a["status"] == "ok").all(), a[a.status != "ok"]
    pd.testing.assert_frame_equal(a, b, check_exact=True)
    stats = _stats(remote)
    # every item was coded by a codec job in Ray, none by the driver's own codec stage
    assert stats["codec_items_computed"] == stats["codec_items_computed_in_jobs"] == len(CODECS) * N_ITEMS
    assert ray.is_initialized()  # the executor joined the running instance and left it running


# -- codec inference in Ray tasks: a neural codec (real architecture, seeded random weights) ------

RANDOM_ENCODEC = "test-encodec-random@1.5kbps"
BROKEN = "test-broken-load@64kbps"


class RandomEncodec(EncodecCodec):
    """EnCodec 24 kHz as registered, but tiny with seeded random weights: a run needs no download."""

    loads_in_this_process = 0

    def load(self, device="cpu", weights=None, random_init=False) -> None:
        type(self).loads_in_this_process += 1
        super().load(device, weights, random_init=True)


class BrokenLoad(G711Codec):
    """A codec whose checkpoint cannot be read: it raises on load, wherever it runs."""

    def load(self, device="cpu", weights=None, random_init=False) -> None:
        raise CodecError("checkpoint is truncated")


TEST_OPS = {
    RANDOM_ENCODEC: OpPoint(replace(codecs.get("encodec_24khz@1.5kbps").meta, id=RANDOM_ENCODEC, family="test"),
                            RandomEncodec),
    BROKEN: OpPoint(replace(codecs.get("g711@64kbps").meta, id=BROKEN, family="test"), BrokenLoad),
}
for _name, _op in TEST_OPS.items():
    codecs.register(_name, _op)


def _registering_test_codecs(fn):
    """Wrap a codec-job function so the Ray worker knows this module's op-points (they register on import)."""

    def call(job):
        from bench.codecs import codecs as registry  # the worker's registry, not a pickled copy

        for name, op in TEST_OPS.items():
            if name not in registry:
                registry.register(name, op)
        return fn(job)

    return call


class RayWithTestCodecs(RayExecutor):
    """The Ray executor whose workers also know the test op-points."""

    def submit_codec(self, fn, job, gpu):
        return super().submit_codec(_registering_test_codecs(fn), job, gpu)


def _failing_for(op_id: str, fn):
    """Wrap a codec-job function so that jobs of ``op_id`` raise in the worker (a full disk, say)."""

    def call(job):
        if job.op_id == op_id:
            raise OSError(f"no space left on device (test) for {job.op_id}")
        return fn(job)

    return call


class RayFailingNeuralJobs(RayWithTestCodecs):
    """Codec jobs of the random EnCodec raise in the worker; the others run."""

    def submit_codec(self, fn, job, gpu):
        return super().submit_codec(_failing_for(RANDOM_ENCODEC, fn), job, gpu)


executors.register("ray-test-codecs", lambda workers: RayWithTestCodecs(workers))
executors.register("ray-failing-jobs", lambda workers: RayFailingNeuralJobs(workers))
NEURAL = ["g711@64kbps", RANDOM_ENCODEC]


@pytest.fixture(scope="module")
def local_neural_table(tiny_data, tmp_path_factory) -> pd.DataFrame:
    return _cells(run(_config(tiny_data, tmp_path_factory.mktemp("local-neural"), "local", "local", NEURAL,
                              use_cache=False)))


def test_codec_inference_runs_in_ray_tasks_with_the_same_table(ray_cluster, tiny_data, local_neural_table,
                                                               tmp_path) -> None:
    assert RandomEncodec.loads_in_this_process > 0  # the local run coded in this (the driver's) process
    RandomEncodec.loads_in_this_process = 0
    # --no-cache: the jobs write into a fresh directory only this execution reads
    remote = run(_config(tiny_data, tmp_path, "ray", "ray-test-codecs", NEURAL, use_cache=False))
    a, b = local_neural_table, _cells(remote)
    assert len(a) == len(NEURAL) * N_ITEMS * len(METRICS)
    assert (a["status"] == "ok").all(), a[a.status != "ok"]
    pd.testing.assert_frame_equal(a, b, check_exact=True)
    stats = _stats(remote)
    assert stats["codec_items_computed"] == stats["codec_items_computed_in_jobs"] == len(NEURAL) * N_ITEMS
    assert RandomEncodec.loads_in_this_process == 0  # the neural codec never ran in the driver
    assert list((remote / ".scratch-cache").glob("jobs-*/decoded/*/*.npy"))  # this execution's own directory
    assert not (tmp_path / "cache-ray").exists()  # the shared cache was neither read nor written


def test_failing_codec_jobs_change_nothing(ray_cluster, tiny_data, local_neural_table, tmp_path, caplog) -> None:
    # BROKEN raises on load: its jobs report why, the driver tries too, and its cells fail with the reason;
    # the random EnCodec's jobs raise in the worker: logged with the reason, the driver codes its items
    with caplog.at_level(logging.WARNING, logger="bench.runner.codec_prefill"):
        out = run(_config(tiny_data, tmp_path, "failing", "ray-failing-jobs", [*NEURAL, BROKEN]))
    df = _cells(out)
    bad = df.loc[BROKEN]
    assert len(bad) == N_ITEMS * len(METRICS) and (bad["status"] == "error").all()
    assert bad["error"].str.contains("checkpoint is truncated").all()
    assert any(RANDOM_ENCODEC in r.message and "no space left on device" in r.message for r in caplog.records)
    pd.testing.assert_frame_equal(df.loc[NEURAL], local_neural_table, check_exact=True)
    stats = _stats(out)
    assert stats["codec_items_computed_in_jobs"] == N_ITEMS  # g711 in Ray
    assert stats["codec_items_computed"] == len(NEURAL) * N_ITEMS  # and the EnCodec items in the driver


def test_codec_job_fills_the_cache_and_leaves_its_worker_as_it_found_it(tiny_data, tmp_path) -> None:
    """A neural codec flushes denormals process-wide; the scoring jobs after it in a worker must not."""
    items = [(f"u{i}", str(tiny_data / f"u{i}.wav")) for i in range(N_ITEMS)]
    job = CodecJob(RANDOM_ENCODEC, None, "cpu", 2, str(tmp_path / "cache"), items)
    result = codec_job(job)
    assert result.n_computed == N_ITEMS and result.load_error is None
    assert (torch.tensor([1e-40]) * 1.0).item() != 0.0  # denormals survive: flushing is off again
    assert codec_job(job).n_computed == 0  # everything is in the cache now


def _crash_once(marker_dir: str):
    """A job function that kills its worker process on each job's first attempt."""

    def fn(job: ScoreJob):
        marker = Path(marker_dir) / f"{Path(job.deg_path).stem}-{job.item.id}-{job.task}"
        if not marker.exists():
            marker.touch()
            os._exit(1)  # the worker dies mid-task, as under an OOM kill
        (marker.parent / (marker.name + ".retried")).touch()
        return score_job(job)

    return fn


class CrashingRay(RayExecutor):
    """The Ray executor with a job function that dies on first attempt."""

    marker_dir = ""

    def submit(self, fn, arg):
        return super().submit(_crash_once(self.marker_dir), arg)


def test_killed_worker_is_retried_without_lost_or_duplicated_cells(ray_cluster, tiny_data, local_table,
                                                                   tmp_path) -> None:
    markers = tmp_path / "markers"
    markers.mkdir()
    CrashingRay.marker_dir = str(markers)
    name = f"crashing-ray-{os.getpid()}"
    executors.register(name, lambda workers: CrashingRay(workers, max_retries=2))
    out = run(_config(tiny_data, tmp_path, "crash", name, codecs=CODECS[:1]))
    jobs = N_ITEMS
    crashed = [p for p in markers.iterdir() if not p.name.endswith(".retried")]
    retried = list(markers.glob("*.retried"))
    assert len(crashed) == jobs and len(retried) == jobs  # every job died once and was retried
    df = read_results(out)
    raw = pd.read_parquet(out / "results.parquet")  # the consolidated file as written, not deduplicated
    assert len(raw) == len(df) == jobs * len(METRICS)  # nothing lost, nothing duplicated
    assert raw["row_key"].is_unique
    assert (df["status"] == "ok").all(), df[df.status != "ok"][["item_id", "metric", "error"]]
    pd.testing.assert_frame_equal(_cells(out), local_table.loc[CODECS[:1]], check_exact=True)


def test_address_is_only_for_cluster_executors() -> None:
    from bench.errors import UsageError

    with pytest.raises(UsageError, match="--address"):
        make_executor("local", 1, address="auto")
