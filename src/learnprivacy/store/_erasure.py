"""The right to erasure, and replaying erasures on a restored backup."""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, select, update

from learnprivacy._vocabulary import Article
from learnprivacy.errors import ValidationError
from learnprivacy.records import Learner
from learnprivacy.records._base import subject_of
from learnprivacy.retention import Action, Hold, Override, Schedule
from learnprivacy.retention._decide import unscheduled_erasure
from learnprivacy.store import _statistics as statistics
from learnprivacy.store._actions import (
    anonymise_rows,
    erase_rows,
    every_row,
    live_keys,
    restrict_rows,
    scopes_in_use,
    shred_keys,
    unanonymised,
)
from learnprivacy.store._anonymisation import check_anonymised
from learnprivacy.store._audit import AuditEntry, AuditEvent, AuditLog
from learnprivacy.store._bulk import ids_in
from learnprivacy.store._common import ids_detail
from learnprivacy.store._open import check_record_types
from learnprivacy.store._reports import ErasureOutcome, ErasureReport, ReplayReport
from learnprivacy.store._schema import ANONYMISED, RESTRICTED, RecordTable

if TYPE_CHECKING:
    from learnprivacy.store._core import StoreCore as Store

__all__ = ["end_records", "erase_subject", "replay"]

# The article strings the retention engine uses, for the default policy below.


_NOUN = {Action.ERASE: "erasure", Action.ANONYMISE: "anonymisation"}


def _default_decision(record: Any, holds: tuple[Hold, ...]) -> tuple[Action, str, str]:
    """Without a schedule: holds and legal obligations restrict, everything else goes."""
    hold = next((h for h in holds if h.matches(record)), None)
    return unscheduled_erasure(getattr(record, "basis", None), hold)


def _rows_of(
    store: Store, connection: Connection, learner_id: str
) -> list[tuple[RecordTable, Any, bool]]:
    """``(table, skeleton record, restricted?)`` of every live row of the learner."""
    found = []
    for rt in store._record_tables():
        table = rt.table
        clear = [c for c in table.columns if not c.name.endswith(("_token", "_bidx"))]
        positions = {c.name: i for i, c in enumerate(clear)}
        read = store._codec(rt.cls).skeleton_reader(positions)
        query = select(*clear).where(
            table.c[rt.subject_column] == learner_id, table.c[ANONYMISED].is_(None)
        )
        if store._db.is_postgres:
            query = query.with_for_update()
        for row in connection.execute(query.order_by(table.c.id)):
            found.append((rt, read(row), row[positions[RESTRICTED]] is not None))
    return found


def erase_subject(
    store: Store,
    learner_id: str,
    *,
    now: dt.datetime,
    holds: tuple[Hold, ...],
    schedule: Schedule | None,
) -> ErasureReport:
    """See :meth:`Store.erase_subject`."""
    now = store.now(now)
    if not isinstance(learner_id, str) or not learner_id:
        raise ValidationError("learner_id must be a non-empty str", field="learner_id")
    if not all(isinstance(h, Hold) for h in holds):
        raise ValidationError("holds must be Hold objects", field="holds")
    audit = store.audit
    ref = audit.subject_ref(learner_id)
    outcomes: list[ErasureOutcome] = []
    with store._writing() as connection:
        check_record_types(store._record_tables(), connection)
        rows = _rows_of(store, connection, learner_id)
        learner = next((rec for rt, rec, _ in rows if not rt.has_learner), None)
        plan: dict[str, tuple[RecordTable, list[str], list[str]]] = {}
        for rt, record, _restricted in rows:
            if schedule is None:
                action, article, reason = _default_decision(record, holds)
                due = None
            else:
                decision = schedule.evaluate(
                    record, now=now, learner=learner, holds=holds, erasure_requested=True
                )
                action, article, reason, due = (
                    decision.action,
                    decision.article,
                    decision.reason,
                    decision.due_at,
                )
            erased = action is Action.ERASE
            entry = plan.setdefault(rt.name, (rt, [], []))
            (entry[1] if erased else entry[2]).append(record.id)
            # Whatever is not erased is kept restricted, unless a person must decide.
            done = action if action in (Action.ERASE, Action.REVIEW) else Action.RESTRICT
            outcomes.append(
                ErasureOutcome(
                    record_type=rt.name,
                    record_id=record.id,
                    action=done,
                    article=article,
                    reason=reason,
                    due_at=due,
                )
            )
        erased_count = sum(len(e[1]) for e in plan.values())
        kept_scopes = sorted({rt.scope for rt, _, kept in plan.values() if kept and _encrypts(rt)})
        all_scopes = sorted({rt.scope for rt in store._record_tables() if _encrypts(rt)})
        shredded = [s for s in all_scopes if s not in kept_scopes]
        events = [
            AuditEvent(
                action="erasure_request",
                outcome="done",
                subject_ref=ref,
                details={
                    "erased": erased_count,
                    "restricted": len(outcomes) - erased_count,
                    "shredded_scopes": shredded,
                    "kept_scopes": kept_scopes,
                },
            )
        ]
        for rt, erase_ids, keep_ids in plan.values():
            subjects = [learner_id]
            if erase_ids:
                events.append(_event("erase", rt, erase_ids, subjects, ref, store))
            if keep_ids:
                events.append(_event("restrict", rt, keep_ids, subjects, ref, store))
        events.append(
            AuditEvent(
                action="shred",
                outcome="done",
                subject_ref=ref,
                details={"scopes": shredded, "subject_refs": [ref], "mode": "tombstone"},
            )
        )
        for scope in shredded:
            # Lock order on PostgreSQL, the same in every writer: rows, keys, audit head.
            live_keys(store, connection, [learner_id], scope)
        # The log first: the entries and the erasure commit together or not at all.
        audit.append(connection, events, now=now)
        if erased_count:
            statistics.removed(connection, [learner_id])
        for rt, erase_ids, keep_ids in plan.values():
            every_row(erase_rows(connection, rt, erase_ids), len(erase_ids), rt.name, "erased")
            restrict_rows(
                connection, rt, keep_ids, now=now, reason="erasure request: kept by law or hold"
            )
        for scope in shredded:
            store.keyring.shred(learner_id, scope)
    # The key database was checkpointed once the shredded keys were destroyed.
    folded = store._db.checkpoint() and store._key_db.database.folded
    return ErasureReport(
        folded=folded,
        erased=erased_count,
        restricted=len(outcomes) - erased_count,
        outcomes=tuple(outcomes),
        shredded_scopes=tuple(shredded),
        kept_scopes=tuple(kept_scopes),
        subject_ref=ref,
    )


def _encrypts(rt: RecordTable) -> bool:
    return any(f.encrypted for f in rt.fields)


def _event(
    action: str, rt: RecordTable, ids: list[str], subjects: list[str], ref: str, store: Store
) -> AuditEvent:
    return AuditEvent(
        action=action,
        outcome="done",
        record_type=rt.name,
        subject_ref=ref,
        details={
            **ids_detail(store.audit, rt, ids, subjects),
            "count": len(ids),
            "reason": "erasure request",
        },
    )


def _protected(
    record: Any,
    *,
    now: dt.datetime,
    schedule: Schedule | None,
    holds: tuple[Hold, ...],
    subject: Any,
    override: Override | None,
) -> tuple[bool, str]:
    """Whether a legal minimum or a hold keeps ``record`` from an erasure, and why.

    With a schedule, its decision for an erasure request rules (a ``COMPLIANCE`` minimum
    raises ``RetentionViolation`` when an override tries to cut it short). Without one,
    a hold, or a basis under which the law keeps the data (Art. 17(3)(b)), protects the
    record; an override releases the latter, never a hold.
    """
    if schedule is not None:
        decision = schedule.evaluate(
            record,
            now=now,
            subject=subject,
            holds=holds,
            erasure_requested=True,
            override=override,
        )
        return decision.action is not Action.ERASE, decision.article
    action, article, _reason = _default_decision(record, holds)
    if action is Action.ERASE:
        return False, article
    if override is not None and not any(h.matches(record) for h in holds):
        return False, Article.ART_17_1
    return True, article


def end_records(
    store: Store,
    records: list[Any],
    action: Action,
    now: dt.datetime,
    reason: str,
    schedule: Schedule | None,
    holds: tuple[Hold, ...],
    override: Override | None,
) -> int:
    """Erase or anonymise exactly ``records`` (see :meth:`Store.erase_records` and
    :meth:`Store.anonymise_records`), restricting what a legal minimum or hold protects;
    audited first, in one transaction; keys no remaining row uses shredded. The rows an
    anonymisation wrote are read again afterwards (an anonymisation reported is an
    anonymisation checked)."""
    if not isinstance(reason, str) or not reason.strip():
        raise ValidationError("reason must be non-empty text", field="reason")
    if override is not None and not isinstance(override, Override):
        raise ValidationError("override must be an Override", field="override")
    if not all(isinstance(h, Hold) for h in holds):
        raise ValidationError("holds must be Hold objects", field="holds")
    verb = "erase" if action is Action.ERASE else "anonymise"
    subjects: dict[str, Any] = {}

    def subject(record: Any) -> Any:
        owner = subject_of(record)
        if owner not in subjects:
            subjects[owner] = (
                store.get(Learner, owner, include_restricted=True)
                if hasattr(record, "learner_id")
                else record
            )
        return subjects[owner]

    by_table: dict[str, tuple[RecordTable, list[str], list[str]]] = {}
    kept_by_table: dict[str, tuple[RecordTable, list[str], list[str]]] = {}
    overridden: dict[str, int] = {}
    for record in records:
        rt = store._table(type(record))
        # Decided before anything is written: a COMPLIANCE minimum that an override tries
        # to shorten raises here, with nothing changed. Anonymising destroys the personal
        # data as erasing does, so the same minimums and holds protect from it.
        decide = functools.partial(
            _protected, record, now=now, schedule=schedule, holds=holds, subject=subject(record)
        )
        protected, _article = decide(override=None)
        if protected and override is not None:
            protected, _article = decide(override=override)
            if not protected:
                overridden[rt.name] = overridden.get(rt.name, 0) + 1
        target = kept_by_table if protected else by_table
        entry = target.setdefault(rt.name, (rt, [], []))
        entry[1].append(record.id)
        entry[2].append(subject_of(record))
    if not by_table and not kept_by_table:
        return 0
    audit = store.audit
    changed = 0
    persons: dict[str, str] = {}
    new_ids: dict[str, list[str]] = {}
    with store._writing() as connection:
        found = _live(store, connection, by_table)
        kept = _live(store, connection, kept_by_table)
        keys: dict[str, list[tuple[str, str]]] = {}
        for rt, _ids, _owners in found.values():
            if _encrypts(rt) and rt.scope not in keys:
                owners_of_scope = {
                    s for other, _, o in found.values() if other.scope == rt.scope for s in o
                }
                keys[rt.scope] = live_keys(store, connection, owners_of_scope, rt.scope)
        events = []
        if overridden and override is not None:
            events.append(
                AuditEvent(
                    action="override",
                    outcome="done",
                    details={
                        "reason": override.reason,
                        # Who decided, as a keyed reference: the audit log names no one.
                        "actor_ref": audit.subject_ref(override.actor),
                        "counts": dict(sorted(overridden.items())),
                        "erasure_reason": reason,
                    },
                )
            )
        for rt, ids, owners in found.values():
            events.append(_records_event(verb, rt, ids, owners, reason, store))
        for rt, ids, owners in kept.values():
            events.append(
                _records_event(
                    "restrict", rt, ids, owners, f"{reason}: kept by a legal minimum or hold", store
                )
            )
        audit.append(connection, events, now=now)
        for rt, ids, owners in found.values():
            statistics.removed(connection, owners)
            if action is Action.ERASE:
                changed += every_row(erase_rows(connection, rt, ids), len(ids), rt.name, "erased")
            else:
                # One person id per learner for the whole call, so the rows of one
                # learner still count as one person in statistics.
                made = anonymise_rows(
                    connection,
                    rt,
                    ids,
                    now,
                    granularity=store.anonymise_dates_to,
                    persons=persons,
                    new_ids=new_ids.setdefault(rt.name, []),
                )
                changed += every_row(made, len(ids), rt.name, "anonymised")
        for rt, ids, _owners in kept.values():
            restrict_rows(
                connection,
                rt,
                ids,
                now=now,
                reason=f"{_NOUN[action]}: kept by a legal minimum or hold",
            )
        for scope, live in keys.items():
            subjects_of_scope = {s for s, _ in live}
            unused = sorted(
                subjects_of_scope - scopes_in_use(store, connection, subjects_of_scope, scope)
            )
            if unused:
                refs = sorted(audit.subject_ref(s) for s in unused)
                audit.append(
                    connection,
                    [
                        AuditEvent(
                            action="shred",
                            outcome="done",
                            subject_ref=refs[0] if len(refs) == 1 else None,
                            details={"scope": scope, "subject_refs": refs, "mode": "keys"},
                        )
                    ],
                    now=now,
                )
                shred_keys(store, connection, unused, scope)
    store._db.checkpoint()
    if action is Action.ANONYMISE:
        # Re-read what was written, row by row: the rows must no longer identify anyone
        # of ``records``.
        check_anonymised(store, records, ids=new_ids)
    return changed


def _live(
    store: Store,
    connection: Connection,
    by_table: dict[str, tuple[RecordTable, list[str], list[str]]],
) -> dict[str, tuple[RecordTable, list[str], list[str]]]:
    """The rows of ``by_table`` still present and not anonymised: ``(table, ids, owners)``."""
    found: dict[str, tuple[RecordTable, list[str], list[str]]] = {}
    for rt, ids, _subjects in by_table.values():
        table = rt.table
        query = select(table.c.id, table.c[rt.subject_column]).where(
            ids_in(table.c.id, ids, connection.dialect.name),
            unanonymised(table, connection.dialect.name),
        )
        if store._db.is_postgres:
            query = query.with_for_update()
        rows = connection.execute(query).all()
        if rows:
            found[rt.name] = (rt, [r[0] for r in rows], [r[1] for r in rows])
    return found


def _records_event(
    action: str, rt: RecordTable, ids: list[str], owners: list[str], reason: str, store: Store
) -> AuditEvent:
    audit = store.audit
    return AuditEvent(
        action=action,
        outcome="done",
        record_type=rt.name,
        subject_ref=audit.subject_ref(owners[0]) if len(set(owners)) == 1 else None,
        details={
            **ids_detail(audit, rt, ids, owners),
            "count": len(ids),
            "reason": reason,
        },
    )


# -- replay ------------------------------------------------------------------------------

_REPLAYED = ("erase", "anonymise", "restrict", "lift_restriction", "shred", "rectify")


def _subject_map(store: Store, connection: Connection, refs: set[str]) -> dict[str, str]:
    """Learner ids of this store whose audit reference is in ``refs``."""
    found: dict[str, str] = {}
    if not refs:
        return found
    sources = [rt.table.c[rt.subject_column] for rt in store._record_tables()]
    for column in sources:
        for subject in connection.execute(select(column).distinct()).scalars():
            if subject in found.values():
                continue
            ref = store.audit.subject_ref(subject)
            if ref in refs:
                found[ref] = subject
    return found


def _rewrite_dates(
    connection: Connection, rt: RecordTable, ids: list[str], values: dict[str, Any]
) -> int:
    """Write a rectification's dates again on the rows ``ids`` still live and not
    restricted (a restriction replayed before it forbids the write, as it did then)."""
    table = rt.table
    statement = (
        update(table)
        .where(
            ids_in(table.c.id, ids, connection.dialect.name),
            table.c[ANONYMISED].is_(None),
            table.c[RESTRICTED].is_(None),
        )
        .values(**values)
    )
    return int(connection.execute(statement).rowcount)


def _record_ids(store: Store, connection: Connection, rt: RecordTable, refs: set[str]) -> list[str]:
    """Ids of the rows of ``rt`` whose audit record reference is in ``refs`` (every id of
    the table is tried: replay is rare, the log names no id)."""
    if not refs:
        return []
    record_ref = store.audit.record_ref
    found = []
    query = select(rt.table.c.id).execution_options(yield_per=5_000)
    for record_id in connection.execute(query).scalars():
        if record_ref(rt.name, record_id) in refs:
            found.append(record_id)
    return found


def replay(store: Store, from_log: AuditLog | Iterable[Any], *, now: dt.datetime) -> ReplayReport:
    """See :meth:`Store.replay_erasures`."""
    if isinstance(from_log, AuditLog):
        from_log.verify()
        entries: list[AuditEntry] = list(from_log.entries(actions=_REPLAYED))
    else:
        entries = [e for e in from_log if isinstance(e, AuditEntry) and e.action in _REPLAYED]
    refs: set[str] = set()
    for entry in entries:
        refs.update(entry.details.get("subject_refs", ()))
    counts = dict.fromkeys(
        ("erased", "anonymised", "restricted", "lifted", "shredded", "rectified"), 0
    )
    counts["rectifications_left"] = 0
    with store._writing() as connection:
        subjects = _subject_map(store, connection, refs)
        for entry in entries:
            _replay_one(store, connection, entry, subjects, counts)
        store.audit.append(
            connection,
            [
                AuditEvent(
                    action="replay_erasures",
                    outcome="done",
                    details={"entries": len(entries), **counts},
                )
            ],
            now=now,
        )
    store._db.checkpoint()
    return ReplayReport(entries=len(entries), **counts)


def _replay_one(
    store: Store,
    connection: Connection,
    entry: AuditEntry,
    subjects: dict[str, str],
    counts: dict[str, int],
) -> None:
    details = entry.details
    named = [subjects[r] for r in details.get("subject_refs", ()) if r in subjects]
    if entry.action == "shred":
        scopes = details.get("scopes") or [details.get("scope")]
        for subject in named:
            for scope in scopes:
                if scope is None:
                    continue
                if details.get("mode") == "tombstone":
                    counts["shredded"] += store.keyring.shred(subject, scope)
                else:
                    live_keys(store, connection, [subject], scope)
                    counts["shredded"] += shred_keys(store, connection, [subject], scope)
        return
    if entry.record_type is None:
        return
    rt = store._table(entry.record_type)
    if rt.id_personal:
        ids = named
    elif "record_refs" in details:
        ids = _record_ids(store, connection, rt, set(details["record_refs"]))
    else:
        # Entries written before record references.
        ids = list(details.get("ids", ()))
    if not ids:
        return
    if entry.action == "rectify":
        dates = details.get("dates") or {}
        if set(details.get("fields", ())) - set(dates):
            counts["rectifications_left"] += 1
        if dates:
            values = {
                name: None if text is None else dt.datetime.fromisoformat(text)
                for name, text in dates.items()
            }
            counts["rectified"] += _rewrite_dates(connection, rt, ids, values)
        return
    if entry.action in ("erase", "anonymise"):
        statistics.removed(connection, named)
    if entry.action == "erase":
        counts["erased"] += erase_rows(connection, rt, ids)
    elif entry.action == "anonymise":
        counts["anonymised"] += anonymise_rows(
            connection, rt, ids, entry.at, granularity=store.anonymise_dates_to
        )
    elif entry.action == "restrict":
        counts["restricted"] += restrict_rows(
            connection, rt, ids, now=entry.at, reason=details.get("reason") or "replayed"
        )
    else:
        counts["lifted"] += restrict_rows(connection, rt, ids, now=None, reason=None)
