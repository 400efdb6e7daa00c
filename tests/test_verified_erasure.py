"""Erasure verified after the fact: the manager asks every provider again after its delete,
and a deletion is COMPLETED only when nothing remains beyond what the law keeps."""

from __future__ import annotations

from pathlib import Path

import pytest
from examples.toy_lms import ForumProvider, ToyLMS

from learnprivacy.providers import ApprovedContextList, PrivacyManager
from learnprivacy.providers._results import RequestStatus
from learnprivacy.providers._store import StoreProvider
from learnprivacy.records import Invoice, Learner
from learnprivacy.store import Store
from tests.store_fixtures import learner, records_for


class DeletesNothing(ForumProvider):
    """Claims to delete and does nothing."""

    def delete_data_for_user(self, approved: ApprovedContextList) -> None:
        return None


class StoreThatForgets(StoreProvider):
    """A store provider whose erasure never reaches the store."""

    def delete_data_for_user(self, approved: ApprovedContextList) -> None:
        return None


@pytest.fixture
def store(sqlite_store: Store) -> Store:
    sqlite_store.add_all([learner("L1"), *records_for("L1")])
    sqlite_store.add_all([learner("L2"), *records_for("L2")])
    return sqlite_store


def test_a_delete_that_does_nothing_fails_naming_what_remains(tmp_path: Path) -> None:
    """The old manager said COMPLETED for a provider whose delete did nothing; now the
    request FAILED at verify_erasure, naming the component and the kinds left, no values."""
    lms = ToyLMS(tmp_path / "toy.sqlite")
    forum = DeletesNothing(lms)
    forum.make_user_data("ana")
    result = PrivacyManager([forum], discover=False).delete_data_for_user("ana")
    assert result.status is RequestStatus.FAILED
    outcome = result.outcome("toy_forum")
    assert outcome.step == "verify_erasure"
    assert set(outcome.remaining) == {"forum_posts", "forum_subscriptions"}
    assert all(count > 0 for count in outcome.remaining.values())
    assert "forum_posts" in str(outcome.error)
    assert "ana" not in str(result.to_dict())


def test_store_erasure_completes_with_what_the_law_keeps(store: Store) -> None:
    """Invoices and funding files under legal obligation stay (restricted) and the request
    is COMPLETED: they are what the law keeps, and nothing else of L1 remains."""
    manager = PrivacyManager(discover=False, store=store)
    result = manager.delete_data_for_user("L1")
    assert result.completed, result.to_dict()
    kept = {type(r).__name__ for r in store.records_of("L1", include_restricted=True)}
    assert kept == {"Invoice", "Funding"}
    assert StoreProvider(store).kept_by_law("L1") == {"Invoice": 1, "Funding": 1}
    assert store.records_of("L2")  # nobody else touched


def test_a_store_provider_that_forgets_fails(store: Store) -> None:
    """A store provider whose delete never reaches the store: FAILED, with the account,
    progress and the rest counted as remaining, invoices not (the law keeps them)."""
    result = PrivacyManager([StoreThatForgets(store)], discover=False).delete_data_for_user("L1")
    assert result.status is RequestStatus.FAILED
    remaining = result.outcome("learnprivacy_store").remaining
    assert remaining == {
        "AccessEvent": 1,
        "Certificate": 1,
        "Consent": 1,
        "Learner": 1,
        "Progress": 1,
    }


def test_records_restricted_under_art_18_are_still_erased(store: Store) -> None:
    """A learner whose records were all restricted (Art. 18) and who then asks for erasure
    is erased: the provider used to skip them as "nothing left to erase"."""
    assert store.restrict(learner_id="L1", reason="accuracy contested") == 7
    result = PrivacyManager(discover=False, store=store).delete_data_for_user("L1")
    assert result.completed
    assert store.get(Learner, "L1", include_restricted=True) is None
    assert store.get(Invoice, "L1-INV1", include_restricted=True) is not None
