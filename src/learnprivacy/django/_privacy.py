"""Erasure, retention sweeps, exports and the register on the project's declared models.

:class:`DjangoPrivacy` is what the management commands and the request workflow use;
:func:`get_privacy` builds it from ``settings.LEARNPRIVACY``. Decisions come from the
ORM-independent core (``learnprivacy._inplace``: the same retention engine, legal
minimums and holds as the store); this module carries them out with Django:

* rows are erased (deleted), restricted (kept, listed in ``lpdj_restrictions``, their
  writes refused) or anonymised, with their audit entries, in one transaction on the
  default database;
* the learners' keys that no kept row needs are listed in ``lpdj_pending_shreds`` in that
  same transaction and shredded in the key store once it has committed
  (``transaction.on_commit``); a rollback loses nothing, and a crash between the commit
  and the shred is finished by :meth:`DjangoPrivacy.reconcile`, which every erasure and
  sweep runs first.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from decimal import Decimal
from typing import Any, TypeVar

import attrs

from learnprivacy._inplace import ModelSpec, RecordView
from learnprivacy._inplace._audit import erasure_events, rows_event, shred_event
from learnprivacy._inplace._plan import (
    RowDecision,
    check_holds,
    decide_on_request,
    decide_routine,
    hold_for,
    plan_erasure,
    subject_of,
    with_activity,
)
from learnprivacy._inplace._provider import DeclaredProvider, DeclaredRegister
from learnprivacy._validators import require_aware, utc_if_naive
from learnprivacy._vocabulary import BATCH_SIZE, Article
from learnprivacy.basis import LawfulBasis
from learnprivacy.crypto._blind_index import normalise_text
from learnprivacy.django._audit import DjangoAuditLog
from learnprivacy.django._bind import Bound, bound_models, hold_for_check
from learnprivacy.django._restrictions import (
    count_restricted,
    lift,
    reasons_of,
    restrict,
    restricted_keys,
)
from learnprivacy.django._settings import load, runtime, setting
from learnprivacy.django.fields import PersonalField, lp_lookup
from learnprivacy.errors import (
    ConfigurationError,
    RestrictedRecordError,
    ValidationError,
)
from learnprivacy.retention import Action, Decision, Hold, Schedule, Trigger
from learnprivacy.retention._consents import lapsed_consents
from learnprivacy.store._actions import as_written, every_row

__all__ = [
    "COMPONENT",
    "DjangoPrivacy",
    "ErasureResult",
    "KeptRows",
    "SweepResult",
    "get_privacy",
    "prepare_keys",
]

#: The provider component of the project's declared models.
COMPONENT = "django_models"

_T = TypeVar("_T")


class _RolledBack(Exception):
    """Ends a dry run's trial savepoint, so that whatever it did is undone."""


Progress = Callable[[str, int, int], None]


@attrs.frozen(kw_only=True)
class KeptRows:
    """Rows of one table an erasure left in place, and why (never a personal value).

    ``anonymised``: their personal values were blanked before they were kept (an account
    that kept rows refer to); otherwise they are kept as they are (a legal minimum, a
    hold, a review). ``reason`` names what keeps them: the rule and its lawful basis,
    the retention's end, or the rows that refer to them.
    """

    table: str
    rows: int
    anonymised: bool
    reason: str


@attrs.frozen(kw_only=True)
class ErasureResult:
    """What an erasure request did (or, with ``dry_run``, would do) to one learner.

    ``erased`` rows were deleted; ``restricted`` rows are kept as they are and
    ``anonymised`` rows kept with their personal values blanked, both listed in ``kept``
    with their reason and restricted (GDPR Art. 18), which the manager's check after an
    erasure accepts. ``left`` lists rows that remain without such a reason (a table the
    project did not declare refuses their deletion): the check fails on them, truthfully.
    ``shredded`` lists the key scopes verified shredded after the commit; it is empty
    when the caller's own transaction has not committed yet (``pending``).
    """

    subject_ref: str
    erased: int
    anonymised: int
    restricted: int
    shred_scopes: tuple[str, ...]
    shredded: tuple[str, ...]
    dry_run: bool
    kept: tuple[KeptRows, ...] = ()
    left: tuple[KeptRows, ...] = ()

    @property
    def pending(self) -> bool:
        """Whether some keys still wait for the caller's transaction to commit."""
        return not self.dry_run and set(self.shredded) != set(self.shred_scopes)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (no learner id, only its pseudonymous reference)."""
        return {**attrs.asdict(self), "pending": self.pending}


@attrs.frozen(kw_only=True)
class SweepResult:
    """What a retention sweep did (or would do) to the declared models' rows."""

    erased: int = 0
    anonymised: int = 0
    restricted: int = 0
    review: int = 0
    kept: int = 0
    #: Learners whose keys the sweep shredded, checked shredded in the key store after
    #: their batch committed (in a dry run: would shred).
    shredded_subjects: int = 0
    #: Learners whose keys wait for the commit of the caller's transaction (a sweep run
    #: inside one: ``ATOMIC_REQUESTS``, ``transaction.atomic()``), or whose shredding did
    #: not happen after the commit; a later sweep, erasure or ``learnprivacy_keys
    #: reconcile`` shreds them.
    pending_subjects: int = 0
    dry_run: bool = False

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return attrs.asdict(self)


def get_privacy(**overrides: Any) -> DjangoPrivacy:
    """A :class:`DjangoPrivacy` configured from ``settings.LEARNPRIVACY``."""
    options: dict[str, Any] = {
        "schedule": load(setting("SCHEDULE"), "SCHEDULE"),
        "holds": load(setting("HOLDS"), "HOLDS") or (),
        "actor": setting("ACTOR"),
    }
    options.update(overrides)
    return DjangoPrivacy(**options)


def prepare_keys(subjects: Iterable[object], scopes: Iterable[str] | None = None) -> int:
    """Make sure ``subjects`` have keys (creating the missing ones in one transaction).

    For bulk imports: the keys of many learners are read in a few queries and the new ones
    inserted together, instead of one key-store round trip per learner on first save.
    Call it before the transaction that saves their rows. A learner whose keys were
    shredded gets none (saving their personal values then raises
    ``KeyShreddedError``). Returns how many learners.
    """
    from learnprivacy._collector import collector_paused
    from learnprivacy.crypto._validate import check_scope
    from learnprivacy.django._keystore import DjangoKeyStore

    current = runtime()
    store = current.keyring.store
    wanted = sorted({str(s) for s in subjects})
    if scopes is None:
        scopes = sorted({b.spec.scope for b in bound_models() if b.encrypted})
    scopes = list(scopes)
    if not isinstance(store, DjangoKeyStore):
        raise ConfigurationError("prepare_keys needs the Django key store")
    keyring = current.keyring
    keyring.verify()
    for scope in scopes:
        check_scope(scope)
    # The key store names learners by key reference only: computed once here, for the
    # batch's reads (the keyring remembers them for the keys it makes).
    refs = keyring._key_refs(wanted)
    # Sealers cached here are used as they are (see Keyring._sealers): those of learners
    # whose keys another process shredded since are dropped first.
    keyring._drop_stale(wanted)
    # The keys made here live on in the keyring's cache: their allocations alone would
    # set off full collections of the whole heap (see collector_paused).
    with collector_paused():
        # The batch's learners are about to be written: their cache entries are marked
        # in use before any key is made, so that making the keys of some never evicts
        # the others (the cache evicts entries not used since it last passed over them,
        # and a new entry would otherwise be the first to go).
        entry = keyring._cache.entry
        for subject in wanted:
            entry(subject).used = True
        try:
            with store.batch(refs.values()):
                for scope in scopes:
                    keyring._sealers(wanted, scope, skip_shredded=True)
        except BaseException:
            # The batch's new keys were not stored (a flush refused or failed): the
            # keyring must not keep them, or the next save encrypts under a key that
            # exists nowhere.
            keyring._forget_many(wanted)
            raise
    return len(wanted)


def _json_value(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes | memoryview):
        return bytes(value).hex()
    return value


class DjangoPrivacy(DeclaredRegister):
    """Erasure, sweeps, exports and register entries over every declared model.

    ``using`` is the database alias of the application's data (and of the audit log,
    restrictions and pending shreds); keys go to ``LEARNPRIVACY["KEYS"]``.
    """

    def __init__(
        self,
        *,
        schedule: Schedule | None = None,
        holds: Iterable[Hold] = (),
        using: str = "default",
        actor: str = "django",
        component: str = COMPONENT,
    ) -> None:
        if schedule is not None and not isinstance(schedule, Schedule):
            raise ConfigurationError('LEARNPRIVACY["SCHEDULE"] must name a Schedule')
        self.schedule = schedule
        self.holds = check_holds(holds)
        self.using = using
        self.component = component
        self.audit = DjangoAuditLog(runtime().keyring, using=using, actor=actor)
        # Rows a dry-run sweep counts as erased or anonymised, by (table, text key), with
        # that action: they no longer keep an account when the sweep reaches it, and its
        # trial removes them first (see _trial).
        self._dry_gone: dict[tuple[str, str], Action] = {}
        # Learners of the sweep under way whose keys are not (yet) shredded.
        self._pending_subjects = 0

    def __repr__(self) -> str:
        return f"DjangoPrivacy(using={self.using!r}, models={len(self.bound)})"

    @property
    def bound(self) -> tuple[Bound, ...]:
        """The declared models."""
        return bound_models()

    @property
    def specs(self) -> tuple[ModelSpec, ...]:
        """The core specs of the declared models."""
        return tuple(b.spec for b in self.bound)

    def _by_table(self) -> dict[str, Bound]:
        return {b.spec.table: b for b in self.bound}

    # -- reading rows --------------------------------------------------------------------

    def _names(self, bound: Bound) -> list[str]:
        spec = bound.spec
        names = [spec.primary_key]
        if not spec.is_subject_table:
            names.append(spec.subject)
        names += [c.attribute for c in spec.clear if c.attribute not in names]
        return names

    def _learner(self, subject: object) -> str:
        """``subject`` as text, refused (``ValidationError``, naming the column and never
        the value) when it is empty or a value some declared model's learner column
        cannot hold: a name typed where the id goes must not reach a query as such."""
        from django.core.exceptions import ValidationError as DjangoValidationError

        learner = str(subject)
        if not learner:
            raise ValidationError("the subject must not be empty", field="subject")
        for bound in self.bound:
            try:
                # Built, not run: Django converts the value for the column here.
                bound.model._base_manager.filter(**{bound.subject_lookup: learner})
            except (ValueError, TypeError, DjangoValidationError):
                raise ValidationError(
                    f"the subject is not a value of {bound.spec.table}'s learner column "
                    f"({bound.subject_lookup})",
                    field="subject",
                ) from None
        return learner

    def _rows_of(self, bound: Bound, subject: str) -> list[dict[str, Any]]:
        manager = bound.model._base_manager.using(self.using)
        query = manager.filter(**{bound.subject_lookup: subject}).order_by("pk")
        return list(query.values(*self._names(bound)))

    def _accounts(self, subjects: Sequence[str]) -> dict[str, RecordView]:
        """The record views of the learners' own rows (the user model, when declared)."""
        found: dict[str, RecordView] = {}
        for bound in self.bound:
            if not bound.spec.is_subject_table:
                continue
            manager = bound.model._base_manager.using(self.using)
            for start in range(0, len(subjects), 500):
                chunk = list(subjects[start : start + 500])
                for row in manager.filter(pk__in=chunk).values(*self._names(bound)):
                    found[str(row[bound.spec.primary_key])] = bound.spec.view(row)
        return found

    def holds_data(self, subject: str) -> bool:
        """Whether any declared model holds a row of ``subject``."""
        subject = self._learner(subject)
        return any(
            b.model._base_manager.using(self.using).filter(**{b.subject_lookup: subject}).exists()
            for b in self.bound
        )

    def iter_rows(self, subject: str) -> Iterator[tuple[ModelSpec, Mapping[str, Any]]]:
        """Every row of ``subject``, decrypted, JSON-ready, table by table."""
        subject = self._learner(subject)
        for bound in self.bound:
            spec = bound.spec
            manager = bound.model._base_manager.using(self.using)
            query = manager.filter(**{bound.subject_lookup: subject}).order_by("pk")
            for instance in query.iterator(chunk_size=500):
                row: dict[str, Any] = {spec.primary_key: _json_value(instance.pk)}
                if not spec.is_subject_table:
                    row[spec.subject] = _json_value(getattr(instance, bound.subject_attname))
                for column in spec.columns:
                    if not column.privacy.exported or "__" in column.attribute:
                        continue
                    field = bound.model._meta.get_field(column.attribute)
                    row[column.attribute] = _json_value(getattr(instance, field.attname))
                yield spec, row

    # -- writing decisions ---------------------------------------------------------------

    def _erase_rows(self, bound: Bound, keys: Sequence[Any]) -> None:
        """Delete rows of a model the project owns, as Django deletes them."""
        # A restriction whose reason has ended goes first: deleting a row that is
        # still listed as restricted is refused.
        lift(bound.spec.table, keys, using=self.using)
        manager = bound.model._base_manager.using(self.using)
        _, removed = manager.filter(pk__in=list(keys)).delete()
        every_row(
            removed.get(bound.model._meta.label, 0), len(set(keys)), bound.spec.table, "deleted"
        )

    def _as_written(self, bound: Bound, keys: Sequence[Any], written: Mapping[str, Any]) -> None:
        """:func:`~learnprivacy.store._actions.as_written` for the anonymised rows
        ``keys`` of ``bound`` (``written``: column -> value), read back as stored; the
        caller's transaction rolls back when one does not hold it."""
        from django.db import connections

        connection = connections[self.using]
        quote = connection.ops.quote_name
        meta = bound.model._meta
        columns = sorted(written)
        wanted = list(keys)
        with connection.cursor() as cursor:
            for start in range(0, len(wanted), 500):
                chunk = wanted[start : start + 500]
                cursor.execute(
                    f"SELECT {', '.join(quote(c) for c in columns)} "
                    f"FROM {quote(meta.db_table)} WHERE {quote(meta.pk.column)} IN "
                    f"({', '.join(['%s'] * len(chunk))})",
                    chunk,
                )
                as_written(cursor.fetchall(), columns, written, meta.db_table)

    def _anonymise_rows(self, bound: Bound, keys: Sequence[Any]) -> None:
        """Blank the personal values of rows kept in place: an owned row loses its
        learner and its encrypted values; a row of a model the project does not own (an
        account) its declared personal values, its password and its activity."""
        model = bound.model
        manager = model._base_manager.using(self.using)
        # As for erasure: a restriction whose reason has ended goes first (writes to a
        # row still listed as restricted are refused).
        lift(bound.spec.table, keys, using=self.using)
        if bound.owned:
            fields = bound.encrypted
            subject = model._meta.get_field(bound.spec.subject)
            # Refused (ConfigurationError) where the learner id cannot leave the row.
            placeholder = bound.spec.anonymised_subject(nullable=bool(subject.null))
            blocking = [f.name for f in fields if not f.null]
            if blocking:
                raise ConfigurationError(
                    f"{bound.spec.table}: anonymising keeps the row without its personal "
                    f"values; declare {', '.join(blocking)} null=True, or erase instead"
                )
            # The blind indexes go too: their key is never shredded, so an index left
            # behind would still find the row by the learner's value.
            cleared = {f.attname: None for f in fields}
            cleared |= {f.index_field.attname: None for f in fields if f.lp_index}
            changed = manager.filter(pk__in=list(keys)).update(
                **{subject.attname: placeholder}, **cleared
            )
            every_row(changed, len(set(keys)), bound.spec.table, "anonymised")
            blank: dict[str, Any] = {subject.column: placeholder}
            blank |= {model._meta.get_field(name).column: None for name in cleared}
            self._as_written(bound, keys, blank)
            return
        for instance in manager.filter(pk__in=list(keys)):
            ref = self.audit.subject_ref(str(instance.pk))
            changed = []
            written: dict[str, Any] = {}
            for name in bound.clear_personal:
                field = model._meta.get_field(name)
                if field.null:
                    value: Any = None
                elif field.unique:
                    value = f"erased-{ref}"[: field.max_length or None]
                else:
                    value = ""
                setattr(instance, field.attname, value)
                changed.append(field.attname)
                written[field.column] = value
            if hasattr(instance, "set_unusable_password"):
                instance.set_unusable_password()
                changed.append("password")
            if hasattr(instance, "is_active"):
                instance.is_active = False
                changed.append("is_active")
            instance.save(using=self.using, update_fields=changed)
            self._as_written(bound, [instance.pk], written)

    def _restrict_rows(
        self, bound: Bound, rows: Sequence[tuple[Any, str, str]], now: dt.datetime
    ) -> int:
        """List the rows ``(key, learner, reason)`` as restricted; how many were new."""
        ref = self.audit.subject_ref
        listed = [(key, ref(learner), reason) for key, learner, reason in rows]
        if listed:
            # A save that checked one of these rows holds it until it has written.
            hold_for_check(bound.model, [key for key, _, _ in listed], self.using)
        return len(restrict(bound.spec.table, listed, now=now, using=self.using))

    def _keepers(self, bound: Bound, learners: Sequence[str]) -> dict[str, str]:
        """Why each learner's account (a row of ``bound``, keyed by learner id) must stay:
        rows of the learner in other declared tables still refer to it, kept restricted
        (a legal minimum, a hold, a review: their own reason is quoted) or still running
        their own retention. Learners with no such row are not in the result."""
        found: dict[str, tuple[int, str]] = {}
        for other in self.bound:
            if other.model is bound.model or not learners:
                continue
            manager = other.model._base_manager.using(self.using)
            rows = manager.filter(**{f"{other.subject_lookup}__in": list(learners)}).values_list(
                other.subject_lookup, "pk"
            )
            by_learner: dict[str, list[Any]] = {}
            gone = self._dry_gone
            for learner, key in rows:
                if (other.spec.table, str(key)) not in gone:
                    by_learner.setdefault(str(learner), []).append(key)
            if not by_learner:
                continue
            table = other.spec.table
            keys = [k for found_keys in by_learner.values() for k in found_keys]
            why = reasons_of(table, keys, using=self.using)
            for learner, mine in by_learner.items():
                held = [k for k in mine if str(k) in why]
                if held:
                    rank, text = (
                        0,
                        (
                            f"{KEPT_ANONYMISED}{len(held)} {table} row(s) of the learner kept "
                            f"restricted refer to it ({why[str(held[0])]})"
                        ),
                    )
                else:
                    rank, text = (
                        1,
                        (
                            f"{KEPT_ANONYMISED}{len(mine)} {table} row(s) of the learner, kept "
                            "under their own retention, refer to it"
                        ),
                    )
                if learner not in found or rank < found[learner][0]:
                    found[learner] = (rank, text[:255])
        return {learner: text for learner, (_rank, text) in found.items()}

    def _remove_unowned(
        self, bound: Bound, rows: Sequence[tuple[Any, str]], *, now: dt.datetime
    ) -> _Removal:
        """Carry out the erasure decided for rows ``(key, learner)`` of a model the
        project does not own (``auth.User``, declared with :func:`declare`).

        * A row nothing keeps is deleted as Django deletes it (``on_delete``: cascades,
          ``SET_NULL``...), in a savepoint of the caller's transaction.
        * A row something lawfully keeps is anonymised in place and kept, restricted,
          its reason naming what keeps it: rows of the learner still kept that refer to
          it, or restricted rows its deletion would change or that protect it.
        * A row that a table the project did not declare protects (``PROTECT``,
          ``RESTRICT``) is anonymised and *left*, not restricted: nothing declared says
          it may stay, so the manager's check after the erasure reports it.

        Rows already kept, anonymised, for a reason that still holds are not touched
        again (a sweep run twice changes nothing).
        """
        table = bound.spec.table
        learners = sorted({learner for _key, learner in rows})
        keepers = self._keepers(bound, learners) if bound.spec.is_subject_table else {}
        removal = _Removal()
        free: list[tuple[Any, str]] = []
        for key, learner in rows:
            if learner in keepers:
                removal.kept.append((key, learner, keepers[learner]))
            else:
                free.append((key, learner))
        blocked = self._delete_unowned(bound, free)
        for key, learner in free:
            why = blocked.get(str(key))
            if why is None:
                removal.deleted.append(key)
            elif why.startswith(KEPT_ANONYMISED):
                removal.kept.append((key, learner, why))
            else:
                removal.left.append((key, learner, why))
        before = reasons_of(table, [key for key, _l, _w in removal.kept], using=self.using)
        removal.already = [
            row for row in removal.kept if before.get(str(row[0]), "").startswith(KEPT_ANONYMISED)
        ]
        fresh = [row for row in removal.kept if row not in removal.already]
        touched = fresh + removal.left
        if touched:
            self._anonymise_rows(bound, [key for key, _l, _w in touched])
        if fresh:
            self._restrict_rows(bound, fresh, now)
        return removal

    def _trial(self, body: Callable[[], _T]) -> _T:
        """``body()``'s result, with everything it wrote undone: it runs in a savepoint
        of the application's database that is always rolled back.

        A dry run answers what only trying can tell (whether Django deletes an account
        or a ``PROTECT``/``RESTRICT`` foreign key, or a restricted row, refuses it) by
        carrying the erasure out here. Nothing it writes survives, and the key shreds
        it would queue wait for a commit that never comes (``on_commit`` callbacks of a
        rolled-back savepoint are dropped). Django's delete signals do run: receivers
        that act outside the database see the trial.
        """
        from django.db import transaction

        done: list[_T] = []
        try:
            with transaction.atomic(using=self.using):
                done.append(body())
                raise _RolledBack
        except _RolledBack:
            pass
        return done[0]

    def _remove_dry_gone(self, learners: Sequence[str]) -> None:
        """Inside a dry-run sweep's trial: erase or anonymise the rows of ``learners``
        the sweep has counted so (``_dry_gone``), as the real sweep would have by the
        time it reaches their accounts."""
        for other in self.bound:
            if not other.owned:
                continue
            table = other.spec.table
            manager = other.model._base_manager.using(self.using)
            keys = manager.filter(**{f"{other.subject_lookup}__in": list(learners)}).values_list(
                "pk", flat=True
            )
            planned: dict[Action, list[Any]] = {}
            for key in keys:
                action = self._dry_gone.get((table, str(key)))
                if action is not None:
                    planned.setdefault(action, []).append(key)
            if planned.get(Action.ERASE):
                self._erase_rows(other, planned[Action.ERASE])
            if planned.get(Action.ANONYMISE):
                self._anonymise_rows(other, planned[Action.ANONYMISE])

    def _delete_unowned(self, bound: Bound, rows: Sequence[tuple[Any, str]]) -> dict[str, str]:
        """Delete ``rows`` of ``bound`` as Django does; the rows it refused, by text key,
        with the reason (``KEPT_ANONYMISED...`` when restricted rows refuse it)."""
        from django.db import transaction
        from django.db.models.deletion import ProtectedError, RestrictedError

        table = bound.spec.table
        manager = bound.model._base_manager.using(self.using)
        refused: dict[str, str] = {}

        def attempt(keys: list[Any]) -> str | None:
            try:
                # A savepoint: a refused delete undoes itself only, not the erasure.
                with transaction.atomic(using=self.using):
                    lift(table, keys, using=self.using)
                    _, removed = manager.filter(pk__in=keys).delete()
                    every_row(
                        removed.get(bound.model._meta.label, 0),
                        len(set(keys)),
                        bound.spec.table,
                        "deleted",
                    )
            except RestrictedRecordError as exc:
                return f"{KEPT_ANONYMISED}deleting it is refused: {exc}"[:255]
            except (ProtectedError, RestrictedError) as exc:
                return self._protected_reason(exc)
            return None

        keys = [key for key, _learner in rows]
        if not keys or attempt(keys) is None:
            return refused
        # Some row of the batch is held: find which, one by one.
        for key in keys:
            why = attempt([key])
            if why is not None:
                refused[str(key)] = why
        return refused

    def _protected_reason(self, exc: Exception) -> str:
        """Why a delete that ``PROTECT``/``RESTRICT`` refused leaves the row: kept when
        every protecting row is a restricted row of a declared model, left otherwise."""
        found = getattr(exc, "protected_objects", None) or getattr(exc, "restricted_objects", None)
        objects: list[Any] = list(found or ())
        by_model: dict[Any, list[Any]] = {}
        for obj in objects:
            by_model.setdefault(type(obj)._meta.concrete_model, []).append(obj.pk)
        declared = {b.model: b for b in self.bound}
        tables = sorted(model._meta.db_table for model in by_model)
        lawful = bool(by_model) and all(
            model in declared
            and len(restricted_keys(declared[model], keys, self.using)) == len(set(keys))
            for model, keys in by_model.items()
        )
        if lawful:
            return f"{KEPT_ANONYMISED}restricted rows of {', '.join(tables)} protect it"[:255]
        return (
            f"left, anonymised: rows of {', '.join(tables)} protect it (on_delete) and no "
            "declared retention keeps them: declare the model or change its on_delete"
        )[:255]

    def _queue_shreds(
        self, pairs: Iterable[tuple[str, str]], *, mode: str, now: dt.datetime
    ) -> None:
        from django.db import transaction

        from learnprivacy.django.models import PendingShred

        keyring = runtime().keyring
        # Named by key reference, as the key store names them: never the learner id.
        rows = [
            PendingShred(subject=keyring.key_ref(s), scope=c, mode=mode, created_at=now)
            for s, c in pairs
        ]
        if rows:
            PendingShred.objects.using(self.using).bulk_create(rows)
            transaction.on_commit(self.reconcile, using=self.using)

    def reconcile(self) -> int:
        """Shred the keys listed by committed erasures and sweeps; return how many pairs.

        Runs after every commit that listed some, and first in every erasure and sweep
        that is not a dry run, so a crash between a commit and its shredding is
        finished by the next call. Called inside a transaction (``ATOMIC_REQUESTS``), it
        shreds nothing and returns 0: it runs again when that transaction commits.
        Idempotent: shredding twice is shredding once.
        """
        from django.db import connections, transaction

        from learnprivacy.django.models import PendingShred

        connection = connections[self.using]
        if connection.in_atomic_block:
            # The list holds keys this transaction queued too, whose rows a rollback
            # would bring back: they wait for its commit, and those a crash left owed
            # with them (before, those waited for some later call made outside one).
            transaction.on_commit(self.reconcile, using=self.using)
            return 0
        keyring = runtime().keyring
        done = 0
        pending = list(PendingShred.objects.using(self.using).order_by("id"))
        for row in pending:
            keyring.shred_ref(row.subject, row.scope)
            PendingShred.objects.using(self.using).filter(id=row.id).delete()
            done += 1
        if pending:
            _checkpoint_keys()
        return done

    # -- erasure requests ----------------------------------------------------------------

    def erase_subject(
        self, subject: object, *, now: dt.datetime, dry_run: bool = False
    ) -> ErasureResult:
        """Carry out an erasure request for ``subject`` on every declared model.

        Rows are erased, or restricted where a legal minimum, a hold or a review keeps
        them, each with its reason. Rows of a model the project does not own (the
        account, declared with :func:`declare`) are deleted as Django deletes them when
        nothing keeps them, and otherwise anonymised in place and kept with the reason
        (see :class:`ErasureResult`). Audit entries are written in the same transaction;
        the keys no kept row needs are shredded once it commits. Runs in the caller's
        transaction when there is one (then the keys wait for its commit). ``dry_run``
        changes nothing.
        """
        from django.db import transaction

        require_aware(now, "now")
        learner = self._learner(subject)
        if not dry_run:  # a dry run changes nothing, not even the keys owed
            self.reconcile()
        by_table = self._by_table()
        with transaction.atomic(using=self.using):
            found: list[tuple[ModelSpec, Any, RecordView]] = []
            for bound in self.bound:
                for row in self._rows_of(bound, learner):
                    found.append((bound.spec, row[bound.spec.primary_key], bound.spec.view(row)))
            plan = plan_erasure(
                learner,
                found,
                specs=self.specs,
                now=now,
                holds=self.holds,
                schedule=self.schedule,
            )
            account = next((view for spec, _key, view in found if spec.is_subject_table), None)
            erase: dict[str, list[Any]] = {}
            restrict_rows: dict[str, list[tuple[Any, str, str]]] = {}
            unowned: dict[str, list[tuple[Any, str]]] = {}
            for (spec, _key, view), decided in zip(found, plan.rows, strict=True):
                decision = decided.decision
                if not by_table[spec.table].owned:
                    # The plan keeps an account while kept rows refer to it; rows of a
                    # model the project does not own follow their own decision, and
                    # _remove_unowned keeps (anonymised) what still needs keeping.
                    decision = decide_on_request(
                        spec,
                        view,
                        subject=account,
                        now=now,
                        holds=self.holds,
                        schedule=self.schedule,
                    )
                    if decision.action is Action.ERASE:
                        unowned.setdefault(spec.table, []).append((decided.key, learner))
                        continue
                if decision.action is Action.ERASE:
                    erase.setdefault(spec.table, []).append(decided.key)
                else:
                    reason = kept_reason(spec, decision)
                    restrict_rows.setdefault(spec.table, []).append((decided.key, learner, reason))

            def carry_out() -> dict[str, _Removal]:
                for table, keys in erase.items():
                    self._erase_rows(by_table[table], keys)
                for table, listed in restrict_rows.items():
                    self._restrict_rows(by_table[table], listed, now)
                return {
                    table: self._remove_unowned(by_table[table], pairs, now=now)
                    for table, pairs in unowned.items()
                }

            if not dry_run:
                removals = carry_out()
            elif unowned:
                # Whether the account goes is only known by trying (PROTECT, RESTRICT,
                # restricted rows its deletion would reach): tried, then rolled back.
                removals = self._trial(carry_out)
            else:
                removals = {}
            for table, removal in removals.items():
                if removal.deleted:
                    erase.setdefault(table, []).extend(removal.deleted)
            result = ErasureResult(
                subject_ref=self.audit.subject_ref(learner),
                erased=sum(len(keys) for keys in erase.values()),
                anonymised=sum(len(r.kept) + len(r.left) for r in removals.values()),
                restricted=sum(len(rows) for rows in restrict_rows.values()),
                shred_scopes=plan.shred_scopes,
                shredded=(),
                dry_run=dry_run,
                kept=_summary(restrict_rows, anonymised=False)
                + _summary({t: r.kept for t, r in removals.items()}, anonymised=True),
                left=_summary({t: r.left for t, r in removals.items()}, anonymised=True),
            )
            if dry_run:
                return result
            done = attrs.evolve(
                plan,
                erase={t: tuple(keys) for t, keys in erase.items()},
                restrict={t: tuple(k for k, _l, _r in rows) for t, rows in restrict_rows.items()},
            )
            specs = {t: b.spec for t, b in by_table.items()}
            events = erasure_events(self.audit.subject_ref, done, specs)
            for table, removal in removals.items():
                for kept_rows in (removal.kept, removal.left):
                    if kept_rows:
                        keys = [key for key, _l, _w in kept_rows]
                        events.append(
                            rows_event(
                                "anonymise",
                                self.audit.subject_ref,
                                specs[table],
                                keys,
                                [learner] * len(keys),
                                reason=kept_rows[0][2],
                            )
                        )
            self.audit.append(events, now=now)
            self._queue_shreds([(learner, s) for s in plan.shred_scopes], mode="tombstone", now=now)
        keyring = runtime().keyring
        shredded = tuple(s for s in plan.shred_scopes if keyring.is_shredded(learner, s))
        return attrs.evolve(result, shredded=shredded)

    # -- retention sweeps ----------------------------------------------------------------

    def sweep(
        self,
        schedule: Schedule | None = None,
        *,
        now: dt.datetime,
        dry_run: bool = False,
        batch_size: int = BATCH_SIZE,
        progress: Progress | None = None,
    ) -> SweepResult:
        """Apply ``schedule`` (default: the configured one) to every declared model.

        Each batch of rows is one transaction: its erasures, anonymisations,
        restrictions and audit entries commit together, then the keys of learners left
        with no row under a key scope are shredded. Killed half-way and run again, it
        ends in the same state; run twice, the second run changes nothing.
        """

        require_aware(now, "now")
        schedule = schedule if schedule is not None else self.schedule
        if not isinstance(schedule, Schedule):
            raise ConfigurationError('a sweep needs a Schedule (LEARNPRIVACY["SCHEDULE"])')
        if type(batch_size) is not int or batch_size < 1:
            raise ValidationError("batch_size must be a positive int", field="batch_size")
        if not dry_run:  # a dry run changes nothing, not even the keys owed
            self.reconcile()
        totals = dict.fromkeys(("erased", "anonymised", "restricted", "review", "kept"), 0)
        shredded_subjects = 0
        self._pending_subjects = 0
        # In a dry run nothing is removed: rows the retention pass already counted are
        # not counted again by the consent pass.
        decided: set[tuple[str, str]] = set()
        self._dry_gone = {}
        # Models the project owns first: an account is deleted only once the rows that
        # refer to it have had their turn (_remove_unowned keeps it while some remain).
        for bound in sorted(self.bound, key=lambda b: not b.owned):
            if not schedule.rules_for(bound.model):
                continue
            manager = bound.model._base_manager.using(self.using)
            total = manager.count()
            seen = 0
            last: Any = None
            while True:
                query = manager.order_by("pk")
                if last is not None:
                    query = query.filter(pk__gt=last)
                rows = list(query.values(*self._names(bound))[:batch_size])
                if not rows:
                    break
                last = rows[-1][bound.spec.primary_key]
                seen += len(rows)
                decisions = self._decide_batch(bound, rows, schedule, now)
                if dry_run:
                    decided.update(
                        (bound.spec.table, str(d.key))
                        for d in decisions
                        if d.decision.action in (Action.ERASE, Action.ANONYMISE, Action.RESTRICT)
                    )
                    self._dry_gone.update(
                        ((bound.spec.table, str(d.key)), d.decision.action)
                        for d in decisions
                        if d.decision.action in (Action.ERASE, Action.ANONYMISE)
                    )
                shredded_subjects += self._apply_batch(
                    bound, decisions, now, dry_run=dry_run, totals=totals
                )
                if progress is not None:
                    progress(bound.spec.table, seen, total)
        counts, shredded = self._end_lapsed_consents(
            schedule, now, dry_run=dry_run, skip=decided, batch_size=batch_size
        )
        for name, value in counts.items():
            totals[name] += value
        shredded_subjects += shredded
        return SweepResult(
            **totals,
            shredded_subjects=shredded_subjects,
            pending_subjects=self._pending_subjects,
            dry_run=dry_run,
        )

    # -- consent -------------------------------------------------------------------------

    def _consent_model(self) -> Bound | None:
        """The declared consent model named by ``LEARNPRIVACY["CONSENTS"]``, if any.

        Its rows need a clear ``purpose`` and the dates ``given_at``, ``withdrawn_at``
        and ``expires_at`` (the last two nullable), as the store's ``Consent`` record.
        """
        from django.apps import apps

        from learnprivacy.django._bind import spec_of
        from learnprivacy.django.fields import PersonalField

        label = setting("CONSENTS")
        if label is None:
            return None
        if isinstance(label, str):
            try:
                model = apps.get_model(label)
            except (LookupError, ValueError):
                raise ConfigurationError(
                    f'LEARNPRIVACY["CONSENTS"] names {label!r}, which is not an installed model'
                ) from None
        else:
            model = label
        bound = spec_of(model)
        for name in ("purpose", "given_at", "withdrawn_at", "expires_at"):
            try:
                field = model._meta.get_field(name)
            except Exception:
                raise ConfigurationError(
                    f"{bound.spec.table}: a consent model needs a field {name!r}"
                ) from None
            if isinstance(field, PersonalField):
                raise ConfigurationError(
                    f"{bound.spec.table}.{name}: a consent model's {name} must be stored "
                    "in clear (not_personal): sweeps compare it"
                )
        return bound

    def _lapsed(self, consents: Bound, purposes: set[str], now: dt.datetime) -> dict[str, set[str]]:
        """For each purpose, the learners who consented to it and whose every consent
        has ended at ``now`` (withdrawn or expired). A learner with no consent row is
        not in it: their processing may rest on a consent recorded elsewhere."""
        manager = consents.model._base_manager.using(self.using)
        rows = manager.filter(purpose__in=sorted(purposes)).values_list(
            consents.subject_attname, "purpose", "given_at", "withdrawn_at", "expires_at"
        )
        return lapsed_consents(rows.iterator(chunk_size=2_000), now)

    def _end_lapsed_consents(
        self,
        schedule: Schedule,
        now: dt.datetime,
        *,
        dry_run: bool,
        skip: set[tuple[str, str]],
        batch_size: int,
    ) -> tuple[dict[str, int], int]:
        """Erase (or anonymise, or restrict, as the rules say) the rows that rested only
        on a consent that has expired or been withdrawn, as the store's sweep does.

        A row rests on consent when every schedule rule applying to it is for the
        consented purpose on the consent basis (the rule's, else the model's
        ``Privacy(basis=...)``); rows another purpose or basis holds, rows a hold
        covers and rows already restricted are left as they are.
        """

        counts = dict.fromkeys(("erased", "anonymised", "restricted", "review", "kept"), 0)
        consents = self._consent_model()
        if consents is None:
            return counts, 0
        by_purpose: dict[str, list[Bound]] = {}
        for bound in self.bound:
            if bound.model is consents.model:
                continue
            for rule in schedule.rules_for(bound.model):
                basis = rule.basis or bound.spec.privacy.basis
                if rule.purpose and basis is LawfulBasis.CONSENT:
                    found = by_purpose.setdefault(rule.purpose, [])
                    if bound not in found:
                        found.append(bound)
        if not by_purpose:
            return counts, 0
        shredded = 0
        proxies: dict[type, Schedule] = {}
        for purpose, learners in sorted(self._lapsed(consents, set(by_purpose), now).items()):
            reason = f"consent to {purpose} ended ({Article.ART_7_3})"
            wanted = sorted(learners)
            for bound in by_purpose.get(purpose, []):
                manager = bound.model._base_manager.using(self.using)
                lookup = f"{bound.subject_lookup}__in"
                for start in range(0, len(wanted), batch_size):
                    chunk = wanted[start : start + batch_size]
                    rows = list(
                        manager.filter(**{lookup: chunk}).order_by("pk").values(*self._names(bound))
                    )
                    if not rows:
                        continue
                    spec = bound.spec
                    held = restricted_keys(bound, [r[spec.primary_key] for r in rows], self.using)
                    decisions: list[RowDecision] = []
                    for row in rows:
                        key = row[spec.primary_key]
                        if str(key) in held or (spec.table, str(key)) in skip:
                            continue
                        view = spec.view(row)
                        if hold_for(spec, view, self.holds) is not None:
                            continue
                        # The schedule's own rule on consents, over the model's rules (the
                        # schedule names the model; the row is seen through its view).
                        views = proxies.get(type(view))
                        if views is None:
                            views = proxies[type(view)] = Schedule(
                                {type(view): schedule.rules_for(bound.model)}
                            )
                        action = views.on_consent_end(view, purpose)
                        if action is None:
                            continue
                        learner = subject_of(spec, view)
                        if learner is None:
                            continue
                        decision = Decision(
                            action=action,
                            due_at=now,
                            rule=None,
                            reason=reason,
                            article=Article.ART_7_3,
                        )
                        decisions.append(
                            RowDecision(spec=spec, key=key, subject=learner, decision=decision)
                        )
                    if not decisions:
                        continue
                    shredded += self._apply_batch(
                        bound, decisions, now, dry_run=dry_run, totals=counts
                    )
        return counts, shredded

    def _decide_batch(
        self, bound: Bound, rows: Sequence[Mapping[str, Any]], schedule: Schedule, now: dt.datetime
    ) -> list[RowDecision]:
        spec = bound.spec
        views = [(row[spec.primary_key], spec.view(row)) for row in rows]
        subjects = (
            sorted({str(row[spec.subject]) for row in rows if row.get(spec.subject) is not None})
            if not spec.is_subject_table
            else []
        )
        accounts = self._accounts(subjects) if subjects else {}
        # Activity counts from every declared activity date of the learner's rows, not
        # only the account's (the store's sweep reads the learner's records the same
        # way): an old login with recent progress is an active learner.
        activity: dict[str, dt.datetime] = {}
        if self._reads_activity(schedule):
            learners = subjects or sorted({str(row[spec.primary_key]) for row in rows})
            activity = self._latest_activity(learners)
        decided = []
        for key, view in views:
            values = view.__dict__
            learner = values["id"] if spec.is_subject_table else values.get("learner_id")
            if learner is None:
                continue
            account = None
            if spec.is_subject_table:
                view = with_activity(view, activity.get(learner), learner)
            else:
                account = with_activity(
                    accounts.get(learner)
                    or RecordView(
                        {
                            "id": learner,
                            "last_activity_at": values.get("last_activity_at"),
                            "contract_end_at": values.get("contract_end_at"),
                        }
                    ),
                    activity.get(learner),
                    learner,
                )
            decision = decide_routine(
                spec, view, subject=account, now=now, holds=self.holds, schedule=schedule
            )
            decided.append(RowDecision(spec=spec, key=key, subject=learner, decision=decision))
        return decided

    def _reads_activity(self, schedule: Schedule) -> bool:
        return any(
            Trigger.LAST_ACTIVITY in rule.triggers
            for bound in self.bound
            for rule in schedule.rules_for(bound.model)
        )

    def _latest_activity(self, learners: Sequence[str]) -> dict[str, dt.datetime]:
        """Each learner's latest date over the ``Privacy(activity=...)`` fields of every
        declared model (a path across a relation too), by learner id. Rows anonymised
        (their learner removed) are no longer anyone's."""
        from django.db.models import Max

        found: dict[str, dt.datetime] = {}
        for bound in self.bound:
            path = bound.spec.privacy.activity
            if path is None:
                continue
            manager = bound.model._base_manager.using(self.using)
            lookup = bound.subject_lookup
            for start in range(0, len(learners), 500):
                chunk = list(learners[start : start + 500])
                query = (
                    manager.filter(**{f"{lookup}__in": chunk})
                    .values(lookup)
                    .annotate(latest=Max(path))
                    .order_by()
                )
                for row in query:
                    latest = row["latest"]
                    if not isinstance(latest, dt.datetime):
                        continue
                    latest = utc_if_naive(latest)
                    learner = str(row[lookup])
                    current = found.get(learner)
                    if current is None or latest > current:
                        found[learner] = latest
        return found

    def _apply_batch(
        self,
        bound: Bound,
        decisions: Sequence[RowDecision],
        now: dt.datetime,
        *,
        dry_run: bool,
        totals: dict[str, int],
    ) -> int:
        """Apply one batch of a sweep's ``decisions`` in a transaction that also queues the
        key shreds they call for; add its counts to ``totals``; how many subjects lost
        keys, checked in the key store once the batch committed (the others are counted
        pending)."""
        from django.db import connections, transaction

        with transaction.atomic(using=self.using):
            counts, shreds = self._apply(bound, decisions, now, dry_run=dry_run)
            if not dry_run:
                self._queue_shreds(shreds, mode="keys", now=now)
        for name, value in counts.items():
            totals[name] += value
        subjects = {s for s, _ in shreds}
        if dry_run or not subjects:
            return len(subjects)
        if connections[self.using].in_atomic_block:
            # The caller's transaction: the shreds wait for its commit.
            self._pending_subjects += len(subjects)
            return 0
        keyring = runtime().keyring
        left = {s for s, scope in shreds if not keyring.is_shredded(s, scope)}
        self._pending_subjects += len(left)
        return len(subjects - left)

    def _apply(
        self, bound: Bound, decisions: Sequence[RowDecision], now: dt.datetime, *, dry_run: bool
    ) -> tuple[dict[str, int], list[tuple[str, str]]]:
        counts = dict.fromkeys(("erased", "anonymised", "restricted", "review", "kept"), 0)
        groups: dict[Action, list[RowDecision]] = {}
        for row in decisions:
            groups.setdefault(row.decision.action, []).append(row)
        counts["kept"] = len(groups.get(Action.KEEP, ()))
        counts["review"] = len(groups.get(Action.REVIEW, ()))
        erase = groups.get(Action.ERASE, [])
        anonymise = groups.get(Action.ANONYMISE, [])
        restrict = groups.get(Action.RESTRICT, [])
        if restrict:
            already = restricted_keys(bound, [r.key for r in restrict], self.using)
            restrict = [r for r in restrict if str(r.key) not in already]
        removal: _Removal | None = None
        if erase and not bound.owned:
            pairs = [(r.key, r.subject) for r in erase]
            if dry_run:
                learners = sorted({r.subject for r in erase})

                def tried() -> _Removal:
                    self._remove_dry_gone(learners)
                    return self._remove_unowned(bound, pairs, now=now)

                removal = self._trial(tried)
            else:
                removal = self._remove_unowned(bound, pairs, now=now)
            counts["erased"] = len(removal.deleted)
            counts["anonymised"] = len(anonymise) + len(removal.kept) - len(removal.already)
            counts["anonymised"] += len(removal.left)
        else:
            counts["erased"] = len(erase)
            counts["anonymised"] = len(anonymise)
        counts["restricted"] = len(restrict)
        if dry_run:
            return counts, []
        ref = self.audit.subject_ref
        events = []

        def event(action: str, rows: Sequence[RowDecision], reason: str | None = None) -> None:
            keys, subjects = [r.key for r in rows], [r.subject for r in rows]
            why = reason or rows[0].decision.reason
            events.append(rows_event(action, ref, bound.spec, keys, subjects, reason=why))

        if removal is not None:
            by_key = {str(r.key): r for r in erase}
            if removal.deleted:
                event("erase", [by_key[str(k)] for k in removal.deleted])
            for rows in ([r for r in removal.kept if r not in removal.already], removal.left):
                if rows:
                    event("anonymise", [by_key[str(k)] for k, _l, _w in rows], rows[0][2])
        elif erase:
            self._erase_rows(bound, [r.key for r in erase])
            event("erase", erase)
        if anonymise:
            self._anonymise_rows(bound, [r.key for r in anonymise])
            event("anonymise", anonymise)
        if restrict:
            listed = [(r.key, r.subject, kept_reason(bound.spec, r.decision)) for r in restrict]
            self._restrict_rows(bound, listed, now)
            event("restrict", restrict)
        shreds: list[tuple[str, str]] = []
        gone = sorted({r.subject for r in erase + anonymise})
        if gone and bound.encrypted:
            scope = bound.spec.scope
            remaining: set[str] = set()
            for other in self.bound:
                if other.spec.scope != scope or not other.encrypted:
                    continue
                manager = other.model._base_manager.using(self.using)
                lookup = f"{other.subject_lookup}__in"
                remaining |= {
                    str(s)
                    for s in manager.filter(**{lookup: gone}).values_list(
                        other.subject_lookup, flat=True
                    )
                }
            shreds = [(s, scope) for s in gone if s not in remaining]
            if shreds:
                events.append(shred_event(ref, [s for s, _ in shreds], [scope], mode="keys"))
        self.audit.append(events, now=now)
        return counts, shreds

    # -- provider, export, register ------------------------------------------------------

    def erase(self, subject: str, *, now: dt.datetime) -> ErasureResult:
        """The provider backend's erasure (see :meth:`erase_subject`)."""
        return self.erase_subject(subject, now=now)

    @property
    def provider(self) -> DeclaredProvider:
        """A privacy provider of the declared models, for a ``PrivacyManager``."""
        return DeclaredProvider(
            self.component, self.specs, self, schedule=self.schedule, holds=self.holds
        )

    def kept_by_law(self, subject: str) -> dict[str, int]:
        """How many rows of ``subject`` each table keeps restricted (a legal minimum, a
        hold, a review, or kept rows that refer to them): what a manager's check after
        an erasure accepts. Rows merely left behind are not counted."""
        kept: dict[str, int] = {}
        for bound in self.bound:
            keys = list(
                bound.model._base_manager.using(self.using)
                .filter(**{bound.subject_lookup: subject})
                .values_list("pk", flat=True)
            )
            count = count_restricted(bound.spec.table, keys, self.using) if keys else 0
            if count:
                kept[bound.spec.table] = count
        return kept

    def find(self, source: Any, field: str, value: str) -> list[Any]:
        """The instances of ``source`` (a model or a queryset) whose blind-indexed
        ``field`` equals ``value``, normalised as the index normalises it.

        ``filter(field=lp_lookup(value))`` answers from the index column alone; this
        also decrypts each row's value and keeps the row only when it matches. An
        index copied onto another row, or two values sharing a truncated index, never
        return a row holding another value.
        """
        from django.db.models import QuerySet

        queryset = source if isinstance(source, QuerySet) else source._default_manager.all()
        target = queryset.model._meta.get_field(field)
        if not isinstance(target, PersonalField):
            raise ConfigurationError(f"{queryset.model.__name__}.{field} is not a personal field")
        target.index_field  # noqa: B018 -- raises ConfigurationError without a blind index
        wanted = normalise_text(target.to_text(value))
        return [
            found
            for found in queryset.filter(**{field: lp_lookup(value)})
            if getattr(found, field) is not None
            and normalise_text(target.to_text(getattr(found, field))) == wanted
        ]

    def manager(self) -> Any:
        """A ``PrivacyManager`` holding only :attr:`provider`."""
        from learnprivacy.providers import PrivacyManager

        return PrivacyManager([self.provider], discover=False)

    def export_subject(self, subject: object, out: Any, *, now: dt.datetime, **options: Any) -> Any:
        """Export ``subject``'s rows of every declared model into ``out`` (zip or folder).

        The same package as ``learnprivacy.export.export_subject`` makes from a store.
        """
        from learnprivacy.export import export_subject

        return export_subject(self.manager(), self._learner(subject), out, now=now, **options)

    def request_book(self) -> Any:
        """The request book in the application's database (bodies encrypted)."""
        from learnprivacy.django._requests import DjangoRequestBackend
        from learnprivacy.requests import RequestBook

        return RequestBook(DjangoRequestBackend(runtime().cipher, using=self.using))

    def request_executor(self, *, export_dir: Any = None, book: Any = None) -> Any:
        """A ``RequestExecutor`` running requests on the declared models (through
        :attr:`provider`), recorded in :meth:`request_book`."""
        from learnprivacy.requests import RequestExecutor

        return RequestExecutor(
            book if book is not None else self.request_book(),
            manager=self.manager(),
            export_dir=export_dir,
            schedule=self.schedule,
            holds=self.holds,
        )


def _checkpoint_keys() -> None:
    """Truncate the key store's SQLite WAL, so shredded keys leave no copy there."""
    from django.db import connections

    from learnprivacy.django._settings import keys_alias

    connection = connections[keys_alias()]
    if connection.vendor == "sqlite" and not connection.in_atomic_block:
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")


#: How the reason of a row kept, anonymised, because something still needs it begins.
KEPT_ANONYMISED = "kept, anonymised: "


@attrs.define
class _Removal:
    """What :meth:`DjangoPrivacy._remove_unowned` did: rows deleted, kept (anonymised,
    restricted; ``already`` those kept so before) and left (anonymised, unrestricted),
    each kept or left row as ``(key, learner, reason)``."""

    deleted: list[Any] = attrs.Factory(list)
    kept: list[tuple[Any, str, str]] = attrs.Factory(list)
    already: list[tuple[Any, str, str]] = attrs.Factory(list)
    left: list[tuple[Any, str, str]] = attrs.Factory(list)


def kept_reason(spec: ModelSpec, decision: Decision) -> str:
    """Why a row is kept: the decision's reason, the lawful basis it is processed under
    and, when known, the retention's end (at most 255 characters, no personal value)."""
    rule = decision.rule
    basis = (rule.basis if rule is not None else None) or spec.privacy.basis
    # What matters first (the register's column is 255 characters): the basis and
    # how long, then the decision's own sentence.
    parts = [f"processed under {basis.article}"]
    if decision.due_at is not None:
        parts.append(f"kept until {decision.due_at.date().isoformat()}")
    if rule is not None:
        parts.append(f"rule {rule.period} after {rule.trigger.value}")
    parts.append(decision.reason)
    return "; ".join(parts)[:255]


def _summary(
    rows: Mapping[str, Sequence[tuple[Any, str, str]]], *, anonymised: bool
) -> tuple[KeptRows, ...]:
    """Rows kept or left, grouped by table and reason."""
    counts: dict[tuple[str, str], int] = {}
    for table, listed in rows.items():
        for _key, _learner, reason in listed:
            counts[(table, reason)] = counts.get((table, reason), 0) + 1
    return tuple(
        KeptRows(table=table, rows=count, anonymised=anonymised, reason=reason)
        for (table, reason), count in counts.items()
    )
