"""What the ``learnprivacy_*`` management commands share: ``--json``, ``--now``,
``--dry-run``, progress on stderr and typed errors turned into ``CommandError``."""

from __future__ import annotations

import datetime as dt
import json
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from learnprivacy._validators import is_aware
from learnprivacy.errors import LearnPrivacyError

__all__ = ["PrivacyCommand"]


class PrivacyCommand(BaseCommand):
    """Base of the learnprivacy commands."""

    changes_data = False

    def add_arguments(self, parser: Any) -> None:
        """``--json`` everywhere; ``--dry-run`` and ``--now`` where data changes."""
        parser.add_argument("--json", action="store_true", help="print one JSON document")
        if self.changes_data:
            parser.add_argument(
                "--dry-run", action="store_true", help="say what would change, change nothing"
            )
        parser.add_argument(
            "--now",
            help="the time to act at (ISO 8601 with an offset); default: the current time",
        )

    def now(self, options: dict[str, Any]) -> dt.datetime:
        """``--now`` or the clock, read once here at the edge."""
        text = options.get("now")
        if not text:
            return dt.datetime.now(dt.UTC)
        try:
            value = dt.datetime.fromisoformat(text)
        except ValueError:
            raise CommandError("--now must be an ISO 8601 date and time") from None
        if not is_aware(value):
            raise CommandError("--now needs a UTC offset (e.g. 2026-06-15T12:00:00+00:00)")
        return value

    def progress(self, options: dict[str, Any]) -> Any:
        """A progress callback writing ``table: done/total`` lines to stderr."""
        quiet = options.get("verbosity", 1) == 0

        def report(table: str, done: int, total: int) -> None:
            if not quiet:
                percent = 100 * done // total if total else 100
                sys.stderr.write(f"{table}: {done}/{total} ({percent}%)\n")

        return report

    def emit(self, options: dict[str, Any], data: dict[str, Any], text: str) -> None:
        """Print ``data`` as JSON with ``--json``, else ``text``."""
        if options.get("json"):
            self.stdout.write(json.dumps(data, sort_keys=True, default=str))
        else:
            self.stdout.write(text)

    def execute(self, *args: Any, **options: Any) -> Any:
        """Typed errors become ``CommandError`` with the same message (never a value)."""
        try:
            return super().execute(*args, **options)
        except LearnPrivacyError as exc:
            raise CommandError(f"{type(exc).__name__}: {exc}") from None
