"""Reading audiocraft's released ``.bin`` packages without audiocraft, omegaconf, or running a pickle.

audiocraft (MusicGen, AudioGen) ships each model as a ``torch.save`` of ``{"best_state": state_dict,
"xp.cfg": training config, ...}``. Its config is either the YAML text of the Hydra config or a pickled
omegaconf ``DictConfig``; torch's ``weights_only`` loader refuses the latter. Rather than allowing
omegaconf's classes (and whatever their ``__setstate__`` does), the omegaconf globals are mapped to
inert records that only keep their pickled state, which is then read back as plain dicts and lists.
Any other global (a structured-config dataclass, a callable) is still refused by torch. ``${a.b}``
interpolations are resolved when a value is read, as omegaconf would.
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from bench.errors import WeightsUnavailableError


class _Record:
    """A pickled omegaconf object reduced to its state; never runs omegaconf code."""

    def __setstate__(self, state: Any) -> None:
        self.__dict__["state"] = state if isinstance(state, dict) else {}


class _DictConfigRecord(_Record):
    pass


class _ListConfigRecord(_Record):
    pass


class _NodeRecord(_Record):
    pass


class _MetadataRecord(_Record):
    pass


class _TypeMarker:
    """Stands for a type named in omegaconf metadata (``typing.Any``, ``dict``; torch reads protocol-2
    ``__builtin__`` names as ``builtins``): a placeholder, never the real type."""


def _plain_dict(*_factory: Any) -> dict:
    """``collections.defaultdict(dict)`` in omegaconf's resolver cache, rebuilt as an empty dict."""
    return {}


_NODE_CLASSES = ("AnyNode", "StringNode", "IntegerNode", "FloatNode", "BooleanNode", "BytesNode", "PathNode")
_OMEGACONF_GLOBALS: list[tuple[Any, str]] = [
    (_DictConfigRecord, "omegaconf.dictconfig.DictConfig"),
    (_ListConfigRecord, "omegaconf.listconfig.ListConfig"),
    (_MetadataRecord, "omegaconf.base.Metadata"),
    (_MetadataRecord, "omegaconf.base.ContainerMetadata"),
    *[(_NodeRecord, f"omegaconf.nodes.{name}") for name in _NODE_CLASSES],
    (_TypeMarker, "typing.Any"),
    *[(_TypeMarker, f"builtins.{name}") for name in ("int", "float", "str", "bool", "bytes", "list", "dict")],
    (_plain_dict, "collections.defaultdict"),
]


@contextmanager
def _omegaconf_as_records() -> Iterator[None]:
    with torch.serialization.safe_globals(_OMEGACONF_GLOBALS):
        yield


def _plain(value: Any) -> Any:
    """omegaconf records → dicts, lists and scalars (interpolation strings kept verbatim)."""
    if isinstance(value, _DictConfigRecord | _ListConfigRecord):
        content = value.state.get("_content")
        if isinstance(content, dict):
            return {str(k): _plain(v) for k, v in content.items()}
        if isinstance(content, list):
            return [_plain(v) for v in content]
        return content  # None, "???" (missing) or an interpolation string
    if isinstance(value, _NodeRecord):
        return _plain(value.state.get("_val"))
    if isinstance(value, _Record | _TypeMarker):
        raise WeightsUnavailableError(f"unexpected omegaconf object {type(value).__name__} as a config value")
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


_MISSING = object()
_WHOLE_INTERPOLATION = re.compile(r"^\$\{([^${}]+)\}$")
_INTERPOLATION = re.compile(r"\$\{([^${}]+)\}")


class AudiocraftConfig:
    """An audiocraft ``xp.cfg`` as plain data; ``get("a.b")`` resolves ``${x.y}`` references on read."""

    def __init__(self, data: dict[str, Any], source: str = "xp.cfg"):
        self.data = data
        self.source = source

    def get(self, path: str, default: Any = _MISSING) -> Any:
        return self._resolve(self._lookup(path, default), path, depth=0)

    def has(self, path: str) -> bool:
        return self._lookup(path, _MISSING) is not _MISSING

    def _lookup(self, path: str, default: Any) -> Any:
        node: Any = self.data
        for part in path.split("."):
            if not isinstance(node, dict) or part not in node:
                if default is _MISSING:
                    raise WeightsUnavailableError(f"{self.source}: no '{path}' in the checkpoint's config")
                return default
            node = node[part]
        return node

    def _resolve(self, value: Any, path: str, depth: int) -> Any:
        if depth > 16:
            raise WeightsUnavailableError(f"{self.source}: interpolation loop at '{path}'")
        if isinstance(value, dict):
            return {k: self._resolve(v, f"{path}.{k}", depth) for k, v in value.items()}
        if isinstance(value, list):
            return [self._resolve(v, f"{path}[{i}]", depth) for i, v in enumerate(value)]
        if not isinstance(value, str) or "${" not in value:
            if value == "???":
                raise WeightsUnavailableError(f"{self.source}: '{path}' is a missing value (???)")
            return value
        whole = _WHOLE_INTERPOLATION.match(value)
        if whole:
            return self._resolve(self._lookup(self._reference(whole.group(1), path), _MISSING), path, depth + 1)
        return _INTERPOLATION.sub(
            lambda m: str(self._resolve(self._lookup(self._reference(m.group(1), path), _MISSING), path, depth + 1)),
            value)

    def _reference(self, ref: str, path: str) -> str:
        ref = ref.strip()
        if ":" in ref or ref.startswith("."):
            raise WeightsUnavailableError(f"{self.source}: '{path}' uses ${{{ref}}}, a resolver or relative "
                                          "interpolation this reader does not evaluate")
        return ref


@dataclass
class AudiocraftPackage:
    """One released audiocraft file: its weights and the config they were trained with."""

    path: Path
    state: dict[str, torch.Tensor]
    config: AudiocraftConfig


def read_audiocraft_package(path: Path) -> AudiocraftPackage:
    """``best_state`` and ``xp.cfg`` of an audiocraft export, loaded with ``weights_only=True``."""
    path = Path(path)
    if not path.is_file():
        raise WeightsUnavailableError(f"{path} does not exist")
    try:
        with _omegaconf_as_records():
            raw = torch.load(path, map_location="cpu", weights_only=True, mmap=zipfile.is_zipfile(path))
    except Exception as exc:
        raise WeightsUnavailableError(
            f"{path}: refused to load — not an audiocraft package readable with weights_only=True "
            f"({type(exc).__name__}: {exc})") from exc
    if not isinstance(raw, dict):
        raise WeightsUnavailableError(f"{path}: top level is a {type(raw).__name__}, not an audiocraft package dict")
    if "pretrained" in raw and "best_state" not in raw:
        raise WeightsUnavailableError(f"{path}: names a pretrained model ({raw['pretrained']!r}) instead of "
                                      "holding its weights; that indirection is not supported")
    state, cfg = raw.get("best_state"), raw.get("xp.cfg")
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise WeightsUnavailableError(f"{path}: 'best_state' is not a flat dict of tensors")
    if isinstance(cfg, str):
        import yaml

        data = yaml.safe_load(cfg)
    else:
        data = _plain(cfg)
    if not isinstance(data, dict):
        raise WeightsUnavailableError(f"{path}: 'xp.cfg' is a {type(cfg).__name__}, not a config mapping")
    return AudiocraftPackage(path, state, AudiocraftConfig(data, f"{path.name}:xp.cfg"))
