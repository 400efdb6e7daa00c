"""Moodle-style privacy providers: metadata, contexts, request providers and the manager.

An LMS registers one provider per component that stores personal data, as every Moodle
plugin implements ``core_privacy``:

- :class:`MetadataCollection` and its items describe what a component stores or sends,
  with purpose, lawful basis, data categories and retention;
- :class:`Context`, :class:`ContextList`, :class:`ApprovedContextList`,
  :class:`UserList` and :class:`ApprovedUserList` carry a request between the manager and
  the providers;
- :class:`NullProvider`, :class:`MetadataProvider`, :class:`RequestProvider`,
  :class:`UserListProvider` and :class:`UserPreferenceProvider` are the protocols;
- :class:`PrivacyManager` discovers providers (entry-point group
  ``learnprivacy.providers``), runs exports and deletions across all of them with a
  deadline each, and builds the GDPR Art. 30 :class:`Register` for a
  :class:`learnprivacy.Controller`;
- :class:`StoreProvider` is the provider of learnprivacy's own store.

Importing this package does not import SQLAlchemy.
"""

from learnprivacy._vocabulary import ContextLevel
from learnprivacy.providers._contexts import (
    ApprovedContextList,
    ApprovedUserList,
    Context,
    ContextList,
    UserList,
)
from learnprivacy.providers._manager import PrivacyManager
from learnprivacy.providers._metadata import MetadataCollection
from learnprivacy.providers._protocols import (
    MetadataProvider,
    NullProvider,
    RequestProvider,
    UserListProvider,
    UserPreferenceProvider,
)
from learnprivacy.providers._register import ClientProcessing, ProcessorRegister, Register
from learnprivacy.providers._store import StoreProvider
from learnprivacy.providers.writer import ContentWriter, DataDescription, MemoryWriter

__all__ = [
    "ApprovedContextList",
    "ApprovedUserList",
    "ClientProcessing",
    "ContentWriter",
    "Context",
    "ContextLevel",
    "ContextList",
    "DataDescription",
    "MemoryWriter",
    "MetadataCollection",
    "MetadataProvider",
    "NullProvider",
    "PrivacyManager",
    "ProcessorRegister",
    "Register",
    "RequestProvider",
    "StoreProvider",
    "UserList",
    "UserListProvider",
    "UserPreferenceProvider",
]
