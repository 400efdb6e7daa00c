"""Render a :class:`Register` as Markdown, self-contained HTML, CSV and JSON.

Every value comes from declarations written by people, so every value is escaped for the
target format: Markdown table cells, HTML text and attributes, and CSV cells that a
spreadsheet would otherwise evaluate as a formula.
"""

from __future__ import annotations

import csv
import html
import io
import json
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from learnprivacy.basis import LawfulBasis
from learnprivacy.providers._items import ExternalLocation

if TYPE_CHECKING:
    from learnprivacy._controller import Controller, Safeguard
    from learnprivacy.providers._register import Register, RegisterEntry

__all__ = ["csv_safe", "render_csv", "render_html", "render_json", "render_markdown"]

TITLE = "Record of processing activities (GDPR Art. 30)"

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
        ("Name", controller.name),
        ("Address", controller.address),
        ("Contact", controller.contact),
        ("Data protection officer", controller.dpo or "not designated"),
    ]
    if controller.representative:
        rows.append(("Representative in the EU", controller.representative))
    if controller.hosting is not None:
        hosting = controller.hosting
        text = f"{hosting.provider} ({hosting.country})"
        rows.append(("Hosting", text + (f": {hosting.details}" if hosting.details else "")))
    rows.append(("Data subjects", ", ".join(controller.data_subjects)))
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


# -- Markdown -----------------------------------------------------------------------------


def _md(text: str) -> str:
    # Table cells: a pipe would split the cell, a newline the row, brackets could make a
    # link, and raw HTML would be rendered by most Markdown engines.
    return (
        text.replace("\\", "\\\\")
        .replace("|", "\\|")
        .replace("[", "\\[")
        .replace("]", "\\]")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace("\r", " ")
        .replace("\n", " ")
    )


def _md_table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines.extend("| " + " | ".join(_md(cell) for cell in row) + " |" for row in rows)
    return lines


def render_markdown(register: Register) -> str:
    """The register as Markdown."""
    controller = register.controller
    out = [f"# {TITLE}", ""]
    if register.as_of is not None:
        out += [f"As of {register.as_of.isoformat()}.", ""]
    out += ["## Controller", "", *_md_table(("Item", "Value"), _controller_rows(controller)), ""]
    out += ["## Processing activities", ""]
    for number, activity in enumerate(register.activities, start=1):
        out += [f"### {number}. {_md(activity.purpose)}", ""]
        bases = ", ".join(f"{basis_label(b)} (`{b.moodle_code}`)" for b in activity.bases)
        out.append(f"- Lawful basis: {bases or 'not declared'}")
        categories = ", ".join(c.value.replace("_", " ") for c in activity.categories)
        out.append(f"- Data categories: {categories or 'not declared'}")
        out.append(f"- Data subjects: {_md(', '.join(controller.data_subjects))}")
        out.append(f"- Recipients: {_md('; '.join(activity.recipients)) or 'internal only'}")
        out.append(f"- Retention: {_md('; '.join(activity.retention)) or 'not declared'}")
        out.append("")
        out += _md_table(
            ("Component", "Kind", "Name", "Description", "Fields", "Retention"),
            (
                (
                    e.component,
                    e.item.kind.value.replace("_", " "),
                    e.item.name,
                    e.item.summary,
                    ", ".join(e.item.field_names),
                    e.retention_text,
                )
                for e in activity.entries
            ),
        )
        out.append("")
    out += ["## Sub-processors", ""]
    if controller.sub_processors:
        out += _md_table(
            ("Name", "Service", "Country"),
            ((s.name, s.service, s.country or "") for s in controller.sub_processors),
        )
    else:
        out.append("None declared.")
    out += ["", "## Transfers outside the EEA", ""]
    if controller.transfers:
        out += _md_table(
            ("Recipient", "Country", "Safeguard", "Details"),
            (
                (
                    t.recipient,
                    t.country,
                    _safeguard(t.safeguard),
                    t.details,
                )
                for t in controller.transfers
            ),
        )
    else:
        out.append("None declared.")
    out += ["", "## Security measures", ""]
    out += [f"- {_md(m)}" for m in controller.security_measures] or ["None declared."]
    if register.null_components:
        out += ["", "## Components storing no personal data", ""]
        out += _md_table(("Component", "Reason"), register.null_components)
    out += ["", "## Gaps in the declarations", ""]
    out += [f"- {_md(g)}" for g in register.gaps] or ["None."]
    return "\n".join(out) + "\n"


# -- HTML ---------------------------------------------------------------------------------

_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:70rem;margin:2rem auto;padding:0 1rem;"
    "color:#1b1b1b}table{border-collapse:collapse;width:100%;margin:.5rem 0 1.5rem}"
    "th,td{border:1px solid #bbb;padding:.3rem .5rem;text-align:left;vertical-align:top}"
    "th{background:#eee}code{font-size:.9em}"
)


def _h(text: str) -> str:
    return html.escape(text, quote=True)


def _html_table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    head = "".join(f"<th>{_h(cell)}</th>" for cell in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{_h(cell)}</td>" for cell in row) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _html_list(items: Sequence[str], empty: str) -> str:
    if not items:
        return f"<p>{_h(empty)}</p>"
    return "<ul>" + "".join(f"<li>{_h(i)}</li>" for i in items) + "</ul>"


def render_html(register: Register) -> str:
    """The register as one HTML page with inline CSS and no external resource."""
    controller = register.controller
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{_h(TITLE)}: {_h(controller.name)}</title>",
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>{_h(TITLE)}</h1>",
    ]
    if register.as_of is not None:
        parts.append(f"<p>As of {_h(register.as_of.isoformat())}.</p>")
    parts += ["<h2>Controller</h2>", _html_table(("Item", "Value"), _controller_rows(controller))]
    parts.append("<h2>Processing activities</h2>")
    for number, activity in enumerate(register.activities, start=1):
        bases = ", ".join(f"{basis_label(b)} ({b.moodle_code})" for b in activity.bases)
        categories = ", ".join(c.value.replace("_", " ") for c in activity.categories)
        facts = [
            f"Lawful basis: {bases or 'not declared'}",
            f"Data categories: {categories or 'not declared'}",
            f"Data subjects: {', '.join(controller.data_subjects)}",
            f"Recipients: {'; '.join(activity.recipients) or 'internal only'}",
            f"Retention: {'; '.join(activity.retention) or 'not declared'}",
        ]
        parts += [f"<h3>{number}. {_h(activity.purpose)}</h3>", _html_list(facts, "")]
        parts.append(
            _html_table(
                ("Component", "Kind", "Name", "Description", "Fields", "Retention"),
                (
                    (
                        e.component,
                        e.item.kind.value.replace("_", " "),
                        e.item.name,
                        e.item.summary,
                        ", ".join(e.item.field_names),
                        e.retention_text,
                    )
                    for e in activity.entries
                ),
            )
        )
    parts.append("<h2>Sub-processors</h2>")
    parts.append(
        _html_table(
            ("Name", "Service", "Country"),
            ((s.name, s.service, s.country or "") for s in controller.sub_processors),
        )
        if controller.sub_processors
        else "<p>None declared.</p>"
    )
    parts.append("<h2>Transfers outside the EEA</h2>")
    parts.append(
        _html_table(
            ("Recipient", "Country", "Safeguard", "Details"),
            (
                (
                    t.recipient,
                    t.country,
                    _safeguard(t.safeguard),
                    t.details,
                )
                for t in controller.transfers
            ),
        )
        if controller.transfers
        else "<p>None declared.</p>"
    )
    parts += ["<h2>Security measures</h2>", _html_list(controller.security_measures, "None.")]
    if register.null_components:
        parts += [
            "<h2>Components storing no personal data</h2>",
            _html_table(("Component", "Reason"), register.null_components),
        ]
    parts += ["<h2>Gaps in the declarations</h2>", _html_list(register.gaps, "None.")]
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


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
