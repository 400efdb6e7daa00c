"""The public surface is what the API reference documents: one test, no copied lists.

A public module is any module of the library without an underscore in its path; its
public names are its ``__all__``. The API reference (docs/api/*.md) renders modules and
names with mkdocstrings directives (``::: learnprivacy.retention``). Every public name
must be rendered there, every directive must name something public, and the whole
library stays small.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
import types
from pathlib import Path

import pytest

import learnprivacy

DOCS = Path(__file__).resolve().parents[1] / "docs" / "api"
DIRECTIVE = re.compile(r"^::: ([\w.]+)\s*$", re.M)
#: A Django app's other modules (models, apps, management commands, migrations) are
#: loaded by Django itself, not imported by users: only these are its public modules.
DJANGO_PUBLIC = ("learnprivacy.django", "learnprivacy.django.fields")
#: The most public names the library may have (distinct objects over every __all__).
MOST_NAMES = 200


def _public_modules() -> dict[str, types.ModuleType]:
    found = {"learnprivacy": learnprivacy}
    for info in pkgutil.walk_packages(learnprivacy.__path__, "learnprivacy.", onerror=_skip):
        parts = info.name.split(".")[1:]
        if any(part.startswith("_") for part in parts) or "migrations" in parts:
            continue
        if info.name.endswith("pytest_plugin"):  # a pytest plugin, not an import
            continue
        if parts[0] == "django" and info.name not in DJANGO_PUBLIC:
            continue
        found[info.name] = importlib.import_module(info.name)
    return found


def _skip(_name: str) -> None:
    """walk_packages' onerror: a package that cannot be imported is reported by the test."""


MODULES = _public_modules()


def _directives() -> set[str]:
    return {m for page in DOCS.glob("*.md") for m in DIRECTIVE.findall(page.read_text())}


def _resolve(path: str) -> object:
    """The object a directive names: a module, or an attribute of one."""
    try:
        return importlib.import_module(path)
    except ImportError:
        module, _, name = path.rpartition(".")
        return getattr(importlib.import_module(module), name)


def _rendered() -> set[int]:
    """ids of every object the API reference renders (modules render their __all__)."""
    shown: set[int] = set()
    for path in _directives():
        target = _resolve(path)
        shown.add(id(target))
        if isinstance(target, types.ModuleType):
            shown.update(id(getattr(target, name)) for name in getattr(target, "__all__", ()))
    return shown


def _surface() -> dict[str, list[str]]:
    return {name: list(module.__all__) for name, module in MODULES.items()}


def test_every_public_module_declares_its_surface() -> None:
    """Each public module has an __all__ whose names all exist, each once."""
    for name, module in MODULES.items():
        assert hasattr(module, "__all__"), name
        assert len(set(module.__all__)) == len(module.__all__), name
        for attribute in module.__all__:
            assert hasattr(module, attribute), f"{name}.{attribute}"


def test_every_public_name_is_in_the_api_reference() -> None:
    """Every name of every __all__ is rendered by a directive of docs/api (a module
    directive renders its module's __all__), and carries a docstring when it can."""
    shown = _rendered()
    missing = []
    for name, module in MODULES.items():
        for attribute in module.__all__:
            value = getattr(module, attribute)
            if attribute.startswith("__") or isinstance(value, types.ModuleType):
                continue
            if id(value) not in shown:
                missing.append(f"{name}.{attribute}")
            if inspect.isclass(value) or inspect.isfunction(value):
                assert inspect.getdoc(value), f"{name}.{attribute} has no docstring"
    assert missing == []


def test_every_directive_names_something_public() -> None:
    """docs/api renders public modules and names only."""
    public_ids = {id(m) for m in MODULES.values()} | {
        id(getattr(m, n)) for m in MODULES.values() for n in m.__all__
    }
    for path in _directives():
        assert not any(part.startswith("_") for part in path.split(".")), path
        assert id(_resolve(path)) in public_ids, path


def test_the_surface_is_small() -> None:
    """At most 200 public names in all (each object counted once), 25 in requests."""
    distinct = {
        id(getattr(module, name))
        for module in MODULES.values()
        for name in module.__all__
        if not isinstance(getattr(module, name), types.ModuleType) and not name.startswith("__")
    }
    assert len(distinct) <= MOST_NAMES, len(distinct)
    assert len(MODULES["learnprivacy.requests"].__all__) <= 25


@pytest.mark.parametrize(
    ("name", "home"),
    [
        ("Action", "learnprivacy.retention"),
        ("ContextLevel", "learnprivacy.providers"),
    ],
)
def test_shared_words_are_the_same_object_where_re_exported(name: str, home: str) -> None:
    """A package that re-exports a shared word re-exports the one object."""
    assert getattr(MODULES[home], name) is getattr(learnprivacy, name)
