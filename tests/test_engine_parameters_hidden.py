"""A driver error never quotes the statement's parameters.

SQLAlchemy's error messages list the parameters of the failed statement by default:
learner ids, clear columns and blind indexes would reach logs and error reports. Every
engine the library creates from a URL hides them.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from learnprivacy.requests.sql import _engine_of
from learnprivacy.store import Store

SECRET = "ana.secret@example.org"


def _failing_statement(engine: sa.Engine) -> str:
    with pytest.raises(sa.exc.DBAPIError) as caught, engine.connect() as connection:
        connection.execute(sa.text("SELECT no_such_column WHERE :v = :v"), {"v": SECRET})
    return str(caught.value)


def test_the_store_engine_hides_parameters(store: Store) -> None:
    message = _failing_statement(store.engine)
    assert "no_such_column" in message  # the statement is still named
    assert SECRET not in message


def test_the_request_book_engine_hides_parameters(tmp_path: Path) -> None:
    engine = _engine_of(f"sqlite:///{tmp_path / 'requests.db'}")
    try:
        message = _failing_statement(engine)
    finally:
        engine.dispose()
    assert SECRET not in message
