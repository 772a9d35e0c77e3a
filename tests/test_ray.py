"""The Ray executor: same table as the local executor, and a worker killed mid-task loses and duplicates nothing.

Starts one local Ray instance with 2 CPUs for the module. Skipped when ray is not installed,
except in CI (CI=true), where the optional extra must be present and these tests must run.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

if os.environ.get("CI", "").lower() != "true":
    pytest.importorskip("ray")
import ray  # noqa: E402

from bench.runner.executor import executors, make_executor  # noqa: E402
from bench.runner.jobs import ScoreJob, score_job  # noqa: E402
from bench.runner.ray_executor import RayExecutor  # noqa: E402
from bench.runner.run import RunConfig, run  # noqa: E402
from bench.runner.store import read_results  # noqa: E402

METRICS = ["si_sdr", "stoi", "mel_distance"]
CODECS = ["g711@64kbps", "g722@64kbps"]
N_ITEMS = 3


@pytest.fixture(scope="module")
def ray_cluster():
    import cloudpickle

    # workers cannot import this test module: ship its functions by value
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}})
    yield
    ray.shutdown()
    cloudpickle.unregister_pickle_by_value(sys.modules[__name__])


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


def _config(data: Path, tmp: Path, name: str, executor: str, codecs: list[str] = CODECS) -> RunConfig:
    return RunConfig(codecs=codecs, tasks=["reconstruction"], data=str(data), out=tmp / name, metrics=METRICS,
                     workers=2, cache_dir=tmp / f"cache-{name}", executor=executor, progress=False,
                     max_in_flight=4)


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
    assert ray.is_initialized()  # the executor joined the running instance and left it running


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
