"""Where a number came from: package versions, platform, device, and the code's git hash."""

from __future__ import annotations

import json
import platform
import subprocess
import sys
from functools import lru_cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import bench

TRACKED_PACKAGES = (
    "codecbench", "torch", "numpy", "soundfile", "soxr", "pesq", "pystoi", "visqol-python",
    "ai-edge-litert", "av", "pycodec2", "lc3py", "pandas", "pyarrow", "transformers",
)


@lru_cache(maxsize=1)
def git_hash() -> str:
    """HEAD of the checkout the code runs from, with ``-dirty`` when it has local changes."""
    root = Path(bench.__file__).resolve().parent.parent
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True,
                              text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return head + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


@lru_cache(maxsize=1)
def provenance() -> dict[str, object]:
    versions: dict[str, str | None] = {}
    for name in TRACKED_PACKAGES:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            versions[name] = None
    return {
        "codecbench": bench.__version__,
        "git": git_hash(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "machine": platform.machine(),
        "packages": versions,
    }


def provenance_json() -> str:
    return json.dumps(provenance(), sort_keys=True)
