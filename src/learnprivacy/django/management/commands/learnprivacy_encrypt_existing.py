"""``manage.py learnprivacy_encrypt_existing``: encrypt plaintext left in personal columns."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError

from learnprivacy._vocabulary import BATCH_SIZE
from learnprivacy.django._commands import PrivacyCommand
from learnprivacy.django._encrypt import encrypt_existing, encryptable_models


class Command(PrivacyCommand):
    """Encrypt, batch by batch and resumably, then verify every value."""

    help = "Encrypt the plaintext still held in columns declared personal (resumable)."
    changes_data = True

    def add_arguments(self, parser: Any) -> None:
        """Which models, and the batch size."""
        super().add_arguments(parser)
        parser.add_argument("--model", action="append", help="app_label.Model (repeatable)")
        parser.add_argument("--batch-size", type=int, default=BATCH_SIZE)

    def handle(self, *args: Any, **options: Any) -> None:
        """Run every selected table and report them."""
        models = encryptable_models()
        wanted = {m.lower() for m in options["model"] or ()}
        if wanted:
            models = tuple(b for b in models if b.model._meta.label_lower in wanted)
            missing = wanted - {b.model._meta.label_lower for b in models}
            if missing:
                raise CommandError(f"no declared model with personal fields: {sorted(missing)}")
        if options["batch_size"] < 1:
            raise CommandError("--batch-size must be positive")
        reports = [
            encrypt_existing(
                bound,
                batch_size=options["batch_size"],
                dry_run=options["dry_run"],
                progress=self.progress(options),
            )
            for bound in models
        ]
        lines = [
            f"{r.table}: {r.encrypted} values {'to encrypt' if r.dry_run else 'encrypted'}, "
            f"{r.verified} verified ({r.rows} rows)"
            for r in reports
        ]
        self.emit(options, {"tables": [r.to_dict() for r in reports]}, "\n".join(lines))
