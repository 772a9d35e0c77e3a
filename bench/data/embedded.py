"""The embedded default corpus (``bench.data_manifests/embedded``), so a run needs no download."""

from __future__ import annotations

from importlib.resources import as_file, files
from pathlib import Path

from bench.data import datasets
from bench.data.manifest import Dataset, read_manifest
from bench.errors import DataError

EMBEDDED_NAME = "embedded"


def embedded_dir() -> Path:
    """Folder of the committed corpus; a real directory in both editable and wheel installs."""
    resource = files("bench.data_manifests").joinpath("embedded")
    with as_file(resource) as path:  # a no-op for on-disk packages, which setuptools installs
        return Path(path)


@datasets.register(EMBEDDED_NAME)
def embedded() -> Dataset:
    """30 synthetic English utterances in 5 voices (Piper joe, eSpeak NG), 3-5 s each, 22.05 kHz FLAC."""
    manifest = embedded_dir() / "manifest.jsonl"
    if not manifest.is_file():
        raise DataError(
            f"the embedded corpus manifest is missing at {manifest}; the package was installed without "
            "its data files (reinstall codecbench, or regenerate with data_manifests/embedded/generate.py)"
        )
    return read_manifest(manifest, name=EMBEDDED_NAME)
