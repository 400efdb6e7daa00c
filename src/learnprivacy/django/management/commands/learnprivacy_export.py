"""``manage.py learnprivacy_export <subject> <path>``: a learner's portability package."""

from __future__ import annotations

from typing import Any

from learnprivacy.django._commands import PrivacyCommand
from learnprivacy.django._privacy import get_privacy


class Command(PrivacyCommand):
    """Export a learner's rows of every declared model (zip or folder)."""

    help = "Export everything the declared models hold about a learner (GDPR Art. 15/20)."

    def add_arguments(self, parser: Any) -> None:
        """The learner id and where the package goes."""
        parser.add_argument("subject", help="the learner id (primary key of the user)")
        parser.add_argument("path", help="a .zip file or a directory to create")
        parser.add_argument("--overwrite", action="store_true")
        parser.add_argument("--scope", choices=["access", "portability"], default="access")
        super().add_arguments(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        """Write the package and report its path and record count."""
        if options.get("verbosity", 1) > 0 and not options["json"]:
            self.stderr.write("exporting...\n")
        result = get_privacy().export_subject(
            options["subject"],
            options["path"],
            now=self.now(options),
            overwrite=options["overwrite"],
            scope=options["scope"],
        )
        self.emit(
            options,
            {"path": str(result.path), "records": result.records},
            f"{result.records} records exported to {result.path}",
        )
