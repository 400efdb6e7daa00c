"""The provider protocols, mirroring Moodle's ``core_privacy`` interfaces.

A component (an LMS module, a plugin, a store) implements one provider object with a
``component`` name. Moodle's interfaces map as follows:

=====================================  ===========================================
Moodle                                 learnprivacy
=====================================  ===========================================
``metadata\\null_provider``             :class:`NullProvider`
``metadata\\provider``                  :class:`MetadataProvider`
``request\\plugin\\provider``            :class:`RequestProvider`
``request\\core_userlist_provider``     :class:`UserListProvider`
``request\\user_preference_provider``   :class:`UserPreferenceProvider`
=====================================  ===========================================

Unlike Moodle's static methods, providers are objects: they hold their own connection.
The protocols are structural (``typing.Protocol``): a class matches by having the methods,
and may also subclass them explicitly to document the intent.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from learnprivacy.providers._contexts import (
    ApprovedContextList,
    ApprovedUserList,
    Context,
    ContextList,
    UserList,
)
from learnprivacy.providers._metadata import MetadataCollection
from learnprivacy.providers.writer import ContentWriter

__all__ = [
    "MetadataProvider",
    "NullProvider",
    "RequestProvider",
    "UserListProvider",
    "UserPreferenceProvider",
]


@runtime_checkable
class NullProvider(Protocol):
    """A component that stores no personal data says why (Moodle's ``null_provider``)."""

    component: str

    def get_reason(self) -> str:
        """Plain text (or a string id) explaining why no personal data is stored."""
        ...


@runtime_checkable
class MetadataProvider(Protocol):
    """A component that describes the personal data it stores or sends."""

    component: str

    def get_metadata(self, collection: MetadataCollection) -> MetadataCollection:
        """Add this component's items to ``collection`` and return it."""
        ...


@runtime_checkable
class RequestProvider(MetadataProvider, Protocol):
    """A component that can find, export and delete one user's data.

    Every method must be idempotent: deleting data that is already gone succeeds and
    changes nothing, so a failed request can simply be run again.
    """

    def get_contexts_for_userid(self, user_id: str) -> ContextList:
        """The contexts where this component holds data about ``user_id``."""
        ...

    def export_user_data(
        self, approved_contexts: ApprovedContextList, writer: ContentWriter
    ) -> None:
        """Write the user's data in the approved contexts into ``writer``."""
        ...

    def delete_data_for_all_users_in_context(self, context: Context) -> None:
        """Delete every user's data in ``context`` (the context itself is going away)."""
        ...

    def delete_data_for_user(self, approved_contexts: ApprovedContextList) -> None:
        """Delete the user's data in the approved contexts, and nobody else's."""
        ...


@runtime_checkable
class UserListProvider(Protocol):
    """A component that can list and delete the users with data in one context."""

    component: str

    def get_users_in_context(self, userlist: UserList) -> None:
        """Add to ``userlist`` every user with data in ``userlist.context``."""
        ...

    def delete_data_for_users(self, approved_userlist: ApprovedUserList) -> None:
        """Delete the data of the approved users in the approved context."""
        ...


@runtime_checkable
class UserPreferenceProvider(Protocol):
    """A component that stores user preferences outside any context."""

    component: str

    def export_user_preferences(self, user_id: str, writer: ContentWriter) -> None:
        """Write the user's preferences into ``writer``."""
        ...
