"""Retention sweeps on the application's own tables, batch by batch."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, DateTime, String, and_, cast, exists, false, or_, select, true
from sqlalchemy.orm import Session

from learnprivacy._inplace import ModelSpec
from learnprivacy._inplace._audit import rows_event, shred_event
from learnprivacy._inplace._plan import decide_routine, with_activity
from learnprivacy._vocabulary import Action
from learnprivacy.retention import Hold, Schedule, Trigger
from learnprivacy.sqlalchemy._tables import ANONYMISED, RESTRICTED
from learnprivacy.store._reports import ReviewItem, SweepReport

if TYPE_CHECKING:
    from learnprivacy.sqlalchemy._privacy import LearnPrivacy

__all__ = ["sweep"]

SHREDDED = "learnprivacy.shredded"
_COUNTS = ("erased", "anonymised", "restricted", "review", "kept")


def _bound(column: Any, cutoff: dt.datetime) -> Any:
    """``cutoff`` as the column stores dates: naive UTC unless it keeps offsets."""
    if isinstance(column.type, DateTime) and column.type.timezone:
        return cutoff
    return cutoff.astimezone(dt.UTC).replace(tzinfo=None)


def _expired(column: Any, cutoff: dt.datetime | None) -> ColumnElement[bool]:
    """Rows whose date has passed ``cutoff``, or that have no date (a person decides)."""
    if cutoff is None:
        missing: ColumnElement[bool] = column.is_(None)
        return missing
    return or_(column <= _bound(column, cutoff), column.is_(None))


def _date_attribute(spec: ModelSpec, trigger: Trigger) -> str | None:
    privacy = spec.privacy
    if trigger is Trigger.LAST_ACTIVITY:
        return privacy.activity
    if trigger is Trigger.CONTRACT_END:
        return privacy.contract_end
    if trigger in (Trigger.CREATED, Trigger.FISCAL_YEAR_END):
        return privacy.created
    name = trigger.field_for(spec.view_class)
    return name if any(c.attribute == name for c in spec.clear) else None


def _candidates(
    spec: ModelSpec, account: ModelSpec | None, schedule: Schedule, now: dt.datetime
) -> ColumnElement[bool]:
    """SQL for the rows some rule may have ended for (confirmed row by row later)."""
    table = spec.model.__table__
    conditions: list[ColumnElement[bool]] = []
    for rule in schedule.rules_for(spec.model):
        for trigger in rule.triggers:
            cutoff = rule.cutoff(now, trigger)
            owner = spec if (not trigger.on_subject or spec.is_subject_table) else account
            if owner is None:
                return true()
            attribute = _date_attribute(owner, trigger)
            if attribute is None:
                return true()
            column = owner.model.__table__.c[owner.column(attribute).column]
            if owner is spec:
                conditions.append(_expired(column, cutoff))
                continue
            accounts = owner.model.__table__
            key = accounts.c[owner.primary_key_column]
            subject = table.c[spec.subject_column]
            conditions.append(
                or_(
                    subject.in_(select(key).where(_expired(column, cutoff))),
                    subject.not_in(select(key)),
                )
            )
    return or_(*conditions) if conditions else false()


def sweep(
    privacy: LearnPrivacy,
    session: Session,
    schedule: Schedule,
    *,
    now: dt.datetime,
    holds: Sequence[Hold],
    dry_run: bool,
    batch_size: int,
    review_limit: int,
) -> SweepReport:
    """See :meth:`LearnPrivacy.sweep`."""
    totals = dict.fromkeys(_COUNTS, 0)
    by_type: dict[str, dict[str, int]] = {}
    reviews: list[ReviewItem] = []
    session.info[SHREDDED] = 0
    account = next((s for s in privacy.specs if s.is_subject_table), None)
    removed: dict[tuple[str, str], int] = {}
    # Activity counts from every declared activity column of the learner's rows, not
    # only the account's (the store's sweep reads the learner's records the same way).
    reads_activity = any(
        Trigger.LAST_ACTIVITY in rule.triggers
        for spec in privacy.specs
        for rule in schedule.rules_for(spec.model)
    )
    for spec in privacy.specs:
        if not schedule.rules_for(spec.model):
            continue
        counts = by_type.setdefault(spec.name, dict.fromkeys(_COUNTS, 0))
        table = spec.model.__table__
        key_column = table.c[spec.primary_key_column]
        states = privacy.side.states
        anonymised = exists(
            select(states.c.row_key).where(
                states.c.table_name == spec.table,
                states.c.row_key == cast(key_column, String),
                states.c.state == ANONYMISED,
            )
        )
        condition = and_(_candidates(spec, account, schedule, now), ~anonymised)
        names = [spec.primary_key, spec.subject] + [c.attribute for c in spec.clear]
        columns = [key_column, table.c[spec.subject_column]] + [
            table.c[c.column] for c in spec.clear
        ]
        last: Any = None
        while True:
            connection = privacy._open(session)
            query = select(*columns).where(condition)
            if last is not None:
                query = query.where(key_column > last)
            rows = connection.execute(query.order_by(key_column).limit(batch_size)).all()
            if not rows:
                break
            last = rows[-1][0]
            values = [dict(zip(names, row, strict=True)) for row in rows]
            subjects = {str(v[spec.subject]) for v in values if v[spec.subject] is not None}
            accounts = _accounts(privacy, connection, account, spec, subjects)
            activity = _latest_activity(privacy, connection, subjects) if reads_activity else {}
            if activity and not spec.is_subject_table:
                accounts = {
                    s: with_activity(accounts.get(s), activity.get(s), s)
                    for s in subjects | set(accounts)
                }
            held_by_rows = (
                _with_other_rows(privacy, connection, spec, subjects, removed)
                if spec.is_subject_table
                else set()
            )
            known = privacy._states(connection, spec, [v[spec.primary_key] for v in values])
            erase: list[Any] = []
            hide: list[Any] = []
            restrict: list[Any] = []
            owners: dict[str, list[str]] = {"erase": [], "anonymise": [], "restrict": []}
            for value in values:
                key = value[spec.primary_key]
                subject = None if value[spec.subject] is None else str(value[spec.subject])
                view = spec.view(value)
                if spec.is_subject_table and subject in activity:
                    view = with_activity(view, activity[subject], subject)
                decision = decide_routine(
                    spec,
                    view,
                    subject=None if subject is None else accounts.get(subject),
                    now=now,
                    holds=holds,
                    schedule=schedule,
                )
                action = decision.action
                if action.destructive and spec.is_subject_table and subject in held_by_rows:
                    action = Action.REVIEW
                    reason = (
                        "retention has ended but other rows of the learner refer to the account"
                    )
                else:
                    reason = decision.reason
                if action is Action.RESTRICT and known.get(str(key)) == RESTRICTED:
                    action = Action.KEEP
                if action is Action.ERASE:
                    erase.append(key)
                    owners["erase"].append(subject or "")
                    outcome = "erased"
                elif action is Action.ANONYMISE:
                    hide.append(key)
                    owners["anonymise"].append(subject or "")
                    outcome = "anonymised"
                elif action is Action.RESTRICT:
                    restrict.append(key)
                    owners["restrict"].append(subject or "")
                    outcome = "restricted"
                elif action is Action.REVIEW:
                    outcome = "review"
                    if len(reviews) < review_limit:
                        reviews.append(
                            ReviewItem(record_type=spec.name, record_id=str(key), reason=reason)
                        )
                else:
                    outcome = "kept"
                counts[outcome] += 1
                totals[outcome] += 1
            if dry_run:
                for owner in owners["erase"] + owners["anonymise"]:
                    removed[(spec.table, owner)] = removed.get((spec.table, owner), 0) + 1
                continue
            if not (erase or hide or restrict):
                continue
            events = []
            for action_name, keys in (
                ("erase", erase),
                ("anonymise", hide),
                ("restrict", restrict),
            ):
                if keys:
                    events.append(
                        rows_event(
                            action_name,
                            privacy.subject_ref,
                            spec,
                            keys,
                            list(owners[action_name]),
                            reason="retention sweep",
                        )
                    )
            gone = sorted({o for o in owners["erase"] + owners["anonymise"] if o})
            if gone and spec.personal:
                events.append(shred_event(privacy.subject_ref, gone, [spec.scope], mode="keys"))
            privacy.audit(connection).append(connection, events, now=now)
            privacy._apply(
                session,
                connection,
                erase={spec.table: erase},
                restrict={spec.table: restrict},
                anonymise={spec.table: hide},
                now=now,
                reason="retention rule: restricted",
            )
            if gone and spec.personal:
                privacy._queue_shreds(
                    session, connection, [(s, spec.scope) for s in gone], "keys", now
                )
            session.commit()
    shredded = int(session.info.pop(SHREDDED, 0))
    return SweepReport(
        erased=totals["erased"],
        anonymised=totals["anonymised"],
        restricted=totals["restricted"],
        review=totals["review"],
        kept=totals["kept"],
        shredded=shredded,
        dry_run=dry_run,
        now=now,
        by_type=by_type,
        review_items=tuple(reviews),
        review_truncated=totals["review"] > len(reviews),
    )


def _accounts(
    privacy: LearnPrivacy,
    connection: Any,
    account: ModelSpec | None,
    spec: ModelSpec,
    subjects: set[str],
) -> dict[str, Any]:
    """The account views of ``subjects`` (read for learner-level triggers)."""
    if account is None or spec.is_subject_table or not subjects:
        return {}
    from learnprivacy.sqlalchemy._privacy import _typed

    table = account.model.__table__
    key = table.c[account.primary_key_column]
    names = [account.primary_key] + [c.attribute for c in account.clear]
    columns = [key] + [table.c[c.column] for c in account.clear]
    found: dict[str, Any] = {}
    wanted = sorted(subjects)
    for start in range(0, len(wanted), 500):
        chunk = [_typed(account, s) for s in wanted[start : start + 500]]
        for row in connection.execute(select(*columns).where(key.in_(chunk))):
            values = dict(zip(names, row, strict=True))
            found[str(values[account.primary_key])] = account.view(values)
    return found


def _with_other_rows(
    privacy: LearnPrivacy,
    connection: Any,
    spec: ModelSpec,
    subjects: set[str],
    removed: dict[tuple[str, str], int],
) -> set[str]:
    """The learners of ``subjects`` who still have rows in another declared table.

    ``removed`` counts, per (table, learner), rows a dry run has decided to remove: they
    would be gone by now in a real run.
    """
    from sqlalchemy import func

    from learnprivacy.sqlalchemy._privacy import _typed

    found: set[str] = set()
    wanted = sorted(subjects)
    for other in privacy.specs:
        if other is spec or other.is_subject_table:
            continue
        column = other.model.__table__.c[other.subject_column]
        for start in range(0, len(wanted), 500):
            chunk = [_typed(other, s) for s in wanted[start : start + 500]]
            query = select(column, func.count()).where(column.in_(chunk)).group_by(column)
            for value, count in connection.execute(query):
                if count > removed.get((other.table, str(value)), 0):
                    found.add(str(value))
    return found


def _latest_activity(
    privacy: LearnPrivacy, connection: Any, subjects: set[str]
) -> dict[str, dt.datetime]:
    """Each learner's latest activity over the ``Privacy(activity=...)`` columns of every
    declared table (UTC), by learner id; anonymised rows are no longer theirs."""
    from sqlalchemy import func

    from learnprivacy.sqlalchemy._privacy import _typed

    found: dict[str, dt.datetime] = {}
    wanted = sorted(subjects)
    states = privacy.side.states
    for spec in privacy.specs:
        name = spec.privacy.activity
        if name is None:
            continue
        table = spec.model.__table__
        subject = table.c[spec.subject_column]
        column = table.c[spec.column(name).column]
        key = table.c[spec.primary_key_column]
        anonymised = exists(
            select(states.c.row_key).where(
                states.c.table_name == spec.table,
                states.c.row_key == cast(key, String),
                states.c.state == ANONYMISED,
            )
        )
        for start in range(0, len(wanted), 500):
            chunk = [_typed(spec, s) for s in wanted[start : start + 500]]
            query = (
                select(subject, func.max(column))
                .where(subject.in_(chunk), ~anonymised)
                .group_by(subject)
            )
            for learner, latest in connection.execute(query):
                if latest is None:
                    continue
                if isinstance(latest, dt.datetime) and latest.tzinfo is None:
                    latest = latest.replace(tzinfo=dt.UTC)
                if not isinstance(latest, dt.datetime):
                    continue
                current = found.get(str(learner))
                if current is None or latest > current:
                    found[str(learner)] = latest
    return found
