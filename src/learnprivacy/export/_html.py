"""index.html: a self-contained page a learner can open and read.

No script, no external asset (the styles are inline and a Content-Security-Policy forbids
loading anything else), every value HTML-escaped, links relative to the package.
"""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Sequence
from typing import Any

import attrs

from learnprivacy.export._scope import Scope
from learnprivacy.providers.writer import DataDescription

__all__ = ["TypeSummary", "render_index"]

_CELL_LIMIT = 200
_STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:2rem auto;
max-width:70rem;padding:0 1rem;color:#1b1b1b;line-height:1.5}
table{border-collapse:collapse;margin:.5rem 0 1.5rem;width:100%;font-size:.9rem}
th,td{border:1px solid #ccc;padding:.3rem .5rem;text-align:left;vertical-align:top;
overflow-wrap:anywhere}
th{background:#f2f2f2}
section{border-top:2px solid #ddd;margin-top:2rem}
.note{background:#fff7e0;border-left:4px solid #e0a800;padding:.5rem 1rem}
dt{font-weight:600}dd{margin:0 0 .5rem 0}
"""


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


def _e(value: object) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _cell(value: object) -> str:
    if value is None:
        return ""
    text = str(value).lower() if isinstance(value, bool) else str(value)
    if len(text) > _CELL_LIMIT:
        text = text[:_CELL_LIMIT] + "…"
    return _e(text)


def _basis(description: DataDescription | None) -> str:
    if description is None or description.basis is None:
        return "not stated"
    basis = description.basis
    return f"{basis.name.replace('_', ' ').lower()} (GDPR {basis.article})"


def _scope_text(scope: Scope) -> str:
    if scope is Scope.ACCESS:
        return (
            "Right of access (GDPR Art. 15): every piece of personal data held about you, "
            "whatever the lawful basis of its processing."
        )
    return (
        "Right to data portability (GDPR Art. 20): the data you provided or generated and "
        "that is processed on the basis of your consent or of a contract. Data kept to "
        "meet a legal obligation (such as invoices) or for legitimate interests (such as "
        "security logs) is not part of it; you can obtain it with an access request."
    )


def _links(links: Sequence[tuple[str, str]]) -> str:
    return " ".join(f'<a href="{_e(path)}">{_e(label)}</a>' for label, path in links)


def _overview(summaries: Sequence[TypeSummary]) -> list[str]:
    out = [
        "<h2>Contents</h2>",
        "<table><thead><tr><th>Kind of data</th><th>Source</th><th>Purpose</th>"
        "<th>Lawful basis</th><th>Retention</th><th>Records</th><th>Files</th></tr></thead>"
        "<tbody>",
    ]
    for index, s in enumerate(summaries):
        d = s.description
        out.append(
            f'<tr><td><a href="#type-{index}">{_e(s.record_type)}</a></td>'
            f"<td>{_e(s.component)}</td><td>{_e(d.purpose if d else '')}</td>"
            f"<td>{_e(_basis(d))}</td><td>{_e(d.retention if d and d.retention else 'not stated')}"
            f"</td><td>{s.records}</td><td>{_links(s.links)}</td></tr>"
        )
    out.append("</tbody></table>")
    return out


def _section(index: int, s: TypeSummary, scope: Scope) -> list[str]:
    d = s.description
    out = [
        f'<section id="type-{index}">',
        f"<h2>{_e(s.record_type)} <small>({_e(s.component)})</small></h2>",
    ]
    if d is not None and d.description:
        out.append(f"<p>{_e(d.description)}</p>")
    out += [
        "<dl>",
        f"<dt>Purpose</dt><dd>{_e(d.purpose if d and d.purpose else 'not stated')}</dd>",
        f"<dt>Lawful basis</dt><dd>{_e(_basis(d))}</dd>",
        f"<dt>Retention</dt><dd>{_e(d.retention if d and d.retention else 'not stated')}</dd>",
        f"<dt>Records in this export</dt><dd>{s.records}</dd>",
        "</dl>",
    ]
    if s.excluded:
        out.append(
            f'<p class="note">{s.excluded} record(s) of this kind are held on a lawful basis '
            f"outside the {_e(scope.value)} scope and are not included.</p>"
        )
    if s.links:
        out.append(f"<p>Files: {_links(s.links)}</p>")
    if d is not None and d.fields:
        out.append("<h3>Fields</h3><table><thead><tr><th>Field</th><th>Meaning</th></tr>")
        out.append("</thead><tbody>")
        out += [f"<tr><td>{_e(k)}</td><td>{_e(v)}</td></tr>" for k, v in d.fields.items()]
        out.append("</tbody></table>")
    if s.preview:
        shown = "all records" if len(s.preview) == s.records else f"first {len(s.preview)}"
        out.append(f"<h3>Records ({_e(shown)})</h3><table><thead><tr>")
        out += [f"<th>{_e(column)}</th>" for column in s.columns]
        out.append("</tr></thead><tbody>")
        for row in s.preview:
            cells = "".join(f"<td>{_cell(row.get(column))}</td>" for column in s.columns)
            out.append(f"<tr>{cells}</tr>")
        out.append("</tbody></table>")
    out.append("</section>")
    return out


def render_index(
    *,
    generated_at: dt.datetime,
    scope: Scope,
    subject_reference: str,
    summaries: Sequence[TypeSummary],
    files: Sequence[tuple[str, int | None]],
) -> str:
    """The whole page as text."""
    title = "Your personal data" + (" (portability)" if scope is Scope.PORTABILITY else "")
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        # Nothing may load: no script, no remote font or image, only the inline styles.
        '<meta http-equiv="Content-Security-Policy" '
        "content=\"default-src 'none'; style-src 'unsafe-inline'\">",
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{_e(title)}</h1>",
        f"<p>{_e(_scope_text(scope))}</p>",
        "<dl>",
        f"<dt>Generated at</dt><dd>{_e(generated_at.isoformat())}</dd>",
        f"<dt>Reference of this export</dt><dd><code>{_e(subject_reference)}</code></dd>",
        "</dl>",
        "<p>Each kind of data comes as a JSON file (machine-readable, documented schema) "
        "and a CSV file (opens in a spreadsheet). Progress and certificates are also "
        "given as xAPI 1.0.3 statements, which a learning record store can import. "
        "<code>manifest.json</code> lists every file with its SHA-256 checksum.</p>",
    ]
    out += _overview(summaries)
    for index, summary in enumerate(summaries):
        out += _section(index, summary, scope)
    out.append("<section><h2>All files</h2><ul>")
    for path, records in files:
        count = "" if records is None else f" ({records} records)"
        out.append(f'<li><a href="{_e(path)}">{_e(path)}</a>{_e(count)}</li>')
    out.append('<li><a href="manifest.json">manifest.json</a></li></ul></section>')
    out.append("</body></html>\n")
    return "\n".join(out)
