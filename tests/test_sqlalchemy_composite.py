"""Models whose primary key has several columns: binding, restriction, erasure,
anonymisation, sweeps, export, lookups and migrate-encrypt, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import json
import os
import sqlite3
import subprocess
import sys
import textwrap
import zipfile
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Date, create_engine, select, text
from sqlalchemy.orm import Mapped, Session, mapped_column

import learnprivacy.sqlalchemy as lps
from learnprivacy import DataCategory, LawfulBasis
from learnprivacy._inplace import binding_context, row_key
from learnprivacy.crypto import Keyring
from learnprivacy.errors import (
    ConfigurationError,
    DecryptionError,
    RestrictedRecordError,
)
from learnprivacy.retention import Action, Period, RetentionRule, Schedule, Trigger
from tests import NOW
from tests.inplace_models import bound_composite, composite_models, declarative_models, new_base

MASTER = bytes(range(32))
LONG_AGO = dt.datetime(2023, 1, 10, tzinfo=dt.UTC)
VECTORS = Path(__file__).parent / "vectors"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def app(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SimpleNamespace]:
    """The composite-key models bound on SQLite or on a real PostgreSQL."""
    yield from bound_composite(request, tmp_path, MASTER)


def _fill(app: SimpleNamespace) -> None:
    m = app.m
    with Session(app.engine) as s:
        s.add(m.User(id="u1", name="Ana", last_login_at=NOW))
        s.add(m.User(id="u2", name="Bob", last_login_at=NOW))
        s.flush()
        s.add(m.Enrolment(user_id="u1", course_id="c1", note="keen", enrolled_at=LONG_AGO))
        s.add(m.Enrolment(user_id="u1", course_id="c2", note="absent", enrolled_at=NOW))
        s.add(m.Enrolment(user_id="u2", course_id="c1", note="keen", enrolled_at=NOW))
        s.add(m.Submission(course_id="a/b", slot=1, learner_id="u1", answer="forty-two"))
        s.add(m.Submission(course_id="a", slot=1, learner_id="u1", answer="seven"))
        s.commit()


def _raw(app: SimpleNamespace, sql: str) -> list[tuple[object, ...]]:
    with app.engine.connect() as c:
        return [tuple(r) for r in c.execute(text(sql))]


# -- the key's text ---------------------------------------------------------------------


def test_row_key_of_one_column_is_unchanged() -> None:
    """Tokens of one-column keys stay bound as before: the key's own text."""
    assert row_key("u1") == "u1"
    assert row_key(7) == "7"
    assert binding_context("users", "u/1", "email") == "users/u/1/email"


def test_separator_in_a_key_part_does_not_collide() -> None:
    """Attack: parts holding the separator, a length or a slash name distinct keys."""
    pairs = [
        (("a,1:b", "c"), ("a", "b,1:c")),
        (("a/b", "c"), ("a", "b/c")),
        (("1:a", "b"), ("1", "a,1:b")),
        (("", "a"), ("a", "")),
    ]
    for first, second in pairs:
        assert row_key(first) != row_key(second)
        assert binding_context("t", first, "c") != binding_context("t", second, "c")


@given(
    st.lists(st.one_of(st.text(), st.integers()), min_size=2, max_size=4),
    st.lists(st.one_of(st.text(), st.integers()), min_size=2, max_size=4),
)
def test_row_key_is_injective(first: list[object], second: list[object]) -> None:
    """Two keys of several parts have the same text only when their parts' texts match."""
    if [str(p) for p in first] != [str(p) for p in second]:
        assert row_key(tuple(first)) != row_key(tuple(second))


# -- writing, reading, binding ---------------------------------------------------------------


def test_round_trip_and_lookups(app: SimpleNamespace) -> None:
    """Tokens at rest, clear values on load, by ``get``, column selects and blind index."""
    _fill(app)
    m = app.m
    raw = _raw(app, "SELECT note, note_bidx FROM enrolments")
    assert all(str(v).startswith("lp1.") for v, _ in raw)
    with Session(app.engine) as s:
        assert s.get(m.Enrolment, ("u1", "c2")).note == "absent"
        notes = s.execute(
            select(m.Enrolment.course_id, m.Enrolment.note).where(m.Enrolment.user_id == "u1")
        ).all()
        assert sorted(tuple(r) for r in notes) == [("c1", "keen"), ("c2", "absent")]
        found = app.privacy.find(s, m.Enrolment.note, "KEEN")
        assert sorted((e.user_id, e.course_id) for e in found) == [("u1", "c1"), ("u2", "c1")]
        assert s.get(m.Submission, ("a/b", 1)).answer == "forty-two"
        enrolment = s.get(m.Enrolment, ("u1", "c1"))
        enrolment.motto = "carpe diem"
        s.commit()
    with Session(app.engine) as s:
        assert s.get(m.Enrolment, ("u1", "c1")).motto == "carpe diem"


def test_token_swapped_between_rows_sharing_a_key_column_fails(app: SimpleNamespace) -> None:
    """Attack: the same learner's tokens, moved between ``(u1, c1)`` and ``(u1, c2)``."""
    _fill(app)
    with app.engine.begin() as c:
        c.execute(
            text(
                "UPDATE enrolments SET note = (SELECT note FROM enrolments"
                " WHERE user_id = 'u1' AND course_id = 'c1')"
                " WHERE user_id = 'u1' AND course_id = 'c2'"
            )
        )
    with Session(app.engine) as s, pytest.raises(DecryptionError, match=r"enrolments\.note"):
        s.get(app.m.Enrolment, ("u1", "c2"))


def test_token_moved_between_keys_a_separator_would_merge(app: SimpleNamespace) -> None:
    """Attack: rows ``("a/b", 1)`` and ``("a", 1)`` of one learner; and a key part holding
    the separator, ``("x,1:y", 1)`` against ``("x", ...)``: no token opens in the other."""
    _fill(app)
    m = app.m
    with Session(app.engine) as s:
        s.add(m.Submission(course_id="x,1:1", slot=2, learner_id="u1", answer="first"))
        s.add(m.Submission(course_id="x", slot=12, learner_id="u1", answer="second"))
        s.commit()
    # ("x,1:1", 2) -> "5:x,1:1,1:2"; ("x", 12) -> "1:x,2:12": a naive "x,1:1" + "," + "2"
    # would be "x,1:1,2", and "x" + "," + "1:12"... the lengths keep every key apart.
    for target, source in ((("x", 12), ("x,1:1", 2)), (("a", 1), ("a/b", 1))):
        with app.engine.begin() as c:
            c.execute(
                text(
                    "UPDATE submissions SET answer = (SELECT answer FROM submissions"
                    " WHERE course_id = :sc AND slot = :ss) WHERE course_id = :tc AND slot = :ts"
                ),
                {"sc": source[0], "ss": source[1], "tc": target[0], "ts": target[1]},
            )
        with Session(app.engine) as s, pytest.raises(DecryptionError, match="submissions"):
            s.get(m.Submission, target)


def test_single_key_tokens_written_before_still_open(tmp_path: Path) -> None:
    """Tokens written by the code before keys of several columns (a key holding ``/``
    too) open unchanged: no re-encryption is needed."""
    for name in ("app", "keys"):
        connection = sqlite3.connect(tmp_path / f"{name}.db")
        connection.executescript((VECTORS / f"inplace_single_key_{name}.sql").read_text())
        connection.close()
    models = declarative_models()
    privacy = lps.LearnPrivacy(
        models.Base,
        keyring=Keyring.from_master_key(MASTER),
        keys=f"sqlite:///{tmp_path / 'keys.db'}",
    )
    engine = create_engine(f"sqlite:///{tmp_path / 'app.db'}")
    try:
        with Session(engine) as s:
            user = s.get(models.User, "u/1")
            assert (user.email, user.name) == ("ana@example.org", "Ana")
            assert s.get(models.Post, 7).body == "hello/world"
            assert privacy.find(s, models.User.email, "ANA@example.org") == [user]
    finally:
        privacy.close()
        engine.dispose()


def test_bad_composite_declarations(tmp_path: Path) -> None:
    """A personal key column, or a key part that is neither text nor an integer."""

    Base = new_base()

    class Day(Base):
        __tablename__ = "days"
        __privacy__ = lps.Privacy(subject="user_id", purpose="p", basis=LawfulBasis.CONTRACT)
        user_id: Mapped[str] = mapped_column(primary_key=True)
        day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
        note: Mapped[str] = lps.personal(DataCategory.LEARNING, "Note")

    with pytest.raises(ConfigurationError, match=r"days\.day: .* text or integers"):
        lps.LearnPrivacy(Base, keyring=Keyring.from_master_key(MASTER), keys="sqlite://")


# -- restriction, erasure, anonymisation, sweeps, export ----------------------------------


def test_restriction_of_one_row_leaves_its_sibling(app: SimpleNamespace) -> None:
    """Restricting ``(u1, c1)`` hides it and refuses its update; ``(u1, c2)`` is untouched."""
    _fill(app)
    m, privacy = app.m, app.privacy
    with Session(app.engine) as s:
        row = s.get(m.Enrolment, ("u1", "c1"))
        assert privacy.restrict(s, row, reason="disputed", now=NOW)
        s.commit()
    with Session(app.engine) as s:
        visible = s.scalars(select(m.Enrolment).where(m.Enrolment.user_id == "u1")).all()
        assert [e.course_id for e in visible] == ["c2"]
        assert s.get(m.Enrolment, ("u1", "c1")) is None
        hidden = s.get(m.Enrolment, ("u1", "c1"), execution_options={"include_restricted": True})
        assert privacy.is_restricted(s, hidden)
        assert not privacy.is_restricted(s, s.get(m.Enrolment, ("u1", "c2")))
        hidden.note = "changed"
        with pytest.raises(RestrictedRecordError):
            s.flush()
        s.rollback()
        row = s.get(m.Enrolment, ("u1", "c1"), execution_options={"include_restricted": True})
        assert privacy.lift_restriction(s, row, now=NOW)
        s.commit()
    with Session(app.engine) as s:
        assert s.get(m.Enrolment, ("u1", "c1")).note == "keen"


def test_erasure_removes_every_row_and_names_no_learner(app: SimpleNamespace) -> None:
    """An erasure request deletes every composite-key row of the learner; the audit
    entries name keys by the learner's reference, never by the learner id."""
    _fill(app)
    m, privacy = app.m, app.privacy
    with Session(app.engine) as s:
        report = privacy.erase_subject(s, "u1", now=NOW)
        s.commit()
    assert report.erased == 5
    assert _raw(app, "SELECT user_id, course_id FROM enrolments") == [("u2", "c1")]
    assert _raw(app, "SELECT count(*) FROM submissions") == [(0,)]
    assert privacy.keyring.is_shredded("u1", "contract")
    with Session(app.engine) as s:
        assert s.get(m.Enrolment, ("u2", "c1")).note == "keen"
        entries = list(privacy.audit(s).entries())
    details = json.dumps([e.details for e in entries])
    assert '"u1"' not in details
    assert privacy.subject_ref("u1") in details
    assert '"c2"' in details
    assert '"a/b"' in details
    # A second request does nothing and writes nothing.
    with Session(app.engine) as s:
        again = privacy.erase_subject(s, "u1", now=NOW)
        s.commit()
        assert again.erased == 0
        assert len(list(privacy.audit(s).entries())) == len(entries)


def test_erasure_rolled_back_loses_nothing(app: SimpleNamespace) -> None:
    """Attack: the caller rolls back; every row and key is still there."""
    _fill(app)
    with Session(app.engine) as s:
        app.privacy.erase_subject(s, "u1", now=NOW)
        s.rollback()
    with Session(app.engine) as s:
        assert s.get(app.m.Enrolment, ("u1", "c2")).note == "absent"


def _anonymise(model: type[Any]) -> Schedule:
    return Schedule(
        {model: RetentionRule(Period.parse("P1Y"), Trigger.CREATED, action=Action.ANONYMISE)}
    )


def test_sweep_anonymises_composite_rows_whose_learner_is_outside_the_key(
    app: SimpleNamespace,
) -> None:
    """Retention on composite-key rows: an old submission loses its answer and its
    learner, a rerun changes nothing, and it leaves the learner's rows."""
    _fill(app)
    m, privacy = app.m, app.privacy
    with Session(app.engine) as s:
        s.get(m.Submission, ("a", 1)).submitted_at = LONG_AGO
        s.get(m.Submission, ("a/b", 1)).submitted_at = NOW
        s.commit()
        report = privacy.sweep(s, _anonymise(m.Submission), now=NOW, batch_size=1)
    assert (report.anonymised, report.erased) == (1, 0)
    sql = "SELECT course_id, slot, learner_id, answer FROM submissions"
    raw = {(c, n): (who, a) for c, n, who, a in _raw(app, sql)}
    assert raw[("a", 1)][0] is None
    assert raw[("a/b", 1)][0] == "u1"
    assert not str(raw[("a", 1)][1]).startswith("lp1.A")
    with Session(app.engine) as s:
        assert privacy.sweep(s, _anonymise(m.Submission), now=NOW).anonymised == 0
        rows = [row for spec, row in privacy.iter_rows(s, "u1") if spec.table == "submissions"]
    assert [(r["course_id"], r["slot"]) for r in rows] == [("a/b", 1)]


@pytest.mark.parametrize("dry_run", [False, True])
def test_sweep_refuses_to_anonymise_rows_keyed_by_their_learner(
    app: SimpleNamespace, dry_run: bool
) -> None:
    """The attack: enrolments are keyed ``(user_id, course_id)``. The old code cleared
    the note, kept ``u1`` in the key and reported the row anonymised. The sweep is now
    refused before anything is written, naming table and column."""
    _fill(app)
    before = _raw(app, "SELECT * FROM enrolments ORDER BY user_id, course_id")
    with Session(app.engine) as s, pytest.raises(ConfigurationError) as refused:
        app.privacy.sweep(s, _anonymise(app.m.Enrolment), now=NOW, dry_run=dry_run)
    assert "enrolments.user_id" in str(refused.value)
    assert "part of the table's key" in str(refused.value)
    assert _raw(app, "SELECT * FROM enrolments ORDER BY user_id, course_id") == before


def test_sweep_erases_composite_rows(app: SimpleNamespace) -> None:
    _fill(app)
    erase_old = Schedule({app.m.Enrolment: RetentionRule(Period.parse("P1M"), Trigger.CREATED)})
    with Session(app.engine) as s:
        assert app.privacy.sweep(s, erase_old, now=NOW).erased == 1  # (u1, c1)
        erased = app.privacy.sweep(s, erase_old, now=NOW + dt.timedelta(days=90))
    assert erased.erased == 2  # (u1, c2) and (u2, c1)
    assert _raw(app, "SELECT user_id, course_id FROM enrolments") == []


def test_export_carries_every_key_column(app: SimpleNamespace) -> None:
    """The learner's package lists composite-key rows with each key part, decrypted."""
    _fill(app)
    out = app.path / "u1.zip"
    with Session(app.engine) as s:
        app.privacy.export_subject(s, "u1", out, now=NOW)
    with zipfile.ZipFile(out) as package:
        table = json.loads(package.read("data/lms/enrolments.json"))
    assert table["fields"]["course_id"] == "Record identifier"
    assert table["fields"]["user_id"] == "Learner identifier"
    rows = [(r["user_id"], r["course_id"], r["note"]) for r in table["records"]]
    assert rows == [("u1", "c1", "keen"), ("u1", "c2", "absent")]


# -- migrate-encrypt -----------------------------------------------------------------------

_KILLED_RUN = textwrap.dedent(
    """
    import os, signal, sys
    from sqlalchemy import create_engine
    import learnprivacy.sqlalchemy as lps
    from learnprivacy.crypto import Keyring
    from tests.inplace_models import composite_models

    app_db, keys_db = sys.argv[1:3]
    models = composite_models()
    privacy = lps.LearnPrivacy(
        models.Base, keyring=Keyring.from_master_key(bytes(range(32))), keys=keys_db
    )

    def progress(table, done, total):
        if table == "enrolments" and done >= 10:
            os.kill(os.getpid(), signal.SIGKILL)

    lps.migrate_encrypt(
        privacy, create_engine(app_db), models.Enrolment, batch_size=4, progress=progress
    )
    """
)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def urls(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str]:
    """An application database and a key database, empty, on SQLite or PostgreSQL."""
    if request.param == "postgres":
        server = request.getfixturevalue("postgres_server")
        return server.create_database(), server.create_database()
    return f"sqlite:///{tmp_path / 'app.db'}", f"sqlite:///{tmp_path / 'keys.db'}"


def test_migrate_encrypt_killed_half_way_resumes(urls: tuple[str, str], tmp_path: Path) -> None:
    """Attack: a plaintext enrolments table (key parts holding ``,`` ``:`` ``/``) is
    encrypted by a process SIGKILLed after a few batches; the rerun finishes in key order,
    skips what was done, and every value verifies under its full key."""
    app_db, keys_db = urls
    engine = create_engine(app_db)
    stamp = "DATETIME" if engine.dialect.name == "sqlite" else "TIMESTAMP"
    with engine.begin() as c:
        c.execute(
            text(f"CREATE TABLE users (id VARCHAR PRIMARY KEY, name TEXT, last_login_at {stamp})")
        )
        c.execute(
            text(
                "CREATE TABLE enrolments (user_id VARCHAR, course_id VARCHAR, note TEXT NOT NULL,"
                f" note_bidx VARCHAR(48), motto TEXT, enrolled_at {stamp},"
                " PRIMARY KEY (user_id, course_id))"
            )
        )
        for i in range(3):
            for j, course in enumerate(["c", "c,1:x", "c/y", "d"]):
                for k in range(2):
                    c.execute(
                        text(
                            "INSERT INTO enrolments (user_id, course_id, note) VALUES (:u, :c, :n)"
                        ),
                        {"u": f"u{i}", "c": f"{course}{k}", "n": f"note {i}-{j}-{k}"},
                    )
    total = 24
    done = subprocess.run(
        [sys.executable, "-c", _KILLED_RUN, app_db, keys_db],
        cwd=Path(__file__).parent.parent,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent)},
        capture_output=True,
        check=False,
    )
    assert done.returncode == -9, done.stderr.decode()
    with engine.connect() as c:
        tokens = c.execute(text("SELECT count(*) FROM enrolments WHERE note LIKE 'lp1.%'")).scalar()
    assert tokens == 12  # three batches of four committed before the kill
    models = composite_models()
    privacy = lps.LearnPrivacy(models.Base, keyring=Keyring.from_master_key(MASTER), keys=keys_db)
    try:
        reports = lps.migrate_encrypt(privacy, engine, models.Enrolment, batch_size=4)
        assert [(r.rows, r.encrypted, r.verified) for r in reports] == [(total, total - 12, True)]
        with Session(engine) as s:
            row = s.get(models.Enrolment, ("u1", "c,1:x0"))
            assert row.note == "note 1-1-0"
            found = privacy.find(s, models.Enrolment.note, "note 2-2-1")
            assert [(e.user_id, e.course_id) for e in found] == [("u2", "c/y1")]
        with engine.connect() as c:
            stored = c.execute(text("SELECT note FROM enrolments")).scalars().all()
        assert all(str(v).startswith("lp1.") for v in stored)
        engine.dispose()
        if app_db.startswith("sqlite"):
            assert b"note 1-1-0" not in (tmp_path / "app.db").read_bytes()
    finally:
        privacy.close()


def test_composite_restriction_condition_matches_row_key_in_sql(app: SimpleNamespace) -> None:
    """The key text computed in SQL equals the one written in Python (parts with
    separators, multibyte text): a restricted row is hidden, exactly that one."""
    m, privacy = app.m, app.privacy
    with Session(app.engine) as s:
        s.add(m.User(id="é,1:ü", name="Zoë"))
        s.flush()
        s.add(m.Enrolment(user_id="é,1:ü", course_id="ç/1", note="n1"))
        s.add(m.Enrolment(user_id="é,1:ü", course_id="ç", note="n2"))
        s.commit()
        row = s.get(m.Enrolment, ("é,1:ü", "ç/1"))
        privacy.restrict(s, row, reason="disputed", now=NOW)
        s.commit()
    with Session(app.engine) as s:
        assert [e.course_id for e in s.scalars(select(m.Enrolment)).all()] == ["ç"]
    with Session(app.engine) as s:
        report = privacy.erase_subject(s, "é,1:ü", now=NOW)
        s.commit()
    assert report.erased == 3
    assert privacy.keyring.is_shredded("é,1:ü", "contract")


@pytest.mark.postgres
def test_key_part_generated_by_the_database(postgres_server: Any) -> None:
    """A key ``(course_id, id)`` whose ``id`` PostgreSQL generates: the row is inserted,
    then its tokens are written bound to the full key in the same flush."""
    from sqlalchemy import Identity, Integer

    Base = new_base()

    class Message(Base):
        __tablename__ = "messages"
        __privacy__ = lps.Privacy(subject="learner_id", purpose="p", basis=LawfulBasis.CONTRACT)
        course_id: Mapped[str] = mapped_column(primary_key=True)
        id: Mapped[int] = mapped_column(Integer, Identity(), primary_key=True)
        learner_id: Mapped[str]
        body: Mapped[str] = lps.personal(DataCategory.COMMUNICATION, "Message")

    privacy = lps.LearnPrivacy(
        Base, keyring=Keyring.from_master_key(MASTER), keys=postgres_server.create_database()
    )
    engine = create_engine(postgres_server.create_database())
    Base.metadata.create_all(engine)
    try:
        with Session(engine) as s:
            s.add_all([Message(course_id="c1", learner_id="u1", body=f"hi {i}") for i in range(3)])
            s.commit()
        with engine.connect() as c:
            rows = c.execute(text("SELECT course_id, id, body FROM messages ORDER BY id")).all()
        assert all(str(body).startswith("lp1.A") for _, _, body in rows)
        with Session(engine) as s:
            assert s.get(Message, ("c1", rows[2][1])).body == "hi 2"
        with engine.begin() as c:
            c.execute(
                text("UPDATE messages SET body = :b WHERE id = :i"),
                {"b": rows[0][2], "i": rows[1][1]},
            )
        with Session(engine) as s, pytest.raises(DecryptionError, match="messages"):
            s.get(Message, ("c1", rows[1][1]))
    finally:
        privacy.close()
        engine.dispose()


def test_hold_on_one_composite_row(app: SimpleNamespace) -> None:
    """``Hold(record_id="2:u1,2:c1")`` keeps exactly the enrolment ``("u1", "c1")``."""
    from learnprivacy.retention import Hold

    _fill(app)
    hold = Hold("appeal 2026-7", record_type=app.m.Enrolment, record_id=row_key(("u1", "c1")))
    with Session(app.engine) as s:
        report = app.privacy.erase_subject(s, "u1", now=NOW, holds=[hold])
        s.commit()
    kept = {(o.record_type, o.record_id): o.action.value for o in report.outcomes}
    assert kept[("Enrolment", "2:u1,2:c1")] == "restrict"
    assert kept[("Enrolment", "2:u1,2:c2")] == "erase"
    rows = _raw(app, "SELECT user_id, course_id FROM enrolments ORDER BY user_id, course_id")
    assert rows == [("u1", "c1"), ("u2", "c1")]
