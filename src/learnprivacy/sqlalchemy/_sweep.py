"""Retention sweeps on the application's own tables, batch by batch."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from sqlalchemy import (
    ColumnElement,
    DateTime,
    and_,
    false,
    null,
    or_,
    select,
    true,
)
from sqlalchemy.orm import Session

from learnprivacy._inplace import ModelSpec, row_key
from learnprivacy._inplace._audit import rows_event, shred_event
from learnprivacy._inplace._plan import decide_routine, with_activity
from learnprivacy._validators import utc_if_naive
from learnprivacy._vocabulary import Action
from learnprivacy.retention import Hold, Schedule, Trigger
from learnprivacy.retention._consents import lapsed_consents
from learnprivacy.sqlalchemy._rowkeys import key_after, key_columns
from learnprivacy.sqlalchemy._states import in_state
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
    # (table, key) of the rows a dry run decided to erase or anonymise.
    gone_keys: set[tuple[str, str]] = set()
    # Activity counts from every declared activity column of the learner's rows, not
    # only the account's (the store's sweep reads the learner's records the same way).
    reads_activity = any(
        Trigger.LAST_ACTIVITY in rule.triggers
        for spec in privacy.specs
        for rule in schedule.rules_for(spec.model)
    )
    for spec in privacy.specs:
        if any(rule.action is Action.ANONYMISE for rule in schedule.rules_for(spec.model)):
            # Before anything is written, a dry run included: an anonymised row must not
            # keep its learner id.
            spec.anonymised_subject(
                nullable=bool(spec.model.__table__.c[spec.subject_column].nullable)
            )
    for spec in privacy.specs:
        if not schedule.rules_for(spec.model):
            continue
        counts = by_type.setdefault(spec.name, dict.fromkeys(_COUNTS, 0))
        table = spec.model.__table__
        ordered = key_columns(spec)
        condition = and_(_candidates(spec, account, schedule, now), ~_anonymised(privacy, spec))
        names = [*spec.key_attributes, spec.subject] + [c.attribute for c in spec.clear]
        columns = [*ordered, table.c[spec.subject_column]] + [table.c[c.column] for c in spec.clear]
        last: Any = None
        while True:
            connection = privacy._open(session, reconcile=not dry_run)
            query = select(*columns).where(condition)
            if last is not None:
                query = query.where(key_after(spec, last))
            rows = connection.execute(query.order_by(*ordered).limit(batch_size)).all()
            if not rows:
                break
            values = [dict(zip(names, row, strict=True)) for row in rows]
            last = spec.key_of(values[-1])
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
            known = privacy._states(connection, spec, [spec.key_of(v) for v in values])
            erase: list[Any] = []
            hide: list[Any] = []
            restrict: list[Any] = []
            owners: dict[str, list[str]] = {"erase": [], "anonymise": [], "restrict": []}
            for value in values:
                key = spec.key_of(value)
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
                if action is Action.RESTRICT and known.get(row_key(key)) == RESTRICTED:
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
                            ReviewItem(record_type=spec.name, record_id=row_key(key), reason=reason)
                        )
                else:
                    outcome = "kept"
                counts[outcome] += 1
                totals[outcome] += 1
            if dry_run:
                for owner in owners["erase"] + owners["anonymise"]:
                    removed[(spec.table, owner)] = removed.get((spec.table, owner), 0) + 1
                gone_keys.update((spec.table, row_key(k)) for k in erase + hide)
                continue
            _carry_out(
                privacy,
                session,
                spec,
                {"erase": erase, "anonymise": hide, "restrict": restrict},
                owners,
                reason="retention sweep",
                now=now,
            )
    for spec, outcome, count in _end_lapsed_consents(
        _Run(privacy, session, schedule, now, holds, dry_run), gone_keys
    ):
        counts = by_type.setdefault(spec.name, dict.fromkeys(_COUNTS, 0))
        counts[outcome] += count
        totals[outcome] += count
        # Rows a consent let go were counted as kept by the retention pass.
        kept = min(count, counts["kept"])
        counts["kept"] -= kept
        totals["kept"] -= kept
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


def _anonymised(privacy: LearnPrivacy, spec: ModelSpec) -> ColumnElement[bool]:
    """Rows of ``spec``'s table anonymised by an earlier run (no longer the learner's)."""
    condition: ColumnElement[bool] = in_state(
        privacy.side.states, privacy.row_refs, spec, ANONYMISED
    )
    return condition


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
    for spec in privacy.specs:
        name = spec.privacy.activity
        if name is None:
            continue
        table = spec.model.__table__
        subject = table.c[spec.subject_column]
        column = table.c[spec.column(name).column]
        anonymised = _anonymised(privacy, spec)
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
                if not isinstance(latest, dt.datetime):
                    continue
                latest = utc_if_naive(latest)
                current = found.get(str(learner))
                if current is None or latest > current:
                    found[str(learner)] = latest
    return found


def _carry_out(
    privacy: LearnPrivacy,
    session: Session,
    spec: ModelSpec,
    keys: dict[str, list[Any]],
    owners: dict[str, list[str]],
    *,
    reason: str,
    now: dt.datetime,
) -> None:
    """Audit, then erase, anonymise and restrict rows of one table, queue the keys no
    remaining row needs, and commit (one transaction)."""
    if not any(keys.values()):
        return
    connection = privacy._open(session)
    events = [
        rows_event(action, privacy.subject_ref, spec, rows, list(owners[action]), reason=reason)
        for action, rows in keys.items()
        if rows
    ]
    gone = sorted({o for o in owners["erase"] + owners["anonymise"] if o})
    if gone and spec.personal:
        events.append(shred_event(privacy.subject_ref, gone, [spec.scope], mode="keys"))
    privacy._record(session, connection, events, now)
    privacy._apply(
        session,
        connection,
        erase={spec.table: keys["erase"]},
        restrict={spec.table: keys["restrict"]},
        anonymise={spec.table: keys["anonymise"]},
        now=now,
        reason=f"{reason}: restricted",
    )
    if gone and spec.personal:
        privacy._queue_shreds(session, connection, [(s, spec.scope) for s in gone], "keys", now)
    if gone:
        privacy._removed(session, connection, [spec.table], gone)
    session.commit()


def _consent_table(privacy: LearnPrivacy) -> ModelSpec | None:
    return next((s for s in privacy.specs if s.privacy.consents is not None), None)


def _lapsed(
    privacy: LearnPrivacy, connection: Any, consents: ModelSpec, purposes: set[str], now: Any
) -> dict[str, set[str]]:
    """For each purpose, the learners who consented to it and whose every consent has
    ended at ``now`` (withdrawn or expired), as the store's sweep reads its consents. A
    learner with no consent row is not in it (their consent may be held elsewhere)."""
    from learnprivacy._inplace._spec import _aware

    names = dict(consents.privacy.consents or ())
    table = consents.model.__table__
    attributes = [names["purpose"], names["given_at"]]
    attributes += [names.get("withdrawn_at"), names.get("expires_at")]
    columns = [table.c[consents.subject_column]]
    columns += [table.c[consents.column(a).column] if a is not None else null() for a in attributes]
    query = select(*columns).where(columns[1].in_(sorted(purposes)))
    return lapsed_consents(connection.execute(query), now, dates=_aware)


class _Run(NamedTuple):
    """What one sweep was called with, handed to its steps as one."""

    privacy: LearnPrivacy
    session: Session
    schedule: Schedule
    now: dt.datetime
    holds: Sequence[Hold]
    dry_run: bool


def _end_lapsed_consents(run: _Run, skip: set[tuple[str, str]]) -> list[tuple[ModelSpec, str, int]]:
    """End what rested only on a consent that has been withdrawn or has expired.

    The store's rule (``Schedule.on_consent_end``): a row every one of whose rules is a
    purpose on consent is let go once the learner's consent to that purpose has ended,
    whatever its retention period says, with the rules' own action (erase, else
    anonymise, else restrict). What a legal minimum or a hold protects is restricted
    instead; learners' own accounts (their own rule decides), rows already restricted and
    the consent rows themselves are left as they are. Returns ``(spec, outcome, count)``.
    """
    from learnprivacy._inplace._plan import decide_on_request
    from learnprivacy.basis import LawfulBasis

    privacy, session, schedule, now, holds, dry_run = run
    consents = _consent_table(privacy)
    if consents is None:
        return []
    by_purpose: dict[str, list[ModelSpec]] = {}
    for spec in privacy.specs:
        if spec.is_subject_table or spec is consents:
            continue
        for rule in schedule.rules_for(spec.model):
            if rule.purpose and rule.basis is LawfulBasis.CONSENT:
                by_purpose.setdefault(rule.purpose, [])
                if spec not in by_purpose[rule.purpose]:
                    by_purpose[rule.purpose].append(spec)
    if not by_purpose:
        return []
    connection = privacy._open(session, reconcile=not dry_run)
    lapsed = _lapsed(privacy, connection, consents, set(by_purpose), now)
    account = next((s for s in privacy.specs if s.is_subject_table), None)
    done: list[tuple[ModelSpec, str, int]] = []
    for purpose, learners in sorted(lapsed.items()):
        reason = f"consent to {purpose} ended (GDPR Art. 7(3))"
        for spec in by_purpose.get(purpose, ()):
            connection = privacy._open(session, reconcile=not dry_run)
            rows: list[tuple[Any, str, Any]] = []
            for learner in sorted(learners):
                for key, values in privacy._clear_rows(connection, spec, learner):
                    rows.append((key, learner, spec.view(values)))
            states = privacy._states(connection, spec, [key for key, _, _ in rows])
            accounts = _accounts(privacy, connection, account, spec, set(learners))
            # The schedule's own rule, on the rows' views (which stand for the model).
            rules = Schedule({spec.view_class: schedule.rules_for(spec.model)})
            keys: dict[str, list[Any]] = {"erase": [], "anonymise": [], "restrict": []}
            owners: dict[str, list[str]] = {"erase": [], "anonymise": [], "restrict": []}
            for key, learner, view in rows:
                if states.get(row_key(key)) is not None or (spec.table, row_key(key)) in skip:
                    continue
                action = rules.on_consent_end(view, purpose)
                if action is None:
                    continue
                protected = decide_on_request(
                    spec,
                    view,
                    subject=accounts.get(learner),
                    now=now,
                    holds=holds,
                    schedule=schedule,
                ).action
                if protected is not Action.ERASE:
                    action = Action.RESTRICT
                name = {Action.ERASE: "erase", Action.ANONYMISE: "anonymise"}.get(
                    action, "restrict"
                )
                keys[name].append(key)
                owners[name].append(learner)
            for name, found in keys.items():
                if found:
                    done.append((spec, Action(name).done, len(found)))
            if not dry_run:
                _carry_out(privacy, session, spec, keys, owners, reason=reason, now=now)
    return done
