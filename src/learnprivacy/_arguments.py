"""Calls with arguments a callable does not take, refused with one typed error.

Python's own ``TypeError`` for ``Store(url, keyring)`` or ``Learner(nickname=...)`` is not
a :class:`~learnprivacy.errors.LearnPrivacyError`, so callers catching the library's
errors miss it. :func:`checked_arguments` (functions and methods) and
:func:`argument_error` (records, whose parameters are attrs fields) raise
:class:`~learnprivacy.errors.ArgumentError` instead: a ``ValidationError`` and still a
``TypeError``. The message names the parameters, never a value given for them.

The check costs nothing on a well-formed call: the signature is looked at only once
Python has refused the arguments, and a refused call never ran the function's body.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any, TypeVar

from learnprivacy.errors import ArgumentError

__all__ = ["argument_error", "checked_arguments"]

F = TypeVar("F", bound=Callable[..., Any])


def _names(names: Collection[str]) -> str:
    # A keyword name comes from the caller's code, not from data; still, anything that
    # is not a plain identifier is not quoted.
    return ", ".join(n if n.isidentifier() and len(n) <= 40 else "<unnamed>" for n in names)


def argument_error(
    owner: str,
    *,
    positional: Sequence[str],
    keywords: Collection[str],
    required: Collection[str],
    args: Sequence[object],
    kwargs: Mapping[str, object],
) -> ArgumentError | None:
    """The error for calling ``owner`` with ``args`` and ``kwargs``, or ``None`` if they fit.

    ``positional`` names the parameters that may be given by position (in order),
    ``keywords`` those that may be given by name, ``required`` those without a default.
    """
    if len(args) > len(positional):
        by_keyword = [k for k in keywords if k not in positional]
        if not positional:
            return ArgumentError(f"{owner} takes keyword arguments only (name=value)")
        count = (
            "1 positional argument"
            if len(positional) == 1
            else f"{len(positional)} positional arguments"
        )
        return ArgumentError(
            f"{owner} takes {count} ({_names(positional)}), got {len(args)}; "
            f"pass the others by keyword ({_names(by_keyword)})"
        )
    unknown = sorted(k for k in kwargs if k not in keywords)
    if unknown:
        return ArgumentError(f"{owner} has no parameter {_names(unknown)}")
    given_by_position = set(positional[: len(args)])
    twice = [k for k in kwargs if k in given_by_position]
    if twice:
        return ArgumentError(f"{owner} got {_names(twice)} both by position and by keyword")
    missing = [n for n in required if n not in kwargs and n not in given_by_position]
    if missing:
        return ArgumentError(f"{owner} is missing argument {_names(missing)}")
    return None


def checked_arguments(function: F) -> F:
    """Make ``function`` raise :class:`ArgumentError` for arguments it does not take
    (too many positional ones, an unknown or repeated keyword, a missing one)."""
    signature = inspect.signature(function)
    parameters = list(signature.parameters.values())
    if any(p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in parameters):
        raise TypeError(f"{function.__qualname__}: *args and **kwargs are not checked")
    method = bool(parameters) and parameters[0].name in ("self", "cls")
    if method:
        parameters = parameters[1:]
    positional = [
        p.name for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    keywords = [p.name for p in parameters if p.kind is not p.POSITIONAL_ONLY]
    required = [p.name for p in parameters if p.default is p.empty]
    owner = function.__qualname__.removesuffix(".__init__")

    @functools.wraps(function)
    def checked(*args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except TypeError:
            error = argument_error(
                owner,
                positional=positional,
                keywords=keywords,
                required=required,
                args=args[1:] if method else args,
                kwargs=kwargs,
            )
            if error is None:
                raise  # the arguments fit: a TypeError from the body, not ours to rename
        raise error from None

    return checked  # type: ignore[return-value]
