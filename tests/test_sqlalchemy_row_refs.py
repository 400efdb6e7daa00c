"""Row states (restricted, anonymised) name rows by keyed reference, never by a key in
clear: no learner id in their bytes on SQLite or PostgreSQL, none left in the file after
an erasure, a mark copied to another table names nothing there, and a table written
before references is converted when the binding opens."""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
from sqlalchemy import create_engine, insert, select, text
from sqlalchemy.orm import Session

import learnprivacy.sqlalchemy as lps
from learnprivacy._inplace import row_key
from learnprivacy._inplace._refs import RowRefs, is_row_ref, pads_digest
from learnprivacy.crypto import Keyring
from learnprivacy.errors import RestrictedRecordError
from learnprivacy.retention import Action, Period, RetentionRule, Schedule, Trigger
from learnprivacy.sqlalchemy._states import convert, ref_id
from tests import NOW
from tests.inplace_models import bound_composite, declarative_models

MASTER = bytes(range(32))
LEARNER = "zq7-learner-4401"
LONG_AGO = dt.datetime(2023, 1, 10, tzinfo=dt.UTC)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def app(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SimpleNamespace]:
    """Composite-key models of one learner (and a second) on SQLite or PostgreSQL."""
    for app in bound_composite(request, tmp_path, MASTER):
        _learners(app)
        yield app


def _learners(app: SimpleNamespace) -> None:
    m, engine = app.m, app.engine
    with Session(engine) as s:
        s.add(m.User(id=LEARNER, name="Ana", last_login_at=NOW))
        s.add(m.User(id="u2", name="Bob", last_login_at=NOW))
        s.flush()
        s.add(m.Enrolment(user_id=LEARNER, course_id="c1", note="keen", enrolled_at=NOW))
        s.add(m.Enrolment(user_id=LEARNER, course_id="c2", note="old", enrolled_at=LONG_AGO))
        s.add(m.Enrolment(user_id="u2", course_id="c1", note="keen", enrolled_at=NOW))
        s.add(
            m.Submission(
                course_id="c2", slot=1, learner_id=LEARNER, answer="old", submitted_at=LONG_AGO
            )
        )
        s.commit()


def _restrict_and_anonymise(app: SimpleNamespace) -> None:
    m, privacy = app.m, app.privacy
    with Session(app.engine) as s:
        assert privacy.restrict(s, s.get(m.User, LEARNER), reason="disputed", now=NOW)
        assert privacy.restrict(s, s.get(m.Enrolment, (LEARNER, "c1")), reason="d", now=NOW)
        s.commit()
    schedule = Schedule(
        {m.Submission: RetentionRule(Period.parse("P1Y"), Trigger.CREATED, action=Action.ANONYMISE)}
    )
    with Session(app.engine) as s:
        assert privacy.sweep(s, schedule, now=NOW).anonymised == 1


def _state_bytes(app: SimpleNamespace) -> bytes:
    """The raw bytes of the row-states table and its index, as stored on disk."""
    if app.server is None:
        path = app.path / "app.db"
        with sqlite3.connect(path) as c:
            c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            size = c.execute("PRAGMA page_size").fetchone()[0]
            pages = [
                p
                for (p,) in c.execute(
                    "SELECT pageno FROM dbstat WHERE name IN "
                    "('lp_row_states', 'sqlite_autoindex_lp_row_states_1')"
                )
            ]
        data = path.read_bytes()
        assert pages
        return b"".join(data[(p - 1) * size : p * size] for p in pages)
    with app.engine.connect() as c:
        c.execute(text("CHECKPOINT"))
        files = [
            c.execute(text("SELECT pg_relation_filepath(:r)"), {"r": rel}).scalar_one()
            for rel in ("lp_row_states", "lp_row_states_pkey")
        ]
    return b"".join((app.server.data_dir / f).read_bytes() for f in files)


def _database_bytes(app: SimpleNamespace) -> bytes:
    """Every byte of the SQLite database: its file, write-ahead log and journal."""
    found = b""
    for suffix in ("", "-wal", "-journal"):
        path = app.path / f"app.db{suffix}"
        if path.exists():
            found += path.read_bytes()
    return found


def test_reference_matches_its_sql_form_and_the_django_register() -> None:
    """The reference computed from the pads (SQL's way) equals the pseudonym; it is the
    one Django's register of restrictions gives the same row; it names the table too."""
    keyring = Keyring.from_master_key(MASTER)
    refs = RowRefs.of_keyring(keyring)
    ref = refs.ref("enrolments", ("u1", "c1"))
    assert is_row_ref(ref)
    assert pads_digest(refs.head("enrolments"), refs.outer_pad, row_key(("u1", "c1"))) == ref
    django = keyring.pseudonymiser("learnprivacy-restrictions")
    assert refs.ref("users", "u1") == django.pseudonym("users\x00u1")
    assert refs.ref("users", ("u1", "c1")) != ref
    assert "u1" not in ref
    assert not is_row_ref("u1")
    assert repr(refs) == "RowRefs()"


def test_row_states_hold_no_learner_id(app: SimpleNamespace) -> None:
    """Attack: read the row-states table's bytes on disk after a restriction and an
    anonymisation; the learner id is not there, in clear or in a key's text."""
    _restrict_and_anonymise(app)
    with app.engine.connect() as c:
        keys = [r for (r,) in c.execute(text("SELECT row_key FROM lp_row_states"))]
    assert len(keys) == 3
    assert all(is_row_ref(k) for k in keys)
    raw = _state_bytes(app)
    assert LEARNER.encode() not in raw
    assert LEARNER.encode("utf-16-le") not in raw
    # The marks still act: the restricted rows are hidden and refuse changes.
    m = app.m
    with Session(app.engine) as s:
        assert s.get(m.User, LEARNER) is None
        seen = s.scalars(select(m.Enrolment.course_id).order_by(m.Enrolment.course_id)).all()
        assert seen == ["c1", "c2"]  # u2's c1 and the learner's c2
        row = s.get(m.Enrolment, (LEARNER, "c1"), execution_options={"include_restricted": True})
        assert app.privacy.is_restricted(s, row)
        row.note = "changed"
        with pytest.raises(RestrictedRecordError):
            s.flush()


def test_no_learner_id_in_the_file_after_erasure(app: SimpleNamespace) -> None:
    """Attack: after restriction then erasure, scan every byte of the SQLite database
    (file, WAL, journal): the erased learner's id is nowhere, freed pages included."""
    if app.server is not None:
        pytest.skip("heap files keep dead tuples until VACUUM: the row states are checked above")
    m, privacy = app.m, app.privacy
    with Session(app.engine) as s:
        assert privacy.restrict(s, s.get(m.Enrolment, (LEARNER, "c1")), reason="d", now=NOW)
        s.commit()
    with Session(app.engine) as s:
        assert (
            privacy.erase_subject(s, LEARNER, now=NOW).erased == 4
        )  # account, 2 enrolments, 1 submission
        s.commit()
    app.engine.dispose()
    with sqlite3.connect(app.path / "app.db") as c:
        c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    raw = _database_bytes(app)
    assert b"u2" in raw  # the scan reads the real file
    assert LEARNER.encode() not in raw


def test_mark_copied_to_another_table_names_nothing_there(tmp_path: Path) -> None:
    """Attack: the restriction of forum post 1 copied under the users table does not
    restrict the user whose id is ``"1"`` (with keys in clear it would)."""
    m = declarative_models()
    privacy = lps.LearnPrivacy(
        m.Base, keyring=Keyring.from_master_key(MASTER), keys=f"sqlite:///{tmp_path / 'k.db'}"
    )
    engine = create_engine(f"sqlite:///{tmp_path / 'app.db'}")
    m.Base.metadata.create_all(engine)
    with Session(engine) as s:
        s.add(m.User(id="1", email="one@example.org", name="One", created_at=NOW))
        s.add(m.User(id="u2", email="bob@example.org", name="Bob", created_at=NOW))
        s.flush()
        s.add(m.Post(id=1, author_id="u2", body="hello", posted_at=NOW))
        s.commit()
        assert privacy.restrict(s, s.get(m.Post, 1), reason="disputed", now=NOW)
        s.commit()
    with engine.begin() as c:
        c.execute(
            text(
                "INSERT INTO lp_row_states (table_name, row_key, state, reason, at) "
                "SELECT 'users', row_key, state, reason, at FROM lp_row_states "
                "WHERE table_name = 'forum_posts'"
            )
        )
    with Session(engine) as s:
        assert s.get(m.Post, 1) is None
        one = s.get(m.User, "1")
        assert one is not None
        assert not privacy.is_restricted(s, one)
        one.name = "Renamed"
        s.commit()
    privacy.close()
    engine.dispose()


def test_old_format_table_is_converted_and_still_restricts(app: SimpleNamespace) -> None:
    """A row-states table written with keys in clear: queries hide its restricted rows
    before and after conversion; the first call through the binding converts it (a
    rollback leaves it to the next call), the right rows stay restricted, and a second
    run finds nothing to convert."""
    m = app.m
    states = app.privacy.side.states
    with app.engine.begin() as c:
        c.execute(
            insert(states),
            [
                {
                    "table_name": "enrolments",
                    "row_key": row_key((LEARNER, "c1")),
                    "state": "restricted",
                    "reason": "disputed",
                    "at": NOW.replace(tzinfo=None),
                },
                {
                    "table_name": "users",
                    "row_key": LEARNER,
                    "state": "restricted",
                    "reason": "disputed",
                    "at": NOW.replace(tzinfo=None),
                },
            ],
        )

    def raw_keys() -> list[str]:
        with app.engine.connect() as c:
            return sorted(r for (r,) in c.execute(text("SELECT row_key FROM lp_row_states")))

    def visible() -> list[tuple[str, str]]:
        with Session(app.engine) as s:
            rows = s.scalars(select(m.Enrolment)).all()
            return sorted((e.user_id, e.course_id) for e in rows)

    expected = sorted([(LEARNER, "c2"), ("u2", "c1")])
    assert visible() == expected
    with Session(app.engine) as s:
        user = s.get(m.User, LEARNER, execution_options={"include_restricted": True})
        assert app.privacy.is_restricted(s, user)
        s.rollback()
    assert LEARNER in raw_keys()  # rolled back: still to convert
    with Session(app.engine) as s:
        row = s.get(m.Enrolment, (LEARNER, "c2"))
        assert not app.privacy.is_restricted(s, row)
        s.commit()
    keys = raw_keys()
    assert len(keys) == 2
    assert all(is_row_ref(k) for k in keys)
    assert visible() == expected
    with Session(app.engine) as s:
        assert s.get(m.User, LEARNER) is None
        hidden = s.get(m.Enrolment, (LEARNER, "c1"), execution_options={"include_restricted": True})
        assert app.privacy.is_restricted(s, hidden)
        assert app.privacy.lift_restriction(s, hidden, now=NOW)
        s.commit()
    assert len(raw_keys()) == 1
    with app.engine.begin() as c:
        assert convert(c, app.privacy.side, app.privacy.row_refs, {}) is None


def _legacy_states(app: SimpleNamespace, rows: list[tuple[str, str, str]]) -> None:
    """Row states as a version before references wrote them, the table not marked."""
    states = app.privacy.side.states
    at = NOW.replace(tzinfo=None)
    with app.engine.begin() as c:
        c.execute(app.privacy.side.formats.delete())
        c.execute(
            insert(states),
            [
                {"table_name": t, "row_key": k, "state": state, "reason": "old", "at": at}
                for t, k, state in rows
            ],
        )


def _raw_states(app: SimpleNamespace) -> list[str]:
    with app.engine.connect() as c:
        return sorted(r for (r,) in c.execute(text("SELECT row_key FROM lp_row_states")))


def test_a_key_shaped_like_a_reference_is_converted(app: SimpleNamespace) -> None:
    """Attack: a user whose id is itself a ``p1_...`` string, restricted in a table
    written before references. The table is converted by its mark, not by shape: that id
    is converted (not left in clear, as a shape test would leave it), the row stays
    restricted, and a reference written without the mark is not converted twice."""
    m, privacy = app.m, app.privacy
    shaped = "p1_" + "Lq4" * 7 + "x"
    assert is_row_ref(shaped)
    with Session(app.engine) as s:
        s.add(m.User(id=shaped, name="Cy", last_login_at=NOW))
        s.commit()
    u2_ref = privacy.row_refs.ref("users", "u2")
    _legacy_states(app, [("users", shaped, "restricted"), ("users", u2_ref, "restricted")])
    with Session(app.engine) as s:
        cy = s.get(m.User, shaped, execution_options={"include_restricted": True})
        assert privacy.is_restricted(s, cy)
        s.commit()
    raw = _raw_states(app)
    assert shaped not in raw
    assert raw == sorted([privacy.row_refs.ref("users", shaped), u2_ref])
    with app.engine.connect() as c:
        assert c.execute(text("SELECT format FROM lp_formats")).scalars().all() == ["references"]
    with Session(app.engine) as s:
        assert s.get(m.User, shaped) is None
        assert s.get(m.User, "u2") is None
        assert s.get(m.User, LEARNER) is not None
        bob = s.get(m.User, "u2", execution_options={"include_restricted": True})
        assert privacy.lift_restriction(s, bob, now=NOW)
        s.commit()
    assert _raw_states(app) == [privacy.row_refs.ref("users", shaped)]


def test_conversion_killed_half_way_is_rerun_whole(tmp_path: Path) -> None:
    """Attack: SIGKILL the process converting 1,201 row states once it has emptied the
    table and written 500 of them again. The table is as it was (all in clear,
    unmarked); the next call converts it all, the restricted learner stays hidden, and
    no converted key is left anywhere in the database's bytes (file, journal, WAL), not
    even where page splits of the old table had copied them."""
    from tests.inplace_worker import run_killed
    from tests.test_sqlalchemy_erasure import bind, populate

    m = declarative_models()
    keys = f"sqlite:///{tmp_path / 'keys.db'}"
    engine = create_engine(f"sqlite:///{tmp_path / 'app.db'}")
    app = SimpleNamespace(m=m, privacy=bind(m, keys), engine=engine, path=tmp_path, keys=keys)
    m.Base.metadata.create_all(engine)
    try:
        populate(app.engine, app.m)
        gone = [f"gone-{n:04d}" for n in range(1200)]
        _legacy_states(
            app,
            [("users", "u1", "restricted")] + [("users", g, "anonymised") for g in gone],
        )
        run_killed("convert", app)
        raw = _raw_states(app)
        assert len(raw) == 1201
        assert not any(is_row_ref(k) for k in raw)
        with app.engine.connect() as c:
            assert c.execute(text("SELECT count(*) FROM lp_formats")).scalar() == 0
        with Session(app.engine) as s:
            assert s.get(app.m.User, "u1") is None
            app.privacy.find(s, app.m.User.email, "bob@example.org")
            s.commit()
        raw = _raw_states(app)
        assert len(raw) == 1201
        assert all(is_row_ref(k) for k in raw)
        refs = app.privacy.row_refs
        assert set(raw) == {refs.ref("users", k) for k in ["u1", *gone]}
        with Session(app.engine) as s:
            assert s.get(app.m.User, "u1") is None
            u1 = s.get(app.m.User, "u1", execution_options={"include_restricted": True})
            assert app.privacy.is_restricted(s, u1)
        app.engine.dispose()
        with sqlite3.connect(tmp_path / "app.db") as c:
            c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        everything = _database_bytes(app)
        assert b"u2" in everything  # the scan reads the real file
        assert b"gone-" not in everything
    finally:
        app.privacy.close()
        engine.dispose()


def test_no_statement_parameter_or_log_line_carries_the_pads(app: SimpleNamespace) -> None:
    """Attack: record every statement's parameters (a cursor listener) and, on
    PostgreSQL, the server's own log with ``log_statement = all`` and parameters logged
    in full, through restrictions, an anonymising sweep and queries that leave restricted
    rows out. Neither holds the HMAC pads the references are computed from, in bytes,
    hex or base64; the conditions still hide the restricted rows."""
    from base64 import b64encode

    from sqlalchemy import event
    from sqlalchemy.engine import make_url

    refs = app.privacy.row_refs
    secrets_ = [pad[:24] for pad in (refs.inner_pad, refs.outer_pad)]
    forms = [f for pad in secrets_ for f in (pad.hex(), pad.hex().upper(), b64encode(pad)[:24])]
    seen: list[object] = []

    def record(_c: object, _cur: object, statement: str, params: object, *_a: object) -> None:
        seen.append(statement)
        seen.append(params)

    log_from = 0
    if app.server is not None:
        name = make_url(app.engine.url).database
        with app.engine.connect() as c:
            c.execute(text(f"ALTER DATABASE \"{name}\" SET log_statement = 'all'"))
            c.execute(text(f'ALTER DATABASE "{name}" SET log_parameter_max_length = -1'))
            c.commit()
        app.engine.dispose()
        log_from = (app.server.directory / "server.log").stat().st_size
    event.listen(app.engine, "before_cursor_execute", record)
    try:
        _restrict_and_anonymise(app)
        with Session(app.engine) as s:
            assert s.get(app.m.User, LEARNER) is None
            assert s.get(app.m.User, "u2") is not None
            seen_rows = s.scalars(select(app.m.Enrolment.course_id)).all()
            assert sorted(seen_rows) == ["c1", "c2"]
    finally:
        event.remove(app.engine, "before_cursor_execute", record)
    recorded = repr(seen).encode()
    assert b"lp_row_states" in recorded  # the listener saw the statements
    for pad in secrets_:
        assert pad not in recorded
        assert not any(
            isinstance(p, bytes | bytearray | memoryview) and pad in bytes(p)
            for p in _flatten(seen)
        )
    for form in forms:
        assert (form.encode() if isinstance(form, str) else form) not in recorded
    if app.server is not None:
        log = (app.server.directory / "server.log").read_bytes()[log_from:]
        # The server logged the statements and their parameters.
        assert b"lp_row_states" in log
        assert b"parameters:" in log
        for form in forms:
            assert (form.encode() if isinstance(form, str) else form) not in log
        # A session holds the pads of the bindings its statements name, no other's.
        other = RowRefs.of_keyring(Keyring.generate())
        assert ref_id(other) != ref_id(refs)
        with Session(app.engine) as s:
            assert s.get(app.m.User, LEARNER) is None
            held = s.execute(text("SELECT id FROM pg_temp.lp_pads")).scalars().all()
            assert held == [ref_id(refs)]


def _flatten(values: object) -> list[object]:
    if isinstance(values, list | tuple):
        return [v for item in values for v in _flatten(item)]
    if isinstance(values, dict):
        return _flatten(list(values.values()))
    return [values]


def test_a_table_without_restrictions_computes_no_reference(
    app: SimpleNamespace, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Loading a table none of whose rows is restricted computes no row's reference; once
    one row is, each row's is, and that row is left out (in SQL on both databases: the
    Python side is counted on SQLite, the result checked on both)."""
    calls = {"n": 0}
    real = RowRefs.of_text

    def counted(self: RowRefs, table: str, key_text: str) -> str:
        calls["n"] += 1
        return real(self, table, key_text)

    monkeypatch.setattr(RowRefs, "of_text", counted)
    m = app.m
    with Session(app.engine) as s:
        assert len(s.scalars(select(m.Enrolment)).all()) == 3
    assert calls["n"] == 0
    with Session(app.engine) as s:
        assert app.privacy.restrict(s, s.get(m.Enrolment, ("u2", "c1")), reason="d", now=NOW)
        s.commit()
    calls["n"] = 0
    with Session(app.engine) as s:
        seen = s.scalars(select(m.Enrolment)).all()
        assert sorted((e.user_id, e.course_id) for e in seen) == [(LEARNER, "c1"), (LEARNER, "c2")]
        assert len(s.scalars(select(m.User)).all()) == 2
    if app.server is None:
        assert calls["n"] >= 3
