"""Where a subject's data comes from: a PrivacyManager, or a Store wrapped in one."""

from __future__ import annotations

from typing import Any

from learnprivacy.errors import ConfigurationError, NotFoundError
from learnprivacy.export._package import PackageWriter

__all__ = ["feed_writer"]


def _as_manager(source: Any) -> Any:
    if callable(getattr(source, "export_user_data", None)):
        return source
    if callable(getattr(source, "records_of", None)):
        from learnprivacy.providers import PrivacyManager

        # A bare store exports what it holds, through its own provider; other components
        # (entry points) are only included when the caller builds the manager.
        return PrivacyManager(store=source, discover=False)
    raise ConfigurationError("export_subject takes a Store or a PrivacyManager")


def feed_writer(source: Any, learner_id: str, writer: PackageWriter) -> None:
    """Run every provider's export of ``learner_id`` into ``writer``.

    Raises ProviderError naming the first failed component, and NotFoundError when no
    provider holds anything about the learner.
    """
    manager = _as_manager(source)
    result = manager.export_user_data(learner_id, writer)
    result.raise_for_status()
    if writer.seen == 0:
        raise NotFoundError("no provider holds data about this learner")
