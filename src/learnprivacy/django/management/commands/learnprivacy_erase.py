"""``manage.py learnprivacy_erase <subject>``: an erasure request on the declared models."""

from __future__ import annotations

from typing import Any

from learnprivacy.django._commands import PrivacyCommand
from learnprivacy.django._privacy import get_privacy


class Command(PrivacyCommand):
    """Erase a learner's rows (restricting what the law keeps) and shred their keys."""

    help = "Erase a learner's data from every declared model (GDPR Art. 17)."
    changes_data = True

    def add_arguments(self, parser: Any) -> None:
        """The learner id (the user's primary key)."""
        parser.add_argument("subject", help="the learner id (primary key of the user)")
        super().add_arguments(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        """Run the erasure and report it (the learner named by reference only)."""
        privacy = get_privacy()
        if options.get("verbosity", 1) > 0 and not options["json"]:
            self.stderr.write(f"erasing across {len(privacy.bound)} declared models\n")
        result = privacy.erase_subject(
            options["subject"], now=self.now(options), dry_run=options["dry_run"]
        )
        verb = "would be" if result.dry_run else "were"
        lines = [
            f"{result.erased} rows {verb} erased, {result.anonymised} anonymised, "
            f"{result.restricted} restricted; keys shredded: "
            f"{', '.join(result.shredded) or '(none)'}"
        ]
        lines += [f"kept: {k.rows} {k.table} row(s): {k.reason}" for k in result.kept]
        lines += [f"LEFT: {k.rows} {k.table} row(s): {k.reason}" for k in result.left]
        self.emit(options, result.to_dict(), "\n".join(lines))
