"""A plain folder of audio files used as a dataset, with no manifest to write first.

Ids are the file paths relative to the folder (without extension), so files in different
subfolders never collide. Files that cannot be read still become items, carrying an ``error``
so the run reports them as failed cells instead of stopping.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from bench.audio import file_sha256
from bench.data.manifest import Dataset, Item
from bench.errors import UsageError

#: Extensions libsndfile reads; anything else in the folder is ignored.
AUDIO_EXTENSIONS = frozenset({".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff", ".au", ".w64", ".caf"})


def audio_info(path: Path) -> tuple[float, int]:
    """(duration in s, sample rate) from the file header; raises on unreadable files."""
    import soundfile as sf

    info = sf.info(str(path))
    if info.frames <= 0 or info.samplerate <= 0:
        raise ValueError("file holds no audio frames")
    return round(info.frames / info.samplerate, 6), int(info.samplerate)


def read_transcript(path: Path) -> str | None:
    """Text of a transcript file with whitespace collapsed; None when absent or empty."""
    if not path.is_file():
        return None
    text = " ".join(path.read_text(encoding="utf-8", errors="replace").split())
    return text or None


def folder_items(folder: Path) -> list[Item]:
    """One item per audio file under ``folder`` (recursive), sorted by id."""
    files = sorted(
        p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS
    )
    stems: dict[str, int] = {}
    for p in files:
        key = p.relative_to(folder).with_suffix("").as_posix()
        stems[key] = stems.get(key, 0) + 1
    items: list[Item] = []
    for p in files:
        rel = p.relative_to(folder).as_posix()
        stem = p.relative_to(folder).with_suffix("").as_posix()
        item_id = stem if stems[stem] == 1 else rel  # a.wav + a.flac: keep the extension in both ids
        parts = Path(rel).parts
        speaker = parts[0] if len(parts) > 1 else None
        text = read_transcript(p.with_suffix(".txt"))
        try:
            duration, rate = audio_info(p)
            items.append(
                Item(id=item_id, audio=rel, duration=duration, sample_rate=rate, text=text,
                     speaker=speaker, sha256=file_sha256(p))
            )  # fmt: skip
        except Exception as exc:  # soundfile raises several types; the run must go on
            items.append(
                Item(id=item_id, audio=rel, text=text, speaker=speaker,
                     error=f"cannot read audio {rel}: {type(exc).__name__}: {exc}")
            )  # fmt: skip
    return sorted(items, key=lambda it: it.id)


def folder_dataset(folder: str | Path, name: str | None = None) -> Dataset:
    """Dataset of every audio file under ``folder``; its hash covers ids, paths and file hashes."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UsageError(f"dataset folder not found: {folder}")
    items = folder_items(folder)
    problems = [f"{folder}: {it.error}" for it in items if it.error]
    if not items:
        problems.append(f"{folder}: no audio files ({', '.join(sorted(AUDIO_EXTENSIONS))}) found")
    digest = hashlib.sha256()
    for it in items:
        record = {**it.to_json(), "error": it.error}
        digest.update((json.dumps(record, sort_keys=True) + "\n").encode())
    return Dataset(
        name=name or folder.resolve().name,
        root=folder,
        items=items,
        manifest_sha256=digest.hexdigest(),
        problems=problems,
    )
