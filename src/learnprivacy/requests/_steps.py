"""Execution steps: exports, erasure, consent withdrawal, restriction, objection,
rectification, post-mortem directives and Art. 19 notifications.

Every step is a function ``(env, request, now) -> StepResult`` that can run again with
the same end state: erasing erased data, restricting restricted records, withdrawing a
withdrawn consent or registering the same directive changes nothing. Steps whose
outcomes a rerun could no longer see (what an erasure removed) are preceded by a *plan*
step that persists the records about to be touched.

A step that cannot finish raises; the executor turns that into a FAILED request.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from learnprivacy._vocabulary import Action, Article
from learnprivacy.basis import LawfulBasis
from learnprivacy.errors import IntegrityError, NotFoundError
from learnprivacy.records import Consent, Learner, from_json_dict, to_json_dict
from learnprivacy.records._base import record_type, subject_of
from learnprivacy.requests._adapters import end_records
from learnprivacy.requests._model import PLAN_PREFIX, SubjectRequest
from learnprivacy.requests._outcomes import (
    NotificationOutcome,
    NotificationStatus,
    RecordOutcome,
    StepResult,
)
from learnprivacy.requests._params import (
    ObjectionParams,
    PostMortemDirective,
    RectificationParams,
    RestrictionParams,
    WithdrawConsentParams,
)
from learnprivacy.requests._recipients import Recipient, Recipients
from learnprivacy.requests._vocabulary import RequestType

if TYPE_CHECKING:
    from learnprivacy.requests._book import RequestBook

__all__ = [
    "Env",
    "Step",
    "StepFailed",
    "object_to_processing",
    "rectify",
    "register_directive",
    "restrict",
]


_STORE_COMPONENT = "learnprivacy_store"
_CHANGING = frozenset(
    {
        Action.ERASE,
        Action.ANONYMISE,
        Action.RESTRICT,
        Action.RECTIFY,
    }
)
_OPERATIONS = {
    RequestType.ERASURE: "erasure",
    RequestType.WITHDRAW_CONSENT: "erasure",
    RequestType.RECTIFICATION: "rectification",
    RequestType.RESTRICTION: "restriction",
}


class StepFailed(Exception):
    """A step could not finish; ``component`` names what failed (provider, recipient)."""

    def __init__(self, error: str, *, component: str | None = None) -> None:
        super().__init__(error)
        self.error = error
        self.component = component


@attrs.frozen(kw_only=True)
class Env:
    """What the steps work with (set up by :class:`RequestExecutor`)."""

    book: RequestBook
    store: Any = None
    manager: Any = None
    recipients: Recipients | None = None
    export_dir: Path | None = None
    schedule: Any = None
    holds: tuple[Any, ...] = ()
    export_key: bytes | None = None


Step = tuple[str, Callable[[Env, SubjectRequest, dt.datetime], StepResult]]


def _safe_name(request_id: str) -> str:
    if re.fullmatch(r"[A-Za-z0-9._-]{1,120}", request_id):
        return request_id
    return "request-" + hashlib.sha256(request_id.encode()).hexdigest()[:32]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _planned(request: SubjectRequest, plan: str) -> tuple[RecordOutcome, ...]:
    step = request.step(PLAN_PREFIX + plan)
    return step.records if step is not None else ()


def _plan_of(name: str, records: Sequence[Any], now: dt.datetime) -> StepResult:
    return StepResult(
        name=PLAN_PREFIX + name,
        completed_at=now,
        records=tuple(
            RecordOutcome(
                record_type=type(r).__name__,
                record_id=r.id,
                action=Action.KEEP,
                article="",
                reason="planned",
            )
            for r in records
        ),
    )


# -- access and portability --------------------------------------------------------------


def export(env: Env, request: SubjectRequest, now: dt.datetime) -> StepResult:
    """Write the access (Art. 15) or portability (Art. 20) package as a zip archive."""
    from learnprivacy.export import export_subject

    assert env.export_dir is not None  # checked when the plan is made
    scope = "access" if request.type is RequestType.ACCESS else "portability"
    target = env.export_dir / f"{_safe_name(request.id)}.zip"
    source = env.manager if env.manager is not None else env.store
    try:
        result = export_subject(
            source,
            request.learner_id,
            target,
            scope=scope,
            now=now,
            overwrite=True,
            pseudonym_key=env.export_key,
            lrs=_lrs_sources(env) if scope == "access" else (),
        )
    except NotFoundError:
        # Nobody holds anything about this person: that is the answer (Art. 15(1)).
        return StepResult(name="export", completed_at=now, facts={"records": "0", "scope": scope})
    return StepResult(
        name="export",
        completed_at=now,
        facts={"records": str(result.records), "scope": scope, "sha256": _sha256(target)},
        artifact=str(target),
    )


def _lrs_sources(env: Env) -> list[Any]:
    """The registered recipients that can say what they hold (an LRS): access exports
    include it (Art. 15 covers data the controller had a processor or recipient keep)."""
    if env.recipients is None:
        return []
    found = []
    for recipient in env.recipients.extra:
        notifier = env.recipients.notifier(recipient.location)
        if callable(getattr(notifier, "statements_about", None)):
            found.append(notifier)
    return found


# -- erasure -----------------------------------------------------------------------------


def plan_erasure(env: Env, request: SubjectRequest, now: dt.datetime) -> StepResult:
    """Persist the records the store holds about the learner before erasing them."""
    return _plan_of("erase", env.store.records_of(request.learner_id, include_restricted=True), now)


def erase_store(env: Env, request: SubjectRequest, now: dt.datetime) -> StepResult:
    """``Store.erase_subject``: erase, or restrict what a legal minimum or hold protects."""
    report = env.store.erase_subject(
        request.learner_id, now=now, holds=env.holds, schedule=env.schedule
    )
    outcomes: dict[tuple[str, str], RecordOutcome] = {}
    for item in report.outcomes:
        outcomes[(item.record_type, item.record_id)] = RecordOutcome(
            record_type=item.record_type,
            record_id=item.record_id,
            # A record left for review is kept as it is until a person decides.
            action=Action.KEEP if item.action is Action.REVIEW else item.action,
            article=item.article,
            reason=item.reason,
        )
    # What a first, interrupted run erased is gone from this run's report.
    for planned in _planned(request, "erase"):
        key = (planned.record_type, planned.record_id)
        if key not in outcomes:
            outcomes[key] = attrs.evolve(
                planned, action=Action.ERASE, article=Article.ART_17_1, reason="erased"
            )
    return StepResult(
        name="erase_store",
        completed_at=now,
        records=tuple(outcomes.values()),
        facts={"erased": str(report.erased), "restricted": str(report.restricted)},
    )


def erase_providers(env: Env, request: SubjectRequest, now: dt.datetime) -> StepResult:
    """``PrivacyManager.delete_data_for_user`` over every provider."""
    result = env.manager.delete_data_for_user(request.learner_id)
    if not result.completed:
        failed = result.failed_components[0]
        raise StepFailed(
            f"delete_data_for_user failed in {failed}: {result.outcome(failed).error}",
            component=failed,
        )
    skip = _STORE_COMPONENT if env.store is not None else None
    records: list[RecordOutcome] = []
    for o in result.outcomes:
        if o.null_provider or not o.contexts or o.component == skip:
            continue
        # What the provider still keeps (restricted: a legal minimum, a hold) is said
        # per kind; "all data" is claimed only when the check found nothing kept.
        records.append(
            RecordOutcome(
                record_type=o.component,
                record_id="",
                action=Action.ERASE,
                article=Article.ART_17_1,
                reason="the rest of the component's data"
                if o.kept
                else "all data of the component",
            )
        )
        records.extend(
            RecordOutcome(
                record_type=o.component,
                record_id=kind,
                action=Action.RESTRICT,
                article=Article.ART_18,
                reason=f"{count} row(s) kept restricted: the law or a hold keeps them",
            )
            for kind, count in o.kept.items()
        )
    return StepResult(name="erase_providers", completed_at=now, records=tuple(records))


#: The suffix of the access request a post-mortem directive makes for its executor.
DEATH_EXPORT = "death-export"


def remove_packages(env: Env, request: SubjectRequest, now: dt.datetime) -> StepResult:
    """Remove the packages the learner's earlier access and portability requests wrote
    (their data in clear, kept for delivery): an erasure that left one would leave the
    learner readable on disk. Only files named as :func:`export` names them are removed;
    each is checked gone afterwards. The package a post-mortem directive owes its
    executor (a request ``...-death-export``) is theirs, and stays."""
    removed = 0
    # The executor's package is told by the id the learner's directive gave its request
    # (and its retries), never by a text any request id may hold. The directive is read
    # only when a request id could be that one.
    owed: list[str | None] = []
    for filed in env.book.requests(learner_id=request.learner_id):
        if f"-{DEATH_EXPORT}" in filed.id:
            if not owed:
                directive = env.book.directive_of(request.learner_id)
                owed.append(None if directive is None else f"{directive.request_id}-{DEATH_EXPORT}")
            mine = owed[0]
            if mine is not None and (filed.id == mine or filed.id.startswith(f"{mine}-retry")):
                continue
        step = filed.step("export")
        if step is None or not step.artifact:
            continue
        package = Path(step.artifact)
        if package.name != f"{_safe_name(filed.id)}.zip":
            continue
        if package.exists():
            package.unlink(missing_ok=True)
            removed += 1
        if package.exists():
            raise StepFailed(
                "the package of an earlier access request could not be removed",
                component="export_dir",
            )
    return StepResult(name="remove_packages", completed_at=now, facts={"removed": str(removed)})


def verify_request_book(env: Env, request: SubjectRequest, now: dt.datetime) -> StepResult:
    """Check that the request book keeps nothing of the erased learner in clear.

    The book keeps the learner's requests as proof that they were answered, sealed under
    keys of their own; what it stores in clear must show neither the learner id nor a
    requester's name (or a word of it) or e-mail address. A backend that stores nothing
    (in memory) has nothing to check; one that cannot say raises.
    """
    find = getattr(env.book.backend, "find_in_clear", None)
    if find is None:
        return StepResult(name="verify_request_book", completed_at=now, facts={"stored": "no"})
    values: set[str] = set()
    for filed in env.book.requests(learner_id=request.learner_id):
        for value in (filed.requester.name, filed.requester.email):
            if value:
                values.add(value)
                values.update(value.split())
    places = find(request.learner_id, sorted(values))
    if places:
        raise StepFailed(
            "the request book still shows the erased learner in clear in " + ", ".join(places),
            component="request_book",
        )
    return StepResult(
        name="verify_request_book",
        completed_at=now,
        facts={"stored": "yes", "checked_values": str(len(values) + 1)},
    )


# -- consent withdrawal ------------------------------------------------------------------


def withdraw_consent(env: Env, request: SubjectRequest, now: dt.datetime) -> StepResult:
    """End the consents given for the purpose: ``withdrawn_at`` set, the record kept.

    The withdrawal takes effect when it was received, not when it is carried out: from
    that instant no processing rests on the consent (Art. 7(3)). A restricted consent
    record (Art. 18) is left untouched and reported as restricted: writing to it is
    processing the restriction forbids, and the withdrawal cannot be recorded on it.
    """
    params = request.params
    assert isinstance(params, WithdrawConsentParams)
    outcomes = []
    effective = request.received_at
    consents = [
        r
        for r in env.store.records_of(request.learner_id, include_restricted=True)
        if isinstance(r, Consent) and r.purpose == params.purpose
    ]
    open_ids = {r.id for r in _visible(env, request.learner_id) if isinstance(r, Consent)}
    for record in consents:
        if record.id not in open_ids:
            action, article, reason = (
                Action.RESTRICT,
                Article.ART_18,
                "restricted: left untouched, withdrawal not written on it",
            )
        else:
            action, article, reason = (
                Action.WITHDRAW_CONSENT,
                Article.ART_7_3,
                "kept as proof of consent",
            )
            if record.withdrawn_at is None and record.given_at <= effective:
                # No retroactive effect: processing before receipt stays lawful.
                env.store.update(attrs.evolve(record, withdrawn_at=effective), now=now)
        outcomes.append(
            RecordOutcome(
                record_type="Consent",
                record_id=record.id,
                action=action,
                article=article,
                reason=reason,
            )
        )
    return StepResult(name="withdraw_consent", completed_at=now, records=tuple(outcomes))


def _visible(env: Env, learner_id: str) -> list[Any]:
    """The learner's records that are not restricted."""
    return list(env.store.records_of(learner_id))


def _on_consent_end(record: Any, purpose: str, schedule: Any) -> Action | None:
    """What the end of the consent to ``purpose`` does to ``record``, or ``None`` when
    something else holds it (another purpose, or another basis).

    With a schedule, its rules say which purposes each record serves, on what basis and
    what happens at their end (``Schedule.on_consent_end``: erase or anonymise, as the
    policy says). Without one, a record whose own basis is consent and whose class's
    purpose is the withdrawn one is erased. Consent records stay, as proof.
    """
    if isinstance(record, Consent):
        return None
    if schedule is not None and schedule.applicable_rules(record):
        action: Action | None = schedule.on_consent_end(record, purpose)
        return action
    if (
        record.basis is LawfulBasis.CONSENT
        and getattr(type(record), "processing_purpose", None) == purpose
    ):
        return Action.ERASE
    return None


_ACCOUNT_KEPT = "account kept while dependent records are kept"
_STOPPED = "consent withdrawn: processing stopped, kept for review"


def plan_consent_erasure(env: Env, request: SubjectRequest, now: dt.datetime) -> StepResult:
    """Persist the records only the withdrawn consent justified, each with what its
    rule does at the end of the consent (erase, anonymise or restrict).

    The learner's account is never removed while other records of theirs stay (the
    consents kept as proof, an invoice kept by law): it is restricted instead, as a
    sweep does, so no record is left pointing at an account that is gone.
    """
    params = request.params
    assert isinstance(params, WithdrawConsentParams)
    records = env.store.records_of(request.learner_id, include_restricted=True)
    chosen = [(r, _on_consent_end(r, params.purpose, env.schedule)) for r in records]
    removed = {
        (type(r).__name__, r.id)
        for r, action in chosen
        if action in (Action.ERASE, Action.ANONYMISE)
    }
    staying = any(
        (type(r).__name__, r.id) not in removed for r in records if not isinstance(r, Learner)
    )
    planned = []
    for record, action in chosen:
        if action is None:
            continue
        reason = _STOPPED if action is Action.RESTRICT else "planned"
        if isinstance(record, Learner) and action is not Action.RESTRICT and staying:
            action, reason = Action.RESTRICT, _ACCOUNT_KEPT
        planned.append(
            RecordOutcome(
                record_type=type(record).__name__,
                record_id=record.id,
                action=action,
                article="",
                reason=reason,
            )
        )
    return StepResult(
        name=PLAN_PREFIX + "erase_consent_data", completed_at=now, records=tuple(planned)
    )


def _kept_by_law(env: Env, record: Any, learner: Any, now: dt.datetime) -> bool:
    """Whether a legal minimum or a hold keeps ``record`` from erasure or anonymisation:
    computed here again, not taken from the store, to check what the store did."""
    if any(hold.matches(record) for hold in env.holds):
        return True
    if env.schedule is not None and env.schedule.applicable_rules(record):
        decision = env.schedule.evaluate(
            record, now=now, learner=learner, holds=env.holds, erasure_requested=True
        )
        return bool(decision.action is not Action.ERASE)
    basis = getattr(record, "basis", None)
    return basis is not None and not basis.erasable_on_request


def erase_consent_data(env: Env, request: SubjectRequest, now: dt.datetime) -> StepResult:
    """Erase or anonymise the planned records, as their rules say (Art. 17(1)(b): no
    other lawful basis holds them), then check that it happened.

    The check reads the store again: a record planned for erasure or anonymisation must
    be gone from the learner's records, unless a legal minimum or hold keeps it (it is
    then restricted, and reported so); the anonymised rows must no longer identify the
    learner (``Store.verify_anonymised``, against the records as they were). Anything
    else fails the step, naming the store: the request cannot end COMPLETED on an
    anonymisation that left the learner's name, id or dates behind.
    """
    plan = request.step(PLAN_PREFIX + "erase_consent_data")
    planned = plan.records if plan is not None else ()
    known = env.store.records_of(request.learner_id, include_restricted=True)
    by_key = {(type(r).__name__, r.id): r for r in known}
    todo: dict[Action, list[Any]] = {Action.ERASE: [], Action.ANONYMISE: [], Action.RESTRICT: []}
    for item in planned:
        record = by_key.get((item.record_type, item.record_id))
        if record is not None:
            todo[item.action].append(record)
    reason = "consent withdrawn (GDPR Art. 17(1)(b))"
    for action in (Action.ERASE, Action.ANONYMISE):
        end_records(
            env.store,
            action,
            todo[action],
            now=now,
            reason=reason,
            schedule=env.schedule,
            holds=env.holds,
        )
    reasons = {(p.record_type, p.record_id): p.reason for p in planned}
    for record in todo[Action.RESTRICT]:
        why = reasons[(type(record).__name__, record.id)]
        env.store.restrict(type(record), record.id, reason=f"{reason}: {why}", now=now)
    # Nothing the plan lists was anonymised before the plan was made.
    since = plan.completed_at if plan is not None else now
    return _checked_outcomes(env, request, planned, known, since, now)


def _checked_outcomes(
    env: Env,
    request: SubjectRequest,
    planned: Sequence[RecordOutcome],
    known: Sequence[Any],
    since: dt.datetime,
    now: dt.datetime,
) -> StepResult:
    after = {(type(r).__name__, r.id) for r in env.store.records_of(request.learner_id)}
    after_all = {
        (type(r).__name__, r.id): r
        for r in env.store.records_of(request.learner_id, include_restricted=True)
    }
    learner = next((r for r in known if isinstance(r, Learner)), None)
    remaining: dict[str, int] = {}
    outcomes = []
    for item in planned:
        key = (item.record_type, item.record_id)
        present = after_all.get(key)
        if item.action is Action.RESTRICT:
            if present is None or key in after:
                remaining[item.record_type] = remaining.get(item.record_type, 0) + 1
                continue
            outcomes.append(attrs.evolve(item, article=Article.ART_18))
            continue
        if present is None:
            outcomes.append(
                attrs.evolve(
                    item,
                    article=Article.ART_17_1_B,
                    reason="consent withdrawn"
                    if item.action is Action.ERASE
                    else "consent withdrawn: only anonymous statistics remain",
                )
            )
        elif key not in after and _kept_by_law(env, present, learner, now):
            outcomes.append(
                attrs.evolve(
                    item,
                    action=Action.RESTRICT,
                    article=Article.ART_17_3_B,
                    reason="kept by a legal minimum or hold, restricted",
                )
            )
        else:
            remaining[item.record_type] = remaining.get(item.record_type, 0) + 1
    if remaining:
        counts = ", ".join(f"{name}={count}" for name, count in sorted(remaining.items()))
        raise StepFailed(
            f"records of the learner remain after the withdrawal ({counts})",
            component=_STORE_COMPONENT,
        )
    if any(item.action is Action.ANONYMISE for item in planned):
        try:
            env.store.verify_anonymised(
                known,
                since=since,
                learner_ids=[request.learner_id],
                record_ids=[(p.record_type, p.record_id) for p in planned],
            )
        except IntegrityError as exc:
            raise StepFailed(str(exc), component=_STORE_COMPONENT) from None
    return StepResult(name="erase_consent_data", completed_at=now, records=tuple(outcomes))


# -- Art. 19 notifications ---------------------------------------------------------------


def recipients_of(env: Env) -> tuple[Recipient, ...]:
    """The external locations the providers declare, then the extra ones."""
    found: list[Recipient] = []
    if env.manager is not None:
        for component, collection in env.manager.get_metadata().items():
            found.extend(
                Recipient(component=component, location=item.name)
                for item in collection.external_locations
            )
    if env.recipients is not None:
        declared = {r.location for r in found}
        for extra in env.recipients.extra:
            # A notifier registered for a declared location is that location's.
            if extra in found or (extra.component == "recipients" and extra.location in declared):
                continue
            found.append(extra)
    return tuple(found)


def _keyring(env: Env) -> Any:
    """The store's keyring (of ``env.store``, or of the store a manager was built with):
    recipients derive references as exports and xAPI actors do."""
    store = env.store
    if store is None and env.manager is not None:
        try:
            store = env.manager.component(_STORE_COMPONENT).provider.store
        except (KeyError, AttributeError, TypeError):
            return None
    return getattr(store, "keyring", None)


def _audit_notification(
    env: Env, request: SubjectRequest, outcome: NotificationOutcome, now: dt.datetime
) -> None:
    """What a recipient reported doing (an LRS: voided, not voided), in the store's audit
    log, failed or not: the step's facts only reach the request history on success."""
    audit = getattr(env.store, "audit", None)
    if audit is None:
        return
    audit.record(
        "notify_recipient",
        outcome.status.value,
        now=now,
        learner_id=request.learner_id,
        details={"location": outcome.location, "request": request.id, **outcome.details},
    )


def notify_step(recipient: Recipient) -> Step:
    """The step telling one recipient about the request's changes (Art. 19)."""

    def run(env: Env, request: SubjectRequest, now: dt.datetime) -> StepResult:
        changed = [o for o in request.record_outcomes if o.action in _CHANGING]
        name = f"notify:{recipient.component}/{recipient.location}"
        if not changed:
            return StepResult(name=name, completed_at=now, facts={"notified": "nothing changed"})
        fields: list[str] = []
        if isinstance(request.params, RectificationParams):
            fields = [c.field for c in request.params.changes]
        if env.recipients is None:
            outcome = NotificationOutcome(
                location=recipient.location,
                component=recipient.component,
                status=NotificationStatus.NO_NOTIFIER,
            )
        else:
            outcome = env.recipients.notify(
                recipient,
                learner_id=request.learner_id,
                operation=_OPERATIONS[request.type],
                request_id=request.id,
                now=now,
                record_types=[o.record_type for o in changed],
                fields=fields,
                keyring=_keyring(env),
            )
        if outcome.details:
            _audit_notification(env, request, outcome, now)
        if outcome.status is NotificationStatus.FAILED:
            counts = ", ".join(f"{k}={v}" for k, v in sorted(outcome.details.items()))
            error = f"{outcome.error} ({counts})" if counts else str(outcome.error)
            raise StepFailed(error, component=recipient.location)
        return StepResult(
            name=name,
            completed_at=now,
            notifications=(outcome,),
            facts={f"{recipient.location}.{k}": v for k, v in outcome.details.items()},
        )

    return (f"notify:{recipient.component}/{recipient.location}", run)


# -- restriction and objection -----------------------------------------------------------


def restrict(env: Env, request: SubjectRequest, now: dt.datetime) -> StepResult:
    """Restrict the learner's records (all, or the types the request names)."""
    params = request.params
    assert params is None or isinstance(params, RestrictionParams)
    article = params.grounds.article if params is not None else Article.ART_18_1
    names = set(params.record_types) if params is not None and params.record_types else None
    reason = f"restriction request ({article})"
    if names is None:
        env.store.restrict(learner_id=request.learner_id, reason=reason, now=now)
    else:
        for name in sorted(names):
            env.store.restrict(name, learner_id=request.learner_id, reason=reason, now=now)
    records = tuple(
        RecordOutcome(
            record_type=type(r).__name__,
            record_id=r.id,
            action=Action.RESTRICT,
            article=article,
        )
        for r in env.store.records_of(request.learner_id, include_restricted=True)
        if names is None or type(r).__name__ in names
    )
    return StepResult(name="restrict", completed_at=now, records=records)


def _objected(record: Any, params: ObjectionParams) -> bool:
    if getattr(type(record), "processing_purpose", None) != params.purpose:
        return False
    if params.direct_marketing:
        return True
    # Art. 21(1) covers processing on public task or legitimate interests only; consent
    # is withdrawn, not objected to.
    return record.basis in (LawfulBasis.LEGITIMATE_INTERESTS, LawfulBasis.PUBLIC_TASK)


def object_to_processing(env: Env, request: SubjectRequest, now: dt.datetime) -> StepResult:
    """Record the objection flag; unless overridden, restrict the records it covers."""
    params = request.params
    assert isinstance(params, ObjectionParams)
    overridden = request.compelling_grounds is not None and not params.direct_marketing
    env.book.record_objection(
        request.learner_id,
        params.purpose,
        request_id=request.id,
        direct_marketing=params.direct_marketing,
        overridden=overridden,
        now=now,
    )
    if env.store is None:
        return StepResult(name="objection", completed_at=now, facts={"flag": "recorded"})
    article = Article.ART_21_3 if params.direct_marketing else Article.ART_21_1
    if not overridden:
        for record in env.store.records_of(request.learner_id):
            if _objected(record, params):
                env.store.restrict(
                    type(record), record.id, reason=f"objection ({article})", now=now
                )
    records = tuple(
        RecordOutcome(
            record_type=type(r).__name__,
            record_id=r.id,
            action=Action.KEEP if overridden else Action.UPHOLD_OBJECTION,
            article=article,
            reason="compelling legitimate grounds" if overridden else "processing stopped",
        )
        for r in env.store.records_of(request.learner_id, include_restricted=True)
        if _objected(r, params)
    )
    return StepResult(name="objection", completed_at=now, records=records)


# -- rectification -----------------------------------------------------------------------


def rectify(env: Env, request: SubjectRequest, now: dt.datetime) -> StepResult:
    """Apply every field change (validated first: all or nothing), re-encrypted on write."""
    params = request.params
    assert isinstance(params, RectificationParams)
    grouped: dict[tuple[str, str], dict[str, Any]] = {}
    for change in params.changes:
        grouped.setdefault((change.record_type, change.record_id), {})[change.field] = change.value
    updated = []
    for (type_name, record_id), changes in grouped.items():
        cls = record_type(type_name)
        # Restricted records are read too, so that another learner's record is reported
        # exactly like a missing one; rectifying a restricted one is then refused.
        record = env.store.get(cls, record_id, include_restricted=True)
        if record is None or subject_of(record) != request.learner_id:
            # Another learner's record is reported exactly like a missing one.
            raise NotFoundError(f"no {type_name} record of this learner with that id")
        merged = {**to_json_dict(record), **changes}
        merged.pop("scaled", None)
        # The record's own validators run here; a bad value raises ValidationError
        # naming the field, before anything is written.
        updated.append((from_json_dict(cls, merged), sorted(changes)))
    for record, _fields in updated:
        env.store.update(record, now=now)
    records = tuple(
        RecordOutcome(
            record_type=type(record).__name__,
            record_id=record.id,
            action=Action.RECTIFY,
            article=Article.ART_16,
            reason="fields: " + ", ".join(fields),
        )
        for record, fields in updated
    )
    return StepResult(name="rectify", completed_at=now, records=records)


# -- post-mortem directives --------------------------------------------------------------


def register_directive(env: Env, request: SubjectRequest, now: dt.datetime) -> StepResult:
    """Register the directive (it replaces an earlier one of the learner)."""
    params = request.params
    assert isinstance(params, PostMortemDirective)
    env.book.register_directive(request.learner_id, params, request_id=request.id, now=now)
    return StepResult(
        name="register_directive", completed_at=now, facts={"on_death": params.on_death.value}
    )
