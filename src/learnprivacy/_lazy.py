"""A module imported on first attribute access, for annotations of deferred modules.

``from __future__ import annotations`` keeps annotations as strings, and
:func:`typing.get_type_hints` evaluates them in the defining module's globals (a plain
dict: a module-level ``__getattr__`` is never consulted). A name bound to a
:class:`LazyModule` resolves there, and imports its module only when a hint is evaluated,
so start-up does not pay for a module that only annotations name.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

__all__ = ["LazyModule"]


class LazyModule:
    """Stands for the module ``name`` and imports it on the first attribute read."""

    __slots__ = ("_name",)

    def __init__(self, name: str) -> None:
        self._name = name

    def _module(self) -> ModuleType:
        return importlib.import_module(self._name)

    def __getattr__(self, attribute: str) -> Any:
        return getattr(self._module(), attribute)

    def __repr__(self) -> str:
        return f"<lazy module {self._name!r}>"
