"""index.html: the page a learner opens first, in their language and time zone.

It says who holds the data (the controller and its DPO), what each kind of data is for,
on what lawful basis and for how long, the learner's rights and how to exercise them, and
where to complain (the CNIL in France, the APD/GBA in Belgium). Written from the Jinja2
template ``learner_page.html`` (autoescaped: every value is escaped) with Babel's dates,
numbers and plurals. No script, no external asset: the styles are inline and a
Content-Security-Policy forbids loading anything else; links are relative to the package.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import attrs

from learnprivacy._documents import N_
from learnprivacy.export._scope import Scope
from learnprivacy.providers.writer import DataDescription

if TYPE_CHECKING:
    from learnprivacy._controller import Controller
    from learnprivacy._documents import Renderer

__all__ = ["PageOptions", "TypeSummary", "render_index"]

_CELL_LIMIT = 200
# "18 months (P18M) from last activity", as export._describe.human_retention writes it.
_RETENTION = re.compile(
    r"^(?:[0-9]+ [a-z]+ ?)+\((?P<iso>P(?:[0-9]+Y)?(?:[0-9]+M)?(?:[0-9]+W)?(?:[0-9]+D)?)\)"
    r"(?: from (?P<anchor>[a-z ]+))?$"
)
# "P18M after last_activity", as the register's entries write it, or a bare "P18M".
_RETENTION_ISO = re.compile(
    r"^(?P<iso>P(?:[0-9]+Y)?(?:[0-9]+M)?(?:[0-9]+W)?(?:[0-9]+D)?)(?: after (?P<anchor>[a-z_]+))?$"
)
_ISO_PARTS = re.compile(
    r"P(?:(?P<Y>[0-9]+)Y)?(?:(?P<M>[0-9]+)M)?(?:(?P<W>[0-9]+)W)?(?:(?P<D>[0-9]+)D)?$"
)
_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?([+-]\d{2}:\d{2}|Z)$")


@attrs.frozen(kw_only=True)
class PageOptions:
    """Who the page speaks for, and the reader's language and time zone.

    ``controller`` is the :class:`~learnprivacy.Controller` (its ``dpo`` is the DPO's
    name and address, its ``authority`` where complaints go). Without it the page says the
    controller did not state them, rather than invent one.
    """

    controller: Controller | None = None
    language: str = "en"
    timezone: str = "UTC"


@attrs.frozen(kw_only=True)
class TypeSummary:
    """One kind of data as the page shows it."""

    component: str
    record_type: str
    description: DataDescription | None
    records: int
    excluded: int
    links: list[tuple[str, str]]
    preview: list[dict[str, Any]]
    columns: list[str]


def _basis(fmt: Renderer, description: DataDescription | None) -> str:
    if description is None or description.basis is None:
        return fmt.gettext("not stated")
    basis = description.basis
    return fmt.gettext(
        "%(basis)s (GDPR %(article)s)",
        basis=fmt.gettext(_BASIS_LABELS[basis.name]),
        article=basis.article,
    )


_BASIS_LABELS = {
    "CONSENT": N_("consent"),
    "CONTRACT": N_("contract"),
    "LEGAL_OBLIGATION": N_("legal obligation"),
    "VITAL_INTERESTS": N_("vital interests"),
    "PUBLIC_TASK": N_("public task"),
    "LEGITIMATE_INTERESTS": N_("legitimate interests"),
}
_ANCHORS = {
    "created": N_("creation"),
    "last activity": N_("last activity"),
    "contract end": N_("contract end"),
    "issued": N_("issue"),
    "fiscal year end": N_("fiscal year end"),
    "consent given": N_("consent given"),
    "withdrawn": N_("withdrawal"),
    "closed": N_("closing of the file"),
}
_KINDS = {
    "Learner": N_("Account"),
    "Progress": N_("Progress"),
    "Certificate": N_("Certificates"),
    "Invoice": N_("Invoices"),
    "Consent": N_("Consents"),
    "Funding": N_("Funding files"),
    "AccessEvent": N_("Connection log"),
}


def _period(fmt: Renderer, iso: str) -> str:
    match = _ISO_PARTS.match(iso)
    if match is None:
        return iso
    n = {key: int(value or 0) for key, value in match.groupdict().items()}
    parts = []
    # One call per unit, with literal messages, so the catalogue extraction finds them.
    if n["Y"]:
        parts.append(fmt.ngettext("%(num)s year", "%(num)s years", n["Y"]))
    if n["M"]:
        parts.append(fmt.ngettext("%(num)s month", "%(num)s months", n["M"]))
    if n["W"]:
        parts.append(fmt.ngettext("%(num)s week", "%(num)s weeks", n["W"]))
    if n["D"]:
        parts.append(fmt.ngettext("%(num)s day", "%(num)s days", n["D"]))
    return " ".join(parts) or iso


def _retention(fmt: Renderer, description: DataDescription | None) -> str:
    if description is None or not description.retention:
        return fmt.gettext("not stated")
    text = description.retention
    match = _RETENTION.match(text) or _RETENTION_ISO.match(text)
    if match is None or match["iso"] == "P":
        # Free text from a provider, shown as written.
        return text
    period = _period(fmt, match["iso"])
    anchor = match["anchor"].replace("_", " ") if match["anchor"] else None
    if not anchor:
        return f"{period} ({match['iso']})"
    return fmt.gettext(
        "%(period)s (%(iso)s) from %(anchor)s",
        period=period,
        iso=match["iso"],
        anchor=fmt.gettext(_ANCHORS.get(anchor, anchor)),
    )


def _cell(fmt: Renderer, value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return fmt.gettext("yes") if value else fmt.gettext("no")
    text = str(value)
    if _DATETIME.match(text):
        # Timestamps are stored in UTC with microseconds; the learner reads their own
        # time zone, to the minute.
        try:
            moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            return text
        return fmt.datetime(moment, format="medium")
    if len(text) > _CELL_LIMIT:
        text = text[:_CELL_LIMIT] + "…"
    return text


def _summary(fmt: Renderer, index: int, s: TypeSummary) -> dict[str, Any]:
    d = s.description
    return {
        "anchor": f"type-{index}",
        "kind": fmt.gettext(_KINDS[s.record_type]) if s.record_type in _KINDS else s.record_type,
        "record_type": s.record_type,
        "component": s.component,
        "description": d.description if d is not None else "",
        "purpose": d.purpose if d is not None and d.purpose else fmt.gettext("not stated"),
        "basis": _basis(fmt, d),
        "retention": _retention(fmt, d),
        "records": s.records,
        "excluded": s.excluded,
        "links": s.links,
        "fields": list(d.fields.items()) if d is not None else [],
        "columns": s.columns,
        "rows": [[_cell(fmt, row.get(c)) for c in s.columns] for row in s.preview],
        "all_shown": len(s.preview) == s.records,
    }


def render_index(
    *,
    generated_at: dt.datetime,
    scope: Scope,
    subject_reference: str,
    summaries: Sequence[TypeSummary],
    files: Sequence[tuple[str, int | None]],
    page: PageOptions | None = None,
) -> str:
    """The whole page as text."""
    from learnprivacy._documents import renderer

    options = page or PageOptions()
    fmt = renderer(options.language, options.timezone)
    controller = options.controller
    return fmt.render(
        "learner_page.html",
        portability=scope is Scope.PORTABILITY,
        scope=scope.value,
        scope_label=fmt.gettext("portability")
        if scope is Scope.PORTABILITY
        else fmt.gettext("access"),
        generated_at=fmt.datetime(generated_at),
        reference=subject_reference,
        controller=controller,
        dpo=controller.dpo if controller is not None else None,
        authority=controller.authority if controller is not None else None,
        summaries=[_summary(fmt, i, s) for i, s in enumerate(summaries)],
        files=list(files),
    )
