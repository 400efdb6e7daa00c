"""Subject exports without a pseudonym key: stable per store, unlinkable across stores."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from examples.toy_lms import ForumProvider, ToyLMS

from learnprivacy.crypto import Keyring, Pseudonymiser
from learnprivacy.export import ExportPackage, XapiProfile, export_subject, read_package
from learnprivacy.export._subject import SUBJECT_REFERENCE_DOMAIN
from learnprivacy.providers import PrivacyManager
from learnprivacy.records import Certificate, Progress, Score
from learnprivacy.store import Store
from tests import NOW, account, days, record_of

UTC = dt.UTC
T0 = dt.datetime(2024, 1, 8, 9, 0, tzinfo=UTC)


def _records(learner_id: str) -> list[Any]:
    return [
        account(learner_id, given_name="Léa", family_name="Dupont", created_at=T0),
        record_of(
            learner_id,
            Progress,
            "P1",
            course_id="SST-2024",
            recorded_at=T0 + days(3),
            score=Score(raw=17, min=0, max=20),
        ),
        record_of(learner_id, Certificate, "CERT", course_id="SST-2024", issued_at=T0 + days(4)),
    ]


def _open_store(path: Path, master_key: bytes) -> Store:
    return Store(f"sqlite:///{path}", keyring=Keyring(master_key), clock=lambda: NOW)


@pytest.fixture
def master_key() -> bytes:
    """The master key of the store under test."""
    return os.urandom(32)


@pytest.fixture
def store(tmp_path: Path, master_key: bytes) -> Iterator[Store]:
    """A real SQLite store holding two learners."""
    with _open_store(tmp_path / "lms.db", master_key) as opened:
        opened.add_all(_records("L1") + _records("L2"))
        yield opened


class _Exports:
    """Numbered export paths in one directory."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.count = 0

    def __call__(self, source: Any, learner_id: str = "L1", **options: Any) -> ExportPackage:
        self.count += 1
        out = self.directory / f"export-{self.count}.zip"
        export_subject(source, learner_id, out, now=NOW, **options)
        return read_package(out)


@pytest.fixture
def export(tmp_path: Path) -> _Exports:
    """Export a learner to a fresh zip and read it back."""
    directory = tmp_path / "exports"
    directory.mkdir()
    return _Exports(directory)


def _actors(package: ExportPackage) -> set[str]:
    return {s["actor"]["account"]["name"] for s in package.statements()}


def _statement_ids(package: ExportPackage) -> list[str]:
    return sorted(s["id"] for s in package.statements())


def test_two_exports_from_one_store_share_their_pseudonyms(store: Store, export: _Exports) -> None:
    """Without a key, the subject reference, the xAPI actor and so the statement ids are
    the same in every export of a learner from the same store."""
    first, second = export(store), export(store)
    assert first.subject_reference == second.subject_reference
    assert _actors(first) == _actors(second)
    assert len(_actors(first)) == 1
    assert _statement_ids(first) == _statement_ids(second)
    assert len(_statement_ids(first)) == 2


def test_the_pseudonyms_are_the_keyrings(store: Store, export: _Exports) -> None:
    """The reference comes from keyring.pseudonymiser("subject-export") and the actor
    from the profile's pseudonym domain; the learner id itself appears in neither."""
    package = export(store)
    keyring = store.keyring
    assert package.subject_reference == keyring.pseudonymiser(SUBJECT_REFERENCE_DOMAIN).pseudonym(
        "L1"
    )
    assert _actors(package) == {keyring.pseudonymiser("xapi-actor").pseudonym("L1")}
    assert package.subject_reference not in _actors(package)


def test_learners_and_domains_get_different_pseudonyms(store: Store, export: _Exports) -> None:
    """Two learners differ, and another xAPI pseudonym domain gives another actor."""
    one, two = export(store, "L1"), export(store, "L2")
    assert one.subject_reference != two.subject_reference
    assert _actors(one).isdisjoint(_actors(two))
    other = export(store, xapi_profile=XapiProfile(pseudonym_domain="lrs-b"))
    assert _actors(other).isdisjoint(_actors(one))
    assert other.subject_reference == one.subject_reference


def test_two_stores_give_unrelated_pseudonyms(
    tmp_path: Path, store: Store, master_key: bytes, export: _Exports
) -> None:
    """Another store, even on the same master key, gives the same learner other
    pseudonyms: its key table holds another blind-index key. Statement ids name the
    event (LMS home page, record, verb, instant), not the actor: the same records under
    the same home page keep their ids, so an LRS refuses the other actor as a conflict
    rather than storing the event twice."""
    with _open_store(tmp_path / "other.db", master_key) as other:
        other.add_all(_records("L1"))
        mine, theirs = export(store), export(other)
    assert mine.subject_reference != theirs.subject_reference
    assert _actors(mine).isdisjoint(_actors(theirs))
    assert _statement_ids(mine) == _statement_ids(theirs)


def test_pseudonyms_survive_rotation_and_reopening(
    tmp_path: Path, store: Store, export: _Exports
) -> None:
    """After keyring.rotate(), and in a store reopened on the new master key, exports
    carry the same pseudonyms and statement ids as before."""
    before = export(store)
    new_master = os.urandom(32)
    store.keyring.rotate(new_master)
    after_rotation = export(store)
    store.close()
    with _open_store(tmp_path / "lms.db", new_master) as reopened:
        after_reopening = export(reopened)
    for package in (after_rotation, after_reopening):
        assert package.subject_reference == before.subject_reference
        assert _statement_ids(package) == _statement_ids(before)


def test_a_manager_built_with_the_store_uses_its_keyring(store: Store, export: _Exports) -> None:
    """PrivacyManager(store=...) exports with the same pseudonyms as the store itself."""
    manager = PrivacyManager(store=store, discover=False)
    assert export(manager).subject_reference == export(store).subject_reference
    assert _statement_ids(export(manager)) == _statement_ids(export(store))


def test_without_a_store_each_export_draws_its_own_key(tmp_path: Path, export: _Exports) -> None:
    """A manager with no store behind it has no keyring: each export gets a random key,
    so two exports share no pseudonym."""
    lms = ToyLMS(tmp_path / "toy.sqlite")
    ForumProvider(lms).make_user_data("L1")
    manager = PrivacyManager([ForumProvider(lms)], discover=False)
    first, second = export(manager), export(manager)
    assert first.subject_reference != second.subject_reference


def test_a_manager_given_the_store_provider_uses_the_stores_keyring(
    store: Store, export: _Exports
) -> None:
    """The store's provider passed explicitly counts as the store: its keyring is used."""
    from learnprivacy.providers import StoreProvider

    manager = PrivacyManager([StoreProvider(store)], discover=False)
    assert export(manager).subject_reference == export(store).subject_reference


def test_an_explicit_key_still_wins(store: Store, export: _Exports) -> None:
    """pseudonym_key= is used as before, whatever the store's keyring."""
    key = bytes(range(32))
    package = export(store, pseudonym_key=key)
    expected = Pseudonymiser(key, domain=SUBJECT_REFERENCE_DOMAIN).pseudonym("L1")
    assert package.subject_reference == expected
    assert package.subject_reference != export(store).subject_reference
