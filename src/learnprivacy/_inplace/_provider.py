"""A privacy provider built from declarations, for any ORM.

:class:`DeclaredProvider` is a full :class:`~learnprivacy.providers.RequestProvider`:
its metadata comes from the bound models' declarations (one table item per model, and
per purpose when a schedule gives several rules), its exports and erasures from a small
*backend* the integration implements over its ORM (:class:`ProviderBackend`). It asks
the :class:`~learnprivacy.providers.PrivacyManager` to run its turns in the caller's
thread (``in_caller_thread``), so framework contexts (Flask's ``current_app``, a
request-scoped session) keep working inside it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Protocol

from learnprivacy._inplace._spec import ModelSpec
from learnprivacy.errors import LearnPrivacyError, ProviderError
from learnprivacy.providers import (
    ApprovedContextList,
    ApprovedUserList,
    Context,
    ContextLevel,
    ContextList,
    DataDescription,
    MetadataCollection,
    UserList,
)
from learnprivacy.providers.writer import ContentWriter
from learnprivacy.retention import Hold, Schedule

__all__ = [
    "DeclaredProvider",
    "DeclaredRegister",
    "ProviderBackend",
    "describe",
    "explain",
    "metadata_of",
    "register_of",
]

_MESSAGE_LIMIT = 200


def explain(exc: BaseException) -> str:
    """What a report may say about a foreign exception: its type and, unless it comes
    from the database driver (whose messages quote SQL parameters), its message."""
    name = type(exc).__name__
    module = type(exc).__module__
    if module.startswith(("sqlalchemy", "psycopg", "sqlite3", "pymysql", "django.db")):
        cause = getattr(exc, "orig", None)
        return f"{name} ({type(cause).__name__})" if cause is not None else name
    message = str(exc).strip()
    if not message:
        return name
    return f"{name}: {message[:_MESSAGE_LIMIT]}"


@contextmanager
def _reported(component: str) -> Iterator[None]:
    """Let learnprivacy's errors through; turn others into a ProviderError naming the
    component and saying what failed (Flask's "Working outside of application context")."""
    try:
        yield
    except LearnPrivacyError:
        raise
    except Exception as exc:
        raise ProviderError(f"{component}: {explain(exc)}", component=component) from exc


class ProviderBackend(Protocol):
    """What a :class:`DeclaredProvider` needs from an integration."""

    def holds_data(self, subject: str) -> bool:
        """Whether any declared table holds a row of ``subject`` (restricted ones too)."""
        ...

    def iter_rows(self, subject: str) -> Iterator[tuple[ModelSpec, Mapping[str, Any]]]:
        """Every row of ``subject``, decrypted, as JSON-ready ``{attribute: value}``,
        grouped by table (restricted rows included: Art. 15 covers them)."""
        ...

    def erase(self, subject: str, *, now: dt.datetime) -> Any:
        """Carry out an erasure request for ``subject`` and commit it."""
        ...

    def kept_by_law(self, subject: str) -> dict[str, int]:
        """How many rows of ``subject`` each table keeps restricted (a legal minimum, a
        hold, a review, or kept rows that refer to them). Rows merely left behind are
        not counted."""
        ...


def _retention_text(spec: ModelSpec, schedule: Schedule | None) -> str | None:
    rules = schedule.rules_for(spec.model) if schedule is not None else ()
    return "; ".join(f"{r.period} after {r.trigger.value}" for r in rules) or None


def describe(spec: ModelSpec, component: str, schedule: Schedule | None) -> DataDescription:
    """What an export says about ``spec``'s table."""
    return DataDescription(
        component=component,
        record_type=spec.table,
        description=spec.description,
        purpose=spec.privacy.purpose,
        basis=spec.privacy.basis,
        retention=_retention_text(spec, schedule),
        fields={
            **{
                name: "Record identifier"
                for name in spec.key_attributes
                if name != spec.subject or spec.is_subject_table
            },
            **({} if spec.is_subject_table else {spec.subject: "Learner identifier"}),
            **{c.attribute: c.privacy.description for c in spec.columns if c.privacy.exported},
        },
    )


def metadata_of(
    specs: Sequence[ModelSpec], collection: MetadataCollection, schedule: Schedule | None
) -> MetadataCollection:
    """Add one table item per declared model (per rule when a schedule gives several)."""
    for spec in specs:
        infos = [c for c in spec.columns if c.personal and c.privacy.exported]
        fields = {c.attribute: c.privacy.description for c in infos}
        if not fields:
            fields = {spec.subject: "Learner identifier"}
        categories = list(dict.fromkeys(c.privacy.category for c in infos))
        rules = schedule.rules_for(spec.model) if schedule is not None else ()
        if not rules:
            collection.add_database_table(
                spec.table,
                fields,
                spec.description,
                purpose=spec.privacy.purpose,
                basis=spec.privacy.basis,
                categories=categories,
            )
            continue
        for rule in rules:
            collection.add_database_table(
                spec.table,
                fields,
                spec.description,
                purpose=rule.purpose or spec.privacy.purpose,
                basis=rule.basis or spec.privacy.basis,
                categories=categories,
                retention=rule.period,
                retention_from=rule.trigger,
            )
    return collection


class DeclaredProvider:
    """The provider of an application's declared models (component ``component``).

    Every learner's rows live in their user context. Deletion is the integration's
    erasure request: legal minimums and holds restrict rather than erase, and a second
    deletion finds only restricted rows and changes nothing.
    """

    #: Ask :class:`~learnprivacy.providers.PrivacyManager` to run this provider's turns
    #: in the calling thread (framework contexts are thread-local).
    in_caller_thread = True

    def __init__(
        self,
        component: str,
        specs: Sequence[ModelSpec],
        backend: ProviderBackend,
        *,
        schedule: Schedule | None = None,
        holds: Sequence[Hold] = (),
        clock: Callable[[], dt.datetime] | None = None,
    ) -> None:
        self.component = component
        self.specs = tuple(specs)
        self.backend = backend
        self.schedule = schedule
        self.holds = tuple(holds)
        self._clock = clock or (lambda: dt.datetime.now(dt.UTC))

    def __repr__(self) -> str:
        return f"DeclaredProvider({self.component!r}, tables={[s.table for s in self.specs]})"

    def get_metadata(self, collection: MetadataCollection) -> MetadataCollection:
        """One table item per declared model (and per purpose)."""
        return metadata_of(self.specs, collection, self.schedule)

    def get_contexts_for_userid(self, user_id: str) -> ContextList:
        """The learner's user context when a declared table holds a row of theirs."""
        contexts = ContextList(component=self.component)
        with _reported(self.component):
            if self.backend.holds_data(user_id):
                contexts.add_user_context(user_id)
        return contexts

    def export_user_data(self, approved: ApprovedContextList, writer: ContentWriter) -> None:
        """Every row of the learner, decrypted, table by table."""
        if Context.user(approved.user_id) not in approved:
            return
        with _reported(self.component):
            self._export(approved.user_id, writer)

    def _export(self, user_id: str, writer: ContentWriter) -> None:
        described: set[str] = set()
        batch: list[Mapping[str, Any]] = []
        current: ModelSpec | None = None
        for spec, row in self.backend.iter_rows(user_id):
            if current is not None and spec is not current and batch:
                writer.write_rows(self.component, current.table, batch)
                batch = []
            if spec.table not in described:
                writer.describe(describe(spec, self.component, self.schedule))
                described.add(spec.table)
            current = spec
            batch.append(row)
        if current is not None and batch:
            writer.write_rows(self.component, current.table, batch)

    def delete_data_for_user(self, approved: ApprovedContextList) -> None:
        """The erasure request for the learner (legal minimums and holds restrict)."""
        if Context.user(approved.user_id) in approved:
            with _reported(self.component):
                self.backend.erase(approved.user_id, now=self._clock())

    def kept_by_law(self, user_id: str) -> dict[str, int]:
        """Rows of the learner kept restricted after an erasure, by table: what the
        manager's check after a deletion accepts, and what a request reports as kept."""
        with _reported(self.component):
            return self.backend.kept_by_law(str(user_id))

    def delete_data_for_all_users_in_context(self, context: Context) -> None:
        """Erase the learner of a user context; other contexts hold no declared rows."""
        if context.level is ContextLevel.USER:
            with _reported(self.component):
                self.backend.erase(context.instance_id, now=self._clock())

    def get_users_in_context(self, userlist: UserList) -> None:
        """The learner of a user context, when a declared table holds a row of theirs."""
        context = userlist.context
        if context.level is not ContextLevel.USER:
            return
        with _reported(self.component):
            if self.backend.holds_data(context.instance_id):
                userlist.add_user(context.instance_id)

    def delete_data_for_users(self, approved: ApprovedUserList) -> None:
        """Erase the learner of a user context when approved."""
        context = approved.context
        if context.level is ContextLevel.USER and context.instance_id in approved:
            with _reported(self.component):
                self.backend.erase(context.instance_id, now=self._clock())


def register_of(
    provider: object,
    controller: Any,
    *,
    as_of: dt.date | None,
    internal_only: Iterable[str],
    providers: Iterable[object],
) -> Any:
    """The GDPR Art. 30 register of an integration's ``provider`` and the application's
    other ``providers`` (a mailer, an LRS...), whose recipients appear in the same
    register; ``internal_only`` as in ``PrivacyManager.register``."""
    from learnprivacy.providers import PrivacyManager

    manager = PrivacyManager([provider, *providers], discover=False)
    return manager.register(controller, as_of=as_of, internal_only=internal_only)


class _HasProvider(Protocol):
    @property
    def provider(self) -> DeclaredProvider: ...


class DeclaredRegister:
    """``register``, for an integration whose ``provider`` is built from declarations."""

    def register(
        self: _HasProvider,
        controller: Any,
        *,
        as_of: dt.date | None = None,
        internal_only: Iterable[str] = (),
        providers: Iterable[object] = (),
    ) -> Any:
        """The GDPR Art. 30 register built from the declarations and the schedule.

        ``providers`` adds the application's other components (a mailer, an LRS...),
        whose recipients then appear in the same register. ``internal_only`` names the
        purposes whose data go to nobody outside the controller (as
        ``PrivacyManager.register``; ``controller.internal_only`` counts too): there an
        external recipient is a gap, an internal one is not.
        """
        return register_of(
            self.provider, controller, as_of=as_of, internal_only=internal_only, providers=providers
        )
