"""The lazy registry: decorators, providers imported on demand, entry points, suggestions."""

from __future__ import annotations

import sys
import types
from importlib.metadata import EntryPoint

import pytest

from bench.errors import UnknownNameError, UsageError
from bench.registry import Registry


def test_provider_modules_are_imported_only_when_queried(tmp_path, monkeypatch):
    reg: Registry[int] = Registry("thing", "codecbench.test-none", ("fake_provider_xyz",))
    holder = types.ModuleType("regholder_xyz")
    holder.REG = reg
    monkeypatch.setitem(sys.modules, "regholder_xyz", holder)
    (tmp_path / "fake_provider_xyz.py").write_text("import regholder_xyz\nregholder_xyz.REG.register('alpha', 1)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "fake_provider_xyz", raising=False)
    assert "fake_provider_xyz" not in sys.modules
    assert reg.get("alpha") == 1
    assert "fake_provider_xyz" in sys.modules
    assert reg.names() == ["alpha"]


def test_unknown_name_suggests_close_names():
    reg: Registry[int] = Registry("codec", "codecbench.test-none")
    reg.register("opus@6kbps", 1)
    reg.register("opus@8kbps", 2)
    with pytest.raises(UnknownNameError) as err:
        reg.get("opus@6kbs")
    assert "Did you mean 'opus@6kbps'" in str(err.value)
    assert isinstance(err.value, UsageError)


def test_duplicate_registration_is_refused():
    reg: Registry[object] = Registry("metric", "codecbench.test-none")
    reg.register("m", object())
    with pytest.raises(UsageError, match="registered twice"):
        reg.register("m", object())


def test_resolve_expands_globs_and_keeps_order():
    reg: Registry[int] = Registry("codec", "codecbench.test-none")
    for i, n in enumerate(["opus@6kbps", "opus@8kbps", "mp3@8kbps"]):
        reg.register(n, i)
    assert reg.resolve("mp3@8kbps,opus@*", []) == ["mp3@8kbps", "opus@6kbps", "opus@8kbps"]
    assert reg.resolve(None, ["x"]) == ["x"]
    with pytest.raises(UnknownNameError):
        reg.resolve("flac@*", [])


def test_entry_points_register_objects_and_modules(monkeypatch):
    import bench.registry as registry_mod

    plugin_mod = types.ModuleType("third_party_codecs")
    monkeypatch.setitem(sys.modules, "third_party_codecs", plugin_mod)
    reg: Registry[object] = Registry("task", "codecbench.tasks-test")
    sentinel = object()
    plugin_obj = types.ModuleType("third_party_obj")
    plugin_obj.TASK = sentinel
    monkeypatch.setitem(sys.modules, "third_party_obj", plugin_obj)
    eps = [
        EntryPoint("mytask", "third_party_obj:TASK", "codecbench.tasks-test"),
        EntryPoint("mymod", "third_party_codecs", "codecbench.tasks-test"),
        EntryPoint("broken", "no_such_module_xyz:thing", "codecbench.tasks-test"),
    ]
    monkeypatch.setattr(registry_mod, "entry_points", lambda group: [e for e in eps if e.group == group])
    assert reg.get("mytask") is sentinel
    assert "mymod" not in reg.names()  # a module registers through its own decorators
    assert "broken" in reg.load_errors  # a broken plugin is reported, the rest still loads


def test_builtin_registries_list_their_families():
    from bench.codecs import codecs
    from bench.metrics import metrics
    from bench.task import tasks

    assert "reconstruction" in tasks.names()
    assert {"pesq_wb", "stoi", "si_sdr"} <= set(metrics.names())
    assert any(n.startswith("opus@") for n in codecs.names())
