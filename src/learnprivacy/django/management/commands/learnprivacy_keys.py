"""``manage.py learnprivacy_keys``: the key store's status, checks, reconciliation,
master-key rotation, key compaction and backups."""

from __future__ import annotations

import sys
from typing import Any

from learnprivacy._vocabulary import BATCH_SIZE
from learnprivacy.django._commands import PrivacyCommand
from learnprivacy.django._privacy import get_privacy
from learnprivacy.django._settings import keys_alias, runtime


class _Progress:
    """``keys: done/total`` lines on stderr, one per tenth of the work (or per batch)."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.total = 0
        self.done = 0
        self.shown = 0

    def expect(self, units: int) -> None:
        self.total += units

    def advance(self, units: int) -> None:
        self.done += units
        step = max(1, self.total // 10)
        if not self.quiet and (self.done // step != self.shown or self.done == self.total):
            self.shown = self.done // step
            percent = 100 * self.done // self.total if self.total else 100
            sys.stderr.write(f"keys: {self.done}/{self.total} ({percent}%)\n")
            sys.stderr.flush()


class Command(PrivacyCommand):
    """``status``, ``verify``, ``reconcile``, ``rotate`` (``--resume``), ``compact``,
    ``backup PATH``."""

    help = (
        "Key store status, verification, shredding left pending by a crash, master-key "
        "rotation (resumable), key compaction (resumable) and backups of a SQLite key store."
    )
    changes_data = True

    def add_arguments(self, parser: Any) -> None:
        """The action and its options."""
        parser.add_argument(
            "action", choices=["status", "verify", "reconcile", "rotate", "compact", "backup"]
        )
        parser.add_argument("path", nargs="?", help="backup: the file to write (must not exist)")
        parser.add_argument(
            "--resume",
            action="store_true",
            help="rotate: finish a rotation that was interrupted",
        )
        parser.add_argument(
            "--batch-size",
            type=int,
            default=BATCH_SIZE,
            help="rotate, compact: keys rewritten per transaction",
        )
        super().add_arguments(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        """Run the action."""
        from django.core.management.base import CommandError

        action = options["action"]
        if action != "backup" and options.get("path"):
            raise CommandError(f"{action} takes no path")
        if action == "rotate":
            self._rotate(options)
        elif action == "compact":
            self._compact(options)
        elif action == "backup":
            self._backup(options)
        elif action == "verify":
            self._verify(options)
        elif action == "reconcile":
            self._reconcile(options)
        else:
            self._status(options)

    def _rewriting(self, options: dict[str, Any]) -> dict[str, Any]:
        """The arguments of the actions that rewrite every key (``--batch-size`` checked)."""
        from django.core.management.base import CommandError

        if options["batch_size"] < 1:
            raise CommandError("--batch-size must be at least 1")
        return {
            "now": self.now(options),
            "dry_run": options["dry_run"],
            "batch_size": options["batch_size"],
            "progress": _Progress(options.get("verbosity", 1) == 0 or options["json"]),
        }

    def _rotate(self, options: dict[str, Any]) -> None:
        from learnprivacy.django._keys import rotate_master_key

        report = rotate_master_key(resume=options["resume"], **self._rewriting(options))
        if report.dry_run:
            text = f"{report.to_rewrap} keys would be rewrapped under {report.master_key_id}"
        else:
            text = (
                f"{report.rewrapped} keys rewrapped under master key {report.master_key_id}"
                f"{' (resumed)' if report.resumed else ''}; every data key is under it: "
                "PREVIOUS_MASTER_KEYS_ENV may now be removed"
            )
        self.emit(options, report.to_dict(), text)

    def _compact(self, options: dict[str, Any]) -> None:
        from learnprivacy.django._keys import compact_keys

        data = compact_keys(**self._rewriting(options))
        if data["dry_run"]:
            text = (
                f"{data['to_rewrap']} keys would be re-wrapped under a new epoch key; "
                f"epoch {data['epoch']}, {data['erased_awaiting_compaction']} erased learners "
                f"awaiting compaction, vault {data['vault']}"
            )
        else:
            text = (
                f"epoch {data['epoch']}: {data['rewrapped']} keys re-wrapped"
                f"{' (resumed)' if data['resumed'] else ''}; the previous epoch key is "
                "destroyed: key-store copies taken before open nothing of the learners "
                "erased before now"
            )
        self.emit(options, data, text)

    def _backup(self, options: dict[str, Any]) -> None:
        from django.core.management.base import CommandError

        from learnprivacy.django._keys import backup_keys

        if not options.get("path"):
            raise CommandError("backup needs the PATH of the file to write")
        data = backup_keys(options["path"], dry_run=options["dry_run"])
        verb = "would be copied" if data["dry_run"] else "copied"
        self.emit(
            options,
            data,
            f"key store {verb} to {data['path']} ({data['active']} active keys); keep key "
            "backups short-lived: one taken before an erasure still holds that key",
        )

    def _verify(self, options: dict[str, Any]) -> None:
        privacy = get_privacy()
        runtime().keyring.verify()
        privacy.audit.verify()
        self.emit(
            options,
            {"master_key": "ok", "audit": "ok", "entries": len(privacy.audit)},
            f"master key matches the key store; audit chain intact ({len(privacy.audit)} entries)",
        )

    def _reconcile(self, options: dict[str, Any]) -> None:
        from learnprivacy.django.models import PendingShred

        privacy = get_privacy()
        pending = PendingShred.objects.using(privacy.using).count()
        done = 0 if options["dry_run"] else privacy.reconcile()
        self.emit(
            options,
            {"pending": pending, "shredded": done, "dry_run": options["dry_run"]},
            f"{pending} pending shreds; {done} done",
        )

    def _status(self, options: dict[str, Any]) -> None:
        from learnprivacy.django._keys import epoch_status, key_store, rotation_under_way
        from learnprivacy.django.models import PendingShred

        privacy = get_privacy()
        keyring = runtime().keyring
        counts = key_store().counts()
        data = {
            "alias": keys_alias(),
            "master_key_id": keyring.master_key_id,
            **counts,
            "pending_shreds": PendingShred.objects.using(privacy.using).count(),
            "rotation_under_way": rotation_under_way(),
            **{f"epoch_{k}" if k == "vault" else k: v for k, v in epoch_status().items()},
        }
        self.emit(
            options,
            data,
            "\n".join(f"{name}: {value}" for name, value in data.items()),
        )
