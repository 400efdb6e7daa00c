"""``manage.py learnprivacy_sweep``: apply the retention schedule to the declared models."""

from __future__ import annotations

from typing import Any

from learnprivacy._vocabulary import BATCH_SIZE
from learnprivacy.django._commands import PrivacyCommand
from learnprivacy.django._privacy import get_privacy


class Command(PrivacyCommand):
    """Erase, anonymise or restrict what the schedule says has expired."""

    help = "Apply LEARNPRIVACY['SCHEDULE'] to every declared model (batches, resumable)."
    changes_data = True

    def add_arguments(self, parser: Any) -> None:
        """Options of the sweep."""
        super().add_arguments(parser)
        parser.add_argument("--batch-size", type=int, default=BATCH_SIZE)
        parser.add_argument(
            "--no-compact",
            action="store_true",
            help="do not compact the keys after a sweep that shredded any "
            "(learnprivacy_keys compact does it later)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        """Run the sweep, compact the keys if it shredded any, and report what it did."""
        from learnprivacy.django._keys import compact_keys

        now = self.now(options)
        result = get_privacy().sweep(
            now=now,
            dry_run=options["dry_run"],
            batch_size=options["batch_size"],
            progress=self.progress(options),
        )
        data: dict[str, Any] = result.to_dict()
        verb = "would be" if result.dry_run else "were"
        text = (
            f"{result.erased} rows {verb} erased, {result.anonymised} anonymised, "
            f"{result.restricted} restricted; {result.review} to review, {result.kept} kept"
        )
        if not result.dry_run and result.shredded_subjects and not options["no_compact"]:
            # Key-store copies taken before this sweep stop opening what it erased.
            report = compact_keys(now=now)
            data["compaction"] = {k: report[k] for k in ("epoch", "rewrapped", "resumed")}
            text += f"; keys compacted (epoch {report['epoch']})"
        self.emit(options, data, text)
