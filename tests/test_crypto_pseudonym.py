"""Pseudonymiser and TokenVault: stable per domain, unlinkable across, reversible on record."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from learnprivacy.crypto import Pseudonymiser, TokenVault
from learnprivacy.crypto._vault import InMemoryVaultStore, VaultStore
from learnprivacy.errors import NotFoundError, ValidationError
from tests import KEY, names

PSEUDONYM = re.compile(r"p1_[A-Za-z0-9_-]{22}")


def test_pseudonyms_are_stable_prefixed_and_url_safe() -> None:
    """Same key, domain and identifier give the same 'p1_' + 22 URL-safe characters."""
    first = Pseudonymiser(KEY, domain="employer-report")
    second = Pseudonymiser(bytearray(KEY), domain="employer-report")
    assert first.pseudonym("L1") == second.pseudonym("L1")
    assert PSEUDONYM.fullmatch(first.pseudonym("L1"))
    assert first.pseudonym("L1") != first.pseudonym("L2")
    assert first.domain == "employer-report"


def test_domains_and_keys_are_unlinkable() -> None:
    """Another domain or another key gives an unrelated pseudonym."""
    employer = Pseudonymiser(KEY, domain="employer-report")
    funder = Pseudonymiser(KEY, domain="funder-report")
    rekeyed = Pseudonymiser(bytes(32), domain="employer-report")
    values = {employer.pseudonym("L1"), funder.pseudonym("L1"), rekeyed.pseudonym("L1")}
    assert len(values) == 3


def test_domain_and_identifier_boundary_is_unambiguous() -> None:
    """('ab', 'c') and ('a', 'bc') are different inputs, thanks to the length prefix."""
    assert Pseudonymiser(KEY, domain="ab").pseudonym("c") != Pseudonymiser(
        KEY, domain="a"
    ).pseudonym("bc")


@settings(max_examples=100)
@given(identifiers=st.sets(st.text(min_size=1), min_size=2, max_size=30))
def test_distinct_identifiers_get_distinct_pseudonyms(identifiers: set[str]) -> None:
    """No two identifiers share a pseudonym (128 bits leave no room for collisions)."""
    pseudonymiser = Pseudonymiser(KEY, domain="d")
    encodable = set()
    for identifier in identifiers:
        try:
            identifier.encode()
        except UnicodeEncodeError:
            continue
        encodable.add(identifier)
    assert len({pseudonymiser.pseudonym(i) for i in encodable}) == len(encodable)


def test_longer_pseudonyms_on_request() -> None:
    """size=32 keeps the whole HMAC; sizes under 16 bytes are refused."""
    long = Pseudonymiser(KEY, domain="d", size=32).pseudonym("L1")
    short = Pseudonymiser(KEY, domain="d").pseudonym("L1")
    assert len(long) == 3 + 43
    assert long.startswith(short[:20])
    for size in (15, 33, "16"):
        with pytest.raises(ValidationError):
            Pseudonymiser(KEY, domain="d", size=size)  # type: ignore[arg-type]


@pytest.mark.parametrize("key", [b"", bytes(31), "k" * 32, None])
def test_short_or_non_bytes_keys_are_refused(key: object) -> None:
    """Keys under 32 bytes, or not bytes, are a ValidationError."""
    with pytest.raises(ValidationError) as caught:
        Pseudonymiser(key, domain="d")  # type: ignore[arg-type]
    assert caught.value.field == "key"


def test_bad_domains_and_identifiers_are_refused() -> None:
    """Empty or non-str domains and identifiers are a ValidationError."""
    for domain in ("", None, b"d"):
        with pytest.raises(ValidationError):
            Pseudonymiser(KEY, domain=domain)  # type: ignore[arg-type]
    pseudonymiser = Pseudonymiser(KEY, domain="d")
    for identifier in ("", None, 42, b"L1"):
        with pytest.raises(ValidationError):
            pseudonymiser.pseudonym(identifier)  # type: ignore[arg-type]
    with pytest.raises(ValidationError) as caught:
        pseudonymiser.pseudonym("secret\udc80")
    assert "secret" not in str(caught.value)


def test_repr_names_the_domain_only() -> None:
    """The repr shows the domain, never the key."""
    assert repr(Pseudonymiser(KEY, domain="funder")) == "Pseudonymiser(domain='funder')"


# -- the token vault ---------------------------------------------------------------------


def test_vault_issues_the_pseudonymisers_pseudonyms_and_maps_them_back() -> None:
    """The vault's pseudonym is the plain one, and reidentify() returns the identifier."""
    pseudonymiser = Pseudonymiser(KEY, domain="funder-report")
    vault = TokenVault(pseudonymiser)
    pseudonym = vault.pseudonym("L1")
    assert pseudonym == pseudonymiser.pseudonym("L1")
    assert vault.reidentify(pseudonym, purpose="funder request 2024-117") == "L1"
    assert vault.domain == "funder-report"


def test_reidentification_is_announced_before_it_happens() -> None:
    """The hook sees domain, pseudonym and purpose; if it fails, nothing is revealed."""
    calls: list[tuple[str, str, str]] = []
    vault = TokenVault(Pseudonymiser(KEY, domain="d"), on_reidentify=lambda *a: calls.append(a))
    pseudonym = vault.pseudonym("L1")
    vault.reidentify(pseudonym, purpose="audit")
    assert calls == [("d", pseudonym, "audit")]

    def refuse(domain: str, pseudonym: str, purpose: str) -> None:
        raise RuntimeError("audit log unavailable")

    strict = TokenVault(Pseudonymiser(KEY, domain="d"), on_reidentify=refuse)
    strict.pseudonym("L1")
    with pytest.raises(RuntimeError):
        strict.reidentify(pseudonym, purpose="audit")


def test_reidentify_needs_a_purpose_and_a_known_pseudonym() -> None:
    """No purpose is a ValidationError; an unknown or forgotten pseudonym a NotFoundError."""
    vault = TokenVault(Pseudonymiser(KEY, domain="d"))
    pseudonym = vault.pseudonym("L1")
    for purpose in ("", "   ", None):
        with pytest.raises(ValidationError):
            vault.reidentify(pseudonym, purpose=purpose)  # type: ignore[arg-type]
    with pytest.raises(NotFoundError):
        vault.reidentify(Pseudonymiser(KEY, domain="d").pseudonym("L2"), purpose="x")
    assert vault.forget("L1")
    assert not vault.forget("L1")
    with pytest.raises(NotFoundError) as caught:
        vault.reidentify(pseudonym, purpose="x")
    assert "L1" not in str(caught.value)


def test_vaults_of_different_domains_do_not_share_mappings() -> None:
    """A vault only resolves pseudonyms of its own domain, even on a shared store."""
    store = InMemoryVaultStore()
    employer = TokenVault(Pseudonymiser(KEY, domain="employer"), store=store)
    funder = TokenVault(Pseudonymiser(KEY, domain="funder"), store=store)
    pseudonym = employer.pseudonym("L1")
    with pytest.raises(NotFoundError):
        funder.reidentify(pseudonym, purpose="x")
    assert isinstance(store, VaultStore)
    assert not names(repr(employer) + repr(store), "L1")


def test_vault_needs_a_pseudonymiser() -> None:
    """Anything but a Pseudonymiser is refused."""
    with pytest.raises(ValidationError):
        TokenVault(KEY)  # type: ignore[arg-type]
