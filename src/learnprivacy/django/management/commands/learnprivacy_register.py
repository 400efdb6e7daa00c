"""``manage.py learnprivacy_register``: the GDPR Art. 30 register from the declarations."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError

from learnprivacy.django._commands import PrivacyCommand
from learnprivacy.django._privacy import get_privacy
from learnprivacy.django._settings import load, setting


class Command(PrivacyCommand):
    """Print the record of processing activities of the declared models."""

    help = "Print the Art. 30 register built from the declared models (markdown or --json)."

    def handle(self, *args: Any, **options: Any) -> None:
        """Build the register for LEARNPRIVACY['CONTROLLER']."""
        controller = load(setting("CONTROLLER"), "CONTROLLER")
        if controller is None:
            raise CommandError('LEARNPRIVACY["CONTROLLER"] must name a Controller')
        register = get_privacy().register(controller)
        if options["json"]:
            self.stdout.write(register.to_json())
        else:
            self.stdout.write(register.to_markdown())
