"""Scale benchmark: executors side by side, fast vs reference kernels, and peak memory vs dataset size.

Prints, from one invocation:
  (1) the same scoring work (N synthetic 1 s utterances × one codec × metrics) with the local
      executor on 1 worker, on all cores, and with Ray on this machine (its overhead ratio);
  (2) fast vs reference kernels per core (CPU time, one thread) on embedded-corpus speech through
      opus@12kbps: STOI/ESTOI vs pystoi, stft_distance vs auraloss, mel_distance vs its
      numpy + librosa reference (the latter two via CODECBENCH_REFERENCE_KERNELS=1);
  (3) peak RSS of a whole run (g711@64kbps, si_sdr, 1 worker) over 200 and 2,000 utterances,
      each measured in a fresh child process (target: within 10 %).

    python tests/benchmarks/scale.py [--n 600] [--metrics stoi,estoi,si_sdr,mel_distance] [--no-ray]
"""

from __future__ import annotations

import os

from bench.runner.executor import SINGLE_THREAD_ENV  # light import: no numerical library

os.environ.update(SINGLE_THREAD_ENV)

import argparse  # noqa: E402
import json  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402


def synth_corpus(root: Path, n: int, seconds: float = 1.0, sr: int = 16000) -> Path:
    """n short voiced utterances (distinct pitch and noise per item) and their manifest."""
    import soundfile as sf

    root.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * sr)) / sr
    env = np.clip(np.sin(2 * np.pi * 3.0 * t), 0, None) ** 0.7
    lines = []
    for i in range(n):
        rng = np.random.default_rng(i)
        f0 = 90 + 120 * rng.random()
        phase = 2 * np.pi * np.cumsum(f0 * (1 + 0.08 * np.sin(2 * np.pi * (0.5 + rng.random()) * t))) / sr
        x = sum(np.sin(k * phase) / k for k in range(1, 16))
        y = 0.3 * x * env / np.max(np.abs(x)) + 0.003 * rng.standard_normal(t.size)
        sf.write(root / f"u{i:05d}.wav", y.astype(np.float32), sr, subtype="PCM_16")
        lines.append(json.dumps({"id": f"u{i:05d}", "audio": f"u{i:05d}.wav", "duration": seconds,
                                 "sample_rate": sr}))
    manifest = root / "manifest.jsonl"
    manifest.write_text("\n".join(lines) + "\n")
    return manifest


def _clear_values(cache: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        (cache / f"values.sqlite{suffix}").unlink(missing_ok=True)


def executors_section(tmp: Path, n: int, metric_ids: list[str], codec: str, with_ray: bool) -> None:
    from bench.runner.run import RunConfig, run

    manifest = synth_corpus(tmp / "exec-data", n)
    cache = tmp / "exec-cache"
    cores = os.cpu_count() or 1

    def cfg(out: str, workers: int, executor: str = "local") -> RunConfig:
        return RunConfig(codecs=[codec], tasks=["reconstruction"], data=str(manifest), out=tmp / out,
                         metrics=metric_ids, workers=workers, cache_dir=cache, progress=False, executor=executor)

    run(RunConfig(codecs=[codec], tasks=["reconstruction"], data=str(manifest), out=tmp / "exec-warm",
                  metrics=["si_sdr"], workers=1, cache_dir=cache, progress=False))  # codec outputs cached once

    def timed(out: str, workers: int, executor: str = "local") -> float:
        _clear_values(cache)
        start = time.perf_counter()
        run(cfg(out, workers, executor))
        return time.perf_counter() - start

    one = timed("exec-one", 1)
    allc = timed("exec-all", cores)
    print(f"\n(1) executors: {n} utterances × {codec} × {','.join(metric_ids)} (codec outputs cached)")
    print(f"    local, 1 worker          {one:8.2f} s")
    print(f"    local, {cores} workers         {allc:8.2f} s   speed-up {one / allc:.2f}x")
    if with_ray:
        try:
            import ray
        except ImportError:
            print("    ray: not installed (pip install 'codecbench[ray]')")
            return
        ray.init(num_cpus=cores, include_dashboard=False, log_to_driver=False,
                 runtime_env={"env_vars": dict(SINGLE_THREAD_ENV)})
        try:
            cold = timed("exec-ray-cold", cores, "ray")  # includes starting the Ray workers
            r = timed("exec-ray", cores, "ray")
        finally:
            ray.shutdown()
        print(f"    ray (local, {cores} CPUs)      {r:8.2f} s   ratio to local pool {r / allc:.2f}x (warm cluster; "
              f"first run incl. worker start {cold:.2f} s)")


def kernels_section(n_pairs: int) -> None:
    import torch

    from bench.audio import Audio, load_audio, prepare_pair, resample, to_channels
    from bench.codecs import codecs
    from bench.data import resolve_dataset
    from bench.metrics import fast_stoi, metrics

    torch.set_num_threads(1)
    ds = resolve_dataset("embedded")
    op = codecs.get("opus@12kbps")
    codec = op.build()
    codec.load("cpu")
    pairs = []
    for item in sorted(ds.items, key=lambda it: it.id)[:n_pairs]:
        ref = load_audio(ds.path_of(item))
        inp = to_channels(resample(ref.samples, ref.sample_rate, op.meta.sample_rate), op.meta.channels)
        out, _ = codec.roundtrip([inp])[0]
        pairs.append(prepare_pair(ref, Audio(out, op.meta.sample_rate), 16000))
    audio_s = sum(p[0].size for p in pairs) / 16000

    def cpu(fn) -> float:
        fn()  # warm caches (filters, FFT plans)
        best = float("inf")
        for _ in range(3):
            start = time.process_time()
            fn()
            best = min(best, time.process_time() - start)
        return best

    from pystoi import stoi as ref_stoi

    print(f"\n(2) kernels: {len(pairs)} embedded utterances through opus@12kbps ({audio_s:.1f} s), "
          "CPU time on one thread, best of 3")
    worst = 0.0
    for name, ext in (("stoi", False), ("estoi", True)):
        ref_vals = [ref_stoi(x, y, 16000, extended=ext) for x, y in pairs]
        fast_vals = [fast_stoi.stoi(x, y, 16000, ext) for x, y in pairs]
        worst = max(worst, float(np.max(np.abs(np.array(ref_vals) - np.array(fast_vals)))))
        t_ref = cpu(lambda ext=ext: [ref_stoi(x, y, 16000, extended=ext) for x, y in pairs])
        t_fast = cpu(lambda ext=ext: [fast_stoi.stoi(x, y, 16000, ext) for x, y in pairs])
        t_batch = cpu(lambda ext=ext: fast_stoi.stoi_batch([p[0] for p in pairs], [p[1] for p in pairs], 16000, ext))
        print(f"    {name:6s} pystoi {t_ref / audio_s * 1000:6.2f} ms/s-audio   fast {t_fast / audio_s * 1000:6.2f} "
              f"({t_ref / t_fast:4.1f}x)   fast batched {t_batch / audio_s * 1000:6.2f} ({t_ref / t_batch:4.1f}x)")
    print(f"    max |fast - pystoi| = {worst:.1e}")
    # spectral distances: the metric with the fast kernel vs the same metric with
    # CODECBENCH_REFERENCE_KERNELS=1 (auraloss; the numpy + librosa mel reference)
    from bench.metrics.frame_fft import mkl_forward

    print(f"    spectral FFTs: {'MKL DFTI from the fused kernels' if mkl_forward() else 'torch.fft (no MKL here)'}"
          ", one thread")
    for mid, ref_name in (("stft_distance", "auraloss"), ("mel_distance", "np+librosa")):
        m = metrics.get(mid)
        os.environ["CODECBENCH_REFERENCE_KERNELS"] = "1"
        try:
            ref_vals = [m.compute(x, y) for x, y in pairs]
            t_ref = cpu(lambda m=m: [m.compute(x, y) for x, y in pairs])
        finally:
            del os.environ["CODECBENCH_REFERENCE_KERNELS"]
        fast_vals = [m.compute(x, y) for x, y in pairs]
        t_fast = cpu(lambda m=m: [m.compute(x, y) for x, y in pairs])
        diff = float(np.max(np.abs(np.array(ref_vals) - np.array(fast_vals))))
        print(f"    {mid:14s} {ref_name} {t_ref / audio_s * 1000:6.2f} ms/s-audio   fast {t_fast / audio_s * 1000:6.2f} "
              f"({t_ref / t_fast:4.1f}x)   max |fast - ref| = {diff:.1e}")


_MEM_CHILD = r"""
import json, re, sys
from pathlib import Path
import bench.analysis.summary as summary
from bench.runner.run import RunConfig, run
manifest, out, cache = sys.argv[1:4]
def peak_kb():  # VmHWM is per address space (reset by exec), unlike ru_maxrss, which keeps the parent's
    return int(re.search(r"VmHWM:\s+(\d+)", open("/proc/self/status").read()).group(1))
seen = {}
real = summary.summarize
def summarize(*a, **k):  # note the peak of the pipeline itself, before the summary's bootstrap
    seen["pipeline_kb"] = peak_kb()
    return real(*a, **k)
summary.summarize = summarize
run(RunConfig(codecs=["g711@64kbps"], tasks=["reconstruction"], data=manifest, out=Path(out),
              metrics=["si_sdr"], workers=1, cache_dir=Path(cache), progress=False))
print(json.dumps({"maxrss_kb": peak_kb(), **seen}))
"""


def memory_section(tmp: Path, sizes: tuple[int, ...]) -> None:
    print("\n(3) peak RSS of a whole run (g711@64kbps, si_sdr, 1 worker, fresh child process per size)")
    peaks, pipeline = {}, {}
    for n in sizes:
        manifest = synth_corpus(tmp / f"mem-data-{n}", n)
        start = time.perf_counter()
        res = subprocess.run([sys.executable, "-c", _MEM_CHILD, str(manifest), str(tmp / f"mem-run-{n}"),
                              str(tmp / f"mem-cache-{n}")], capture_output=True, text=True, check=True)
        got = json.loads(res.stdout.strip().splitlines()[-1])
        peaks[n], pipeline[n] = got["maxrss_kb"] / 1024, got.get("pipeline_kb", 0) / 1024
        print(f"    {n:5d} utterances   peak RSS {peaks[n]:7.1f} MiB   up to the summary {pipeline[n]:7.1f} MiB"
              f"   ({time.perf_counter() - start:.1f} s)")
    lo, hi = min(sizes), max(sizes)
    print(f"    ratio {hi}/{lo}: whole run {peaks[hi] / peaks[lo]:.3f}, codec+scoring+store {pipeline[hi] / pipeline[lo]:.3f}"
          "  (target ≤ 1.10)")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=600, help="utterances for the executor comparison")
    ap.add_argument("--codec", default="g711@64kbps")
    ap.add_argument("--metrics", default="stoi,estoi,si_sdr,mel_distance")
    ap.add_argument("--kernel-pairs", type=int, default=12)
    ap.add_argument("--mem-sizes", default="200,2000")
    ap.add_argument("--no-ray", action="store_true")
    ap.add_argument("--skip", default="", help="comma list of sections to skip: exec,kernels,memory")
    args = ap.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    tmp = Path(tempfile.mkdtemp(prefix="codecbench-scale-"))
    try:
        print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")
        if "exec" not in skip:
            executors_section(tmp, args.n, args.metrics.split(","), args.codec, not args.no_ray)
        if "kernels" not in skip:
            kernels_section(args.kernel_pairs)
        if "memory" not in skip:
            memory_section(tmp, tuple(int(s) for s in args.mem_sizes.split(",")))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
