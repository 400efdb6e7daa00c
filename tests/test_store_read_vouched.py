"""Reads skip a validator only where something else vouches for the value.

``_codec._checks`` lists what is skipped: an encrypted field's validator when its token
opened, a timestamp's ``aware_datetime`` when the column is not NULL, and the ids'
validators when a token of the row opened (its associated data binds both ids). These
tests tamper with the columns in SQL, on SQLite and PostgreSQL, where each skipped check
would have caught the change, and check that the read is still refused.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any, ClassVar

import attrs
import pytest
from sqlalchemy import update

from learnprivacy import DataCategory, LawfulBasis
from learnprivacy import _validators as v
from learnprivacy.errors import DecryptionError, ValidationError
from learnprivacy.records import Learner, not_personal, personal, register_record_type
from learnprivacy.store import Store
from tests.store_fixtures import learner


def _tamper(store: Store, cls: Any, record_id: str, **values: Any) -> None:
    table = store._table(cls).table
    with store._db.write() as connection:
        connection.execute(update(table).where(table.c.id == record_id).values(**values))


def _refused(store: Store, cls: Any, record_id: str, error: type[Exception]) -> None:
    """Every read of ``cls`` that meets the row fails with ``error``."""
    with pytest.raises(error):
        store.query(cls)
    with pytest.raises(error):
        store.get(cls, record_id)


@pytest.mark.parametrize("field", ["username", "email", "given_name", "family_name"])
def test_a_required_encrypted_field_set_to_null_is_refused(store: Store, field: str) -> None:
    """A NULL token opens nothing, so nothing vouches for the None it gives: the field's
    validator judges it (the read used to hand back a Learner without a username)."""
    store.add_all([learner("L1"), learner("L2")])
    _tamper(store, Learner, "L2", **{f"{field}_token": None})
    _refused(store, Learner, "L2", ValidationError)
    assert store.get(Learner, "L1") == learner("L1")


def test_optional_timestamps_and_fields_stay_optional(store: Store) -> None:
    written = [learner("L1", last_activity_at=None, organisation_id=None)]
    store.add_all(written)
    assert store.query(Learner) == written


def test_an_id_changed_in_sql_is_refused_by_the_tokens(store: Store) -> None:
    """A learner id rewritten to an e-mail address (which its validator refuses): the
    id's validator is skipped because the tokens bind the id, and they no longer open."""
    store.add_all([learner("L1"), learner("L2")])
    _tamper(store, Learner, "L2", id="l2.secret@example.org")
    with pytest.raises(DecryptionError):
        store.query(Learner)
    assert store.get(Learner, "L1") == learner("L1")


@attrs.frozen(kw_only=True)
class _ContractRecord:
    """What the test record types share: kept under the contract, an id, and the
    learner's id in clear (validated)."""

    key_scope: ClassVar[str] = "contract"

    id: str = not_personal(description="Record id", validator=v.identifier)
    learner_id: str = personal(
        category=DataCategory.ACCOUNT,
        description="Learner",
        encrypted=False,
        identifier=True,
        validator=v.learner_identifier,
    )


def _registered(cls: type[Any]) -> Iterator[Any]:
    """Register ``cls`` for one test."""
    register_record_type(cls)
    yield cls
    from learnprivacy.records import _base

    _base._REGISTRY.pop(cls.__name__, None)


@pytest.fixture
def note_type() -> Iterator[Any]:
    """A record type whose only encrypted field is optional."""

    @attrs.frozen(kw_only=True)
    class Note(_ContractRecord):
        processing_purpose: ClassVar[str] = "support"
        date_field: ClassVar[str] = "written_at"

        # not_personal() returns an attrs field spec, not a shared default value.
        written_at: dt.datetime = not_personal(description="When", validator=v.aware_datetime)  # noqa: RUF009
        # Personal, kept in clear: a nullable column (anonymisation empties it).
        seen_at: dt.datetime = personal(  # noqa: RUF009
            category=DataCategory.LEARNING,
            description="When the learner read it",
            encrypted=False,
            validator=v.aware_datetime,
        )
        body: str | None = personal(
            category=DataCategory.LEARNING,
            description="Text",
            default=None,
            validator=v.optional(v.non_empty_text),
        )
        basis: LawfulBasis = not_personal(description="Basis", default=LawfulBasis.CONSENT)  # noqa: RUF009

    yield from _registered(Note)


def _note(cls: Any, note_id: str, body: str | None) -> Any:
    at = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    return cls(id=note_id, learner_id="L1", written_at=at, seen_at=at, body=body)


@pytest.mark.parametrize("body", [None, "kept private"])
def test_a_required_timestamp_set_to_null_is_refused(
    note_type: Any, store: Store, body: str | None
) -> None:
    """The conversion vouches for a timestamp only when there is one: NULL in a required
    timestamp column that the database leaves nullable meets ``aware_datetime``."""
    store.add_all([learner("L1"), _note(note_type, "N1", body), _note(note_type, "N2", body)])
    _tamper(store, note_type, "N2", seen_at=None)
    _refused(store, note_type, "N2", ValidationError)
    assert store.get(note_type, "N1") == _note(note_type, "N1", body)


@pytest.mark.parametrize("bad_id", ["N\x01", " "])
def test_an_id_is_validated_when_no_token_vouches_for_it(
    note_type: Any, store: Store, bad_id: str
) -> None:
    """A row whose tokens are all NULL proves nothing about its ids: a bad record id
    written in SQL is refused by the id's validator."""
    store.add_all([learner("L1"), _note(note_type, "N1", None), _note(note_type, "N2", None)])
    _tamper(store, note_type, "N2", id=bad_id)
    with pytest.raises(ValidationError):
        store.query(note_type)
    assert store.get(note_type, "N1") == _note(note_type, "N1", None)


def test_a_learner_id_is_validated_when_no_token_vouches_for_it(
    note_type: Any, store: Store
) -> None:
    store.add_all([learner("L1"), _note(note_type, "N1", None)])
    _tamper(store, note_type, "N1", learner_id="someone@example.org")
    with pytest.raises(ValidationError):
        store.query(note_type)


def test_ids_changed_under_a_token_are_refused(note_type: Any, store: Store) -> None:
    """With a token in the row, a changed record id or a row moved to another learner no
    longer opens: the ids are bound to the token."""
    store.add_all([learner("L1"), learner("L2"), _note(note_type, "N1", "kept private")])
    assert store.query(note_type) == [_note(note_type, "N1", "kept private")]
    _tamper(store, note_type, "N1", learner_id="L2")
    with pytest.raises(DecryptionError):
        store.query(note_type)
    _tamper(store, note_type, "N1", learner_id="L1", id="N9")
    with pytest.raises(DecryptionError):
        store.query(note_type)


@pytest.fixture
def checked_type() -> Iterator[Any]:
    """A record type whose construction checks two fields together (it is read back by
    calling the class, every validator and the check run)."""

    @attrs.frozen(kw_only=True)
    class Loan(_ContractRecord):
        processing_purpose: ClassVar[str] = "library"
        date_field: ClassVar[str] = "lent_at"

        lent_at: dt.datetime = not_personal(description="Lent", validator=v.aware_datetime)  # noqa: RUF009
        due_at: dt.datetime = not_personal(description="Due", validator=v.aware_datetime)  # noqa: RUF009
        title: str = personal(category=DataCategory.LEARNING, description="Title")
        basis: LawfulBasis = not_personal(description="Basis", default=LawfulBasis.CONTRACT)  # noqa: RUF009

        def __attrs_post_init__(self) -> None:
            if self.due_at < self.lent_at:
                raise ValidationError("due before lent", field="Loan.due_at")

    yield from _registered(Loan)


def test_a_class_built_by_calling_it_reads_back_and_refuses_tampering(
    checked_type: Any, store: Store
) -> None:
    at = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    loan = checked_type(
        id="B1", learner_id="L1", lent_at=at, due_at=at + dt.timedelta(days=7), title="Secret"
    )
    store.add_all([learner("L1"), loan])
    assert store.query(checked_type) == [loan]
    _tamper(store, checked_type, "B1", due_at=dt.datetime(2023, 1, 1))
    _refused(store, checked_type, "B1", ValidationError)
    _tamper(store, checked_type, "B1", due_at=dt.datetime(2024, 2, 1), id="B2")
    with pytest.raises(DecryptionError):
        store.query(checked_type)
