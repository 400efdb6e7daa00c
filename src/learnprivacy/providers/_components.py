"""What the manager knows about each component, and how it classifies a provider."""

from __future__ import annotations

from collections.abc import Iterable

import attrs

from learnprivacy.errors import ConfigurationError, LearnPrivacyError, ProviderError
from learnprivacy.providers._contexts import ContextList
from learnprivacy.providers._protocols import (
    NullProvider,
    RequestProvider,
    UserListProvider,
    UserPreferenceProvider,
)

__all__ = ["ComponentInfo", "as_contextlist", "classify", "describe_error"]


@attrs.frozen(kw_only=True)
class ComponentInfo:
    """What the manager knows about one component.

    ``source`` says where the provider came from: ``"explicit"``, ``"store"`` or
    ``"entry point <name>"``. ``null_reason`` is set for null providers only.
    """

    component: str
    provider: object = attrs.field(repr=False, eq=False)
    source: str
    null_reason: str | None = None
    handles_requests: bool = False
    handles_userlists: bool = False
    handles_preferences: bool = False

    @property
    def is_null(self) -> bool:
        """Whether the component declares it stores no personal data."""
        return self.null_reason is not None


def classify(provider: object, source: str) -> ComponentInfo:
    """The view of ``provider``; ``ConfigurationError`` when it is no valid provider."""
    component = getattr(provider, "component", None)
    if not isinstance(component, str) or not component:
        raise ConfigurationError(f"provider from {source} has no component name")
    if isinstance(provider, NullProvider) and not isinstance(provider, RequestProvider):
        reason = provider.get_reason()
        if not isinstance(reason, str) or not reason.strip():
            raise ConfigurationError(f"null provider {component} gives no reason")
        return ComponentInfo(
            component=component, provider=provider, source=source, null_reason=reason
        )
    if not isinstance(provider, RequestProvider):
        # Moodle's compliance rule: a component storing personal data must both describe
        # it and be able to export and delete it.
        raise ConfigurationError(
            f"provider {component} is neither a null provider nor a request provider"
        )
    return ComponentInfo(
        component=component,
        provider=provider,
        source=source,
        handles_requests=True,
        handles_userlists=isinstance(provider, UserListProvider),
        handles_preferences=isinstance(provider, UserPreferenceProvider),
    )


def describe_error(step: str, exc: BaseException) -> str:
    """A message about ``exc`` raised in ``step`` that holds no personal value."""
    # Only learnprivacy's own errors promise messages free of personal values; any other
    # exception is reported by its type alone.
    if isinstance(exc, LearnPrivacyError):
        return f"{step} raised {type(exc).__name__}: {exc}"
    return f"{step} raised {type(exc).__name__}"


def as_contextlist(value: object, component: str) -> ContextList:
    """``value`` as a ContextList (any iterable of contexts is accepted)."""
    if isinstance(value, ContextList):
        return value
    if isinstance(value, Iterable) and not isinstance(value, str | bytes):
        return ContextList(value, component=component)
    raise ProviderError("get_contexts_for_userid must return a ContextList", component=component)
