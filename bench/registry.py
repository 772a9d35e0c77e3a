"""One lazy registry for codecs, tasks, metrics and judges.

Built-in entries live in provider modules that are imported only when the registry is first
queried; third parties add providers through the entry-point group of the registry
(``codecbench.codecs``, ``codecbench.tasks``, ``codecbench.metrics``). An entry point may name a
module (its decorators register entries on import) or an object (registered under the entry
point's name). No directory is scanned and no if/elif chain names implementations.
"""

from __future__ import annotations

import importlib
import logging
import types
from collections.abc import Callable, Iterator
from importlib.metadata import entry_points
from typing import Generic, TypeVar

from bench.errors import UnknownNameError, UsageError

T = TypeVar("T")
log = logging.getLogger(__name__)


class Registry(Generic[T]):
    """Name → entry mapping filled by decorators in lazily imported provider modules."""

    def __init__(self, kind: str, group: str, providers: tuple[str, ...] = ()):
        self.kind = kind
        self.group = group
        self._providers = list(providers)
        self._entries: dict[str, T] = {}
        self._loaded = False
        self.load_errors: dict[str, str] = {}

    def register(self, name: str, entry: T | None = None) -> Callable[[T], T] | T:
        """Register ``entry`` under ``name``; usable as ``@registry.register(name)``."""

        def add(obj: T) -> T:
            if name in self._entries and self._entries[name] is not obj:
                raise UsageError(f"{self.kind} {name!r} is registered twice")
            self._entries[name] = obj
            return obj

        return add if entry is None else add(entry)

    def add_provider(self, module: str) -> None:
        """Declare a module whose import registers entries (imported on first query)."""
        self._providers.append(module)
        self._loaded = False

    def _load(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        for module in self._providers:
            importlib.import_module(module)
        for ep in entry_points(group=self.group):
            try:
                obj = ep.load()
            except Exception as exc:  # a broken plugin must not hide the built-ins
                self.load_errors[ep.name] = f"{type(exc).__name__}: {exc}"
                log.warning("cannot load %s plugin %s: %s", self.kind, ep.value, exc)
                continue
            if not isinstance(obj, types.ModuleType):
                self.register(ep.name, obj)

    def get(self, name: str) -> T:
        self._load()
        try:
            return self._entries[name]
        except KeyError:
            raise UnknownNameError(self.kind, name, self._entries) from None

    def names(self) -> list[str]:
        self._load()
        return list(self._entries)

    def items(self) -> Iterator[tuple[str, T]]:
        self._load()
        return iter(list(self._entries.items()))

    def __contains__(self, name: str) -> bool:
        self._load()
        return name in self._entries

    def resolve(self, spec: str | None, default: list[str]) -> list[str]:
        """Expand a comma list of names and globs (``opus@*``) into registered names."""
        import fnmatch

        if not spec:
            return list(default)
        out: list[str] = []
        for part in (p.strip() for p in spec.split(",")):
            if not part:
                continue
            if any(ch in part for ch in "*?["):
                hits = [n for n in self.names() if fnmatch.fnmatchcase(n, part)]
                if not hits:
                    raise UnknownNameError(self.kind, part, self.names())
                out.extend(h for h in hits if h not in out)
            else:
                self.get(part)
                if part not in out:
                    out.append(part)
        return out
