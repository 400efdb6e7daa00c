"""Find providers declared by installed packages (entry-point group ``learnprivacy.providers``).

A package declares its providers in its ``pyproject.toml``::

    [project.entry-points."learnprivacy.providers"]
    mod_forum = "mylms.forum.privacy:ForumPrivacyProvider"

Each entry point names a provider class or a factory callable taking no argument (the
manager calls it once), or a ready provider instance.
"""

from __future__ import annotations

import importlib.metadata

from learnprivacy.errors import ProviderError
from learnprivacy.providers._protocols import MetadataProvider, NullProvider

__all__ = ["ENTRY_POINT_GROUP", "discover_providers", "is_provider"]

#: The entry-point group scanned by :class:`PrivacyManager`.
ENTRY_POINT_GROUP = "learnprivacy.providers"


def is_provider(candidate: object) -> bool:
    """Whether ``candidate`` is a provider instance (not a class)."""
    if isinstance(candidate, type):
        return False
    return isinstance(candidate, NullProvider | MetadataProvider)


def discover_providers(group: str = ENTRY_POINT_GROUP) -> list[tuple[str, object]]:
    """Load every entry point of ``group``: ``(entry point name, provider)`` pairs.

    Sorted by entry-point name so the order does not depend on installation order. An entry
    point that cannot be loaded or does not give a provider raises ``ProviderError`` naming
    it: a provider that silently disappeared would leave its data out of every export and
    erasure.
    """
    found: list[tuple[str, object]] = []
    for entry_point in sorted(importlib.metadata.entry_points(group=group), key=lambda e: e.name):
        label = f"entry point {entry_point.name!r} ({entry_point.value})"
        try:
            target = entry_point.load()
            provider = target() if callable(target) and not is_provider(target) else target
        except Exception as exc:
            raise ProviderError(
                f"{label} could not be loaded: {type(exc).__name__}",
                component=entry_point.name,
            ) from exc
        if not is_provider(provider):
            raise ProviderError(
                f"{label} did not give a privacy provider", component=entry_point.name
            )
        found.append((entry_point.name, provider))
    return found
