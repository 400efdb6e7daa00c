"""What the package says about each kind of data: purpose, lawful basis, retention, fields.

A description comes from the provider (``writer.describe``), from the component's
metadata (``get_metadata``: declared before any export), or, for learnprivacy records
nobody described, from the record class itself. The first is completed by the others.
"""

from __future__ import annotations

import re
import typing
from typing import Any

import attrs

from learnprivacy.basis import LawfulBasis
from learnprivacy.errors import LearnPrivacyError
from learnprivacy.providers.writer import DataDescription
from learnprivacy.records import Score, fields_of
from learnprivacy.records._base import default_basis

__all__ = [
    "class_basis",
    "class_columns",
    "class_description",
    "descriptions_from_metadata",
    "human_retention",
    "merge_descriptions",
]

_PERIOD = re.compile(r"^P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?$")
_UNITS = ("year", "month", "week", "day")


def class_columns(cls: type[Any]) -> dict[str, bool]:
    """CSV columns of a record class, in field order, a Score spread over four columns."""
    hints = typing.get_type_hints(cls)
    exported = {f.name for f in fields_of(cls) if f.exported}
    columns: dict[str, bool] = {}
    for attribute in attrs.fields(cls):
        if attribute.name not in exported:
            continue
        hint = hints.get(attribute.name)
        if hint is Score or Score in typing.get_args(hint):
            for part in ("raw", "min", "max", "scaled"):
                columns[f"{attribute.name}.{part}"] = False
        else:
            columns[attribute.name] = False
    return columns


def class_basis(cls: type[Any]) -> LawfulBasis | None:
    """The lawful basis a record class declares by default, if any."""
    try:
        return default_basis(cls)
    except TypeError:
        return None


def class_description(component: str, cls: type[Any]) -> DataDescription:
    """What a record class says about itself when its provider did not describe it."""
    doc = (cls.__doc__ or cls.__name__).strip().splitlines()[0]
    return DataDescription(
        component=component,
        record_type=cls.__name__,
        description=doc,
        purpose=str(getattr(cls, "processing_purpose", "")),
        basis=class_basis(cls),
        retention=None,
        fields={f.name: f.description for f in fields_of(cls) if f.exported},
    )


def human_retention(period: object, trigger: object) -> str | None:
    """``"18 months (P18M) from last activity"`` from a Period and a Trigger."""
    if period is None:
        return None
    text = str(period)
    match = _PERIOD.match(text)
    words = text
    if match is not None and any(match.groups()):
        parts = [
            f"{int(n)} {unit}{'s' if int(n) != 1 else ''}"
            for n, unit in zip(match.groups(), _UNITS, strict=True)
            if n and int(n)
        ]
        words = " ".join(parts) + f" ({text})" if parts else text
    anchor = getattr(trigger, "value", None)
    return f"{words} from {str(anchor).replace('_', ' ')}" if anchor else words


def merge_descriptions(
    given: DataDescription | None, known: DataDescription | None
) -> DataDescription | None:
    """``given`` (the provider's) with its empty attributes taken from ``known``.

    A retention the provider states as a bare ISO 8601 period (``"P18M"``) gives way to
    the metadata's wording of the same period (``"18 months (P18M) from last activity"``).
    """
    if given is None or known is None:
        return given or known
    retention = given.retention or known.retention
    if (
        given.retention
        and known.retention
        and _PERIOD.match(given.retention)
        and f"({given.retention})" in known.retention
    ):
        retention = known.retention
    return attrs.evolve(
        given,
        description=given.description or known.description,
        purpose=given.purpose or known.purpose,
        basis=given.basis or known.basis,
        retention=retention,
        fields=given.fields or known.fields,
    )


def descriptions_from_metadata(manager: Any) -> list[DataDescription]:
    """What each component declares about its tables, as export descriptions.

    Used to complete what providers say while exporting (purpose, lawful basis,
    retention, field meanings). A component whose metadata cannot be read is skipped:
    metadata only enriches the package, the export itself still runs that provider.
    """
    out: list[DataDescription] = []
    getter = getattr(manager, "get_metadata_for", None)
    components = getattr(manager, "components", ())
    if getter is None:
        return out
    for component in components:
        try:
            collection = getter(component)
        except LearnPrivacyError:
            continue
        seen: set[str] = set()
        for item in collection:
            fields = getattr(item, "fields", None)
            if fields is None or item.name in seen:
                continue
            seen.add(item.name)
            out.append(
                DataDescription(
                    component=component,
                    record_type=item.name,
                    description=item.summary,
                    purpose=item.purpose or "",
                    basis=item.basis,
                    retention=human_retention(item.retention, item.retention_from),
                    fields=dict(fields),
                )
            )
    return out
