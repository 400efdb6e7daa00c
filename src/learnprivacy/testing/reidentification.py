"""A re-identification check for anonymised data: run it on what you keep or publish.

Anonymised data is anonymous only if nobody holding other data about the learners can
single one of them out again. :func:`reidentification_risks` plays three attacks that
worked on real "anonymised" exports, with ``known`` as the attacker's identified data (a
backup, a log, an earlier export):

- **linking by id**: an anonymised value equals an id of the known data, or contains a
  learner id (``L00001-P1`` names ``L00001``);
- **linking by exact timestamp**: an anonymised date equals, to the second, a date that
  only one learner has in the known data;
- **rare combination**: a combination of quasi-identifiers (the fields declared
  ``quasi_identifier=True``, or those you name) shared by fewer than ``k`` people of the
  anonymised data.

>>> from learnprivacy.testing.reidentification import assert_not_reidentifiable
>>> assert_not_reidentifiable(store.anonymised(Progress), known, record_type=Progress)
... # doctest: +SKIP

Risks name fields and counts, never values: the report can go in a CI log. Passing the
check is evidence, not proof: an attacker with other data may still link rows.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypedDict, Unpack

import attrs

from learnprivacy.errors import ConfigurationError
from learnprivacy.records import fields_of

__all__ = ["assert_not_reidentifiable", "reidentification_risks"]

_ID_FIELDS = ("id", "learner_id")
# Shorter learner ids would be found inside unrelated strings by chance.
_MIN_ID_LENGTH = 3


@attrs.frozen(kw_only=True)
class ReidentificationRisk:
    """One way the anonymised rows can be linked back to people (no value in it).

    ``attack`` is ``"id"``, ``"timestamp"`` or ``"combination"``; ``fields`` the fields
    involved; ``rows`` how many anonymised rows it exposes.
    """

    attack: str
    fields: tuple[str, ...]
    rows: int

    def __str__(self) -> str:
        what = {
            "id": "carry an id of the known data",
            "timestamp": "carry an exact date that only one known learner has",
            "combination": "hold a quasi-identifier combination shared by too few people",
        }[self.attack]
        return f"{self.rows} row(s) {what} ({', '.join(self.fields)})"


def _as_mapping(item: Any) -> Mapping[str, Any]:
    if isinstance(item, Mapping):
        return item
    if attrs.has(type(item)):
        return {a.name: getattr(item, a.name) for a in attrs.fields(type(item))}
    raise ConfigurationError("the check takes records or mappings")


def _person(row: Mapping[str, Any], record: Any) -> Any:
    owner = row.get("learner_id")
    if owner is None and not isinstance(record, Mapping):
        owner = row.get("id")
    return owner


def _instant(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return ("datetime", value.astimezone(dt.UTC) if value.tzinfo else value)
    if isinstance(value, dt.date):
        return ("date", value)
    return None


class RiskOptions(TypedDict, total=False):
    """The keywords of :func:`reidentification_risks`, which
    :func:`assert_not_reidentifiable` takes too."""

    record_type: type[Any] | None
    quasi_identifiers: Sequence[str] | None
    k: int
    person_field: str


def reidentification_risks(
    anonymised: Iterable[Any],
    known: Iterable[Any],
    *,
    record_type: type[Any] | None = None,
    quasi_identifiers: Sequence[str] | None = None,
    k: int = 2,
    person_field: str = "learner_id",
) -> tuple[ReidentificationRisk, ...]:
    """The ways ``anonymised`` rows can be linked to the people of ``known``.

    Args:
        anonymised: the rows kept or published (mappings, e.g. :meth:`Store.anonymised`,
            or records).
        known: identified data an attacker may hold (records or mappings).
        record_type: the record class of the rows; its ``quasi_identifier`` fields are
            checked for rare combinations unless ``quasi_identifiers`` names them.
        k: the fewest people a quasi-identifier combination must cover.
        person_field: the anonymised rows' column standing for a person.

    An empty result means none of the three attacks links a row.
    """
    if isinstance(k, bool) or not isinstance(k, int) or k < 2:
        raise ConfigurationError("k must be an integer of at least 2")
    if quasi_identifiers is None:
        if record_type is None:
            raise ConfigurationError("name the record_type or the quasi_identifiers")
        quasi = tuple(f.name for f in fields_of(record_type) if f.quasi_identifier)
    else:
        quasi = tuple(quasi_identifiers)
    ids: set[str] = set()
    learners: set[str] = set()
    owners_at: dict[Any, set[Any]] = {}
    for item in known:
        row = _as_mapping(item)
        owner = _person(row, item)
        if isinstance(owner, str):
            learners.add(owner)
        for name in _ID_FIELDS:
            if isinstance(row.get(name), str):
                ids.add(row[name])
        for value in row.values():
            instant = _instant(value)
            if instant is not None:
                owners_at.setdefault(instant, set()).add(owner)
    long_ids = [i for i in learners if len(i) >= _MIN_ID_LENGTH]
    by_id: dict[str, int] = {}
    by_time: dict[str, int] = {}
    combinations: dict[tuple[Any, ...], set[Any]] = {}
    rows_of: dict[tuple[Any, ...], int] = {}
    for index, item in enumerate(anonymised):
        row = _as_mapping(item)
        for name, value in row.items():
            if isinstance(value, str) and (
                value in ids or any(learner in value for learner in long_ids)
            ):
                by_id[name] = by_id.get(name, 0) + 1
            instant = _instant(value)
            if instant is not None and len(owners_at.get(instant, ())) == 1:
                by_time[name] = by_time.get(name, 0) + 1
        if quasi:
            key = tuple(repr(row.get(name)) for name in quasi)
            person = row.get(person_field)
            combinations.setdefault(key, set()).add(
                person if person is not None else ("row", index)
            )
            rows_of[key] = rows_of.get(key, 0) + 1
    risks = [
        ReidentificationRisk(attack="id", fields=(name,), rows=count)
        for name, count in sorted(by_id.items())
    ]
    risks += [
        ReidentificationRisk(attack="timestamp", fields=(name,), rows=count)
        for name, count in sorted(by_time.items())
    ]
    rare = sum(rows_of[key] for key, people in combinations.items() if len(people) < k)
    if rare:
        risks.append(ReidentificationRisk(attack="combination", fields=quasi, rows=rare))
    return tuple(risks)


def assert_not_reidentifiable(
    anonymised: Iterable[Any], known: Iterable[Any], **options: Unpack[RiskOptions]
) -> None:
    """Raise ``AssertionError`` listing every risk :func:`reidentification_risks` finds
    (the same ``options``)."""
    risks = reidentification_risks(anonymised, known, **options)
    if risks:
        raise AssertionError(
            "anonymised data can be re-identified: " + "; ".join(str(r) for r in risks)
        )
