"""Documents for people: Jinja2 templates (autoescaped) and Babel for languages.

The learner's page of an export, the response letters and the register are written from
templates in ``templates/``; dates, numbers and plurals go through Babel in the reader's
language and time zone, and sentences through the message catalogues in ``locale/``
(French and English complete; Dutch and German ready to be translated, falling back to
English meanwhile). Jinja2 and Babel are imported when a document is first written, so
``import learnprivacy`` stays light.

Templates never build markup from values: every value is escaped by Jinja2's autoescape
(HTML) or by the ``md`` filter (Markdown letters).
"""

from __future__ import annotations

import datetime as dt
import io
import re
import zoneinfo
from decimal import Decimal
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any

from learnprivacy.errors import ConfigurationError

if TYPE_CHECKING:
    import jinja2
    from babel.support import Translations

__all__ = [
    "DOCUMENT_LANGUAGES",
    "N_",
    "TRANSLATED",
    "Renderer",
    "check_timezone",
    "renderer",
]

#: Languages a document can be asked in.
DOCUMENT_LANGUAGES = ("fr", "en", "nl", "de")
#: Languages whose catalogue is complete (the others fall back to English).
TRANSLATED = ("fr", "en")
_LOCALES = {"fr": "fr_FR", "en": "en_GB", "nl": "nl_BE", "de": "de_DE"}


def N_(message: str) -> str:
    """Mark ``message`` for the catalogue; it is translated where it is shown."""
    return message


def check_timezone(name: str) -> str:
    """``name`` if it is an IANA time zone (``Europe/Paris``), else ``ConfigurationError``."""
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ConfigurationError(f"unknown time zone {name!r} (use an IANA name)") from None
    return name


def _check_language(language: str) -> str:
    if language not in DOCUMENT_LANGUAGES:
        raise ConfigurationError(
            f"language {language!r} is not available (available: {', '.join(DOCUMENT_LANGUAGES)})"
        )
    return language


@cache
def translations(language: str) -> Translations:
    """The compiled catalogue of ``language`` (English: the message ids themselves)."""
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po
    from babel.support import Translations

    if language == "en":
        return Translations()
    source = resources.files("learnprivacy._documents").joinpath(
        "locale", language, "LC_MESSAGES", "messages.po"
    )
    with source.open("rb") as handle:
        catalog = read_po(handle, locale=language)
    # The catalogue ships as text (reviewable, diffable) and is compiled in memory.
    compiled = io.BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return Translations(compiled)


@cache
def _environment(language: str) -> jinja2.Environment:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("learnprivacy._documents", "templates"),
        # Every value in an HTML template is escaped; Markdown templates escape with |md.
        autoescape=jinja2.select_autoescape(["html"], default_for_string=True),
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
    )
    env.install_gettext_translations(translations(language), newstyle=True)  # type: ignore[attr-defined]
    env.filters["md"] = escape_markdown
    env.filters["mdcell"] = markdown_cell
    return env


# Characters that start inline markup anywhere, and block markup at the start of a line.
_MARKDOWN_INLINE = re.compile(r"([\\`*_\[\]<>|~])")
_MARKDOWN_BLOCK = re.compile(r"^([#+\-=]|\d+(?=[.)]))")


def escape_markdown(value: object) -> str:
    """``value`` as one line of Markdown text that renders as written."""
    flat = _MARKDOWN_INLINE.sub(r"\\\1", " ".join(str(value).split()))
    return _MARKDOWN_BLOCK.sub(
        lambda m: m.group(1) + "\\" if m.group(1).isdigit() else "\\" + m.group(1), flat
    )


def markdown_cell(text: object) -> str:
    """``text`` safe in a Markdown table cell or list item.

    A pipe would split the cell, a newline the row, brackets could make a link, and raw
    HTML would be rendered by most Markdown engines.
    """
    return (
        str(text)
        .replace("\\", "\\\\")
        .replace("|", "\\|")
        .replace("[", "\\[")
        .replace("]", "\\]")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace("\r", " ")
        .replace("\n", " ")
    )


class Renderer:
    """Writes templates in one language and time zone, with Babel's formats."""

    def __init__(self, language: str, timezone: str) -> None:
        from babel import Locale

        self.language = _check_language(language)
        self.timezone = zoneinfo.ZoneInfo(check_timezone(timezone))
        self.locale = Locale.parse(_LOCALES[language])
        self._translations = translations(language)

    def gettext(self, message: str, **values: Any) -> str:
        """``message`` translated, with ``%(name)s`` placeholders filled."""
        text = self._translations.gettext(message)
        return text % values if values else text

    def ngettext(self, singular: str, plural: str, n: int, **values: Any) -> str:
        """The singular or plural form for ``n`` (``%(num)s`` is ``n``, formatted)."""
        text = self._translations.ngettext(singular, plural, n)
        return text % {"num": self.number(n), **values}

    def plural(self, singular: str, plural: str, n: int) -> str:
        """The translated form for ``n``, placeholders left to fill."""
        return self._translations.ngettext(singular, plural, n)

    def datetime(self, value: dt.datetime, format: str = "long") -> str:
        """``value`` in the reader's time zone and language (no microseconds)."""
        from babel.dates import format_datetime

        return format_datetime(value, format=format, tzinfo=self.timezone, locale=self.locale)

    def date(self, value: dt.date | dt.datetime, format: str = "long") -> str:
        """The date of ``value`` (in the reader's time zone for a datetime; a plain date
        as it is)."""
        from babel.dates import format_date

        if isinstance(value, dt.datetime):
            value = value.astimezone(self.timezone).date()
        return format_date(value, format=format, locale=self.locale)

    def number(self, value: int | float | Decimal) -> str:
        """``value`` with the language's separators (``1 234,5`` in French)."""
        from babel.numbers import format_decimal

        return format_decimal(value, locale=self.locale)

    def render(self, template: str, **context: Any) -> str:
        """Write ``template`` with ``context`` (values escaped by the template)."""
        env = _environment(self.language)
        return env.get_template(template).render(
            lang=self.language, fmt=self, timezone=self.timezone.key, **context
        )


def renderer(language: str, timezone: str = "UTC") -> Renderer:
    """A :class:`Renderer` for ``language`` (``fr``, ``en``, ``nl``, ``de``) and ``timezone``."""
    return Renderer(language, timezone)
