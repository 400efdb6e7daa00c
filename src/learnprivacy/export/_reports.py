"""Recipient-scoped reports: what an employer or a funder receives, and nothing more.

The policies promise that progress shared with an employer or a funder (OPCO) is
"strictly limited to what they need". A :class:`ReportProfile` says it once: which
fields of which record types a recipient may see, and the pseudonym domain that names
learners for that recipient. The internal learner id never leaves, fields outside the
allow-list never leave, and two recipients get unrelated pseudonyms, so they cannot join
their reports on them.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any

import attrs

from learnprivacy.errors import ConfigurationError, PolicyError, UnknownCodeError
from learnprivacy.export._cells import csv_cell, flatten, json_default
from learnprivacy.export._describe import class_columns
from learnprivacy.export._files import create_text as _create
from learnprivacy.export._frames import to_dataframe
from learnprivacy.export._names import SegmentNamer
from learnprivacy.export._xapi import Pseudonyms
from learnprivacy.records import Learner, fields_of, to_json_dict
from learnprivacy.records._base import record_type, subject_of

__all__ = ["SUBJECT_COLUMN", "Report", "ReportProfile", "build_report"]

#: The column holding the recipient's pseudonym of the learner, first in every row.
SUBJECT_COLUMN = "subject"


def _allowed_columns(type_name: str, fields: Sequence[str]) -> tuple[str, ...]:
    """Check an allow-list against the record type's declarations; return its columns.

    A Score field expands to its four parts (``score.raw`` ... ``score.scaled``) unless
    the allow-list names the parts it wants.
    """
    try:
        cls = record_type(type_name)
    except UnknownCodeError:
        raise ConfigurationError("a report profile names an unknown record type") from None
    infos = {info.name: info for info in fields_of(cls)}
    # Every field and every part of a nested field, as the CSV of an export spells them.
    known = list(class_columns(cls))
    columns: list[str] = []
    for name in fields:
        base = name.partition(".")[0]
        info = infos.get(base)
        expanded = [c for c in known if c == name or c.startswith(name + ".")]
        if info is None or not expanded:
            raise ConfigurationError(f"{type_name} has no field {name!r} to report")
        if info.identifier:
            # The recipient gets its own pseudonym column instead.
            raise ConfigurationError(
                f"{type_name}.{base} identifies the learner and is never reported"
            )
        if not info.exported:
            raise ConfigurationError(f"{type_name}.{base} is declared not exportable")
        columns.extend(expanded)
    return tuple(dict.fromkeys(columns))


def _freeze_fields(value: Mapping[str, Sequence[str]]) -> Mapping[str, tuple[str, ...]]:
    if not isinstance(value, Mapping):
        raise ConfigurationError("report fields map record type names to field names")
    frozen: dict[str, tuple[str, ...]] = {}
    for type_name, names in value.items():
        if isinstance(names, str) or not isinstance(names, Sequence):
            raise ConfigurationError("report fields are given as a list of names")
        frozen[str(type_name)] = tuple(names)
    return MappingProxyType(frozen)


@attrs.frozen(kw_only=True)
class ReportProfile:
    """What one recipient may receive.

    Attributes:
        recipient: who receives the report (``"employer"``, ``"opco"``); names files.
        fields: for each record type name (``"Progress"``), the fields the recipient
            may see, in column order; a Score field may be narrowed to its parts
            (``"score.scaled"``). Identifier fields (learner ids) are refused: every row
            carries the recipient's pseudonym of the learner instead.
        pseudonym_domain: the :class:`~learnprivacy.crypto.Pseudonymiser` domain of this
            recipient; give each recipient its own so their pseudonyms are unlinkable.
        description: what the report is for, written in its JSON form.
    """

    recipient: str = attrs.field()
    fields: Mapping[str, tuple[str, ...]] = attrs.field(converter=_freeze_fields)
    pseudonym_domain: str = attrs.field()
    description: str = ""

    @recipient.validator
    def _check_recipient(self, _attribute: object, value: str) -> None:
        if not isinstance(value, str) or not value.strip():
            raise ConfigurationError("a report profile needs a recipient name")

    @pseudonym_domain.validator
    def _check_domain(self, _attribute: object, value: str) -> None:
        if not isinstance(value, str) or not value.strip():
            raise ConfigurationError("a report profile needs a pseudonym domain")

    @fields.validator
    def _check_fields(self, _attribute: object, value: Mapping[str, Sequence[str]]) -> None:
        if not value:
            raise ConfigurationError("a report profile allows at least one record type")
        for type_name, names in value.items():
            _allowed_columns(type_name, names)

    def columns(self, type_name: str) -> tuple[str, ...]:
        """The report columns of a record type: the pseudonym, then the allowed fields."""
        return (SUBJECT_COLUMN, *_allowed_columns(type_name, self.fields[type_name]))

    def check_within(self, limit: ReportProfile) -> ReportProfile:
        """Return this profile if it asks for nothing ``limit`` does not allow, else raise
        ``PolicyError`` naming the recipient and the fields beyond the limit.

        A policy declares, per recipient, the widest profile it promises (a funder gets
        administrative data only); every profile an LMS builds for that recipient is
        checked against it before a report leaves.
        """
        if self.recipient != limit.recipient:
            raise PolicyError(
                f"profile for {self.recipient!r} checked against the limit of {limit.recipient!r}"
            )
        extra: list[str] = []
        for type_name, names in self.fields.items():
            allowed = set(limit.columns(type_name)) if type_name in limit.fields else set()
            extra += [
                f"{type_name}.{column}"
                for column in _allowed_columns(type_name, names)
                if column not in allowed
            ]
        if extra:
            raise PolicyError(
                f"the policy does not let {self.recipient!r} receive " + ", ".join(extra)
            )
        return self


@attrs.frozen(kw_only=True)
class Report:
    """Rows per learner group and record type, ready to write or analyse."""

    profile: ReportProfile
    groups: Mapping[str, Mapping[str, list[dict[str, Any]]]] = attrs.field(repr=False)

    def rows(self, group: str, type_name: str) -> list[dict[str, Any]]:
        """The rows of one group and record type (empty when there are none)."""
        return list(self.groups.get(group, {}).get(type_name, []))

    def to_records(self) -> list[dict[str, Any]]:
        """Every row with its ``group`` and ``record_type``, for a notebook."""
        return [
            {"group": group, "record_type": type_name, **row}
            for group, types in self.groups.items()
            for type_name, rows in types.items()
            for row in rows
        ]

    def to_dataframe(self) -> Any:
        """:meth:`to_records` as a ``pandas.DataFrame`` (needs the ``pandas`` extra)."""
        return to_dataframe(self.to_records())

    def write(
        self, directory: str | Path, *, formats: Sequence[str] = ("csv", "json"), bom: bool = False
    ) -> list[Path]:
        """Write ``<group>/<recipient>-<RecordType>.csv`` / ``.json``; returns the paths.

        Group names become safe path segments; CSV cells are formula-injection safe.
        """
        if not set(formats) <= {"csv", "json"} or not formats:
            raise ConfigurationError("report formats are 'csv' and/or 'json'")
        root = Path(directory)
        namer = SegmentNamer(fallback="group")
        written: list[Path] = []
        for group, types in self.groups.items():
            folder = root / namer(group)
            folder.mkdir(parents=True, exist_ok=True)
            for type_name, rows in types.items():
                stem = f"{self.profile.recipient}-{type_name}"
                stem = SegmentNamer(fallback="report")(stem)
                columns = self.profile.columns(type_name)
                if "csv" in formats:
                    written.append(_write_csv(folder / f"{stem}.csv", columns, rows, bom))
                if "json" in formats:
                    written.append(self._write_json(folder / f"{stem}.json", group, type_name))
        return written

    def _write_json(self, path: Path, group: str, type_name: str) -> Path:
        document = {
            "recipient": self.profile.recipient,
            "description": self.profile.description,
            "group": group,
            "record_type": type_name,
            "columns": list(self.profile.columns(type_name)),
            "rows": self.groups[group][type_name],
        }
        with _create(path, False, newline=None) as file:
            json.dump(document, file, ensure_ascii=False, indent=1, default=json_default)
            file.write("\n")
        return path


def _write_csv(
    path: Path, columns: Sequence[str], rows: Iterable[Mapping[str, Any]], bom: bool
) -> Path:
    with _create(path, bom) as file:
        writer = csv.writer(file, lineterminator="\r\n")
        writer.writerow([csv_cell(c) for c in columns])
        for row in rows:
            writer.writerow([csv_cell(row.get(c)) for c in columns])
    return path


def _groups_from_learners(records: Sequence[Any]) -> dict[str, str]:
    return {
        r.id: r.organisation_id
        for r in records
        if isinstance(r, Learner) and r.organisation_id is not None
    }


def build_report(
    profile: ReportProfile,
    records: Iterable[Any],
    *,
    pseudonyms: Pseudonyms,
    groups: Mapping[str, str] | Callable[[str], str | None] | None = None,
) -> Report:
    """The rows ``profile.recipient`` may receive from ``records``, per learner group.

    Args:
        profile: the recipient's allow-list and pseudonym domain.
        records: learnprivacy records; types the profile does not name are ignored.
        pseudonyms: ``Pseudonymiser(key, domain=profile.pseudonym_domain)``; its domain
            must be the profile's (checked when it exposes ``domain``).
        groups: the group of each learner id, as a mapping or a function; ``None`` groups
            learners by the ``organisation_id`` of their Learner record (the employer).
            Records of learners without a group are left out: a recipient only ever
            receives the groups it is entitled to.
    """
    domain = getattr(pseudonyms, "domain", profile.pseudonym_domain)
    if domain != profile.pseudonym_domain:
        raise ConfigurationError("the pseudonymiser's domain is not the profile's")
    items = list(records)
    if groups is None:
        groups = _groups_from_learners(items)
    group_of = groups.get if isinstance(groups, Mapping) else groups
    names: dict[str, str] = {}
    out: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for record in items:
        type_name = type(record).__name__
        if type_name not in profile.fields:
            continue
        learner = subject_of(record)
        group = group_of(learner)
        if group is None:
            continue
        name = names.get(learner)
        if name is None:
            name = names[learner] = pseudonyms.pseudonym(learner)
        flat = dict(flatten(to_json_dict(record)))
        row: dict[str, Any] = {SUBJECT_COLUMN: name}
        for column in profile.columns(type_name)[1:]:
            row[column] = flat.get(column)
        out.setdefault(str(group), {}).setdefault(type_name, []).append(row)
    return Report(profile=profile, groups=out)
