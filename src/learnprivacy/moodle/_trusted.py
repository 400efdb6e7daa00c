"""Records built from values the adapter has already made valid, checking only the rest.

A record's constructor checks every field. For a Moodle row most fields are valid by
construction: an id is ``"course_completions/"`` plus an integer column, a date comes from
:func:`~learnprivacy.moodle._time.from_unix` (aware UTC), a status is an enum member the
mapper chose. Checking them again is most of the cost of reading 100,000 accounts.

:func:`builder` returns a function that builds ``cls`` from keyword values, running the
field's own validator for the ``checked`` fields only (the personal texts: username,
e-mail address, names) and setting the others as given; defaults are the class's own.
It is only used where the values' validity follows from the code that computes them,
and a test holds every record so built equal to one the checking constructor builds.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import attrs

__all__ = ["builder"]

T = TypeVar("T")
_NOTHING = attrs.NOTHING


def builder(cls: type[T], *, checked: frozenset[str] = frozenset()) -> Callable[..., T]:
    """A fast constructor of ``cls`` validating only the ``checked`` fields.

    Refused for classes with an ``__attrs_post_init__`` (their invariants span fields),
    for factories, converters and unknown field names: those need the real constructor.
    """
    fields = attrs.fields(cls)  # type: ignore[arg-type]
    if hasattr(cls, "__attrs_post_init__"):
        raise TypeError(f"{cls.__name__} checks its fields together: use its constructor")
    names = {f.name for f in fields}
    if not checked <= names:
        raise TypeError(f"{cls.__name__} has no field {sorted(checked - names)}")
    # Generated once per class, as attrs generates its own __init__: keyword-only
    # parameters with the class's defaults, one assignment per field.
    namespace: dict[str, Any] = {"_new": object.__new__, "_set": object.__setattr__, "_cls": cls}
    params, body = [], ["    record = _new(_cls)"]
    for n, field in enumerate(fields):
        if isinstance(field.default, attrs.Factory) or field.converter is not None:  # type: ignore[arg-type]
            raise TypeError(f"{cls.__name__}.{field.name} needs the real constructor")
        if field.default is _NOTHING:
            params.append(field.name)
        else:
            namespace[f"_d{n}"] = field.default
            params.append(f"{field.name}=_d{n}")
        if field.name in checked:
            namespace[f"_v{n}"], namespace[f"_f{n}"] = field.validator, field
            body.append(f"    _v{n}(record, _f{n}, {field.name})")
        body.append(f"    _set(record, {field.name!r}, {field.name})")
    source = (
        "def build(*, " + ", ".join(params) + "):\n" + "\n".join(body) + "\n    return record\n"
    )
    exec(compile(source, f"<trusted {cls.__name__}>", "exec"), namespace)  # noqa: S102
    built: Callable[..., T] = namespace["build"]
    return built
