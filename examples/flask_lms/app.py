"""The Flask app: its own engine and sessions, learnprivacy bound to its models.

Routes: ``POST /signup``, ``POST /login``, ``POST /courses/<id>/enrol``,
``POST /courses/<id>/posts``, ``GET /me``; and under ``/admin`` (bearer token): find a
learner by e-mail, export one (a zip), erase one, run the retention sweep, the Art. 30
register. Learners are identified by an ``X-User`` header: authentication is not the
point of this example.
"""

from __future__ import annotations

import datetime as dt
import hmac
import io
import os
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from flask import Flask, Response, abort, current_app, g, jsonify, request, send_file
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session, sessionmaker

import learnprivacy.sqlalchemy as lps
from examples.flask_lms.models import Base, Course, Enrolment, Post, User
from learnprivacy import Controller
from learnprivacy.crypto import Keyring
from learnprivacy.errors import LearnPrivacyError, RestrictedRecordError, ValidationError
from learnprivacy.providers import PrivacyManager
from learnprivacy.retention import Period, RetentionRule, Schedule, Trigger

__all__ = ["SCHEDULE", "create_app"]

#: Retention of the LMS's own tables, keyed by its model classes: 18 months after the
#: learner's last login (or, for a learner who never logged in, after the row's own date).
SCHEDULE = Schedule(
    {
        model: RetentionRule(Period.parse("P18M"), Trigger.LAST_ACTIVITY, fallback=Trigger.CREATED)
        for model in (User, Enrolment, Post)
    }
)

CONTROLLER = Controller(
    name="Formations Exemple SAS",
    address="1 rue de l'Exemple, 75001 Paris",
    contact="dpo@formations.example",
)

#: The LMS sends nothing to anyone outside the organisation: accounts, follow-up and
#: forums stay with its trainers and learners. Declared, the register shows these purposes
#: as shared internally only; an outside recipient added for one of them becomes a gap.
INTERNAL_ONLY = (
    "Learner accounts and access to the courses",
    "Training follow-up",
    "Course forums",
)


def _session() -> Session:
    """The request's session, from the app in context (Flask's ``g``)."""
    if "db" not in g:
        g.db = current_app.extensions["lms.sessions"]()
    session: Session = g.db
    return session


def create_app(
    database_url: str,
    keys_url: str,
    master_key: bytes | None = None,
    *,
    clock: Callable[[], dt.datetime] | None = None,
    admin_token: str | None = None,
    export_dir: str | os.PathLike[str] | None = None,
) -> Flask:
    """Build the LMS on ``database_url``; data keys live in ``keys_url`` (another database).

    ``master_key`` defaults to ``LEARNPRIVACY_MASTER_KEY`` (base64), ``admin_token`` to
    ``LMS_ADMIN_TOKEN``; ``clock`` gives "now" (tests pin it).
    """
    keyring = Keyring.from_env() if master_key is None else Keyring.from_master_key(master_key)
    now = clock or (lambda: dt.datetime.now(dt.UTC))
    token = admin_token if admin_token is not None else os.environ.get("LMS_ADMIN_TOKEN", "")
    exports = Path(export_dir or tempfile.mkdtemp(prefix="lms-exports-"))

    engine = create_engine(database_url)
    sessions = sessionmaker(engine)
    privacy = lps.LearnPrivacy(
        Base,
        keyring=keyring,
        keys=keys_url,
        component="flask_lms",
        sessions=_session,
        schedule=SCHEDULE,
        clock=now,
    )
    Base.metadata.create_all(engine)

    app = Flask("flask_lms")
    app.extensions["lms.sessions"] = sessions
    app.extensions["lms.privacy"] = privacy
    app.extensions["lms.engine"] = engine
    # The manager runs the integration's provider in this thread: its sessions come from
    # Flask's application context, as the routes' do.
    manager = PrivacyManager([privacy.provider], discover=False)

    @app.teardown_appcontext
    def close_session(_exc: BaseException | None) -> None:
        session = g.pop("db", None)
        if session is not None:
            session.close()

    @app.errorhandler(LearnPrivacyError)
    def refused(exc: LearnPrivacyError) -> tuple[Response, int]:
        # Library messages never hold a personal value.
        status = 409 if isinstance(exc, RestrictedRecordError) else 400
        return jsonify(error=type(exc).__name__, message=str(exc)), status

    def body() -> dict[str, Any]:
        data = request.get_json(silent=True)
        if not isinstance(data, dict):
            abort(400)
        return data

    def learner() -> User:
        user = _session().get(User, request.headers.get("X-User", ""))
        if user is None:
            abort(401)
        return user

    def ensure_course(s: Session, course_id: str) -> None:
        # Courses would come from the catalogue; here they appear when first used.
        if s.get(Course, course_id) is None:
            s.add(Course(id=course_id, title=course_id))
            s.flush()

    def admin() -> None:
        given = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if not token or not hmac.compare_digest(given.encode(), token.encode()):
            abort(401)

    @app.post("/signup")
    def signup() -> tuple[Response, int]:
        data = body()
        s = _session()
        email, name = data.get("email"), data.get("name")
        if not isinstance(email, str) or not isinstance(name, str) or "@" not in email:
            raise ValidationError("signup needs an e-mail address and a name", field="signup")
        if privacy.find(s, User.email, email, include_restricted=True):
            return jsonify(error="exists"), 409
        user = User(id=uuid.uuid4().hex, email=email, name=name, created_at=now())
        s.add(user)
        s.commit()
        return jsonify(id=user.id), 201

    @app.post("/login")
    def login() -> Response:
        user = learner()
        user.last_login_at = now()
        _session().commit()
        return jsonify(ok=True)

    @app.post("/courses/<course_id>/enrol")
    def enrol(course_id: str) -> tuple[Response, int]:
        user, s = learner(), _session()
        ensure_course(s, course_id)
        note = body().get("employer_note")
        s.add(
            Enrolment(user_id=user.id, course_id=course_id, enrolled_at=now(), employer_note=note)
        )
        s.commit()
        return jsonify(ok=True), 201

    @app.post("/courses/<course_id>/posts")
    def post(course_id: str) -> tuple[Response, int]:
        user, s = learner(), _session()
        text = body().get("body")
        if not isinstance(text, str) or not text.strip():
            raise ValidationError("a post needs a body", field="body")
        ensure_course(s, course_id)
        s.add(Post(author_id=user.id, course_id=course_id, body=text, posted_at=now()))
        s.commit()
        return jsonify(ok=True), 201

    @app.get("/me")
    def me() -> Response:
        user, s = learner(), _session()
        posts = s.scalars(select(Post).where(Post.author_id == user.id).order_by(Post.id))
        return jsonify(email=user.email, name=user.name, posts=[p.body for p in posts])

    @app.post("/admin/find")
    def find() -> Response:
        # The address travels in the body: a query string ends up in access logs.
        admin()
        email = body().get("email")
        if not isinstance(email, str):
            raise ValidationError("find needs an e-mail address", field="email")
        found = privacy.find(_session(), User.email, email)
        return jsonify(ids=[u.id for u in found])

    @app.post("/admin/users/<user_id>/export")
    def export(user_id: str) -> Response:
        admin()
        out = exports / f"{uuid.uuid4().hex}.zip"
        try:
            privacy.export_subject(_session(), user_id, out, now=now())
            # Sent from memory: the package (the learner's data in clear) leaves no copy
            # on the server's disk for an erasure to miss.
            package = out.read_bytes()
        finally:
            out.unlink(missing_ok=True)
        return send_file(
            io.BytesIO(package), mimetype="application/zip", download_name="export.zip"
        )

    @app.post("/admin/users/<user_id>/erase")
    def erase(user_id: str) -> Response:
        admin()
        # Through the manager, as a data-subject request would run: every component
        # (here, the LMS's own tables) erases, and each says whether it succeeded.
        result = manager.delete_data_for_user(user_id)
        return jsonify(
            completed=result.completed,
            errors=[o.error for o in result.outcomes if o.error],
        )

    @app.post("/admin/sweep")
    def sweep() -> Response:
        admin()
        report = privacy.sweep(_session(), SCHEDULE, now=now())
        return jsonify(erased=report.erased, review=report.review, kept=report.kept)

    @app.get("/admin/register")
    def register() -> Response:
        admin()
        built = privacy.register(CONTROLLER, internal_only=INTERNAL_ONLY)
        return Response(built.to_json(), mimetype="application/json")

    @app.get("/admin/audit")
    def audit() -> Response:
        admin()
        log = privacy.audit(_session())
        log.verify()
        return jsonify(actions=[e.action for e in log.entries()])

    return app
