"""The mini-LMS's routes: learners and their requests, and ``/admin``.

Routes are plain ``def`` functions: the store does blocking I/O, so FastAPI runs them in
its thread pool. They get the app's services through dependency injection (``LMSDep``).

Authentication is the LMS's own business and is left out, except for ``/admin``, which
needs ``Authorization: Bearer <admin token>``. In a real LMS, the learner routes check
that the logged-in user is the learner in the path.
"""

from __future__ import annotations

import datetime as dt
import secrets
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import attrs
from fastapi import APIRouter, Depends, Header, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse
from pydantic import AwareDatetime
from starlette.background import BackgroundTask

from examples.fastapi_lms.policy import CATALOGUE, CONTROLLER, INTERNAL_ONLY, SCHEDULE
from examples.fastapi_lms.schemas import CertificateIn, Enrolment, ProgressIn, RequestIn
from learnprivacy import Action
from learnprivacy.errors import ValidationError
from learnprivacy.export import export_subject
from learnprivacy.providers import PrivacyManager
from learnprivacy.records import Certificate, Invoice, Learner, Progress, ProgressStatus, Score
from learnprivacy.requests import (
    Channel,
    ProofMethod,
    RequestBook,
    Requester,
    RequestExecutor,
    RequestType,
    SubjectRequest,
)
from learnprivacy.store import Store

__all__ = ["LMS", "LMSDep", "admin", "get_lms", "require_admin", "router"]


@attrs.frozen
class LMS:
    """What the routes work with: the store, the privacy manager, the request book."""

    store: Store
    manager: PrivacyManager
    book: RequestBook
    executor: RequestExecutor
    clock: Callable[[], dt.datetime]
    admin_token: str | None


def get_lms(request: Request) -> LMS:
    """The app's services (replace them in ``app.dependency_overrides[get_lms]``)."""
    lms: LMS = request.app.state.lms
    return lms


LMSDep = Annotated[LMS, Depends(get_lms)]


def require_admin(lms: LMSDep, authorization: Annotated[str | None, Header()] = None) -> None:
    """Let through only requests bearing the admin token (compared in constant time)."""
    expected = f"Bearer {lms.admin_token}" if lms.admin_token else None
    if expected is None or not secrets.compare_digest(authorization or "", expected):
        raise HTTPException(401, "admin token required", {"WWW-Authenticate": "Bearer"})


router = APIRouter()
admin = APIRouter(prefix="/admin", dependencies=[Depends(require_admin)])


def _new_id(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(6)}"


def _learner(lms: LMS, learner_id: str) -> Learner:
    learner = lms.store.get(Learner, learner_id)
    if learner is None:
        raise HTTPException(404, "no such learner")
    return learner


def _request_view(request: SubjectRequest) -> dict[str, Any]:
    return {
        "id": request.id,
        "type": request.type.value,
        "state": request.state.value,
        "due_at": request.due_at.isoformat(),
    }


@router.post("/learners", status_code=201)
def enrol(body: Enrolment, lms: LMSDep) -> dict[str, str]:
    """Create the learner's account and the course's invoice, in one transaction."""
    if body.course_id not in CATALOGUE:
        raise ValidationError("Enrolment.course_id is not in the catalogue", field="course_id")
    # The blind index finds an e-mail address that is only ever stored encrypted.
    if lms.store.find_learner(email=body.email) is not None:
        raise HTTPException(409, "an account with this e-mail address exists")
    now = lms.clock()
    learner = Learner(
        id=_new_id("L"),
        username=body.username,
        email=body.email,
        given_name=body.given_name,
        family_name=body.family_name,
        created_at=now,
        last_activity_at=now,
    )
    invoice = Invoice(
        id=_new_id("INV"),
        learner_id=learner.id,
        billing_name=f"{body.given_name} {body.family_name}",
        billing_address=body.billing_address,
        amount=CATALOGUE[body.course_id],
        issued_at=now,
    )
    lms.store.add_all([learner, invoice], now=now)
    return {"id": learner.id, "invoice_id": invoice.id}


@router.post("/learners/{learner_id}/progress", status_code=201)
def record_progress(learner_id: str, body: ProgressIn, lms: LMSDep) -> dict[str, str]:
    """Record a status in a course; activity restarts the learner's retention clock."""
    learner, now = _learner(lms, learner_id), lms.clock()
    minutes = body.minutes_spent
    progress = Progress(
        id=_new_id("P"),
        learner_id=learner_id,
        course_id=body.course_id,
        status=body.status,
        recorded_at=now,
        score=None if body.score is None else Score(raw=body.score, max=body.max_score),
        time_spent=None if minutes is None else dt.timedelta(minutes=minutes),
    )
    lms.store.add(progress, now=now)
    lms.store.update(attrs.evolve(learner, last_activity_at=now), now=now)
    return {"id": progress.id}


@router.post("/learners/{learner_id}/certificates", status_code=201)
def issue_certificate(learner_id: str, body: CertificateIn, lms: LMSDep) -> dict[str, str]:
    """Issue a certificate for a course the learner passed."""
    _learner(lms, learner_id)
    passed = lms.store.query(
        Progress, learner_id=learner_id, course_id=body.course_id, status=ProgressStatus.PASSED
    )
    if not passed:
        raise HTTPException(409, "the learner has not passed this course")
    certificate = Certificate(
        id=_new_id("C"),
        learner_id=learner_id,
        course_id=body.course_id,
        issued_at=lms.clock(),
        verification_code=secrets.token_hex(5).upper(),
    )
    lms.store.add(certificate)
    return {"id": certificate.id, "verification_code": certificate.verification_code}


@router.get("/learners/{learner_id}/export", response_class=FileResponse)
def export_my_data(learner_id: str, lms: LMSDep) -> FileResponse:
    """Stream the learner's access package (GDPR Art. 15): JSON, CSV, xAPI, HTML, manifest."""
    work = Path(tempfile.mkdtemp(prefix="lms-export-"))
    try:
        package = export_subject(lms.manager, learner_id, work / "export.zip", now=lms.clock())
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    # The package is written to disk, then streamed; the copy goes once it is sent.
    return FileResponse(
        package.path,
        media_type="application/zip",
        filename=f"{learner_id}-data.zip",
        background=BackgroundTask(shutil.rmtree, work, ignore_errors=True),
    )


@router.post("/requests", status_code=202)
def file_request(body: RequestIn, lms: LMSDep) -> dict[str, Any]:
    """File an access or erasure request; the logged-in learner's identity is verified."""
    learner, now = _learner(lms, body.learner_id), lms.clock()
    request = lms.book.receive(
        RequestType(body.type),
        learner_id=learner.id,
        received_at=now,
        channel=Channel.WEB_FORM,
        requester=Requester.subject(f"{learner.given_name} {learner.family_name}"),
    )
    # Only the proof method is recorded: here, the learner's authenticated session.
    request = lms.book.verify_identity(request, method=ProofMethod.AUTHENTICATED_SESSION, now=now)
    return _request_view(request)


@router.get("/requests/{request_id}")
def show_request(request_id: str, lms: LMSDep) -> dict[str, Any]:
    """Where a request stands and when it is due."""
    return _request_view(lms.book.current(request_id))


@admin.post("/requests/{request_id}/execute")
def execute_request(request_id: str, lms: LMSDep) -> dict[str, Any]:
    """Carry a request out; erasure keeps invoices, restricted (GDPR Art. 17(3)(b))."""
    done = lms.executor.execute(request_id, now=lms.clock())
    view = _request_view(done)
    view["records"] = [
        {"record_type": o.record_type, "action": o.action.value, "article": o.article}
        for o in done.record_outcomes
        if o.action is not Action.KEEP
    ]
    export = done.step("export")
    if export is not None and export.artifact:
        view["package"] = Path(export.artifact).name
    if done.failure is not None:
        view["failed_step"] = done.failure.step
    return view


@admin.post("/sweep")
def sweep(lms: LMSDep, dry_run: bool = True, now: AwareDatetime | None = None) -> dict[str, Any]:
    """Apply the retention schedule as of ``now`` (default: the clock); dry run by default."""
    report = lms.store.sweep(SCHEDULE, now=now or lms.clock(), dry_run=dry_run)
    counts = ("erased", "anonymised", "restricted", "review", "kept")
    return {
        "dry_run": report.dry_run,
        "now": report.now.isoformat(),
        **{name: getattr(report, name) for name in counts},
        "by_type": {name: dict(row) for name, row in report.by_type.items()},
    }


@admin.get("/audit")
def verify_audit(lms: LMSDep) -> dict[str, Any]:
    """Verify the audit log's hash chain (500 naming the first bad entry when broken)."""
    lms.store.audit.verify()
    return {"ok": True, "entries": len(lms.store.audit)}


@admin.get("/register", response_class=HTMLResponse)
def register(lms: LMSDep) -> str:
    """The GDPR Art. 30 record of processing, built from the declared metadata."""
    built = lms.manager.register(CONTROLLER, as_of=lms.clock().date(), internal_only=INTERNAL_ONLY)
    return built.to_html()
