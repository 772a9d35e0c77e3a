"""Command line: parses arguments and calls the library. Exit 2 on usage or config errors only.

Failed cells are data, not exit codes; ``check`` exits 1 when a codec fails conformance, since
reporting that is its job.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from bench.errors import UsageError


def _csv(value: str | None) -> list[str] | None:
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


def _weights_map(values: list[str] | None, codec_ids: list[str]) -> dict[str, str]:
    """``--weights PATH`` (one codec) or ``--weights ID=PATH`` (any number) → {id: path}."""
    out: dict[str, str] = {}
    for value in values or []:
        codec_id, sep, path = value.partition("=")
        if not sep:
            if len(codec_ids) != 1:
                raise UsageError("--weights PATH needs exactly one codec; use --weights ID=PATH")
            codec_id, path = codec_ids[0], value
        if codec_id not in codec_ids:
            raise UsageError(f"--weights names {codec_id!r}, which is not among --codecs")
        out[codec_id] = path
    return out


def default_lms(task_ids: list[str]) -> list[str]:
    """The codec-LMs a run's generation tasks use when ``--lms`` is not given: those that load and do them."""
    from bench.lms import lms
    from bench.task import tasks

    generation = {getattr(tasks.get(t), "lm_task", None) for t in task_ids} - {None}
    return [n for n, e in lms.items() if e.meta.kind == "model" and e.meta.tasks & generation]


def cmd_run(args: argparse.Namespace) -> int:
    from bench.codecs import codecs
    from bench.lms import lms
    from bench.report import write_report
    from bench.runner.run import DEFAULT_CODECS, RunConfig, run
    from bench.task import tasks

    lm_ids = lms.resolve(args.lms, []) if args.lms else []
    task_ids = tasks.resolve(args.tasks, ["zero_shot_tts"] if lm_ids and not args.codecs else ["reconstruction"])
    if not lm_ids:
        lm_ids = default_lms(task_ids)
        if lm_ids:
            print(f"codecbench: no --lms given; generation tasks run on every codec-LM that loads and does them: "
                  f"{', '.join(lm_ids)}", file=sys.stderr)
    if args.codecs:
        codec_ids = codecs.resolve(args.codecs, [])
    else:  # codec-LMs alone unless op-points are asked for
        codec_ids = [] if lm_ids else codecs.resolve(",".join(DEFAULT_CODECS), [])
    config = RunConfig(
        codecs=codec_ids,
        weights=_weights_map(args.weights, codec_ids),
        tasks=task_ids,
        data=args.data,
        out=Path(args.out) if args.out else None,
        metrics=_csv(args.metrics),
        workers=args.workers or os.cpu_count() or 1,
        use_cache=not args.no_cache,
        device=args.device or ("cuda" if _cuda() else "cpu"),
        batch_size=args.batch_size,
        executor=args.executor,
        address=args.address,
        progress=not args.quiet,
        flush_seconds=args.flush_seconds,
        lms=lm_ids,
        lm_paths=_weights_map(args.lm_path, lm_ids),
        lm_random_init=args.lm_random_init,
        n_seeds=args.n_seeds,
        list_seed=args.list_seed,
        lm_max_seconds=args.lm_max_seconds,
        **({"cache_dir": Path(args.cache_dir)} if args.cache_dir else {}),
    )
    run_dir = run(config)
    print(f"results: {run_dir / 'results.parquet'}")
    print(f"summary: {run_dir / 'summary.csv'}")
    if not args.no_report:
        report_dir = Path(args.report_dir) if args.report_dir else Path("reports") / run_dir.name
        print(f"report:  {write_report(run_dir, report_dir)}")
    if not (args.codecs or args.lms or args.tasks or args.metrics or args.no_report) and args.data == "embedded":
        return _build_default_leaderboard(run_dir)
    return 0


DEFAULT_LEADERBOARD = "embedded-classic"


def _build_default_leaderboard(run_dir: Path) -> int:
    """The README's main command ends with the default leaderboard, built from this run."""
    from bench.leaderboard import LeaderboardRefused, build

    try:
        result = build(DEFAULT_LEADERBOARD, [run_dir])
    except LeaderboardRefused as exc:  # the run itself succeeded: say why there is no board, exit 0
        print(f"leaderboard {DEFAULT_LEADERBOARD} not built: {exc}", file=sys.stderr)
        return 0
    print(f"leaderboard: {result.report}")
    return 0


def cmd_leaderboard_build(args: argparse.Namespace) -> int:
    from bench.leaderboard import LeaderboardRefused, build

    try:
        result = build(args.name, [Path(r) for r in args.runs] if args.runs else None,
                       root=Path(args.root), allow_flagged=args.allow_flagged)
    except LeaderboardRefused as exc:
        print(f"codecbench: {exc}", file=sys.stderr)
        return 1
    print(f"data:   {result.data_dir}")
    print(f"report: {result.report}")
    return 0


def cmd_leaderboard_validate(args: argparse.Namespace) -> int:
    from bench.leaderboard import validate_results

    problems = validate_results(args.results)
    for p in problems:
        print(p)
    print(f"{args.results}: {'OK' if not problems else f'{len(problems)} problem(s)'}",
          file=sys.stderr if problems else sys.stdout)
    return 1 if problems else 0


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def cmd_codecs(args: argparse.Namespace) -> int:
    from bench.codecs import codecs

    rows = []
    for _, op in codecs.items():
        meta = op.meta
        try:
            codec = op.build()
            available, reason = codec.availability()
            if available:
                available, reason = codec.weights_status()
        except Exception as exc:
            available, reason = False, f"{type(exc).__name__}: {exc}"
        rows.append({**meta.to_dict(), "available": available, "reason": reason})
    if args.format == "json":
        print(json.dumps(rows, indent=2, default=str))
        return 0
    print(f"{'id':<22} {'family':<8} {'kind':<9} {'rate':>6} {'kbps':>7}  available")
    for r in rows:
        mark = "yes" if r["available"] else f"no: {r['reason']}"
        print(f"{r['id']:<22} {r['family']:<8} {r['kind']:<9} {r['sample_rate']:>6} "
              f"{r['bitrate_bps'] / 1000:>7.2f}  {mark}")
    return 0


def cmd_lms(args: argparse.Namespace) -> int:
    from bench.lms import lms

    rows = []
    for _, entry in lms.items():
        available, reason = entry.build().availability()
        if available and entry.meta.kind == "outputs":
            reason = "scores a folder of generated audio (--lm-path ID=FOLDER)"
        rows.append({**entry.meta.to_dict(), "available": available, "reason": reason})
    if args.format == "json":
        print(json.dumps(rows, indent=2, default=str))
        return 0
    print(f"{'id':<16} {'family':<10} {'kind':<8} {'tasks':<32} available")
    for r in rows:
        mark = ("yes" + (f" ({r['reason']})" if r["reason"] else "")) if r["available"] else f"no: {r['reason']}"
        print(f"{r['id']:<16} {r['family']:<10} {r['kind']:<8} {','.join(r['tasks']):<32} {mark}")
    return 0


def cmd_tasks(args: argparse.Namespace) -> int:
    from bench.task import tasks

    for name, task in tasks.items():
        print(f"{name}: {task.description}\n  metrics: {', '.join(task.default_metrics)}")
    return 0


def cmd_metrics(args: argparse.Namespace) -> int:
    from bench.metrics import metrics

    infos = [m.info.to_dict() for _, m in metrics.items()]
    if args.format == "json":
        print(json.dumps(infos, indent=2))
    else:
        for i in infos:
            print(f"{i['id']:<15} v{i['version']:<5} {i['direction']:<7} {i['sample_rate']:>6} Hz  {i['reference']}")
    return 0


def cmd_score(args: argparse.Namespace) -> int:
    from bench.audio import load_audio
    from bench.data.manifest import Item
    from bench.task import tasks

    task = tasks.get("reconstruction")
    ids = task.metric_ids(_csv(args.metrics))
    ref, deg = load_audio(args.ref), load_audio(args.deg)
    outcomes = task.score(Item(id=Path(args.ref).stem, audio=args.ref), ref, deg, ids)
    values = {o.metric: o.value for o in outcomes}
    for o in outcomes:
        if o.error:
            print(f"{o.metric}: failed: {o.error}", file=sys.stderr)
    if args.format == "json":
        print(json.dumps(values))
    else:
        for k, v in values.items():
            print(f"{k:<15} {'failed' if v is None else f'{v:.6f}'}")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from bench.codecs import codecs
    from bench.codecs.conformance import check_codec

    names = codecs.resolve(args.codec, [])
    weights = _weights_map(args.weights, names)
    reports = [check_codec(codecs.get(n), random_init=args.random_init, device=args.device,
                           weights=weights.get(n)) for n in names]
    if args.format == "json":
        print(json.dumps([r.to_dict() for r in reports], indent=2, default=str))
    else:
        for r in reports:
            print(f"{r.codec}: {'PASS' if r.passed else 'FAIL'}" + (f" ({r.error})" if r.error else ""))
            for c in r.checks:
                print(f"  [{'ok' if c.passed else 'FAIL'}] {c.name}: {c.detail}")
            if r.costs:
                print(f"  encode RTF {r.costs['encode_rtf']:.4f}, decode RTF {r.costs['decode_rtf']:.4f}")
    return 0 if all(r.passed for r in reports) else 1


def cmd_fetch(args: argparse.Namespace) -> int:
    """Weights of codec op-points and codec-LMs (their text encoders and tokenizer files too)."""
    import fnmatch

    from bench.codecs import codecs
    from bench.errors import WeightsUnavailableError
    from bench.lms import lms

    def is_lm(name: str) -> bool:  # an LM id, or a glob that names LMs and no op-point
        hits = set(fnmatch.filter(lms.names(), name))
        return name in lms or (bool(hits) and not fnmatch.filter(codecs.names(), name))

    lm_names = [n for n in args.codecs if is_lm(n)]
    fetchers = [(n, lambda n=n: [codecs.get(n).build().fetch_weights()])
                for n in codecs.resolve(",".join(x for x in args.codecs if x not in lm_names), [])]
    fetchers += [(n, lambda n=n: lms.get(n).build().fetch_weights()) for n in lms.resolve(",".join(lm_names), [])]
    failed = 0
    for name, fetch in fetchers:
        try:
            paths = [p for p in fetch() if p is not None]
            print(f"{name}: {', '.join(map(str, paths)) if paths else 'nothing to fetch'}")
        except WeightsUnavailableError as exc:
            failed += 1
            print(f"{name}: {exc}", file=sys.stderr)
    if failed:
        raise UsageError(f"{failed} op-point(s) or codec-LM(s) could not be fetched (see above)")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from bench.report import write_report

    run_dir = Path(args.run_dir)
    if not (run_dir / "run.json").exists():
        raise UsageError(f"{run_dir} is not a run directory (no run.json)")
    out = Path(args.out) if args.out else Path("reports") / run_dir.resolve().name
    print(write_report(run_dir, out))
    return 0


def cmd_data_list(args: argparse.Namespace) -> int:
    from bench.data import corpus_builders, list_datasets

    print("datasets (use with --data):")
    for name, description in list_datasets():
        print(f"  {name:<26} {description}")
    print("corpus builders (codecbench data build NAME SOURCE / data download NAME DEST):")
    for name, builder in corpus_builders.items():
        print(f"  {name:<26} {builder.license}  {builder.homepage}")
    return 0


def cmd_data_build(args: argparse.Namespace) -> int:
    from bench.data.builders import build

    result = build(args.name, args.source, out=args.out)
    for problem in result.problems:
        print(f"warning: {problem}", file=sys.stderr)
    print(f"{result.manifest}: {result.n_items} items under {result.root}")
    return 0


def cmd_data_download(args: argparse.Namespace) -> int:
    from bench.data.download import download
    from bench.errors import DataError

    try:
        result = download(args.name, args.dest, out=args.out)
    except DataError as exc:  # offline or checksum mismatch: say what to fetch, exit as a config error
        raise UsageError(str(exc)) from exc
    print(f"{result.manifest}: {result.n_items} items under {result.root}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="codecbench", description="Benchmark audio codecs honestly.")
    p.add_argument("-v", "--verbose", action="store_true")
    sub = p.add_subparsers(dest="command", required=True)

    r = sub.add_parser("run", help="evaluate op-points on a dataset (default: embedded corpus, classic codecs)")
    r.add_argument("--codecs", help="comma list of op-point ids or globs (default: all classic op-points)")
    r.add_argument("--tasks", help="comma list of tasks (default: reconstruction)")
    r.add_argument("--metrics", help="comma list of metric ids (default: the task's metrics)")
    r.add_argument("--data", default="embedded",
                   help="dataset name (e.g. librispeech-test-clean, seed-tts-eval-en once built), manifest .jsonl, "
                        "or folder of audio files")
    r.add_argument("--out", help="run directory (default: runs/<dataset>-<config hash>; reruns resume it)")
    r.add_argument("--workers", type=int, default=0, help="metric worker processes (default: all cores)")
    r.add_argument("--no-cache", action="store_true", help="recompute everything; do not read the cache")
    r.add_argument("--cache-dir", help="cache directory (default: $CODECBENCH_CACHE or ~/.cache/codecbench)")
    r.add_argument("--device", help="torch device for codec inference (default: cuda if available)")
    r.add_argument("--batch-size", type=int, default=8)
    r.add_argument("--weights", action="append", metavar="[ID=]PATH",
                   help="local weights for an op-point instead of its registered source (repeatable)")
    r.add_argument("--executor", default="local", help="local (process pool) or ray (optional extra)")
    r.add_argument("--address", help="Ray cluster address for --executor ray (e.g. auto); default: start Ray locally")
    r.add_argument("--report-dir", help="where to write the report (default: reports/<run>)")
    r.add_argument("--no-report", action="store_true")
    r.add_argument("--flush-seconds", type=float, default=10.0,
                   help="write finished rows to disk at least this often (default: 10)")
    r.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    r.add_argument("--lms", help="comma list of codec-LM ids or globs for generation tasks (zero_shot_tts, continuation)")
    r.add_argument("--lm-path", action="append", metavar="[ID=]PATH",
                   help="codec-LM weights, or the folder of generated audio of an output-only LM (repeatable)")
    r.add_argument("--lm-random-init", action="store_true", help="tiny seeded random codec-LMs (noise; smoke runs)")
    r.add_argument("--n-seeds", type=int, default=1, help="generations per list entry (mean over seeds)")
    r.add_argument("--list-seed", type=int, default=0,
                   help="seed of the zero-shot TTS list's cross-sentence prompt draw (VALL-E protocol)")
    r.add_argument("--lm-max-seconds", type=float, help="cap on generated seconds per request (smoke runs)")
    r.set_defaults(func=cmd_run)

    c = sub.add_parser("codecs", help="list registered op-points with metadata and availability")
    c.add_argument("--format", choices=("table", "json"), default="table")
    c.set_defaults(func=cmd_codecs)

    lm = sub.add_parser("lms", help="list registered codec-LMs with metadata and availability")
    lm.add_argument("--format", choices=("table", "json"), default="table")
    lm.set_defaults(func=cmd_lms)

    sub.add_parser("tasks", help="list tasks").set_defaults(func=cmd_tasks)

    m = sub.add_parser("metrics", help="list metrics with their reference implementations")
    m.add_argument("--format", choices=("table", "json"), default="table")
    m.set_defaults(func=cmd_metrics)

    s = sub.add_parser("score", help="score one reference/degraded pair")
    s.add_argument("--ref", required=True)
    s.add_argument("--deg", required=True)
    s.add_argument("--metrics")
    s.add_argument("--format", choices=("table", "json"), default="table")
    s.set_defaults(func=cmd_score)

    k = sub.add_parser("check", help="conformance check of op-points (ids or globs)")
    k.add_argument("codec")
    k.add_argument("--random-init", action="store_true", help="tiny config, random weights (neural codecs)")
    k.add_argument("--device", default="cpu")
    k.add_argument("--weights", action="append", metavar="[ID=]PATH", help="local weights (repeatable)")
    k.add_argument("--format", choices=("table", "json"), default="table")
    k.set_defaults(func=cmd_check)

    f = sub.add_parser("fetch", help="download op-points' pretrained weights ahead of time (ids or globs)")
    f.add_argument("codecs", nargs="+")
    f.set_defaults(func=cmd_fetch)

    rep = sub.add_parser("report", help="write reports/<run>/index.html and README.md for a run")
    rep.add_argument("run_dir")
    rep.add_argument("--out")
    rep.set_defaults(func=cmd_report)

    lb = sub.add_parser("leaderboard", help="leaderboards as code: build from runs, validate submissions"
                        ).add_subparsers(dest="leaderboard_command", required=True)
    lbb = lb.add_parser("build", help="rebuild leaderboards/NAME/ and reports/NAME/ from raw run results")
    lbb.add_argument("name", help="leaderboards/NAME.yaml, or a path to a spec")
    lbb.add_argument("--runs", nargs="+", metavar="DIR", help="run directories or folders of runs (default: runs/)")
    lbb.add_argument("--root", default=".", help="where leaderboards/NAME/ and reports/NAME/ go (default: .)")
    lbb.add_argument("--allow-flagged", action="store_true",
                     help="publish op-points whose declared bitrate the ledger flags (marked as such)")
    lbb.set_defaults(func=cmd_leaderboard_build)
    lbv = lb.add_parser("validate", help="check a third-party results parquet; exit 1 listing every problem")
    lbv.add_argument("results", help="results.parquet or a run directory")
    lbv.set_defaults(func=cmd_leaderboard_validate)

    d = sub.add_parser("data", help="datasets: list, build manifests, download").add_subparsers(
        dest="data_command", required=True)
    d.add_parser("list", help="registered datasets and corpus builders").set_defaults(func=cmd_data_list)
    b = d.add_parser("build", help="write a manifest for a local copy of a corpus")
    b.add_argument("name")
    b.add_argument("source", help="folder holding the corpus as distributed")
    b.add_argument("--out", help="manifest path (default: data_manifests/NAME.jsonl)")
    b.set_defaults(func=cmd_data_build)
    dl = d.add_parser("download", help="fetch a corpus from its official source, verify, build its manifest")
    dl.add_argument("name")
    dl.add_argument("dest", help="where the corpus is unpacked")
    dl.add_argument("--out", help="manifest path (default: data_manifests/NAME.jsonl)")
    dl.set_defaults(func=cmd_data_download)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s: %(message)s")
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except UsageError as exc:
        print(f"codecbench: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
