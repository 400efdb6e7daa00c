"""Execution steps that change records in place: restriction, objection, rectification,
and the registration of post-mortem directives.

Same contract as :mod:`learnprivacy.requests._steps`: ``(env, request, now) ->
StepResult``, idempotent, raising when the step cannot finish.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from learnprivacy._vocabulary import Action, Article
from learnprivacy.basis import LawfulBasis
from learnprivacy.errors import NotFoundError
from learnprivacy.records import from_json_dict, record_type, subject_of, to_json_dict
from learnprivacy.requests._model import SubjectRequest
from learnprivacy.requests._outcomes import RecordOutcome, StepResult
from learnprivacy.requests._params import (
    ObjectionParams,
    PostMortemDirective,
    RectificationParams,
    RestrictionParams,
)
from learnprivacy.requests._steps import Env

__all__ = ["object_to_processing", "rectify", "register_directive", "restrict"]


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
        record = env.store.get(cls, record_id)
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
