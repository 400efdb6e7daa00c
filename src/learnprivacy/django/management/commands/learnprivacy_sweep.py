"""``manage.py learnprivacy_sweep``: apply the retention schedule to the declared models."""

from __future__ import annotations

from typing import Any

from learnprivacy.django._commands import PrivacyCommand
from learnprivacy.django._privacy import get_privacy


class Command(PrivacyCommand):
    """Erase, anonymise or restrict what the schedule says has expired."""

    help = "Apply LEARNPRIVACY['SCHEDULE'] to every declared model (batches, resumable)."
    changes_data = True

    def add_arguments(self, parser: Any) -> None:
        """Options of the sweep."""
        super().add_arguments(parser)
        parser.add_argument("--batch-size", type=int, default=500)

    def handle(self, *args: Any, **options: Any) -> None:
        """Run the sweep and report what it did."""
        result = get_privacy().sweep(
            now=self.now(options),
            dry_run=options["dry_run"],
            batch_size=options["batch_size"],
            progress=self.progress(options),
        )
        verb = "would be" if result.dry_run else "were"
        self.emit(
            options,
            result.to_dict(),
            f"{result.erased} rows {verb} erased, {result.anonymised} anonymised, "
            f"{result.restricted} restricted; {result.review} to review, {result.kept} kept",
        )
