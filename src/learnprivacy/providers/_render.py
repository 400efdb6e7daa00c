"""Render a :class:`Register` as Markdown, self-contained HTML, CSV and JSON.

Markdown and HTML are written from the Jinja2 templates ``register.md`` and
``register.html`` of :mod:`learnprivacy._documents` (headings in the message catalogue).
Every value comes from declarations written by people, so every value is escaped for the
target format: Markdown table cells (the ``mdcell`` filter), HTML text and attributes
(autoescape), and CSV cells that a spreadsheet would otherwise evaluate as a formula.
"""

from __future__ import annotations

import csv
import io
import json
from typing import TYPE_CHECKING, Any

from learnprivacy._documents import N_
from learnprivacy.basis import LawfulBasis
from learnprivacy.providers._items import ExternalLocation

if TYPE_CHECKING:
    from learnprivacy._controller import Controller, Safeguard
    from learnprivacy._documents import Renderer
    from learnprivacy.providers._register import Register, RegisterEntry

__all__ = ["csv_safe", "render_csv", "render_html", "render_json", "render_markdown"]


TITLE = N_("Record of processing activities (GDPR Art. 30)")

# A spreadsheet evaluates a cell starting with one of these as a formula (CSV injection).
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")

CSV_COLUMNS = (
    "component",
    "kind",
    "name",
    "summary",
    "purpose",
    "lawful_basis",
    "moodle_code",
    "categories",
    "fields",
    "recipient",
    "country",
    "retention",
)


def csv_safe(value: str) -> str:
    """``value`` prefixed with ``'`` when a spreadsheet would run it as a formula."""
    return "'" + value if value.startswith(_FORMULA_STARTS) else value


def basis_label(basis: LawfulBasis | None) -> str:
    """``"Art. 6(1)(b) contract"``, or ``""``."""
    if basis is None:
        return ""
    return f"{basis.article} {basis.name.lower().replace('_', ' ')}"


def _safeguard(safeguard: Safeguard) -> str:
    if safeguard.article:
        return f"{safeguard.label} ({safeguard.article})"
    return safeguard.label


def _controller_rows(controller: Controller) -> list[tuple[str, str]]:
    rows = [
        (N_("Name"), controller.name),
        (N_("Address"), controller.address),
        (N_("Contact"), controller.contact),
        (N_("Data protection officer"), controller.dpo or "not designated"),
    ]
    if controller.representative:
        rows.append((N_("Representative in the EU"), controller.representative))
    if controller.hosting is not None:
        hosting = controller.hosting
        text = f"{hosting.provider} ({hosting.country})"
        rows.append((N_("Hosting"), text + (f": {hosting.details}" if hosting.details else "")))
    rows.append((N_("Data subjects"), ", ".join(controller.data_subjects)))
    return rows


def _entry_row(entry: RegisterEntry) -> list[str]:
    item = entry.item
    recipient = country = ""
    if isinstance(item, ExternalLocation):
        recipient = item.recipient or item.name
        country = item.country or ""
    return [
        entry.component,
        item.kind.value,
        item.name,
        item.summary,
        item.purpose or "",
        basis_label(item.basis),
        item.basis.moodle_code if item.basis else "",
        ", ".join(c.value for c in item.categories),
        ", ".join(item.field_names),
        recipient,
        country,
        entry.retention_text,
    ]


# -- Markdown and HTML: the templates register.md and register.html ---------------------


def _view(register: Register, fmt: Renderer) -> dict[str, Any]:
    """What the templates show, as plain values (the templates escape them)."""
    controller = register.controller
    activities = []
    for number, activity in enumerate(register.activities, start=1):
        activities.append(
            {
                "number": number,
                "purpose": activity.purpose,
                # Markdown shows the Moodle code as code; HTML in parentheses.
                "bases_md": ", ".join(
                    f"{basis_label(b)} (`{b.moodle_code}`)" for b in activity.bases
                ),
                "bases_text": ", ".join(
                    f"{basis_label(b)} ({b.moodle_code})" for b in activity.bases
                ),
                "categories": ", ".join(c.value.replace("_", " ") for c in activity.categories),
                # Internal recipients are marked so: they are no third party.
                "recipients": "; ".join(
                    fmt.gettext("%(name)s (internal)") % {"name": name}
                    if name in activity.internal_recipients
                    else name
                    for name in activity.recipients
                ),
                "internal_only": activity.internal_only,
                "retention": "; ".join(activity.retention),
                # The CNIL sheet's per-activity fields: who the data is about, and when
                # the sheet was created and last updated.
                "data_subjects": ", ".join(activity.data_subjects or controller.data_subjects),
                "created_on": activity.created_on.isoformat() if activity.created_on else None,
                "updated_on": activity.updated_on.isoformat() if activity.updated_on else None,
                "rows": [
                    (
                        e.component,
                        e.item.kind.value.replace("_", " "),
                        e.item.name,
                        e.item.summary,
                        ", ".join(e.item.field_names),
                        e.retention_text,
                    )
                    for e in activity.entries
                ],
            }
        )
    gettext = fmt.gettext
    return {
        "title": gettext(TITLE),
        "as_of": register.as_of.isoformat() if register.as_of is not None else None,
        "controller_name": controller.name,
        "controller_rows": [
            (gettext(label), value) for label, value in _controller_rows(controller)
        ],
        "data_subjects": ", ".join(controller.data_subjects),
        "activities": activities,
        "entry_header": [
            gettext("Component"),
            gettext("Kind"),
            gettext("Name"),
            gettext("Description"),
            gettext("Fields"),
            gettext("Retention"),
        ],
        "sub_processors": [(x.name, x.service, x.country or "") for x in controller.sub_processors],
        "transfers": [
            (t.recipient, t.country, _safeguard(t.safeguard), t.details)
            for t in controller.transfers
        ],
        "security_measures": list(controller.security_measures),
        "null_components": list(register.null_components),
        "gaps": list(register.gaps),
    }


def render_markdown(register: Register, *, language: str = "en") -> str:
    """The register as Markdown (every cell escaped), from the template ``register.md``."""
    from learnprivacy._documents import renderer

    fmt = renderer(language)
    return fmt.render("register.md", **_view(register, fmt))


def render_html(register: Register, *, language: str = "en") -> str:
    """The register as one HTML page with inline CSS and no external resource, from the
    autoescaped template ``register.html``."""
    from learnprivacy._documents import renderer

    fmt = renderer(language)
    return fmt.render("register.html", **_view(register, fmt))


# -- CSV and JSON -------------------------------------------------------------------------


def render_csv(register: Register) -> str:
    """One row per declared item, formula-injection safe."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    for entry in register.entries:
        writer.writerow([csv_safe(cell) for cell in _entry_row(entry)])
    return buffer.getvalue()


def render_json(register: Register) -> str:
    """The register's ``to_dict()`` as indented JSON."""
    return json.dumps(register.to_dict(), indent=2, ensure_ascii=False) + "\n"
