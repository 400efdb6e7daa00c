"""Where a subject's data comes from: a PrivacyManager, or a Store wrapped in one."""

from __future__ import annotations

from typing import Any

from learnprivacy.errors import ConfigurationError, NotFoundError
from learnprivacy.export._package import PackageWriter

__all__ = ["as_manager", "feed_writer"]


def as_manager(source: Any) -> Any:
    """The PrivacyManager to run: ``source`` itself, or one over a store's own provider."""
    if callable(getattr(source, "export_user_data", None)):
        return source
    if callable(getattr(source, "records_of", None)):
        from learnprivacy.providers import PrivacyManager

        # A bare store exports what it holds, through its own provider; other components
        # (entry points) are only included when the caller builds the manager. The
        # deadline guards against foreign providers hanging; the store's own export of a
        # learner with a long history may rightly take longer than the default.
        return PrivacyManager(store=source, discover=False, timeout=None)
    raise ConfigurationError("export_subject takes a Store or a PrivacyManager")


def feed_writer(manager: Any, learner_id: str, writer: PackageWriter) -> None:
    """Run every provider's export of ``learner_id`` into ``writer``.

    Raises ProviderError naming the first failed component, and NotFoundError when no
    provider holds anything about the learner.
    """
    result = manager.export_user_data(learner_id, writer)
    result.raise_for_status()
    if writer.seen == 0:
        raise NotFoundError("no provider holds data about this learner")
