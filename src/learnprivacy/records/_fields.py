"""Privacy metadata declared on each attrs field, and ``fields_of`` to read it back.

Every field of every record says whether it is personal, its data category, whether it is
encrypted at rest and whether it belongs in a subject export. Everything else (encryption,
exports, anonymisation, redaction in ``repr``, the Art. 30 register) derives from it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs

from learnprivacy import _validators as v
from learnprivacy.basis import DataCategory, LawfulBasis
from learnprivacy.errors import ValidationError

__all__ = ["MASK", "METADATA_KEY", "FieldInfo", "fields_of", "not_personal", "personal"]

#: The key under which learnprivacy stores its metadata in ``attrs.Attribute.metadata``.
METADATA_KEY = "learnprivacy"

#: What ``repr``/``str`` show in place of a personal value.
MASK = "'***'"


@attrs.frozen
class FieldInfo:
    """The privacy metadata of one record field."""

    name: str
    category: DataCategory
    personal: bool
    encrypted: bool
    exported: bool
    #: Direct identifiers are replaced on anonymisation; other personal values are dropped.
    identifier: bool
    #: A keyed blind index is kept beside the ciphertext for exact-match lookups.
    blind_index: bool
    description: str
    #: Not personal on its own, but combined with other such values (dates, course,
    #: organisation, score) it can single a learner out: generalised on anonymisation
    #: (dates to a :class:`Granularity`) and checked by the re-identification test.
    quasi_identifier: bool = False


def _mask(_value: object) -> str:
    return MASK


Validator = Callable[[Any, "attrs.Attribute[Any]", Any], None]


def _optional(
    optional: bool, default: Any, validator: Validator | None
) -> tuple[Any, Validator | None]:
    """``optional``: the field defaults to ``None`` and its validator accepts ``None``."""
    if not optional:
        return default, validator
    return None, (None if validator is None else v.optional(validator))


def personal(
    category: DataCategory,
    description: str,
    *,
    encrypted: bool = True,
    exported: bool = True,
    identifier: bool = False,
    blind_index: bool = False,
    default: Any = attrs.NOTHING,
    validator: Validator | None = None,
    optional: bool = False,
) -> Any:
    """Declare a personal field: masked in ``repr``, encrypted at rest unless told otherwise.

    ``category`` and ``description`` come first, as in every integration's ``personal``;
    ``optional``: the field may be ``None``, its default (``validator`` then accepts it).
    """
    default, validator = _optional(optional, default, validator)
    info = {
        "category": category,
        "personal": True,
        "encrypted": encrypted,
        "exported": exported,
        "identifier": identifier,
        "blind_index": blind_index,
        "description": description,
    }
    return attrs.field(
        default=default,
        validator=validator,
        repr=_mask,
        metadata={METADATA_KEY: info},
    )


def not_personal(
    description: str,
    *,
    category: DataCategory = DataCategory.NONE,
    exported: bool = True,
    quasi_identifier: bool = False,
    default: Any = attrs.NOTHING,
    validator: Validator | None = None,
    optional: bool = False,
) -> Any:
    """Declare a field that holds no personal value on its own (ids, dates, amounts, codes).

    Such values are kept on anonymisation, shown in ``repr`` and stored in clear; a record
    as a whole is still personal data through its link to the learner. A
    ``quasi_identifier`` (a date, a course, an organisation, a score) can single a learner
    out in combination with others: anonymisation generalises it (dates to the month by
    default) and :func:`learnprivacy.testing.reidentification_risks` checks it.
    ``description`` comes first, as in every integration's ``not_personal``; ``optional``
    as for :func:`personal`.
    """
    default, validator = _optional(optional, default, validator)
    info = {
        "category": category,
        "personal": False,
        "encrypted": False,
        "exported": exported,
        "identifier": False,
        "blind_index": False,
        "description": description,
        "quasi_identifier": quasi_identifier,
    }
    return attrs.field(default=default, validator=validator, metadata={METADATA_KEY: info})


def record_id(description: str) -> Any:
    """Declare a record's own identifier: not personal, a valid id."""
    return not_personal(description, validator=v.identifier)


def subject_id_field(description: str) -> Any:
    """Declare the learner id a record belongs to."""
    # The learner id is a pseudonymous identifier: personal (it singles a person out) but
    # kept in clear because every record joins on it. It is masked in repr all the same.
    return personal(
        DataCategory.ACCOUNT,
        description,
        encrypted=False,
        identifier=True,
        validator=v.learner_identifier,
    )


def lawful_basis(default: LawfulBasis) -> Any:
    """Declare a record's lawful basis: ``default`` unless an instance says otherwise."""
    return not_personal(
        "Lawful basis of the processing", default=default, validator=v.instance_of(LawfulBasis)
    )


def dated(category: DataCategory, description: str, *, optional: bool = False) -> Any:
    """Declare an aware date of a record (a quasi-identifier, generalised on anonymisation);
    ``optional``: it may be ``None``, its default."""
    return not_personal(
        description,
        category=category,
        quasi_identifier=True,
        validator=v.optional_aware_datetime if optional else v.aware_datetime,
        default=None if optional else attrs.NOTHING,
    )


_CACHE: dict[type, tuple[FieldInfo, ...]] = {}


def fields_of(record: type[Any] | object) -> tuple[FieldInfo, ...]:
    """Return the :class:`FieldInfo` of every field of a record class (or instance), in order.

    Raises ``ValidationError`` when a field carries no privacy declaration: every field must
    say whether it is personal.
    """
    cls = record if isinstance(record, type) else type(record)
    cached = _CACHE.get(cls)
    if cached is not None:
        return cached
    if not attrs.has(cls):
        raise ValidationError(f"{cls.__name__} is not an attrs record class", field=cls.__name__)
    infos = []
    for attribute in attrs.fields(cls):
        meta = attribute.metadata.get(METADATA_KEY)
        if meta is None:
            raise ValidationError(
                f"{cls.__name__}.{attribute.name} has no privacy declaration "
                "(use personal(...) or not_personal(...))",
                field=f"{cls.__name__}.{attribute.name}",
            )
        infos.append(FieldInfo(name=attribute.name, **meta))
    result = tuple(infos)
    _CACHE[cls] = result
    return result
