"""Retention sweeps: candidates selected in SQL, decisions confirmed by the engine.

For each record type the sweep turns the schedule's rules into one SQL condition that
every row the engine would *not* keep satisfies (rows past a rule's exact cutoff, rows
missing a date, rows no rule selects), pages through those rows by id, and hands each
page to :meth:`Schedule.plan`; only the engine's decision is acted on. A page is one
transaction: audit entries, then the deletions, anonymisations and restrictions, then
the keys no remaining row uses are shredded. Rerunning after a crash resumes where the
committed pages stopped; on PostgreSQL ``FOR UPDATE SKIP LOCKED`` keeps concurrent
sweeps off each other's pages.

Types whose anchor lives on the learner (``LAST_ACTIVITY``, ``CONTRACT_END``) are swept
before the learners themselves, so erasing a learner never changes the decision for one
of their records within the same sweep, and a dry run reports what a real run does.
"""

from __future__ import annotations

import datetime as dt
import gc
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, func, select, true

from learnprivacy._progress import ProgressReporter
from learnprivacy._validators import utc_if_naive
from learnprivacy._vocabulary import RETENTION_ACTIONS
from learnprivacy.basis import LawfulBasis
from learnprivacy.errors import ValidationError
from learnprivacy.records._base import subject_of
from learnprivacy.retention import Action, Hold, Schedule, Trigger
from learnprivacy.retention._consents import lapsed_consents
from learnprivacy.store import _statistics as statistics
from learnprivacy.store._actions import (
    anonymise_rows,
    erase_rows,
    every_row,
    has_live_rows,
    live_keys,
    restrict_rows,
    scopes_in_use,
    shred_keys,
    unanonymised,
)
from learnprivacy.store._anonymisation import check_anonymised
from learnprivacy.store._audit import AuditEvent
from learnprivacy.store._bulk import ids_in
from learnprivacy.store._common import ids_detail
from learnprivacy.store._open import check_record_types
from learnprivacy.store._parts import SweepPart
from learnprivacy.store._reports import ReviewItem, SweepReport
from learnprivacy.store._schema import ANONYMISED, RESTRICTED, RecordTable
from learnprivacy.store._selection import Selection
from learnprivacy.store._types import to_utc

if TYPE_CHECKING:
    from learnprivacy.store._core import StoreCore as Store

__all__ = ["sweep"]

_VERB = {Action.ERASE: "erase", Action.ANONYMISE: "anonymise", Action.RESTRICT: "restrict"}


@contextmanager
def _heap_frozen() -> Iterator[None]:
    """Leave the objects that existed before the sweep out of the collector's walks.

    A page builds and drops thousands of short-lived objects (rows, record skeletons,
    references); their allocations set off collections of the oldest generation, each a
    walk of the whole heap (the application's, SQLAlchemy's, every module's): a quarter
    of a sweep's CPU time at 20,000 learners. ``gc.freeze`` moves that heap out of the
    collector's generations until the sweep ends (``gc.unfreeze``, also after an error),
    so those collections walk the newer objects only. The collector itself stays on, for
    the sweep's own cycles and for every other thread of the process. A heap already
    frozen (a pre-forking server freezes its own) is left as it is, and not unfrozen.
    """
    if gc.get_freeze_count():
        yield
        return
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


class _Tally:
    """Counts per type and action, and the review list."""

    def __init__(self, review_limit: int) -> None:
        self.by_type: dict[str, dict[str, int]] = {}
        self.review_items: list[ReviewItem] = []
        self.review_limit = review_limit
        self.truncated = False
        self.shredded = 0
        # One random person id per learner for the whole sweep (memory only), so the
        # anonymised rows of one learner still count as one person in statistics.
        self.persons: dict[str, str] = {}
        # Rows of each learner this sweep erases or anonymises (a dry run changes nothing
        # in the database, so the account guard subtracts them itself).
        self.removed: dict[str, int] = {}
        # In a dry run, the (type, id) of the rows it would erase or anonymise.
        self.removed_ids: set[tuple[str, str]] = set()
        # Which trigger (or fallback) decided, per type: "erase: last_activity (records)".
        self.decided_by: dict[str, dict[str, int]] = {}
        # Record types holding at least one live row when the sweep started.
        self.populated: set[str] = set()
        # What the sweep anonymised, for the re-check once it has finished: the rows'
        # new ids per type, their old (type, id) and their learners (memory only).
        self.new_ids: dict[str, list[str]] = {}
        self.anonymised_ids: list[tuple[str, str]] = []
        self.anonymised_learners: set[str] = set()

    def add(self, name: str, key: str, count: int) -> None:
        counts = self.by_type.setdefault(name, {})
        counts[key] = counts.get(key, 0) + count

    def total(self, key: str) -> int:
        return sum(counts.get(key, 0) for counts in self.by_type.values())

    def room(self) -> int:
        return self.review_limit - len(self.review_items)


def sweep(
    store: Store,
    schedule: Schedule,
    *,
    now: dt.datetime,
    dry_run: bool,
    batch_size: int,
    holds: tuple[Hold, ...],
    review_limit: int,
    progress: ProgressReporter | None = None,
    part: SweepPart | None = None,
) -> SweepReport:
    """See :meth:`Store.sweep`."""
    if not isinstance(schedule, Schedule):
        raise ValidationError("schedule must be a Schedule", field="schedule")
    now = store.now(now)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValidationError("batch_size must be a positive int", field="batch_size")
    if not all(isinstance(h, Hold) for h in holds):
        raise ValidationError("holds must be Hold objects", field="holds")
    if part is not None and not isinstance(part, SweepPart):
        raise ValidationError("part must be a SweepPart", field="part")
    with _heap_frozen():
        tally = _Tally(review_limit)
        tables = store._record_tables()
        ordered = [rt for rt in tables if rt.has_learner] + [
            rt for rt in tables if not rt.has_learner
        ]
        reads_activity = any(
            Trigger.LAST_ACTIVITY in rule.triggers
            for rt in tables
            for rule in schedule.rules_for(rt.cls)
        )
        activity = latest_activity(store, part) if reads_activity else {}
        with store._reading() as connection:
            check_record_types(tables, connection)
            for rt in tables:
                if has_live_rows(connection, rt):
                    tally.populated.add(rt.name)
        folded = True
        try:
            for rt in ordered:
                _TypeSweep(
                    store, schedule, rt, now, holds, dry_run, batch_size, tally, activity, part
                ).run(progress)
            _end_lapsed_consents(store, schedule, now, holds, dry_run, tally, part)
        finally:
            if not dry_run:
                # The pages' erasures leave the log for the file, also when a later page
                # failed: no image of an erased row stays in it.
                folded = store._db.checkpoint() and store._key_db.database.folded
        if not dry_run:
            # The pages marked the tables whose statistics sampled a learner they removed:
            # analysed once for the whole sweep, not once a page (the marks are durable:
            # after a crash the next open refreshes them).
            statistics.refresh_if_marked(store._db)
    if tally.new_ids:
        # Re-read what was written, row by row, as anonymise_records does: no row
        # reported anonymised may still carry an id or learner id it anonymised.
        check_anonymised(
            store,
            (),
            ids=tally.new_ids,
            learner_ids=tally.anonymised_learners,
            record_ids=tally.anonymised_ids,
        )
    return SweepReport(
        erased=tally.total("erase"),
        anonymised=tally.total("anonymise"),
        restricted=tally.total("restrict"),
        review=tally.total("review"),
        kept=tally.total("keep"),
        shredded=tally.shredded,
        dry_run=dry_run,
        now=now,
        by_type={name: dict(counts) for name, counts in tally.by_type.items()},
        review_items=tuple(tally.review_items),
        review_truncated=tally.truncated,
        decided_by={name: dict(counts) for name, counts in tally.decided_by.items()},
        folded=folded,
    )


def latest_activity(store: Store, part: SweepPart | None = None) -> dict[str, dt.datetime]:
    """Each learner's latest activity shown by their records (UTC), by learner id.

    A record type shows activity when its class names an ``activity_field`` (progress
    recorded, a login, a certificate issued). The account's own ``last_activity_at`` may
    lag behind them (an LMS that updates it on login only): the sweep counts from the
    latest of the two. With ``part``, only the learners in that part.
    """
    found: dict[str, dt.datetime] = {}
    with store._reading() as connection:
        for rt in store._record_tables():
            field = getattr(rt.cls, "activity_field", None)
            if not rt.has_learner or not isinstance(field, str):
                continue
            table = rt.table
            subject = table.c[rt.subject_column]
            query = (
                select(subject, func.max(table.c[field]))
                .where(table.c[ANONYMISED].is_(None))
                .group_by(subject)
            )
            if part is not None:
                query = query.where(part.condition(subject))
            for learner_id, latest in connection.execute(query):
                if latest is None:
                    continue
                instant = utc_if_naive(latest)
                if learner_id not in found or instant > found[learner_id]:
                    found[learner_id] = instant
    return found


class _TypeSweep:
    """The sweep of one record type."""

    def __init__(
        self,
        store: Store,
        schedule: Schedule,
        rt: RecordTable,
        now: dt.datetime,
        holds: tuple[Hold, ...],
        dry_run: bool,
        batch_size: int,
        tally: _Tally,
        activity: dict[str, dt.datetime],
        part: SweepPart | None = None,
    ) -> None:
        self.store, self.schedule, self.rt, self.now = store, schedule, rt, now
        self.part = part
        self.holds, self.dry_run, self.batch_size, self.tally = holds, dry_run, batch_size, tally
        self.activity = activity
        # Learners whose last activity comes from their records, not their account.
        self.from_records: set[str] = set()
        self.guarded: list[Any] = []
        self.rules = schedule.rules_for(rt.cls)
        self.selection = Selection(store, rt, self.rules, now)
        self._refs: dict[str, str] = {}
        # Learner accounts: the learners a page erases or anonymises are its own rows,
        # read (FOR UPDATE on PostgreSQL) by the page's query.
        self._owns_rows = rt is store._table("Learner")

    def _ref(self, subject: str) -> str:
        """The audit reference of ``subject``, computed once per page."""
        ref = self._refs.get(subject)
        if ref is None:
            ref = self._refs[subject] = self.store.audit.subject_ref(subject)
        return ref

    # -- the loop ----------------------------------------------------------------------

    def run(self, progress: ProgressReporter | None = None) -> None:
        name = self.rt.name
        table = self.rt.table
        # In a part, only the rows of its learners: another worker sweeps the others.
        mine = true() if self.part is None else self.part.condition(table.c[self.rt.subject_column])
        with self.store._reading() as connection:
            total = int(
                connection.execute(
                    select(func.count())
                    .select_from(table)
                    .where(table.c[ANONYMISED].is_(None), mine)
                ).scalar_one()
            )
        if not total:
            return
        if progress is not None:
            progress.expect(total)
        selection = self.selection
        columns, positions, subject_positions = selection.columns()
        read = self.store._codec(self.rt.cls).skeleton_reader(positions)
        read_subject = None
        if selection.join:
            assert selection.learner_rt is not None  # set whenever join is
            learner_codec = self.store._codec(selection.learner_rt.cls)
            read_subject = learner_codec.skeleton_reader(subject_positions)
        condition = selection.candidates() if self.rules else true()
        base = selection.query(columns, condition).where(mine)
        at_id, at_restricted = positions["id"], positions[RESTRICTED]
        at_subject_id = subject_positions.get("id")
        last: str | None = None
        decided = 0
        reported = 0
        while True:
            # A page commits durably (its audit entries and outbox rows are on disk before
            # any of its keys is destroyed); then its keys are destroyed and the key
            # database checkpointed (no image of them left). The records database is
            # checkpointed once, when the sweep ends: folding its log after every page
            # rewrote the randomly ordered blind-index pages once a page.
            transaction = (
                self.store._reading()
                if self.dry_run
                # Statistics marked by a page are refreshed once, when the sweep ends.
                else self.store._writing(refresh_statistics=False, checkpoint=False)
            )
            with transaction as connection:
                query = base if last is None else base.where(table.c.id > last)
                query = query.order_by(table.c.id).limit(self.batch_size)
                if self.store._db.is_postgres and not self.dry_run:
                    query = query.with_for_update(skip_locked=True, of=table)
                rows = connection.execute(query).all()
                if not rows:
                    break
                last = rows[-1][at_id]
                records = [read(row) for row in rows]
                restricted = {row[at_id] for row in rows if row[at_restricted] is not None}
                subjects: dict[str, Any] = {}
                if read_subject is not None and at_subject_id is not None:
                    for row in rows:
                        if row[at_subject_id] is not None and row[at_subject_id] not in subjects:
                            subjects[row[at_subject_id]] = read_subject(row)
                if self.activity:
                    for subject in subjects.values():
                        self._active(subject)
                    if not self.rt.has_learner:
                        for record in records:
                            self._active(record)
                decided += self._batch(connection, records, restricted, subjects)
            if progress is not None:
                progress.advance(len(rows))
                reported += len(rows)
            if len(rows) < self.batch_size:
                # A short page was the last one: no candidate past it was free when it
                # was read (on PostgreSQL, rows another sweep had locked are that sweep's).
                # Asking again would cost one more (write) transaction per record type.
                break
        self.tally.add(name, "keep", max(0, total - decided))
        if progress is not None and total > reported:
            # Rows no rule selected were decided too (kept) without being read.
            progress.advance(total - reported)

    def _active(self, learner: Any) -> None:
        """Give a learner skeleton the latest activity of their account and records."""
        shown = self.activity.get(learner.id)
        if shown is None:
            return
        own = getattr(learner, "last_activity_at", None)
        if own is None or shown > own:
            # A skeleton is the sweep's own object, built without validation.
            object.__setattr__(learner, "last_activity_at", shown)
            self.from_records.add(learner.id)

    def _label(self, record: Any, subjects: dict[str, Any], plan: Any) -> str:
        """Which trigger or fallback decided for ``record``: what a dry run shows."""
        decision = plan.decide(record)
        rule = decision.rule
        action = decision.action.value
        if decision.hold is not None:
            return f"{action}: hold"
        if rule is None:
            return f"{action}: no rule"
        subject = subjects.get(record.learner_id) if self.rt.has_learner else record
        chosen: Trigger | None = None
        latest: dt.datetime | None = None
        for trigger in rule.triggers:
            raw = rule.read(trigger, record, subject)
            if raw is not None and (latest is None or raw > latest):
                chosen, latest = trigger, raw
        if chosen is None:
            return f"{action}: no date"
        label = chosen.value
        if chosen is rule.fallback:
            label += " (fallback)"
        if chosen is Trigger.LAST_ACTIVITY and getattr(subject, "id", None) in self.from_records:
            label += " (records)"
        return f"{action}: {label}"

    def _count(self, key: str) -> None:
        counts = self.tally.decided_by.setdefault(self.rt.name, {})
        counts[key] = counts.get(key, 0) + 1

    def _dependents(self, connection: Connection, learner_ids: list[str]) -> dict[str, int]:
        """How many rows of other types each learner still has after this sweep."""
        counts: dict[str, int] = {}
        for rt in self.store._record_tables():
            if not rt.has_learner or rt.name not in self.tally.populated:
                continue
            table = rt.table
            subject = table.c[rt.subject_column]
            query = (
                select(subject, func.count())
                .where(ids_in(subject, learner_ids, connection.dialect.name))
                .where(unanonymised(table, connection.dialect.name))
                .group_by(subject)
            )
            for learner_id, count in connection.execute(query):
                counts[learner_id] = counts.get(learner_id, 0) + int(count)
        if self.dry_run:
            for learner_id in list(counts):
                counts[learner_id] -= self.tally.removed.get(learner_id, 0)
        return {k: v for k, v in counts.items() if v > 0}

    def _batch(
        self,
        connection: Connection,
        records: list[Any],
        restricted: set[str],
        subjects: dict[str, Any],
    ) -> int:
        """Decide and act on one page; return how many rows were not kept."""
        name = self.rt.name
        plan = self.schedule.plan(
            records,
            now=self.now,
            learners=subjects,
            holds=self.holds,
            batch_size=len(records) + 1,
        )
        groups: dict[Action, list[Any]] = {action: [] for action in RETENTION_ACTIONS}
        for batch in plan.batches():
            for action, items in batch.items():
                groups[action].extend(items)
        guarded: list[Any] = []
        if not self.rt.has_learner and (groups[Action.ERASE] or groups[Action.ANONYMISE]):
            # An account goes only with the last of its records: erasing it first would
            # leave records with a learner id in clear and no account.
            doomed = [r.id for r in groups[Action.ERASE] + groups[Action.ANONYMISE]]
            remaining = self._dependents(connection, doomed)
            if remaining:
                for action in (Action.ERASE, Action.ANONYMISE):
                    guarded += [r for r in groups[action] if r.id in remaining]
                    groups[action] = [r for r in groups[action] if r.id not in remaining]
                for _record in guarded:
                    self._count("restrict: dependent records kept")
        elif self.rt.has_learner:
            for action in (Action.ERASE, Action.ANONYMISE):
                for record in groups[action]:
                    owner = record.learner_id
                    self.tally.removed[owner] = self.tally.removed.get(owner, 0) + 1
                    if self.dry_run:
                        self.tally.removed_ids.add((name, record.id))
        if self.dry_run:
            # Said by dry runs only: a decision per row is what real runs avoid allocating.
            for action in (Action.ERASE, Action.ANONYMISE, Action.RESTRICT, Action.REVIEW):
                for record in groups[action]:
                    self._count(self._label(record, subjects, plan))
        guarded = [r for r in guarded if r.id not in restricted]
        self.guarded = guarded
        to_restrict = [r for r in groups[Action.RESTRICT] if r.id not in restricted]
        work = {
            Action.ERASE: groups[Action.ERASE],
            Action.ANONYMISE: groups[Action.ANONYMISE],
            Action.RESTRICT: to_restrict,
        }
        review = groups[Action.REVIEW]
        for record in review[: max(0, self.tally.room())]:
            reason = plan.decide(record).reason
            self.tally.review_items.append(
                ReviewItem(record_type=name, record_id=record.id, reason=reason)
            )
        if len(review) > max(0, self.tally.room()):
            self.tally.truncated = True
        self.tally.add(name, "review", len(review))
        for action, items in work.items():
            self.tally.add(name, _VERB[action], len(items))
        self.tally.add(name, "restrict", len(guarded))
        if not self.dry_run and (any(work.values()) or guarded):
            self._act(connection, plan, work)
            self._refs.clear()
        return len(review) + sum(len(items) for items in work.values()) + len(guarded)

    def _act(self, connection: Connection, plan: Any, work: dict[Action, list[Any]]) -> None:
        rt, audit = self.rt, self.store.audit
        events = []
        # The learners whose rows this page erases or anonymises.
        learners: set[str] = set()
        for action, items in work.items():
            if not items:
                continue
            decision = plan.decide(items[0])
            ids = [r.id for r in items]
            owners = [subject_of(r) for r in items]
            if action is not Action.RESTRICT:
                learners.update(owners)
            events.append(
                AuditEvent(
                    action=_VERB[action],
                    outcome="done",
                    record_type=rt.name,
                    subject_ref=self._ref(owners[0]) if len(set(owners)) == 1 else None,
                    details={
                        **ids_detail(self.store.audit, rt, ids, owners, subject_ref=self._ref),
                        "count": len(items),
                        "rule": None if decision.rule is None else decision.rule.label,
                        "article": decision.article,
                        "sweep": True,
                    },
                )
            )
        if self.guarded:
            owners = [subject_of(r) for r in self.guarded]
            events.append(
                AuditEvent(
                    action="restrict",
                    outcome="done",
                    record_type=rt.name,
                    subject_ref=self._ref(owners[0]) if len(set(owners)) == 1 else None,
                    details={
                        **ids_detail(
                            self.store.audit,
                            rt,
                            [r.id for r in self.guarded],
                            owners,
                            subject_ref=self._ref,
                        ),
                        "count": len(self.guarded),
                        "rule": None,
                        "reason": "account kept while dependent records are kept",
                        "sweep": True,
                    },
                )
            )
        keys: list[tuple[str, str]] = []
        refs: dict[str, str] = {}
        if learners and any(f.encrypted for f in rt.fields):
            # Lock order on PostgreSQL, the same in every writer: rows, keys, audit head.
            # A page of learner accounts read its rows FOR UPDATE: those learners' rows
            # are held already (their owners are the rows themselves).
            keys = live_keys(
                self.store, connection, learners, rt.scope, refs=refs, locked=self._owns_rows
            )
        statistics.removed(connection, learners)
        erased = [r.id for r in work[Action.ERASE]]
        every_row(erase_rows(connection, rt, erased), len(erased), rt.name, "erased")
        ended = [r.id for r in work[Action.ANONYMISE]]
        made = anonymise_rows(
            connection,
            rt,
            ended,
            self.now,
            granularity=self.store.anonymise_dates_to,
            persons=self.tally.persons,
            new_ids=self.tally.new_ids.setdefault(rt.name, []) if ended else None,
        )
        self.tally.anonymised_ids += [(rt.name, i) for i in ended]
        self.tally.anonymised_learners.update(subject_of(r) for r in work[Action.ANONYMISE])
        every_row(made, len(ended), rt.name, "anonymised")
        if self.guarded:
            restrict_rows(
                connection,
                rt,
                [r.id for r in self.guarded],
                now=self.now,
                reason="retention: account kept while dependent records are kept",
            )
        if work[Action.RESTRICT]:
            label = plan.decide(work[Action.RESTRICT][0]).rule
            reason = "retention" if label is None else f"retention: {label.label}"
            restrict_rows(
                connection, rt, [r.id for r in work[Action.RESTRICT]], now=self.now, reason=reason
            )
        if keys:
            events.extend(self._shred_unused(connection, keys, refs))
        # The log last, in the same transaction: the entries and the changes commit
        # together or not at all, and on PostgreSQL the audit head, the one row every
        # writer locks, is held only from here to the commit, not while the page's rows
        # are deleted (concurrent sweeps would wait on each other's whole page).
        audit.append(connection, events, now=self.now)

    def _shred_unused(
        self, connection: Connection, keys: list[tuple[str, str]], key_refs: dict[str, str]
    ) -> list[AuditEvent]:
        """Send the keys no remaining row uses to the outbox; the audit event saying so."""
        store, scope = self.store, self.rt.scope
        subjects = {s for s, _ in keys}
        # Learner accounts: this page deleted or anonymised the one row of each of them.
        emptied = self.rt.name if self._owns_rows else None
        in_use = scopes_in_use(store, connection, subjects, scope, emptied=emptied)
        doomed = sorted(subjects - in_use)
        if not doomed:
            return []
        # The page's audit details computed most of these references already.
        known, ref = self._refs, self._ref
        refs = sorted([known.get(s) or ref(s) for s in doomed])
        self.tally.shredded += shred_keys(
            store, connection, doomed, scope, live=keys, refs=key_refs
        )
        return [
            AuditEvent(
                action="shred",
                outcome="done",
                record_type=None,
                subject_ref=refs[0] if len(refs) == 1 else None,
                details={"scope": scope, "subject_refs": refs, "mode": "keys", "sweep": True},
            )
        ]


def _consent_purposes(store: Store, schedule: Schedule) -> dict[str, list[Any]]:
    """Record tables whose rules rest on consent, by the purpose consented to."""
    found: dict[str, list[Any]] = {}
    for rt in store._record_tables():
        if not rt.has_learner or rt.name == "Consent":
            continue
        for rule in schedule.rules_for(rt.cls):
            if rule.purpose and rule.basis is LawfulBasis.CONSENT:
                found.setdefault(rule.purpose, []).append(rt)
    return found


def _lapsed(store: Store, purposes: set[str], now: dt.datetime) -> dict[str, set[str]]:
    """For each purpose, the learners who consented to it and whose every consent has
    ended at ``now`` (withdrawn or expired). A learner who never gave a consent record is
    not in it: their processing may rest on a consent the store does not hold."""
    table = store._table("Consent").table
    columns = [table.c.learner_id, table.c.purpose, table.c.given_at]
    columns += [table.c.withdrawn_at, table.c.expires_at]
    with store._reading() as connection:
        query = select(*columns).where(
            table.c[ANONYMISED].is_(None), table.c.purpose.in_(sorted(purposes))
        )
        return lapsed_consents(connection.execute(query), to_utc(now))


def _end_lapsed_consents(
    store: Store,
    schedule: Schedule,
    now: dt.datetime,
    holds: tuple[Hold, ...],
    dry_run: bool,
    tally: _Tally,
    part: SweepPart | None = None,
) -> None:
    """Erase what rested only on a consent that has expired or been withdrawn.

    A rule whose basis is consent for a purpose holds a record only while the learner's
    consent to that purpose stands (Art. 6(1)(a), 7(3)): a consent valid six months ends
    the processing after six months, whatever the retention period says. Records another
    purpose or basis also holds, learner accounts (their own rule decides, so no record
    is left without its account) and what a legal minimum or hold protects are left as
    they are.
    """
    by_purpose = _consent_purposes(store, schedule)
    if not by_purpose:
        return
    lapsed = _lapsed(store, set(by_purpose), now)
    for purpose, learners in lapsed.items():
        if part is not None:
            learners = {learner_id for learner_id in learners if learner_id in part}
        for rt in dict.fromkeys(by_purpose[purpose]):
            chosen: dict[Action, list[Any]] = {}
            for learner_id in sorted(learners):
                for record in store.iter_records_of(
                    learner_id, include_restricted=True, record_types=[rt.cls]
                ):
                    if (rt.name, record.id) in tally.removed_ids:
                        continue  # a dry run already counted it under retention
                    # The rule's own action: erase, or anonymise where the policy keeps
                    # anonymous statistics.
                    action = schedule.on_consent_end(record, purpose)
                    if action is not None:
                        chosen.setdefault(action, []).append(record)
            reason = f"consent to {purpose} ended (GDPR Art. 7(3))"
            for action, records in chosen.items():
                if dry_run:
                    count = len(records)
                elif action is Action.ERASE:
                    count = store.erase_records(
                        records, now=now, reason=reason, schedule=schedule, holds=holds
                    )
                elif action is Action.ANONYMISE:
                    count = store.anonymise_records(
                        records, now=now, reason=reason, schedule=schedule, holds=holds
                    )
                else:
                    count = 0
                    for record in records:
                        count += store.restrict(rt.cls, record.id, reason=reason, now=now)
                verb = _VERB[action]
                tally.add(rt.name, verb, count)
                counts = tally.decided_by.setdefault(rt.name, {})
                key = f"{verb}: consent ended"
                counts[key] = counts.get(key, 0) + count
