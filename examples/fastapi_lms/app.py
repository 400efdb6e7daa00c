"""The app factory: one store per app, the request workflow, errors that leak nothing.

The :class:`~learnprivacy.store.Store` is opened when the app is built, so a wrong master
key fails at start-up rather than on the first request, and closed on shutdown.
"""

from __future__ import annotations

import datetime as dt
import os
import tempfile
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from examples.fastapi_lms.policy import RECORD_TYPES, SCHEDULE
from examples.fastapi_lms.routes import LMS, admin, router
from learnprivacy.crypto import Keyring
from learnprivacy.errors import (
    AuditTampered,
    IntegrityError,
    NotFoundError,
    PolicyError,
    ValidationError,
)
from learnprivacy.providers import PrivacyManager, StoreProvider
from learnprivacy.requests import RequestBook, RequestExecutor, store_audit_sink
from learnprivacy.requests.sql import SQLBackend
from learnprivacy.store import Store

__all__ = ["create_app"]


def create_app(
    store_url: str,
    master_key: bytes | None = None,
    *,
    clock: Callable[[], dt.datetime] | None = None,
    admin_token: str | None = None,
    export_dir: str | os.PathLike[str] | None = None,
) -> FastAPI:
    """Build the mini-LMS on the store at ``store_url``.

    Args:
        store_url: ``sqlite:///lms.db`` or ``postgresql+psycopg://...``.
        master_key: 32 bytes; by default the base64 key in ``LEARNPRIVACY_MASTER_KEY``,
            put there from your secret manager. Never store it in the database.
        clock: gives "now" (tests pin it); by default the system clock, in UTC.
        admin_token: opens ``/admin`` (default: ``LMS_ADMIN_TOKEN``); without one,
            ``/admin`` always answers 401.
        export_dir: where executed access requests write their package (default: a
            new temporary folder).
    """
    keyring = Keyring.from_env() if master_key is None else Keyring.from_master_key(master_key)
    now = clock or (lambda: dt.datetime.now(dt.UTC))
    store = Store(store_url, keyring=keyring, actor="mini-lms", clock=now)
    # Add the LMS's own providers (forum, video service...) to this list.
    provider = StoreProvider(store, schedule=SCHEDULE, record_types=RECORD_TYPES)
    manager = PrivacyManager([provider], discover=False)
    # Requests live in the store's database; each transition is copied to its audit log.
    book = RequestBook(SQLBackend(store, cipher=store.cipher), audit_sink=store_audit_sink(store))
    exports = Path(export_dir) if export_dir else Path(tempfile.mkdtemp(prefix="lms-requests-"))
    executor = RequestExecutor(
        book, store=store, manager=manager, schedule=SCHEDULE, export_dir=exports
    )
    token = admin_token or os.environ.get("LMS_ADMIN_TOKEN")

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        store.close()

    app = FastAPI(title="Mini LMS (learnprivacy example)", lifespan=lifespan)
    app.state.lms = LMS(store, manager, book, executor, now, token)
    app.include_router(router)
    app.include_router(admin)
    _install_error_handlers(app)
    return app


def _install_error_handlers(app: FastAPI) -> None:
    async def invalid_request(_: Request, exc: Exception) -> JSONResponse:
        # FastAPI's default answer echoes the rejected input: keep the field names only.
        assert isinstance(exc, RequestValidationError)
        errors = [{"loc": list(e["loc"]), "type": e["type"], "msg": e["msg"]} for e in exc.errors()]
        return JSONResponse({"detail": errors}, status_code=422)

    async def invalid_value(_: Request, exc: Exception) -> JSONResponse:
        # learnprivacy's messages name the field and the rule, never the value.
        field = str(getattr(exc, "field", None) or "")
        loc = ["body", field.rsplit(".", 1)[-1]] if field else ["body"]
        error = {"loc": loc, "type": "value_error", "msg": str(exc), "field": field}
        return JSONResponse({"detail": [error]}, status_code=422)

    def answer(code: int) -> Callable[[Request, Exception], Any]:
        async def handler(_: Request, exc: Exception) -> JSONResponse:
            body: dict[str, Any] = {"detail": str(exc)}
            if isinstance(exc, AuditTampered):
                body |= {"ok": False, "sequence": exc.sequence}
            return JSONResponse(body, status_code=code)

        return handler

    app.add_exception_handler(RequestValidationError, invalid_request)
    app.add_exception_handler(ValidationError, invalid_value)
    app.add_exception_handler(NotFoundError, answer(404))
    app.add_exception_handler(IntegrityError, answer(409))
    app.add_exception_handler(PolicyError, answer(409))
    app.add_exception_handler(AuditTampered, answer(500))
