"""A token vault: the controlled way back from a pseudonym to the identifier."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Protocol, runtime_checkable

from learnprivacy.crypto._pseudonym import Pseudonymiser
from learnprivacy.errors import NotFoundError, ValidationError

__all__ = ["InMemoryVaultStore", "TokenVault", "VaultStore"]

#: Called as ``on_reidentify(domain, pseudonym, purpose)`` before an identifier is returned.
ReidentifyHook = Callable[[str, str, str], None]


@runtime_checkable
class VaultStore(Protocol):
    """Persistence of ``(domain, pseudonym) -> identifier`` mappings for a TokenVault.

    Keep it apart from the pseudonymous data (another database, schema or service with
    its own access rights): whoever reads both can re-identify everyone.
    """

    def put(self, domain: str, pseudonym: str, identifier: str) -> None:
        """Record (or confirm) that ``pseudonym`` stands for ``identifier`` in ``domain``."""
        ...

    def get(self, domain: str, pseudonym: str) -> str | None:
        """The identifier behind ``pseudonym`` in ``domain``, or ``None``."""
        ...

    def delete(self, domain: str, pseudonym: str) -> bool:
        """Remove the mapping; ``False`` if there was none."""
        ...


class InMemoryVaultStore:
    """A :class:`VaultStore` in a dict, for tests and single-process use. Thread-safe."""

    __slots__ = ("_lock", "_mappings")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._mappings: dict[tuple[str, str], str] = {}

    def __repr__(self) -> str:
        return f"InMemoryVaultStore(mappings={len(self._mappings)})"

    def put(self, domain: str, pseudonym: str, identifier: str) -> None:
        """Record that ``pseudonym`` stands for ``identifier`` in ``domain``."""
        with self._lock:
            self._mappings[domain, pseudonym] = identifier

    def get(self, domain: str, pseudonym: str) -> str | None:
        """The identifier behind ``pseudonym`` in ``domain``, or ``None``."""
        return self._mappings.get((domain, pseudonym))

    def delete(self, domain: str, pseudonym: str) -> bool:
        """Remove the mapping; ``False`` if there was none."""
        with self._lock:
            return self._mappings.pop((domain, pseudonym), None) is not None


class TokenVault:
    """Pseudonyms that the controller, and only the controller, can map back.

    Pseudonymous data (a funder's progress report) carries pseudonyms only. The vault,
    held by the controller in a separate store, remembers which identifier each
    pseudonym it issued stands for, so that a question about ``p1_...`` (a funder asking
    about a trainee's file) can be answered after a deliberate, recorded look-up::

        vault = TokenVault(Pseudonymiser(key, domain="funder-report"),
                           on_reidentify=audit_hook)
        row["learner"] = vault.pseudonym(learner.id)
        ...
        learner_id = vault.reidentify("p1_...", purpose="funder request 2024-117")

    ``on_reidentify(domain, pseudonym, purpose)`` runs before the identifier is returned;
    if it raises (the audit log is down), nothing is revealed. :meth:`forget` removes a
    learner's mapping, e.g. on erasure, after which their pseudonym no longer resolves.
    """

    __slots__ = ("_on_reidentify", "_pseudonymiser", "_store")

    def __init__(
        self,
        pseudonymiser: Pseudonymiser,
        *,
        store: VaultStore | None = None,
        on_reidentify: ReidentifyHook | None = None,
    ) -> None:
        """A vault issuing ``pseudonymiser``'s pseudonyms, remembered in ``store``."""
        if not isinstance(pseudonymiser, Pseudonymiser):
            raise ValidationError("pseudonymiser must be a Pseudonymiser", field="pseudonymiser")
        self._pseudonymiser = pseudonymiser
        self._store: VaultStore = InMemoryVaultStore() if store is None else store
        self._on_reidentify = on_reidentify

    def __repr__(self) -> str:
        return f"TokenVault(domain={self.domain!r}, store={self._store!r})"

    @property
    def domain(self) -> str:
        """The pseudonymiser's domain."""
        return self._pseudonymiser.domain

    def pseudonym(self, identifier: str) -> str:
        """The pseudonym of ``identifier``, recorded in the vault for re-identification."""
        pseudonym = self._pseudonymiser.pseudonym(identifier)
        self._store.put(self.domain, pseudonym, identifier)
        return pseudonym

    def reidentify(self, pseudonym: str, *, purpose: str) -> str:
        """The identifier behind ``pseudonym``; ``purpose`` says why (it is audited).

        Raises :class:`~learnprivacy.errors.NotFoundError` if this vault never issued the
        pseudonym or it was forgotten.
        """
        if type(purpose) is not str or not purpose.strip():
            raise ValidationError("purpose must be a non-empty str", field="purpose")
        if type(pseudonym) is not str:
            raise ValidationError("pseudonym must be a str", field="pseudonym")
        identifier = self._store.get(self.domain, pseudonym)
        if identifier is None:
            raise NotFoundError(f"no identifier for this pseudonym in domain {self.domain!r}")
        if self._on_reidentify is not None:
            self._on_reidentify(self.domain, pseudonym, purpose)
        return identifier

    def forget(self, identifier: str) -> bool:
        """Remove ``identifier``'s mapping; ``False`` if the vault held none."""
        return self._store.delete(self.domain, self._pseudonymiser.pseudonym(identifier))
