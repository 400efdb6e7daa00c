"""``manage.py learnprivacy_register``: the GDPR Art. 30 register from the declarations.

Options as ``learnprivacy register``: ``--format`` (markdown, html, csv, json; ``--json``
is json), ``--out`` and ``--language``; and ``--internal-only PURPOSE`` (repeat it, or
separate purposes with commas, a name with a comma in double quotes): purposes whose
data the policy promises to share with nobody outside the controller, added to the
controller's own ``internal_only``. An external recipient declared under such a purpose
is listed in the register's gaps, an internal one is not; a purpose no activity has is a
gap too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import CommandError

from learnprivacy.django._commands import PrivacyCommand
from learnprivacy.django._privacy import get_privacy
from learnprivacy.django._settings import load, setting
from learnprivacy.errors import ValidationError
from learnprivacy.providers._register import INTERNAL_ONLY_HELP, purposes_option


class Command(PrivacyCommand):
    """Print the record of processing activities of the declared models."""

    help = "Print the Art. 30 register built from the declared models."

    def add_arguments(self, parser: Any) -> None:
        """Format, output, language and the purposes shared internally only."""
        parser.add_argument(
            "--internal-only",
            action="append",
            default=[],
            metavar="PURPOSE",
            help=INTERNAL_ONLY_HELP,
        )
        parser.add_argument(
            "--format", choices=["markdown", "html", "csv", "json"], default="markdown"
        )
        parser.add_argument("--out", help="write the register to this file")
        parser.add_argument(
            "--language", choices=["en", "fr"], default="en", help="language of the headings"
        )
        super().add_arguments(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        """Build the register for LEARNPRIVACY['CONTROLLER']."""
        controller = load(setting("CONTROLLER"), "CONTROLLER")
        if controller is None:
            raise CommandError('LEARNPRIVACY["CONTROLLER"] must name a Controller')
        try:
            purposes = purposes_option(options["internal_only"])
        except ValidationError as exc:
            raise CommandError(str(exc)) from None
        register = get_privacy().register(controller, internal_only=purposes)
        fmt = "json" if options["json"] else options["format"]
        language = options["language"]
        # to_markdown, to_html (with headings in ``language``), to_csv, to_json.
        render = getattr(register, f"to_{fmt}")
        text = render(language=language) if fmt in ("markdown", "html") else render()
        out = options.get("out")
        if out:
            Path(out).write_text(text, encoding="utf-8")
            if options.get("verbosity", 1) > 0:
                self.stderr.write(f"Register written to {out}.\n")
        else:
            self.stdout.write(text)
