"""The message catalogues: extraction from the templates and code, and their upkeep.

``python -m learnprivacy._documents.catalogue`` re-extracts every message into
``locale/messages.pot`` and merges it into each language's ``messages.po`` (new messages
arrive untranslated, in which case the document shows the English text). The tests check
that the template is current and that French is complete.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from babel.messages.catalog import Catalog

__all__ = ["LOCALE_DIR", "extract", "update"]

_ROOT = Path(__file__).resolve().parent
_PACKAGE = _ROOT.parent
#: Where the catalogues live.
LOCALE_DIR = _ROOT / "locale"
# Sources holding messages: the templates, and the modules that translate values.
_SOURCES = (
    ("_documents/templates", "**.html", "jinja2"),
    ("_documents/templates", "**.md", "jinja2"),
    ("export", "_html.py", "python"),
    ("requests", "_letters.py", "python"),
    ("providers", "_render.py", "python"),
)


def extract() -> Catalog:
    """Every message of the templates and of the code that fills them."""
    from babel.messages.catalog import Catalog
    from babel.messages.extract import extract_from_dir

    catalog = Catalog(project="learnprivacy", domain="messages")
    for folder, pattern, method in _SOURCES:
        found = extract_from_dir(
            str(_PACKAGE / folder),
            method_map=[(pattern, method)],
            options_map={pattern: {"extensions": "jinja2.ext.i18n", "newstyle_gettext": "true"}},
            keywords={
                "_": None,
                "gettext": None,
                "ngettext": (1, 2),
                "plural": (1, 2),
                "say": None,
                "pgettext": ((1, "c"), 2),
                "N_": None,
            },
        )
        for filename, lineno, message, _comments, context in found:
            where = f"{folder}/{filename}"
            catalog.add(message, None, [(where, lineno)], context=context)
    return catalog


def template_text() -> str:
    """``messages.pot`` as extraction writes it (no dates, so it only changes with text)."""
    from babel.messages.pofile import write_po

    out = io.BytesIO()
    write_po(out, extract(), omit_header=True, sort_output=True, no_location=True, width=96)
    return out.getvalue().decode("utf-8")


def update() -> None:
    """Rewrite ``messages.pot`` and merge it into every ``messages.po``."""
    from babel.messages.pofile import read_po, write_po

    LOCALE_DIR.mkdir(exist_ok=True)
    (LOCALE_DIR / "messages.pot").write_text(template_text(), encoding="utf-8")
    template = extract()
    for po in sorted(LOCALE_DIR.glob("*/LC_MESSAGES/messages.po")):
        language = po.parent.parent.name
        with po.open("rb") as handle:
            catalog = read_po(handle, locale=language)
        created = catalog.creation_date
        catalog.update(template, no_fuzzy_matching=True)
        # Unchanged messages leave the file unchanged: no date churn in the diff.
        catalog.creation_date = created
        out = io.BytesIO()
        write_po(out, catalog, sort_output=True, no_location=True, width=96, ignore_obsolete=True)
        po.write_bytes(out.getvalue())


if __name__ == "__main__":
    update()
