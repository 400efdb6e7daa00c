"""The public store API's type hints resolve at run time, and still load nothing early.

``learnprivacy.store`` names the retention engine's types (``Schedule``, ``Hold``,
``Override``) in its annotations without importing the engine at start-up; tools that
evaluate annotations (``typing.get_type_hints``: validators, dependency injection, docs)
must still get the real classes.
"""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
import typing
from collections.abc import Callable, Sequence
from typing import Any

import pytest

import learnprivacy.store
from learnprivacy.retention import Hold, Override, Schedule
from learnprivacy.store import Store


def _public_callables() -> list[tuple[str, Callable[..., Any]]]:
    found: list[tuple[str, Callable[..., Any]]] = [("__init__", Store.__init__)]
    for name, member in inspect.getmembers(Store):
        if name.startswith("_"):
            continue
        if isinstance(member, property):
            assert member.fget is not None
            found.append((name, member.fget))
        elif callable(member):
            found.append((name, member))
    return found


PUBLIC = _public_callables()


def test_the_list_covers_the_retention_methods() -> None:
    names = {name for name, _ in PUBLIC}
    assert {"sweep", "erase_subject", "erase_records", "anonymise_records"} <= names
    assert len(names) > 20


@pytest.mark.parametrize(("name", "method"), PUBLIC, ids=[name for name, _ in PUBLIC])
def test_every_public_store_method_has_resolvable_type_hints(
    name: str, method: Callable[..., Any]
) -> None:
    hints = typing.get_type_hints(method)
    assert "return" in hints, name


def test_retention_hints_are_the_real_classes() -> None:
    """Not a stand-in: the hints are the classes a caller passes."""
    sweep = typing.get_type_hints(Store.sweep)
    assert sweep["schedule"] is Schedule
    assert sweep["holds"] == Sequence[Hold]
    erase = typing.get_type_hints(Store.erase_records)
    assert erase["override"] == Override | None
    assert erase["schedule"] == Schedule | None


@pytest.mark.parametrize("name", learnprivacy.store.__all__)
def test_every_public_store_name_has_resolvable_type_hints(name: str) -> None:
    target = getattr(learnprivacy.store, name)
    if inspect.isclass(target):
        typing.get_type_hints(target)
        typing.get_type_hints(target.__init__)
    elif callable(target):
        typing.get_type_hints(target)


def test_hints_resolve_in_a_fresh_interpreter_that_deferred_the_engine() -> None:
    """Attack on the deferral: right after ``import learnprivacy.store`` the retention
    engine is not loaded, and evaluating the hints then loads it and resolves them."""
    code = (
        "import json, sys, typing\n"
        "import learnprivacy.store\n"
        "before = 'learnprivacy.retention' in sys.modules\n"
        "hints = typing.get_type_hints(learnprivacy.store.Store.sweep)\n"
        "from learnprivacy.retention import Schedule\n"
        "print(json.dumps([before, hints['schedule'] is Schedule]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert json.loads(done.stdout.strip().splitlines()[-1]) == [False, True]
