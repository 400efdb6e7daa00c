"""Hand-written protocols are checked against the classes they describe.

A protocol repeats signatures of a class (the store's private core repeats the
``Store`` methods its operations call; the request book's backends implement
``RequestBackend``). The copies must not drift: the same parameter names, kinds and
defaults, in the same order, on both sides.
"""

from __future__ import annotations

import inspect
from typing import Any

import pytest

from learnprivacy.providers._store import _StoreLike
from learnprivacy.requests import MemoryBackend
from learnprivacy.requests._backend import RequestBackend
from learnprivacy.requests.sql import SQLBackend
from learnprivacy.store import Store
from learnprivacy.store._core import StoreCore


def _protocol_methods(protocol: type) -> list[str]:
    return sorted(
        name
        for name, value in vars(protocol).items()
        if inspect.isfunction(value) and (not name.startswith("__") or name == "__call__")
    )


def _shape(function: Any) -> list[tuple[str, Any, Any]]:
    """Parameter names, kinds and defaults: what a caller relies on."""
    return [(p.name, p.kind, p.default) for p in inspect.signature(function).parameters.values()]


def _accepts(view: Any, function: Any) -> bool:
    """Whether ``function`` takes every call written against ``view`` (a narrower view
    of it): each of its parameters, of the same kind and default where ``view`` has one,
    and nothing more that is required."""
    theirs = inspect.signature(function).parameters
    ours = inspect.signature(view).parameters
    for name, parameter in ours.items():
        other = theirs.get(name)
        if other is None or other.kind != parameter.kind:
            return False
        if parameter.default is not inspect.Parameter.empty and other.default != parameter.default:
            return False
    return all(p.default is not inspect.Parameter.empty for n, p in theirs.items() if n not in ours)


def test_the_providers_view_of_the_store_fits_the_store() -> None:
    """The provider's narrower view of ``Store`` (``_StoreLike``) accepts only what the
    store takes."""
    methods = _protocol_methods(_StoreLike)
    assert methods
    assert [m for m in methods if not _accepts(getattr(_StoreLike, m), getattr(Store, m))] == []


def _implementations() -> list[tuple[type, type]]:
    pairs: list[tuple[type, type]] = [
        (StoreCore, Store),
        (RequestBackend, MemoryBackend),
        (RequestBackend, SQLBackend),
    ]
    try:
        from learnprivacy.django._requests import DjangoRequestBackend
    except ImportError:  # Django is an optional extra
        pass
    else:
        pairs.append((RequestBackend, DjangoRequestBackend))
    return pairs


@pytest.mark.parametrize(
    ("protocol", "cls"), _implementations(), ids=lambda c: getattr(c, "__name__", str(c))
)
def test_protocol_signatures_match_the_class(protocol: type, cls: type) -> None:
    """Every method the protocol copies has the class's exact parameters."""
    methods = _protocol_methods(protocol)
    assert methods, protocol
    drifted = {
        name: (_shape(getattr(protocol, name)), _shape(getattr(cls, name)))
        for name in methods
        if _shape(getattr(protocol, name)) != _shape(getattr(cls, name))
    }
    assert drifted == {}


def test_the_check_sees_a_drifted_copy() -> None:
    """A protocol whose copy lost a default is reported."""

    class Drifted(StoreCore):
        def restrict(  # type: ignore[override]
            self,
            record_type: Any = None,
            record_id: Any = None,
            *,
            learner_id: Any = None,
            reason: str = "",
            now: Any = None,
        ) -> int: ...

    assert _shape(Drifted.restrict) != _shape(Store.restrict)
    assert not _accepts(Drifted.restrict, Store.restrict)
