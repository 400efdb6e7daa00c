"""``StoreProvider``: learnprivacy's own store as a privacy provider (``learnprivacy_store``).

Everything the store keeps about a learner lives in that learner's user context. The
metadata is derived from the records' field declarations (``fields_of``) and, when a
retention :class:`~learnprivacy.retention.Schedule` is given, from its rules: one table
item per record type and purpose, with the rule's period, trigger and basis.

Erasure is the store's own ``erase_subject``: records a legal minimum or a hold protects
(invoices under legal obligation, for instance) are restricted rather than erased (GDPR
Art. 17(3)(b)). Restricted records are still the learner's data: they keep the user
context listed and are included in access exports (Art. 15 covers data kept under
restriction), but a second deletion leaves them alone, so it changes nothing.

This module does not import the store (and so SQLAlchemy): it works on any object with the
store's methods.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from learnprivacy._vocabulary import ContextLevel
from learnprivacy.basis import DataCategory
from learnprivacy.errors import ValidationError
from learnprivacy.providers._contexts import (
    ApprovedContextList,
    ApprovedUserList,
    Context,
    ContextList,
    UserList,
)
from learnprivacy.providers._metadata import MetadataCollection
from learnprivacy.providers.writer import ContentWriter, DataDescription
from learnprivacy.records import fields_of
from learnprivacy.records._base import default_basis, record_types

if TYPE_CHECKING:
    from learnprivacy.retention import Hold, Schedule

__all__ = ["DEFAULT_PURPOSES", "STORE_COMPONENT", "StoreProvider", "store_metadata"]

#: The component name of the store's provider.
STORE_COMPONENT = "learnprivacy_store"

#: The purpose each record type serves when no schedule rule names one.
DEFAULT_PURPOSES: dict[str, str] = {
    "Learner": "Learner accounts and access to the courses",
    "Progress": "Training follow-up: progress and scores",
    "Certificate": "Issuing and verifying certificates",
    "Invoice": "Billing and tax obligations",
    "Consent": "Proof of consent",
    "Funding": "Training funding files (employer, OPCO)",
    "AccessEvent": "Security of the platform: access logs",
}
_FALLBACK_PURPOSE = "Learning records kept by the LMS"


class _StoreLike(Protocol):
    """The part of :class:`learnprivacy.store.Store` the provider uses."""

    def iter_records_of(
        self,
        learner_id: str,
        *,
        include_restricted: bool = False,
        record_types: Iterable[type[Any] | str] | None = None,
    ) -> Iterator[Any]: ...

    def erase_subject(
        self,
        learner_id: str,
        *,
        now: dt.datetime,
        holds: Sequence[Hold] = (),
        schedule: Schedule | None = None,
    ) -> Any: ...

    def now(self, now: dt.datetime | None = None) -> dt.datetime: ...

    def count(
        self, record_type: type[Any], *, include_restricted: bool = True, anonymised: bool = False
    ) -> int: ...


class StoreProvider:
    """The privacy provider of a :class:`learnprivacy.store.Store`.

    ``PrivacyManager(store=store)`` registers it; build it yourself to pass a
    ``schedule`` (retention and purposes in the metadata, and the erasure decisions),
    ``holds``, ``purposes`` (record type name to purpose) or a ``clock`` (defaults to the
    store's own).

    ``record_types`` names the record types (classes or names) the controller keeps in
    this store; the metadata, and so the register, describes those only. A type left out
    that the store nevertheless holds rows of (restricted ones too) is described anyway,
    as is a type the schedule has a rule for: leaving a type out never hides what is
    processed. Without it every record type is described.
    """

    component = STORE_COMPONENT

    def __init__(
        self,
        store: _StoreLike,
        *,
        schedule: Schedule | None = None,
        holds: Sequence[Hold] = (),
        purposes: dict[str, str] | None = None,
        clock: Callable[[], dt.datetime] | None = None,
        record_types: Iterable[type[Any] | str] | None = None,
    ) -> None:
        self.record_types = None if record_types is None else _resolve_types(record_types)
        self.store = store
        self.schedule = schedule
        self.holds = tuple(holds)
        self.purposes = {**DEFAULT_PURPOSES, **(purposes or {})}
        self._clock = clock

    def __repr__(self) -> str:
        return f"StoreProvider({self.store!r})"

    def _now(self) -> dt.datetime:
        return self._clock() if self._clock is not None else self.store.now()

    # -- metadata ---------------------------------------------------------------------

    def get_metadata(self, collection: MetadataCollection) -> MetadataCollection:
        """One table per record type (and per purpose when a schedule gives several).

        Every exported field is declared, personal or not: a progress row's course, dates
        and score are the learner's data through the row's link to them, and the register
        lists their categories (scores included). With ``record_types``, the types the
        store holds no row of and the schedule has no rule for are left out.
        """
        used: tuple[type[Any], ...] | None = None
        if self.record_types is not None:
            declared = set(self.record_types)
            used = tuple(
                cls
                for cls in record_types()
                if cls in declared
                or (self.schedule is not None and self.schedule.rules_for(cls))
                or self.store.count(cls, include_restricted=True) > 0
            )
        return store_metadata(collection, self.schedule, self.purposes, record_types=used)

    # -- requests ---------------------------------------------------------------------

    def get_contexts_for_userid(self, user_id: str) -> ContextList:
        """The learner's user context, when the store holds a record of theirs.

        Restricted records count: they are still held.
        """
        contexts = ContextList(component=self.component)
        if self._holds(user_id, include_restricted=True):
            contexts.add_user_context(user_id)
        return contexts

    def export_user_data(self, approved: ApprovedContextList, writer: ContentWriter) -> None:
        """Write every record of the learner (restricted ones too), grouped by type.

        The records stream from the store to the writer, one type after the other: a
        learner with a long history costs no more memory than one page of it.
        """
        if Context.user(approved.user_id) not in approved:
            return
        # The store yields the records type by type, so consecutive groups are the types.
        stream = self.store.iter_records_of(approved.user_id, include_restricted=True)
        for cls, records in itertools.groupby(stream, key=type):
            name = cls.__name__
            rules = self.schedule.rules_for(cls) if self.schedule is not None else ()
            writer.describe(
                DataDescription(
                    component=self.component,
                    record_type=name,
                    description=_summary(cls),
                    purpose="; ".join(
                        dict.fromkeys(
                            r.purpose or self.purposes.get(name, _FALLBACK_PURPOSE) for r in rules
                        )
                    )
                    or self.purposes.get(name, _FALLBACK_PURPOSE),
                    basis=default_basis(cls),
                    retention="; ".join(f"{r.period} after {r.trigger.value}" for r in rules)
                    or None,
                    fields={f.name: f.description for f in fields_of(cls) if f.exported},
                )
            )
            writer.write_records(self.component, records)

    def delete_data_for_user(self, approved: ApprovedContextList) -> None:
        """Erase the learner (legal minima and holds turn erasure into restriction)."""
        if Context.user(approved.user_id) in approved:
            self._erase(approved.user_id)

    def delete_data_for_all_users_in_context(self, context: Context) -> None:
        """Erase the learner of a user context; other contexts hold no store data."""
        if context.level is ContextLevel.USER:
            self._erase(context.instance_id)

    def get_users_in_context(self, userlist: UserList) -> None:
        """The learner of a user context, when the store holds a record of theirs."""
        context = userlist.context
        if context.level is ContextLevel.USER and self._holds(
            context.instance_id, include_restricted=True
        ):
            userlist.add_user(context.instance_id)

    def delete_data_for_users(self, approved: ApprovedUserList) -> None:
        """Erase the learner of a user context when approved."""
        context = approved.context
        if context.level is ContextLevel.USER and context.instance_id in approved:
            self._erase(context.instance_id)

    def _holds(self, user_id: str, *, include_restricted: bool) -> bool:
        """Whether the store holds a record of ``user_id`` (reads one small page at most)."""
        records = self.store.iter_records_of(user_id, include_restricted=include_restricted)
        return next(records, None) is not None

    def _erase(self, user_id: str) -> None:
        records = list(self.store.iter_records_of(user_id, include_restricted=True))
        if not records or self._kept_count(records) == len(records):
            # Nothing left that an erasure would remove (at most records the law keeps): a
            # retry changes nothing, and no audit entry is written for an erasure that did
            # not happen. Records restricted for another reason (Art. 18) are erased.
            return
        self.store.erase_subject(user_id, now=self._now(), holds=self.holds, schedule=self.schedule)

    def kept_by_law(self, user_id: str) -> dict[str, int]:
        """The records of ``user_id`` an erasure keeps, by record type: those a legal
        minimum or a hold protects (GDPR Art. 17(3)), decided as ``erase_subject`` decides.

        :meth:`PrivacyManager.delete_data_for_user` reads it to tell what the law keeps
        from what a deletion left behind.
        """
        counts: dict[str, int] = {}
        records = list(self.store.iter_records_of(user_id, include_restricted=True))
        learner = _learner_of(records)
        now = self._now()
        for record in records:
            if self._kept(record, learner, now):
                name = type(record).__name__
                counts[name] = counts.get(name, 0) + 1
        return counts

    def _kept_count(self, records: list[Any]) -> int:
        learner, now = _learner_of(records), self._now()
        return sum(1 for record in records if self._kept(record, learner, now))

    def _kept(self, record: Any, learner: Any, now: dt.datetime) -> bool:
        from learnprivacy.retention import Action

        if self.schedule is not None:
            decision = self.schedule.evaluate(
                record, now=now, subject=learner, holds=self.holds, erasure_requested=True
            )
            return decision.action is Action.RESTRICT
        if any(hold.matches(record) for hold in self.holds):
            return True
        basis = getattr(record, "basis", None)
        return basis is not None and not basis.erasable_on_request

    def raw_scan(self, user_id: str) -> dict[str, int]:
        """Count, table by table, the stored rows of ``user_id``, reading SQL directly.

        Restricted rows count (they are still held); so do the learner's data keys that
        are not shredded (``lpk_keys``, in the key database, under the learner's key
        reference). A shredded key's row, which keeps no key material, does not.
        Meant for the compliance kit: it bypasses the store's record API, so a record
        the store forgot to erase cannot hide.
        """
        from sqlalchemy import func, select

        store: Any = self.store
        found: dict[str, int] = {}
        with store._reading() as connection:
            queries = [
                (
                    rt.table.name,
                    select(func.count()).where(rt.table.c[rt.subject_column] == user_id),
                )
                for rt in store._record_tables()
            ]
            for name, query in queries:
                count = connection.execute(query).scalar_one()
                if count:
                    found[name] = int(count)
        live = sum(
            1
            for entry in store._keys.list_entries(store.keyring.key_ref(user_id))
            if entry.state.value != "shredded"
        )
        if live:
            found["lpk_keys"] = live
        return found


def _learner_of(records: list[Any]) -> Any:
    """The learner account among ``records`` (the one record without ``learner_id``)."""
    return next((r for r in records if not hasattr(r, "learner_id")), None)


def _summary(cls: type[Any]) -> str:
    return (cls.__doc__ or cls.__name__).strip().splitlines()[0]


def _all_types() -> tuple[type[Any], ...]:
    return record_types()


def _resolve_types(types: Iterable[type[Any] | str]) -> tuple[type[Any], ...]:
    """Record classes from classes or their names; anything else is a typed error."""
    known = {cls.__name__: cls for cls in record_types()}
    if isinstance(types, str):
        raise ValidationError(
            "record_types must be record types or their names (a list)", field="record_types"
        )
    resolved: list[type[Any]] = []
    for item in types:
        cls = known.get(item) if isinstance(item, str) else item
        if cls is None or cls not in known.values():
            raise ValidationError(
                "record_types names a type that is not a record type of the store",
                field="record_types",
            )
        resolved.append(cls)
    return tuple(dict.fromkeys(resolved))


def store_metadata(
    collection: MetadataCollection,
    schedule: Schedule | None = None,
    purposes: dict[str, str] | None = None,
    *,
    record_types: Iterable[type[Any] | str] | None = None,
) -> MetadataCollection:
    """The store's metadata under ``schedule``, without a store: what
    :meth:`StoreProvider.get_metadata` declares (a policy's register is built from it).

    ``record_types`` limits it to the record types the controller keeps (classes or
    names; all of them by default).
    """
    purposes = {**DEFAULT_PURPOSES, **(purposes or {})}
    chosen = None if record_types is None else set(_resolve_types(record_types))
    for cls in _all_types():
        if chosen is not None and cls not in chosen:
            continue
        infos = [f for f in fields_of(cls) if f.exported]
        if not any(f.personal for f in infos):
            continue
        fields = {f.name: f.description for f in infos}
        categories = list(
            dict.fromkeys(f.category for f in infos if f.category is not DataCategory.NONE)
        )
        name = cls.__name__
        summary = _summary(cls)
        rules = schedule.rules_for(cls) if schedule is not None else ()
        if not rules:
            collection.add_database_table(
                name,
                fields,
                summary,
                purpose=purposes.get(name, _FALLBACK_PURPOSE),
                basis=default_basis(cls),
                categories=categories,
            )
            continue
        for rule in rules:
            collection.add_database_table(
                name,
                fields,
                summary,
                purpose=rule.purpose or purposes.get(name, _FALLBACK_PURPOSE),
                basis=rule.basis or default_basis(cls),
                categories=categories,
                retention=rule.period,
                retention_from=rule.trigger,
            )
    return collection
