"""The Django app: ``INSTALLED_APPS += ["learnprivacy.django"]``."""

from __future__ import annotations

from django.apps import AppConfig

__all__ = ["LearnPrivacyConfig"]


class LearnPrivacyConfig(AppConfig):
    """Binds the declared models and registers the system checks when Django is ready."""

    name = "learnprivacy.django"
    label = "learnprivacy"
    verbose_name = "learnprivacy"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        """Check and bind every declared model; register the checks."""
        from learnprivacy.django import _checks  # noqa: F401  (registers the checks)
        from learnprivacy.django._bind import bind_all

        bind_all()
