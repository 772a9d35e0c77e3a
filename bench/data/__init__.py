"""Datasets by name, manifest path or folder, and the builders that make manifests of corpora.

``resolve_dataset`` is the one entry point the runner and CLI use, so a spec on the command line
can be a registered name (``embedded``, ``librispeech-test-clean`` once built), a ``.jsonl``
manifest, or a plain folder of audio files, without the caller caring which.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from bench.data.manifest import Dataset, Item, read_manifest, write_manifest
from bench.errors import UnknownNameError, UsageError
from bench.registry import Registry

if TYPE_CHECKING:
    from bench.data.builders import CorpusBuilder

DEFAULT_DATASET = "embedded"

#: Named datasets: callables returning a ``Dataset``. Third parties add theirs through the
#: ``codecbench.datasets`` entry-point group.
datasets: Registry[Callable[[], Dataset]] = Registry(
    "dataset", "codecbench.datasets", providers=("bench.data.embedded", "bench.data.builders")
)

#: One manifest builder per public corpus (``codecbench.dataset_builders`` for plug-ins). Not named
#: ``builders``: the submodule ``bench.data.builders`` would shadow it as a package attribute.
corpus_builders: Registry[CorpusBuilder] = Registry(
    "dataset builder", "codecbench.dataset_builders", providers=("bench.data.builders",)
)

#: Suffix of the file beside a built manifest that records the corpus root its paths are under.
ROOT_SIDECAR_SUFFIX = ".root"


def root_sidecar(manifest: Path) -> Path:
    """``foo.jsonl`` → ``foo.root``: built manifests point into a user's corpus elsewhere."""
    return manifest.with_suffix(ROOT_SIDECAR_SUFFIX)


def read_manifest_auto(path: str | Path, root: str | Path | None = None, name: str | None = None) -> Dataset:
    """``read_manifest`` that honours a ``.root`` sidecar when no root is given."""
    path = Path(path)
    if root is None:
        sidecar = root_sidecar(path)
        if sidecar.is_file():
            recorded = sidecar.read_text(encoding="utf-8").strip()
            if recorded:
                root = Path(recorded) if Path(recorded).is_absolute() else path.parent / recorded
    return read_manifest(path, root=root, name=name)


def resolve_dataset(spec: str | None = None, root: str | None = None) -> Dataset:
    """Turn a command-line dataset spec into a ``Dataset``.

    ``spec`` is a registered name (default ``embedded``), a ``.jsonl`` manifest (``root`` defaults
    to its folder, or to the corpus recorded by ``codecbench data build``), or a folder of audio
    files. Unknown names raise ``UnknownNameError`` with close matches.
    """
    spec = (spec or DEFAULT_DATASET).strip()
    if spec in datasets:
        if root is not None:
            raise UsageError(
                f"dataset {spec!r} is a registered name; --root applies only to .jsonl manifests and folders"
            )
        return datasets.get(spec)()
    path = Path(spec).expanduser()
    if path.suffix == ".jsonl" or path.is_file():
        if not path.is_file():
            raise UsageError(f"manifest not found: {path}")
        if path.suffix != ".jsonl":
            raise UsageError(f"{path} is a file but not a .jsonl manifest; pass its folder to use it as audio")
        return read_manifest_auto(path, root=root)
    if path.is_dir():
        from bench.data.folder import folder_dataset

        if root is not None and Path(root).resolve() != path.resolve():
            raise UsageError("--root cannot differ from the folder itself when the dataset is a folder")
        return folder_dataset(path)
    err = UnknownNameError("dataset", spec, datasets.names())
    err.args = (err.args[0] + ". It is also no existing .jsonl manifest or folder.",)
    raise err


def list_datasets() -> list[tuple[str, str]]:
    """(name, one-line description) of every registered dataset, for ``codecbench data list``."""
    out = []
    for name, factory in datasets.items():
        doc = (getattr(factory, "__doc__", None) or "").strip().splitlines()
        out.append((name, doc[0] if doc else ""))
    return sorted(out)


__all__ = [
    "DEFAULT_DATASET",
    "Dataset",
    "Item",
    "corpus_builders",
    "datasets",
    "list_datasets",
    "read_manifest",
    "read_manifest_auto",
    "resolve_dataset",
    "root_sidecar",
    "write_manifest",
]
