"""The anonymisation re-check finds a blind index left in an anonymised row, on both of
its reads: since an instant (the driver's cursor) and over every anonymised row
(SQLAlchemy). A blind index of a username or e-mail address is a keyed hash anyone with
the index key can match against a guess: it identifies as well as the ciphertext."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from sqlalchemy import text

from learnprivacy import records as rec
from learnprivacy.crypto import Keyring
from learnprivacy.errors import IntegrityError
from learnprivacy.store import Store
from tests import sample
from tests.store_fixtures import keys_for

T = dt.datetime(2026, 3, 4, 9, 0, tzinfo=dt.UTC)
ACCOUNT = sample(rec.Learner, id="L1", username="ana-user", email="ana@example.org")


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    """Ana's account, anonymised at T."""
    with Store(
        store_url, keyring=Keyring.generate(), keys=keys_for(store_url), clock=lambda: T
    ) as opened:
        opened.add_all([ACCOUNT], now=T - dt.timedelta(days=3))
        yield opened


@pytest.mark.parametrize("column", ["username_bidx", "email_bidx"])
@pytest.mark.parametrize("since", [T, None], ids=["since", "all"])
def test_a_blind_index_left_in_an_anonymised_account_is_reported(
    store: Store, column: str, since: dt.datetime | None
) -> None:
    """Attack: the account's blind index is written back after its anonymisation; the
    re-check raises IntegrityError naming the field, never the value."""
    with store.engine.begin() as connection:
        kept = connection.execute(text(f"SELECT {column} FROM lp_learner")).scalar_one()
    assert kept is not None
    store.anonymise_records([ACCOUNT], now=T, reason="test")
    assert store.verify_anonymised([ACCOUNT], since=since) == 1
    with store.engine.begin() as connection:
        connection.execute(text(f"UPDATE lp_learner SET {column} = :kept"), {"kept": kept})
    field = column.removesuffix("_bidx")
    with pytest.raises(IntegrityError, match=rf"Learner\.{field} keeps its ciphertext") as caught:
        store.verify_anonymised([ACCOUNT], since=since)
    assert kept not in str(caught.value)
    assert "(1 row(s))" in str(caught.value)
