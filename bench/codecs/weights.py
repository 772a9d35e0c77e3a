"""Where pretrained weights come from, and loading them without executing a pickle.

A weights source is a hub repository at a pinned revision (``hf://org/repo@rev``) or a URL with
a sha256 (``https://...``). Files land in the standard caches (``HF_HOME`` for the hub,
``$CODECBENCH_CACHE/weights`` for URLs). ``--weights PATH`` or the ``weights:`` section of the
config file (``$CODECBENCH_CONFIG``, default ``~/.config/codecbench/config.yaml``) point at local
files instead. When nothing is on disk and the download fails, the error names exactly what to
fetch and where it goes; nothing ever falls back silently.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.codecs.base import CodecMeta, WeightsSource
from bench.errors import UsageError, WeightsUnavailableError
from bench.runner.atomic import atomic_path


def config_path() -> Path:
    return Path(os.environ.get("CODECBENCH_CONFIG", os.path.expanduser("~/.config/codecbench/config.yaml")))


def configured_weights(meta: CodecMeta) -> Path | None:
    """A local path for this op-point (or its family) from the config file, if one is set."""
    path = config_path()
    if not path.is_file():
        return None
    import yaml

    doc = yaml.safe_load(path.read_text()) or {}
    table = doc.get("weights") or {}
    if not isinstance(table, dict):
        raise UsageError(f"{path}: 'weights' must map op-point ids or families to paths")
    entry = table.get(meta.id) or table.get(meta.family)
    return Path(os.path.expanduser(str(entry))) if entry else None


@dataclass(frozen=True)
class HubRef:
    repo: str
    revision: str | None


def parse_hub(uri: str) -> HubRef | None:
    """``hf://org/repo@rev`` → HubRef; anything else → None."""
    if not uri.startswith("hf://"):
        return None
    body = uri[len("hf://"):]
    repo, _, rev = body.partition("@")
    return HubRef(repo, rev or None)


def weights_cache_dir() -> Path:
    from bench.runner.cache import default_cache_dir

    return default_cache_dir() / "weights"


def _fetch_hint(meta: CodecMeta, src: WeightsSource) -> str:
    hub = parse_hub(src.uri)
    where = (f"the Hugging Face cache ({os.environ.get('HF_HOME', '~/.cache/huggingface')})" if hub
             else f"{weights_cache_dir()}")
    files = f" files {', '.join(src.files)}" if src.files else ""
    rev = f" at revision {src.revision or (hub.revision if hub else None) or 'main'}"
    fetch_id = getattr(meta, "fetch_id", meta.id)  # a codec-LM's extra files come with the LM's fetch
    option = getattr(meta, "local_path_option", "--weights PATH")  # codec-LMs: --lm-path ID=PATH
    local = f"pass `{option}` / set" if option else "set"
    return (f"fetch them with `codecbench fetch {fetch_id}` (downloads {src.uri}{rev}{files} into {where}), "
            f"or {local} `weights: {{{meta.id}: PATH}}` in {config_path()}")


def local_weights(meta: CodecMeta) -> Path | None:
    """The weights already on disk for this op-point, without any download."""
    configured = configured_weights(meta)
    if configured is not None:
        return configured if configured.exists() else None
    src = meta.weights
    if src is None:
        return None
    hub = parse_hub(src.uri)
    if hub is not None:
        return _hub_snapshot(meta, hub, src, local_only=True)
    target = weights_cache_dir() / (src.sha256 or "unpinned") / Path(src.uri).name
    return target if target.exists() else None


def resolve_weights(meta: CodecMeta, explicit: Path | None = None, download: bool = True) -> Path:
    """A local file or folder holding the op-point's weights; download if allowed and needed."""
    if explicit is not None:
        if not Path(explicit).exists():
            raise WeightsUnavailableError(f"{meta.id}: --weights {explicit} does not exist")
        return Path(explicit)
    found = local_weights(meta)
    if found is not None:
        return found
    configured = configured_weights(meta)
    if configured is not None:
        raise WeightsUnavailableError(f"{meta.id}: configured weights {configured} do not exist ({config_path()})")
    src = meta.weights
    if src is None:
        raise WeightsUnavailableError(f"{meta.id}: no public weights; pass --weights PATH to a checkpoint")
    if not download:
        raise WeightsUnavailableError(f"{meta.id}: weights are not on this machine; {_fetch_hint(meta, src)}")
    try:
        hub = parse_hub(src.uri)
        if hub is not None:
            path = _hub_snapshot(meta, hub, src, local_only=False)
            assert path is not None
            return path
        return _download_url(src)
    except WeightsUnavailableError:
        raise
    except Exception as exc:  # offline, 404, checksum: the same clear instruction
        raise WeightsUnavailableError(
            f"{meta.id}: cannot obtain weights ({type(exc).__name__}: {exc}); {_fetch_hint(meta, src)}"
        ) from exc


def _hub_snapshot(meta: CodecMeta, hub: HubRef, src: WeightsSource, local_only: bool) -> Path | None:
    """Download (or find in the HF cache) the listed files of a hub repo at the pinned revision."""
    try:
        from huggingface_hub import snapshot_download
    except ImportError as exc:
        raise WeightsUnavailableError(f"{meta.id}: huggingface_hub is not installed ({exc})") from exc
    try:
        folder = snapshot_download(hub.repo, revision=src.revision or hub.revision,
                                   allow_patterns=list(src.files) or None, local_files_only=local_only)
    except Exception:
        if local_only:
            return None
        raise
    path = Path(folder)
    missing = [f for f in src.files if not (path / f).exists()]
    if missing:
        if local_only:
            return None
        raise WeightsUnavailableError(f"{meta.id}: {hub.repo} has no {missing}; {_fetch_hint(meta, src)}")
    return path


def _download_url(src: WeightsSource) -> Path:
    target = weights_cache_dir() / (src.sha256 or "unpinned") / Path(src.uri).name
    with atomic_path(target) as tmp:
        with urllib.request.urlopen(src.uri, timeout=60) as response, open(tmp, "wb") as out:
            shutil.copyfileobj(response, out, 1 << 20)
        if src.sha256:
            digest = sha256_file(tmp)
            if digest != src.sha256:
                raise WeightsUnavailableError(f"{src.uri}: sha256 {digest} does not match the pinned {src.sha256}")
    return target


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def load_state_dict(path: Path) -> dict[str, Any]:
    """Tensors from a safetensors file, or a torch checkpoint loaded with ``weights_only=True``.

    Never unpickles arbitrary objects: a checkpoint that needs that is refused with the reason.
    """
    path = Path(path)
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise WeightsUnavailableError(
            f"{path}: refused to load — it is not a plain tensor checkpoint (weights_only=True failed: {exc}). "
            "Convert it to safetensors with the upstream code in a trusted environment."
        ) from exc
