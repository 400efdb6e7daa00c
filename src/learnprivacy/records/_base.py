"""What every record class shares: the class-level policy and the registry of record types."""

from __future__ import annotations

import functools
from typing import Any, ClassVar, Protocol, runtime_checkable

import attrs

from learnprivacy._arguments import argument_error
from learnprivacy.basis import LawfulBasis
from learnprivacy.errors import UnknownCodeError

__all__ = [
    "Record",
    "default_basis",
    "record_type",
    "record_types",
    "register_record_type",
    "subject_of",
]


@runtime_checkable
class Record(Protocol):
    """What the library needs of a record: an id, a lawful basis and class-level policy.

    ``processing_purpose`` names the processing purpose, ``key_scope`` the keyring scope
    its encrypted fields use (so erasure can shred one scope and keep another), and
    ``date_field`` the field holding the record's own date (creation, issue, event time).
    """

    processing_purpose: ClassVar[str]
    key_scope: ClassVar[str]
    date_field: ClassVar[str]

    @property
    def id(self) -> str: ...

    @property
    def basis(self) -> LawfulBasis: ...


_REGISTRY: dict[str, type[Any]] = {}


def register_record_type(cls: type[Any]) -> type[Any]:
    """Register an attrs record class under its class name; usable as a decorator."""
    if not attrs.has(cls):
        raise TypeError(f"{cls.__name__} is not an attrs class")
    for name in ("processing_purpose", "key_scope", "date_field"):
        if not isinstance(getattr(cls, name, None), str):
            raise TypeError(f"{cls.__name__} must define ClassVar {name}: str")
    _keyword_only_init(cls)
    _REGISTRY[cls.__name__] = cls
    return cls


def _keyword_only_init(cls: type[Any]) -> None:
    """Make the record's ``__init__`` raise :class:`ArgumentError` (a ``TypeError`` too)
    for positional, unknown or missing arguments, naming them but never a value."""
    init = cls.__init__
    if getattr(init, "__learnprivacy_keyword_only__", False):
        return
    name = cls.__name__

    @functools.wraps(init)
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        failure: TypeError | None = None
        if not args:
            try:
                init(self, **kwargs)
                return
            except TypeError as raised:
                failure = raised  # told apart below, outside the handler (nothing chained)
        fields = {a.alias: a for a in attrs.fields(cls) if a.init}
        error = argument_error(
            name,
            positional=(),
            keywords=fields,
            required=[k for k, a in fields.items() if a.default is attrs.NOTHING],
            args=args,
            kwargs=kwargs,
        )
        if error is not None:
            raise error
        assert failure is not None  # keyword arguments that fit: the body's own TypeError
        raise failure

    __init__.__learnprivacy_keyword_only__ = True  # type: ignore[attr-defined]
    cls.__init__ = __init__


def record_type(name: str) -> type[Any]:
    """Return the registered record class called ``name`` (``"Learner"``)."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownCodeError(
            "unknown record type; expected one of " + ", ".join(sorted(_REGISTRY)),
            field="record_type",
        ) from None


def record_types() -> tuple[type[Any], ...]:
    """Every registered record class, in registration order."""
    return tuple(_REGISTRY.values())


def subject_of(record: object) -> str:
    """The learner id a record belongs to (a Learner's own id, else its ``learner_id``)."""
    subject = getattr(record, "learner_id", None)
    if subject is None:
        subject = record.id  # type: ignore[attr-defined]
    return str(subject)


def default_basis(cls: type[Any]) -> LawfulBasis:
    """The lawful basis a record class uses unless an instance says otherwise."""
    for attribute in attrs.fields(cls):
        if attribute.name == "basis" and isinstance(attribute.default, LawfulBasis):
            return attribute.default
    raise TypeError(f"{cls.__name__} declares no default lawful basis")
