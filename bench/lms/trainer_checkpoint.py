"""Model tensors from a trainer's checkpoint, without running code the file names.

Why: trainer checkpoints (icefall / lifeiteng's VALL-E: ``{"model": state_dict, "optimizer": ...,
"sampler": ..., <training params>}``) pickle training objects beside the tensors (paths, attribute
dicts, numpy scalars), so ``torch.load(weights_only=True)`` refuses them, and a full unpickle would
call whatever globals the file names. This reader tries ``weights_only`` first; if that refuses, it
unpickles again with every global that is not a tensor-rebuild function, a dtype or a plain
container replaced by an inert stand-in (it takes any arguments and state and does nothing), then
keeps only the tensors of ``model``.
"""

from __future__ import annotations

import pickle
import types
from pathlib import Path
from typing import Any

import torch

from bench.errors import WeightsUnavailableError

_ALLOWED = {
    ("torch._utils", "_rebuild_tensor_v2"), ("torch._utils", "_rebuild_parameter"),
    ("torch._utils", "_rebuild_parameter_with_state"), ("torch", "Size"), ("collections", "OrderedDict"),
    *(("builtins", n) for n in ("dict", "list", "tuple", "set", "frozenset", "int", "float", "str", "bool", "bytes",
                                "complex")),
}


class _Inert:
    """What a refused global becomes: constructible with anything, stateless, never calls out."""

    def __new__(cls, *args: Any, **kwargs: Any) -> _Inert:
        return object.__new__(cls)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __setstate__(self, state: Any) -> None:
        pass

    def __setitem__(self, key: Any, value: Any) -> None:
        pass

    def append(self, value: Any) -> None:
        pass

    def extend(self, values: Any) -> None:
        pass


class _StandInUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED:
            return super().find_class(module, name)
        if module == "torch" and isinstance(getattr(torch, name, None), torch.dtype):
            return getattr(torch, name)
        return _Inert


def _stand_in_pickle_module() -> types.ModuleType:
    """A ``pickle_module`` for ``torch.load`` whose unpickler substitutes refused globals."""
    module = types.ModuleType("codecbench_stand_in_pickle")
    module.Unpickler = _StandInUnpickler  # type: ignore[attr-defined]
    module.load = lambda f, **kw: _StandInUnpickler(f, **kw).load()  # type: ignore[attr-defined]
    return module


def read_model_state(path: Path, key: str = "model") -> dict[str, torch.Tensor]:
    """The ``key`` state dict of a trainer checkpoint (or the file itself if it is a bare state dict)."""
    path = Path(path)
    if not path.is_file():
        raise WeightsUnavailableError(f"{path}: no such checkpoint file")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        obj = torch.load(path, map_location="cpu", weights_only=False, pickle_module=_stand_in_pickle_module())
    state = obj.get(key, obj) if isinstance(obj, dict) else obj
    if not isinstance(state, dict) or not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise WeightsUnavailableError(f"{path}: no {key!r} state dict of tensors in this checkpoint")
    return dict(state)
