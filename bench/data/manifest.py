"""JSONL manifests (lhotse-style, one utterance per line) and the datasets read from them.

A line is ``{"id", "audio", "duration", "sample_rate", "text", "speaker", "sha256"}`` with
``audio`` relative to a data root. Reading never stops at a bad line: malformed lines and
duplicate ids are reported as problems, unsafe paths make that item fail with its reason.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.errors import DataError, UsageError
from bench.runner.atomic import atomic_write_bytes

REQUIRED_FIELDS = ("id", "audio")


@dataclass(frozen=True)
class Item:
    """One utterance. ``error`` is set when the manifest entry itself is unusable."""

    id: str
    audio: str
    duration: float | None = None
    sample_rate: int | None = None
    text: str | None = None
    speaker: str | None = None
    sha256: str | None = None
    prompt_audio: str | None = None
    """A speaker prompt fixed by the list (seed-tts-eval), relative to the root like ``audio``."""
    prompt_text: str | None = None
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None and k != "error"}


@dataclass
class Dataset:
    """Items of one manifest plus the root their paths are relative to."""

    name: str
    root: Path
    items: list[Item]
    manifest_sha256: str
    problems: list[str] = field(default_factory=list)

    def path_of(self, item: Item) -> Path:
        return safe_join(self.root, item.audio)


def safe_join(root: Path, relative: str) -> Path:
    """Join ``relative`` under ``root``; refuse absolute paths and ``..`` escapes.

    The check is lexical: a symlink the user placed inside the root (a link farm into a corpus
    elsewhere) is followed, but a manifest cannot name a file outside the root.
    """
    if os.path.isabs(relative):
        raise DataError(f"audio path {relative!r} is absolute; manifests hold paths relative to the data root")
    root_abs = Path(os.path.abspath(root))
    path = Path(os.path.normpath(root_abs / relative))
    if path != root_abs and root_abs not in path.parents:
        raise DataError(f"audio path {relative!r} escapes the data root {root_abs}")
    return path


def parse_items(lines: list[str], source: str) -> tuple[list[Item], list[str]]:
    """Parse manifest lines into items; collect a message for each line that cannot be used."""
    items: list[Item] = []
    problems: list[str] = []
    seen: set[str] = set()
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.append(f"{source}:{lineno}: malformed JSON ({exc.msg}); line skipped")
            continue
        if not isinstance(rec, dict) or any(not rec.get(k) for k in REQUIRED_FIELDS):
            problems.append(f"{source}:{lineno}: needs string fields {REQUIRED_FIELDS}; line skipped")
            continue
        item_id = str(rec["id"])
        if item_id in seen:
            problems.append(f"{source}:{lineno}: duplicate id {item_id!r}; later line skipped")
            continue
        seen.add(item_id)
        known = {k: rec.get(k) for k in ("duration", "sample_rate", "text", "speaker", "sha256", "prompt_audio",
                                         "prompt_text")}
        items.append(Item(id=item_id, audio=str(rec["audio"]), **known))
    return items, problems


def read_manifest(path: str | Path, root: str | Path | None = None, name: str | None = None) -> Dataset:
    """Read a manifest; ``root`` defaults to the manifest's own folder."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"manifest not found: {path}")
    raw = path.read_bytes()
    items, problems = parse_items(raw.decode("utf-8", errors="replace").splitlines(), str(path))
    root = Path(root) if root is not None else path.parent
    checked: list[Item] = []
    for item in items:
        try:
            safe_join(root, item.audio)
            if item.prompt_audio:
                safe_join(root, item.prompt_audio)
            checked.append(item)
        except DataError as exc:
            checked.append(Item(**{**asdict(item), "error": str(exc)}))
    return Dataset(
        name=name or path.stem,
        root=root,
        items=checked,
        manifest_sha256=hashlib.sha256(raw).hexdigest(),
        problems=problems,
    )


def write_manifest(items: list[Item], path: str | Path) -> None:
    """Write items as JSONL atomically (temp file + rename)."""
    lines = [json.dumps(item.to_json(), ensure_ascii=False, sort_keys=True) + "\n" for item in items]
    atomic_write_bytes(path, "".join(lines).encode("utf-8"))
