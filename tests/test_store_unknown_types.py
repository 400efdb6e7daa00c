"""An erasure or a sweep run by a process that does not know one of the store's record
types refuses to run instead of reporting the learner erased.

Attack: the LMS registers its own record type (``Badge``, table ``lp_badge``) in the web
application, which stores a badge of Ana's. An operator then erases Ana from another
process (``learnprivacy erase`` in a shell, a worker) that never imported the module
registering ``Badge``. Before, the erasure saw only the types it knew: it reported Ana
erased, shredded her keys, and left her badge row with her learner id in clear; a sweep
in that process never looked at the badges either. Now both find the record table the
process does not know and raise ``ConfigurationError`` (naming the table, never a
value), with nothing changed.
"""

from __future__ import annotations

from typing import Any

import pytest

from learnprivacy.crypto import Keyring
from learnprivacy.errors import ConfigurationError
from learnprivacy.records import Learner, Progress
from learnprivacy.records import _base as registry
from learnprivacy.retention import Period, RetentionRule, Schedule, Trigger
from learnprivacy.store import Store
from tests.store_fixtures import MASTER_KEY, NOW, keys_for, learner, records_for


def _elsewhere(store: Store, url: str) -> Store:
    """The same store opened by a process that knows only the built-in types."""
    registry._REGISTRY.pop("Badge", None)
    return Store(
        url, keyring=Keyring.from_master_key(MASTER_KEY), keys=keys_for(url), clock=lambda: NOW
    )


@pytest.fixture
def url(store: Store, store_url: str, badge_type: Any) -> str:
    store.add_all([learner("L1"), *records_for("L1")])
    store.add(badge_type(id="B1", learner_id="L1", title="Gold star", earned_at=NOW))
    store.close()
    return store_url


def test_an_erasure_that_does_not_know_a_record_type_refuses(store: Store, url: str) -> None:
    with _elsewhere(store, url) as other:
        entries = len(other.audit)
        with pytest.raises(ConfigurationError, match="lp_badge"):
            other.erase_subject("L1", now=NOW)
        assert len(other.audit) == entries
        assert other.get(Learner, "L1") == learner("L1")


def test_a_sweep_that_does_not_know_a_record_type_refuses(store: Store, url: str) -> None:
    schedule = Schedule({Progress: RetentionRule(Period.parse("P1D"), Trigger.CREATED)})
    with _elsewhere(store, url) as other:
        entries = len(other.audit)
        with pytest.raises(ConfigurationError, match="lp_badge"):
            other.sweep(schedule, now=NOW)
        assert len(other.audit) == entries
