"""``python -m bench.report RUN_DIR OUT_DIR``: build a report without the full CLI."""

from __future__ import annotations

import argparse
from pathlib import Path

from bench.report import write_report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.report", description=__doc__)
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("out_dir", type=Path)
    args = parser.parse_args(argv)
    print(write_report(args.run_dir, args.out_dir))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
