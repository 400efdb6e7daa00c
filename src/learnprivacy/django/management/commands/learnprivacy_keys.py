"""``manage.py learnprivacy_keys``: the key store's status, checks and reconciliation."""

from __future__ import annotations

from typing import Any

from learnprivacy.django._commands import PrivacyCommand
from learnprivacy.django._privacy import get_privacy
from learnprivacy.django._settings import keys_alias, runtime


class Command(PrivacyCommand):
    """``status`` (counts), ``verify`` (master key and audit chain), ``reconcile``."""

    help = "Key store status, verification, and shredding left pending by a crash."
    changes_data = True

    def add_arguments(self, parser: Any) -> None:
        """The action."""
        parser.add_argument("action", choices=["status", "verify", "reconcile"])
        super().add_arguments(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        """Run the action."""
        from learnprivacy.django.models import KeyEntry, KeyTombstone, PendingShred

        alias = keys_alias()
        action = options["action"]
        privacy = get_privacy()
        if action == "verify":
            runtime().keyring.verify()
            privacy.audit.verify()
            self.emit(
                options,
                {"master_key": "ok", "audit": "ok", "entries": len(privacy.audit)},
                f"master key matches the key store; audit chain intact "
                f"({len(privacy.audit)} entries)",
            )
            return
        if action == "reconcile":
            pending = PendingShred.objects.using(privacy.using).count()
            done = 0 if options["dry_run"] else privacy.reconcile()
            self.emit(
                options,
                {"pending": pending, "shredded": done, "dry_run": options["dry_run"]},
                f"{pending} pending shreds; {done} done",
            )
            return
        keys = KeyEntry.objects.using(alias)
        data = {
            "alias": alias,
            "active": keys.filter(state="active").count(),
            "retired": keys.filter(state="retired").count(),
            "shredded": keys.filter(state="shredded").count(),
            "tombstones": KeyTombstone.objects.using(alias).count(),
            "pending_shreds": PendingShred.objects.using(privacy.using).count(),
        }
        self.emit(
            options,
            data,
            "\n".join(f"{name}: {value}" for name, value in data.items()),
        )
