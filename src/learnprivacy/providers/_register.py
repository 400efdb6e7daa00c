"""The record of processing activities (GDPR Art. 30(1)) built from providers' metadata.

The controller describes itself once (:class:`learnprivacy.Controller`); every other line of the
register comes from what the providers declare: purposes, lawful bases, data categories,
recipients (external locations) and retention. :meth:`Register.build` groups the items by
purpose into :class:`ProcessingActivity` entries and lists what is missing as ``gaps``,
so an incomplete declaration shows up in the register instead of passing unnoticed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from learnprivacy._controller import EEA_COUNTRIES, Controller, Safeguard, Transfer
from learnprivacy.basis import DataCategory, LawfulBasis
from learnprivacy.errors import ValidationError
from learnprivacy.providers._items import ExternalLocation, ItemKind, MetadataItem
from learnprivacy.providers._metadata import MetadataCollection

__all__ = [
    "ClientProcessing",
    "ProcessingActivity",
    "ProcessorRegister",
    "Register",
    "RegisterEntry",
    "purposes_option",
]

#: Purpose heading for items declared without one.
UNDECLARED_PURPOSE = "(purpose not declared)"


@attrs.frozen(kw_only=True)
class RegisterEntry:
    """One declared item of one component, as the register lists it."""

    component: str
    item: MetadataItem

    @property
    def location(self) -> str:
        """``component/name``."""
        return f"{self.component}/{self.item.name}"

    @property
    def retention_text(self) -> str:
        """``"P18M after last_activity"``, ``"P10Y"`` or ``""``."""
        if self.item.retention is None:
            return ""
        text = str(self.item.retention)
        if self.item.retention_from is not None:
            text += f" after {self.item.retention_from.value}"
        return text

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form."""
        return {"component": self.component, **self.item.to_dict()}


@attrs.frozen(kw_only=True)
class ProcessingActivity:
    """The items sharing one purpose, with their bases, categories and recipients.

    The CNIL template asks, per activity, for the categories of persons
    (``data_subjects``), the recipients (internal and external), the transfers and their
    safeguards, the security measures and the dates the sheet was created and last
    updated; :meth:`Register.build` fills them from the controller, per purpose where
    told (``subjects_by_purpose``). ``internal_only`` says the policy promises to share
    this purpose's data with nobody outside the controller.
    """

    purpose: str
    entries: tuple[RegisterEntry, ...]
    internal_only: bool = False
    data_subjects: tuple[str, ...] = ()
    transfers: tuple[Transfer, ...] = ()
    security_measures: tuple[str, ...] = ()
    created_on: dt.date | None = None
    updated_on: dt.date | None = None

    @property
    def bases(self) -> tuple[LawfulBasis, ...]:
        """The lawful bases declared for this purpose, in Art. 6(1) order."""
        found = {e.item.basis for e in self.entries if e.item.basis is not None}
        return tuple(b for b in LawfulBasis if b in found)

    @property
    def categories(self) -> tuple[DataCategory, ...]:
        """The data categories involved, in declaration order."""
        seen: dict[DataCategory, None] = {}
        for entry in self.entries:
            seen.update(dict.fromkeys(entry.item.categories))
        return tuple(seen)

    @property
    def recipients(self) -> tuple[str, ...]:
        """Who receives data for this purpose (the external locations' recipients)."""
        seen: dict[str, None] = {}
        for entry in self.entries:
            if isinstance(entry.item, ExternalLocation):
                seen[entry.item.recipient or entry.item.name] = None
        return tuple(seen)

    @property
    def internal_recipients(self) -> tuple[str, ...]:
        """The recipients inside the controller (``ExternalLocation.internal``)."""
        return self._recipients(internal=True)

    @property
    def external_recipients(self) -> tuple[str, ...]:
        """The recipients outside the controller: third parties."""
        return self._recipients(internal=False)

    def _recipients(self, *, internal: bool) -> tuple[str, ...]:
        seen: dict[str, None] = {}
        for entry in self.entries:
            item = entry.item
            if isinstance(item, ExternalLocation) and item.internal is internal:
                seen[item.recipient or item.name] = None
        return tuple(seen)

    @property
    def retention(self) -> tuple[str, ...]:
        """The distinct retention statements of the entries."""
        return tuple(dict.fromkeys(e.retention_text for e in self.entries if e.retention_text))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form."""
        return {
            "purpose": self.purpose,
            "bases": [b.moodle_code for b in self.bases],
            "categories": [c.value for c in self.categories],
            "recipients": list(self.recipients),
            "internal_recipients": list(self.internal_recipients),
            "internal_only": self.internal_only,
            "retention": list(self.retention),
            "entries": [e.location for e in self.entries],
            "data_subjects": list(self.data_subjects),
            "transfers": [_transfer_dict(t) for t in self.transfers],
            "security_measures": list(self.security_measures),
            "created_on": self.created_on.isoformat() if self.created_on else None,
            "updated_on": self.updated_on.isoformat() if self.updated_on else None,
        }


#: The help of the Django command's ``--internal-only`` (the command-line tool says the
#: same, without importing this module at start-up).
INTERNAL_ONLY_HELP = (
    "A purpose whose data go to nobody outside the controller. Repeat the option, or "
    "separate purposes with commas; write a purpose whose name contains a comma in "
    "double quotes, as in CSV: --internal-only '\"billing, invoices\", forum'."
)


def purposes_option(values: Iterable[str]) -> list[str]:
    """The purposes named by a repeatable, comma-separated ``--internal-only`` option.

    ``["billing, forum", "accounts"]`` gives ``["billing", "forum", "accounts"]``. Each
    value is read as one line of CSV: a name that contains a comma is written in double
    quotes (``'"billing, invoices", forum'`` gives ``["billing, invoices", "forum"]``),
    and a double quote inside a quoted name is doubled. Spaces around each name are
    dropped. An empty name (``"billing,"``) is a typing error, not a promise about
    nothing, and so is a quote left open: both raise
    :class:`~learnprivacy.errors.ValidationError`. The command-line tool and the Django
    command both read the option through this one rule.
    """
    import csv

    purposes: list[str] = []
    for item in values:
        try:
            rows = list(csv.reader([item], skipinitialspace=True, strict=True))
        except csv.Error:
            rows = []
        named = [p.strip() for p in rows[0]] if len(rows) == 1 else []
        if not named or not all(named):
            raise ValidationError(
                "--internal-only needs purpose names (comma-separated; a name with a "
                'comma in double quotes: "billing, invoices")',
                field="internal_only",
            )
        purposes += named
    return purposes


def _recipient_gaps(
    activities: Iterable[ProcessingActivity], internal_only: Iterable[str]
) -> list[str]:
    """What the register cannot state truthfully about recipients.

    A purpose the policy shares internally only may have internal recipients, never an
    external one; a purpose with no recipient at all and no such promise leaves the
    recipients undeclared (the register says "not declared", not "internal only").
    """
    gaps: list[str] = []
    purposes = {a.purpose for a in activities}
    for activity in activities:
        if activity.internal_only:
            gaps.extend(
                f"{activity.purpose}: promised to be shared internally only, but "
                f"{recipient} is an external recipient"
                for recipient in activity.external_recipients
            )
        elif not activity.recipients:
            gaps.append(
                f"{activity.purpose}: no recipient declared "
                "(declare the recipients, or that the data is shared internally only)"
            )
    gaps.extend(
        f"{purpose}: declared shared internally only, but no activity has that purpose"
        for purpose in internal_only
        if purpose not in purposes
    )
    return gaps


def _gaps(controller: Controller, entries: Iterable[RegisterEntry]) -> list[str]:
    gaps: list[str] = []
    countries: list[tuple[str, str | None]] = []
    for entry in entries:
        item = entry.item
        if item.purpose is None:
            gaps.append(f"{entry.location}: no purpose declared")
        if item.basis is None:
            gaps.append(f"{entry.location}: no lawful basis declared")
        if item.kind is ItemKind.DATABASE_TABLE and item.retention is None:
            gaps.append(f"{entry.location}: no retention period declared")
        if not item.categories:
            gaps.append(f"{entry.location}: no data category declared")
        if isinstance(item, ExternalLocation):
            countries.append((entry.location, item.country))
    if controller.hosting is not None:
        countries.append(("hosting", controller.hosting.country))
    countries.extend((f"sub-processor {s.name}", s.country) for s in controller.sub_processors)
    covered = {t.country for t in controller.transfers if t.safeguard is not Safeguard.NONE}
    for where, country in countries:
        # Only ISO codes can be checked against the EEA list; free text is left to people.
        if country and len(country) == 2 and country not in EEA_COUNTRIES | covered:
            gaps.append(f"{where}: data processed in {country} without a declared transfer")
    gaps.extend(
        f"transfer to {t.recipient} ({t.country}): no safeguard"
        for t in controller.transfers
        if t.safeguard is Safeguard.NONE
    )
    return gaps


def _transfer_dict(transfer: Transfer) -> dict[str, Any]:
    return {
        "recipient": transfer.recipient,
        "country": transfer.country,
        "safeguard": transfer.safeguard.value,
        "article": transfer.safeguard.article,
        "details": transfer.details,
    }


def _controller_dict(controller: Controller) -> dict[str, Any]:
    hosting = controller.hosting
    return {
        "name": controller.name,
        "address": controller.address,
        "contact": controller.contact,
        "dpo": controller.dpo,
        "representative": controller.representative,
        "hosting": attrs.asdict(hosting) if hosting else None,
        "sub_processors": [attrs.asdict(s) for s in controller.sub_processors],
        "transfers": [
            {
                "recipient": t.recipient,
                "country": t.country,
                "safeguard": t.safeguard.value,
                "article": t.safeguard.article,
                "details": t.details,
            }
            for t in controller.transfers
        ],
        "data_subjects": list(controller.data_subjects),
        "security_measures": list(controller.security_measures),
    }


@attrs.frozen(kw_only=True)
class Register:
    """A record of processing activities; render it with ``to_markdown``, ``to_html``,
    ``to_csv`` or ``to_json``.

    ``null_components`` lists the components declaring they store nothing personal, with
    their reason; ``gaps`` what the declarations leave out (purpose, basis, retention,
    transfer safeguards).
    """

    controller: Controller
    activities: tuple[ProcessingActivity, ...]
    entries: tuple[RegisterEntry, ...]
    null_components: tuple[tuple[str, str], ...] = ()
    gaps: tuple[str, ...] = ()
    as_of: dt.date | None = None

    @classmethod
    def build(
        cls,
        controller: Controller,
        metadata: Mapping[str, MetadataCollection] | Iterable[MetadataCollection],
        *,
        null_reasons: Mapping[str, str] | None = None,
        as_of: dt.date | None = None,
        subjects_by_purpose: Mapping[str, Iterable[str]] | None = None,
        created_on: dt.date | None = None,
        updated_on: dt.date | None = None,
        internal_only: Iterable[str] = (),
    ) -> Register:
        """Build the register from metadata collections (a manager's ``get_metadata()``).

        Each activity lists the controller's data subjects unless ``subjects_by_purpose``
        names those of its purpose, the controller's transfers and security measures, and
        the sheet's ``created_on`` / ``updated_on`` dates (``updated_on`` defaults to
        ``as_of``). ``internal_only`` names the purposes whose data the policy promises
        to share with nobody outside the controller: an external recipient declared for
        one of them is a gap, an internal one is not; ``controller.internal_only`` is
        added to it. A purpose with no recipient and no such promise is a gap too: the
        register does not say "internal only" for it.
        """
        internal = () if isinstance(internal_only, str) else tuple(dict.fromkeys(internal_only))
        if isinstance(internal_only, str) or not all(isinstance(p, str) and p for p in internal):
            raise ValidationError(
                "internal_only must be purpose names (a list of str)", field="internal_only"
            )
        # The controller's own declaration counts too (integrations build the register
        # from the controller alone).
        internal = tuple(dict.fromkeys((*internal, *controller.internal_only)))
        collections = metadata.values() if isinstance(metadata, Mapping) else metadata
        entries = tuple(
            RegisterEntry(component=collection.component, item=item)
            for collection in collections
            for item in collection
        )
        by_purpose: dict[str, list[RegisterEntry]] = {}
        for entry in entries:
            by_purpose.setdefault(entry.item.purpose or UNDECLARED_PURPOSE, []).append(entry)
        subjects = {k: tuple(v) for k, v in (subjects_by_purpose or {}).items()}
        activities = tuple(
            ProcessingActivity(
                purpose=purpose,
                entries=tuple(group),
                internal_only=purpose in internal,
                data_subjects=subjects.get(purpose, controller.data_subjects),
                transfers=controller.transfers,
                security_measures=controller.security_measures,
                created_on=created_on,
                updated_on=updated_on if updated_on is not None else as_of,
            )
            for purpose, group in by_purpose.items()
        )
        return cls(
            controller=controller,
            activities=activities,
            entries=entries,
            null_components=tuple(sorted((null_reasons or {}).items())),
            gaps=tuple(_gaps(controller, entries) + _recipient_gaps(activities, internal)),
            as_of=as_of,
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form of the whole register."""
        return {
            "controller": _controller_dict(self.controller),
            "as_of": self.as_of.isoformat() if self.as_of else None,
            "activities": [a.to_dict() for a in self.activities],
            "entries": [e.to_dict() for e in self.entries],
            "null_components": [{"component": c, "reason": r} for c, r in self.null_components],
            "gaps": list(self.gaps),
        }

    def to_json(self) -> str:
        """The register as indented JSON (UTF-8 text, keys in a stable order)."""
        from learnprivacy.providers._render import render_json

        return render_json(self)

    def to_markdown(self, *, language: str = "en") -> str:
        """The register as a Markdown document (cells escaped); headings in ``language``
        (``"en"`` or ``"fr"``), declared values as written."""
        from learnprivacy.providers._render import render_markdown

        return render_markdown(self, language=language)

    def to_html(self, *, language: str = "en") -> str:
        """The register as one self-contained HTML page (every value escaped); headings in
        ``language``."""
        from learnprivacy.providers._render import render_html

        return render_html(self, language=language)

    def to_csv(self) -> str:
        """One row per declared item; cells that a spreadsheet would run as a formula are
        prefixed with ``'``."""
        from learnprivacy.providers._render import render_csv

        return render_csv(self)


@attrs.frozen(kw_only=True)
class ClientProcessing:
    """What a processor does for one controller (GDPR Art. 30(2)(a), (b)).

    ``controller`` and ``contact`` name the client; ``processing`` the categories of
    processing carried out for it (hosting the LMS, running its platform...);
    ``categories`` the kinds of personal data involved.
    """

    controller: str = attrs.field(validator=attrs.validators.min_len(1))
    contact: str = attrs.field(validator=attrs.validators.min_len(1))
    processing: tuple[str, ...] = attrs.field(converter=tuple)
    categories: tuple[DataCategory, ...] = attrs.field(default=(), converter=tuple)
    representative: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form."""
        return {
            "controller": self.controller,
            "contact": self.contact,
            "processing": list(self.processing),
            "categories": [c.value for c in self.categories],
            "representative": self.representative,
        }


@attrs.frozen(kw_only=True)
class ProcessorRegister:
    """The record a processor keeps of the processing it carries out for its clients
    (GDPR Art. 30(2)): its own name and contact (and DPO), for each client controller the
    categories of processing, transfers to third countries with their safeguards, and its
    security measures (``processor`` is described once, as a :class:`Controller`).

    ``gaps`` lists what the record leaves out (no client, no processing declared,
    processing outside the EEA without a transfer).
    """

    processor: Controller
    clients: tuple[ClientProcessing, ...] = attrs.field(converter=tuple)
    as_of: dt.date | None = None

    @property
    def gaps(self) -> tuple[str, ...]:
        """What the record leaves out."""
        gaps: list[str] = []
        if not self.clients:
            gaps.append("no client controller declared")
        gaps.extend(
            f"client {c.controller}: no category of processing declared"
            for c in self.clients
            if not c.processing
        )
        covered = {t.country for t in self.processor.transfers}
        places: list[tuple[str, str | None]] = []
        if self.processor.hosting is not None:
            places.append(("hosting", self.processor.hosting.country))
        places += [(f"sub-processor {s.name}", s.country) for s in self.processor.sub_processors]
        gaps.extend(
            f"{where}: data processed in {country} without a declared transfer"
            for where, country in places
            if country and len(country) == 2 and country not in EEA_COUNTRIES | covered
        )
        if not self.processor.security_measures:
            gaps.append("no security measure declared (Art. 30(2)(d), 32(1))")
        return tuple(gaps)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form (the processor as the controller register shows one)."""
        return {
            "processor": _controller_dict(self.processor),
            "as_of": self.as_of.isoformat() if self.as_of else None,
            "clients": [c.to_dict() for c in self.clients],
            "transfers": [_transfer_dict(t) for t in self.processor.transfers],
            "security_measures": list(self.processor.security_measures),
            "gaps": list(self.gaps),
        }
