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

A checked field whose validator has a known acceptance test (:data:`_ACCEPTS`) runs that
test inline and calls the validator only when it fails: the validator then raises its
own error, or accepts what the shorter test could not decide (a ``str`` subclass, say).
Each test accepts a subset of what its validator accepts, never more; a test holds them
to it.

A checked field named in ``repeating`` (given and family names: a site has thousands of
learners called Marie) remembers the exact ``str`` values that passed its check, up to
:data:`REMEMBERED` of them, and checks each distinct value once: a value already
remembered is one the validator accepted, and validity depends on the value alone.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import attrs

from learnprivacy import _validators as v

__all__ = ["REMEMBERED", "builder"]

T = TypeVar("T")
_NOTHING = attrs.NOTHING
#: Distinct values a ``repeating`` field remembers before it starts afresh.
REMEMBERED = 4_096

# Inline acceptance tests, ``{}`` standing for the value: what the validator's own fast
# path tests (non_empty_text), or a test that implies everything the validator checks (an
# address matching _EMAIL is non-blank ASCII text of at most 319 characters, which is what
# require_email asks of it besides the match itself).
_ACCEPTS: dict[Any, str] = {
    v.non_empty_text: "(type({0}) is str and {0} and not {0}.isspace() and _not_text({0}) is None)",
    v.email_address: "(type({0}) is str and _email({0}) is not None)",
}
_HELPERS = {
    "_not_text": v._NOT_TEXT.search,  # the validators' own patterns
    "_email": v._EMAIL.match,
}


def builder(
    cls: type[T],
    *,
    checked: frozenset[str] = frozenset(),
    repeating: frozenset[str] = frozenset(),
) -> Callable[..., T]:
    """A fast constructor of ``cls`` validating only the ``checked`` fields.

    Values of the ``repeating`` fields (checked ones) are checked once per distinct value.

    Refused for classes with an ``__attrs_post_init__`` (their invariants span fields),
    for factories, converters and unknown field names: those need the real constructor.
    """
    fields = attrs.fields(cls)  # type: ignore[arg-type]
    if hasattr(cls, "__attrs_post_init__"):
        raise TypeError(f"{cls.__name__} checks its fields together: use its constructor")
    names = {f.name for f in fields}
    if not checked <= names:
        raise TypeError(f"{cls.__name__} has no field {sorted(checked - names)}")
    if not repeating <= checked:
        raise TypeError(f"{cls.__name__}: {sorted(repeating - checked)} must be checked fields")
    # Generated once per class, as attrs generates its own __init__: keyword-only
    # parameters with the class's defaults, one assignment per field (through the slot's
    # own descriptor when the class has slots: a frozen class refuses setattr).
    namespace: dict[str, Any] = {"_new": object.__new__, "_cls": cls, **_HELPERS}
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
            call = f"_v{n}(record, _f{n}, {field.name})"
            accepts = _ACCEPTS.get(field.validator)
            check = [f"    {call}"] if accepts is None else [
                f"    if not {accepts.format(field.name)}:", f"        {call}"
            ]  # fmt: skip
            if field.name in repeating:
                # Only an exact str is remembered: a subclass may compare equal to one.
                namespace[f"_k{n}"] = known = set[Any]()
                namespace[f"_r{n}"] = _remember(known)
                value = field.name
                check = [
                    f"    if type({value}) is not str or {value} not in _k{n}:",
                    *(f"    {line}" for line in check),
                    f"        if type({value}) is str:",
                    f"            _r{n}({value})",
                ]
            body.extend(check)
        namespace[f"_s{n}"] = _setter(cls, field.name)
        body.append(f"    _s{n}(record, {field.name})")
    source = (
        "def build(*, " + ", ".join(params) + "):\n" + "\n".join(body) + "\n    return record\n"
    )
    exec(compile(source, f"<trusted {cls.__name__}>", "exec"), namespace)  # noqa: S102
    built: Callable[..., T] = namespace["build"]
    return built


def _remember(known: set[Any]) -> Callable[[Any], None]:
    """Add a value that passed its check to ``known``, starting afresh when it is full."""

    def remember(value: Any) -> None:
        if len(known) >= REMEMBERED:
            known.clear()
        known.add(value)

    return remember


def _setter(cls: type[Any], name: str) -> Callable[[Any, Any], None]:
    """Set field ``name`` of a new ``cls`` instance: the slot's descriptor when it has one."""
    slot = cls.__dict__.get(name)
    if slot is not None and type(slot).__name__ == "member_descriptor":
        setter: Callable[[Any, Any], None] = slot.__set__
        return setter
    return lambda record, value: object.__setattr__(record, name, value)
