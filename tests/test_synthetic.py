"""The synthetic training organisation used by the demo, docs and benchmarks."""

from __future__ import annotations

import datetime as dt

import pytest

from learnprivacy.errors import ValidationError
from learnprivacy.records import Learner
from learnprivacy.records._base import subject_of
from learnprivacy.synthetic import generate_organisation

NOW = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)


def test_same_seed_same_records_different_seed_different_records() -> None:
    """Generation is reproducible from (seed, now) and varies with the seed."""
    first = generate_organisation(now=NOW, seed=3, learners=50)
    assert first == generate_organisation(now=NOW, seed=3, learners=50)
    assert first != generate_organisation(now=NOW, seed=4, learners=50)


def test_every_record_belongs_to_a_generated_learner_and_ids_are_unique() -> None:
    """Foreign keys hold, ids are unique per type and no date lies after 'now'."""
    org = generate_organisation(now=NOW, learners=200)
    learner_ids = {learner.id for learner in org.learners}
    seen: set[tuple[str, str]] = set()
    for record in org.records():
        key = (type(record).__name__, record.id)
        assert key not in seen
        seen.add(key)
        assert subject_of(record) in learner_ids
        if isinstance(record, Learner):
            assert record.last_activity_at is not None
            assert record.created_at <= record.last_activity_at <= NOW
    counts = org.counts()
    assert counts["Learner"] == 200
    assert all(counts[name] > 0 for name in counts)


def test_contains_what_retention_is_about() -> None:
    """Some learners are long inactive and some contracts have ended, so sweeps have work."""
    org = generate_organisation(now=NOW, learners=300)
    inactive = [
        learner
        for learner in org.learners
        if learner.last_activity_at is not None
        and learner.last_activity_at < NOW - dt.timedelta(days=548)
    ]
    ended = [x for x in org.learners if x.contract_end_at and x.contract_end_at < NOW]
    assert len(inactive) > 30
    assert ended
    assert any(c.withdrawn_at is not None for c in org.consents)


def test_naive_now_is_refused() -> None:
    """The clock is a parameter and must be timezone-aware."""
    with pytest.raises(ValidationError):
        generate_organisation(now=dt.datetime(2026, 6, 1))
