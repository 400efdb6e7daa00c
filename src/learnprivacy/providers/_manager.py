"""``PrivacyManager``: one facade over every provider (Moodle's ``core_privacy\\manager``)."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

import attrs

from learnprivacy.errors import ConfigurationError, ProviderError
from learnprivacy.providers._components import (
    ComponentInfo,
    as_contextlist,
    classify,
    describe_error,
)
from learnprivacy.providers._contexts import (
    ApprovedContextList,
    ApprovedUserList,
    Context,
    ContextList,
    UserList,
    normalise_user_id,
)
from learnprivacy.providers._deadline import DeadlineExceeded, GatedWriter, Turn, run_with_deadline
from learnprivacy.providers._discovery import ENTRY_POINT_GROUP, discover_providers, is_provider
from learnprivacy.providers._metadata import MetadataCollection
from learnprivacy.providers._protocols import (
    RequestProvider,
    UserListProvider,
    UserPreferenceProvider,
)
from learnprivacy.providers._results import ProviderOutcome, RequestResult, RequestStatus
from learnprivacy.providers.writer import ContentWriter, DataDescription

if TYPE_CHECKING:
    from learnprivacy._controller import Controller
    from learnprivacy.providers._register import Register

__all__ = ["DEFAULT_TIMEOUT", "ErasureIncomplete", "PrivacyManager"]

#: Seconds a provider's turn may take before the request is reported FAILED.
DEFAULT_TIMEOUT = 60.0


class ErasureIncomplete(ProviderError):
    """After a deletion, the provider still holds data of the user beyond what the law keeps.

    ``remaining`` counts what is left by kind (record type or table), never values.
    """

    def __init__(self, message: str, *, component: str, remaining: Mapping[str, int]) -> None:
        super().__init__(message, component=component)
        self.remaining = dict(remaining)


class _CountingWriter:
    """A content writer that only counts rows per kind: what a re-check needs."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    def describe(self, description: DataDescription) -> None:
        pass

    def write_rows(self, component: str, record_type: str, rows: Iterable[Any]) -> int:
        count = sum(1 for _ in rows)
        if count:
            self.counts[record_type] = self.counts.get(record_type, 0) + count
        return count

    def write_records(self, component: str, records: Iterable[Any]) -> int:
        count = 0
        for record in records:
            count += self.write_rows(component, type(record).__name__, (record,))
        return count


def _verify_erased(provider: RequestProvider, subject: str, component: str) -> dict[str, int]:
    """Ask the provider again what it holds of ``subject``; raise unless nothing remains
    beyond what it declares the law keeps (its optional ``kept_by_law(user_id)``).
    Return what remains because the law keeps it, counted by kind."""
    contexts = as_contextlist(provider.get_contexts_for_userid(subject), component)
    if not len(contexts):
        return {}
    writer = _CountingWriter()
    provider.export_user_data(
        ApprovedContextList(subject, contexts.contexts, component=component), writer
    )
    kept_by_law = getattr(provider, "kept_by_law", None)
    kept: Mapping[str, int] = kept_by_law(subject) if callable(kept_by_law) else {}
    excess = {
        kind: count - int(kept.get(kind, 0))
        for kind, count in sorted(writer.counts.items())
        if count > int(kept.get(kind, 0))
    }
    if excess:
        what = ", ".join(f"{kind} ({count})" for kind, count in excess.items())
        raise ErasureIncomplete(
            f"data of the user remains after deletion beyond what the law keeps: {what}",
            component=component,
            remaining=excess,
        )
    return {
        kind: min(count, int(kept.get(kind, 0)))
        for kind, count in sorted(writer.counts.items())
        if kept.get(kind)
    }


class PrivacyManager:
    """Describe, export and delete personal data across every registered provider.

    Providers come from three places, in this order: the entry-point group
    ``learnprivacy.providers`` (when ``discover`` is true), the explicit ``providers``
    (which replace a discovered provider of the same component), and ``store``: passing a
    :class:`learnprivacy.store.Store` adds its own provider (component
    ``learnprivacy_store``), so the records kept by learnprivacy are always covered.

    Each provider's turn runs in a worker thread and must finish within ``timeout``
    seconds (``timeouts`` overrides it per component; ``None`` waits forever). A provider
    that sets ``in_caller_thread = True`` runs in the calling thread instead, without a
    deadline, so that thread-local framework contexts (Flask's ``current_app``, a
    request's session) keep working inside it. A provider that raises or runs late makes
    the request FAILED with that provider named; the others still run. A timed-out
    thread cannot be killed: it may still be running, its export writes are refused, and
    the result stays FAILED. Run the request again once the
    cause is fixed: providers are idempotent, so a retry finishes the job.
    """

    def __init__(
        self,
        providers: Iterable[object] | None = None,
        *,
        discover: bool = True,
        timeout: float | None = DEFAULT_TIMEOUT,
        timeouts: Mapping[str, float | None] | None = None,
        store: Any = None,
        group: str = ENTRY_POINT_GROUP,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._timeout = timeout
        self._timeouts = dict(timeouts or {})
        self._clock = clock
        infos: dict[str, ComponentInfo] = {}
        if discover:
            for name, provider in discover_providers(group):
                info = classify(provider, f"entry point {name}")
                if info.component in infos:
                    raise ConfigurationError(f"two entry points provide {info.component}")
                infos[info.component] = info
        explicit: set[str] = set()
        for provider in providers or ():
            if not is_provider(provider):
                raise ConfigurationError("providers must be provider instances, not classes")
            info = classify(provider, "explicit")
            if info.component in explicit:
                raise ConfigurationError(f"two providers given for {info.component}")
            explicit.add(info.component)
            infos[info.component] = info
        if store is not None:
            from learnprivacy.providers._store import StoreProvider

            info = classify(StoreProvider(store), "store")
            if info.component in explicit:
                raise ConfigurationError(f"{info.component} given both explicitly and as store=")
            infos[info.component] = info
        self._infos = infos

    # -- the components ---------------------------------------------------------------

    @property
    def components(self) -> tuple[str, ...]:
        """The component names, in the order requests visit them."""
        return tuple(self._infos)

    @property
    def providers(self) -> tuple[object, ...]:
        """The provider objects, in the order requests visit them."""
        return tuple(info.provider for info in self._infos.values())

    def component(self, name: str) -> ComponentInfo:
        """The view of one component; ``KeyError`` when unknown."""
        return self._infos[name]

    def component_infos(self) -> tuple[ComponentInfo, ...]:
        """The view of every component."""
        return tuple(self._infos.values())

    def get_metadata(self) -> dict[str, MetadataCollection]:
        """Every request provider's metadata, by component (null providers excluded)."""
        return {
            info.component: self.get_metadata_for(info.component)
            for info in self._infos.values()
            if info.handles_requests
        }

    def get_metadata_for(self, component: str) -> MetadataCollection:
        """One component's metadata (empty for a null provider)."""
        info = self._infos[component]
        collection = MetadataCollection(component)
        if not info.handles_requests:
            return collection
        provider: RequestProvider = info.provider  # type: ignore[assignment]
        try:
            result = provider.get_metadata(collection)
        except Exception as exc:
            raise ProviderError(describe_error("get_metadata", exc), component=component) from exc
        if not isinstance(result, MetadataCollection) or result.component != component:
            raise ProviderError(
                "get_metadata must return the collection it was given", component=component
            )
        return result

    def get_null_reasons(self) -> dict[str, str]:
        """Why each null provider stores no personal data, by component."""
        return {i.component: i.null_reason for i in self._infos.values() if i.null_reason}

    def register(
        self,
        controller: Controller,
        *,
        as_of: dt.date | None = None,
        internal_only: Iterable[str] = (),
    ) -> Register:
        """The GDPR Art. 30 record of processing built from every provider's metadata.

        ``internal_only`` names the purposes whose data go to nobody outside the
        controller (``Register.build``): declared, they show no "no recipient declared"
        gap, and an external recipient for one of them is listed as a gap instead.
        """
        from learnprivacy.providers._register import Register

        return Register.build(
            controller,
            self.get_metadata(),
            null_reasons=self.get_null_reasons(),
            as_of=as_of,
            internal_only=internal_only,
        )

    # -- running turns ----------------------------------------------------------------

    def _timeout_for(self, component: str) -> float | None:
        return self._timeouts.get(component, self._timeout)

    def _run(
        self, info: ComponentInfo, body: Callable[[Turn], int], gate: GatedWriter | None = None
    ) -> ProviderOutcome:
        turn = Turn(info.component)
        timeout = self._timeout_for(info.component)
        started = self._clock()
        try:
            if getattr(info.provider, "in_caller_thread", False) is True:
                # The provider asked for the caller's thread: framework contexts (Flask's
                # current_app, a request's session) are thread-local. No deadline then:
                # a thread cannot be interrupted, and this one is the caller's.
                contexts = body(turn)
            else:
                contexts = run_with_deadline(lambda: body(turn), timeout, info.component)
        except DeadlineExceeded:
            return self._failed(
                info,
                started,
                turn.step,
                f"{turn.step} did not finish within {timeout:g}s; its thread may still run",
                timed_out=True,
            )
        except ErasureIncomplete as exc:
            outcome = self._failed(info, started, turn.step, describe_error(turn.step, exc), exc)
            return attrs.evolve(outcome, remaining=dict(exc.remaining))
        except Exception as exc:
            return self._failed(info, started, turn.step, describe_error(turn.step, exc), exc)
        finally:
            if gate is not None:
                gate.close()
        return ProviderOutcome(
            component=info.component,
            status=RequestStatus.COMPLETED,
            duration=self._elapsed(started),
            contexts=contexts,
            kept=turn.kept,
        )

    def _elapsed(self, started: float) -> dt.timedelta:
        return dt.timedelta(seconds=max(0.0, self._clock() - started))

    def _failed(
        self,
        info: ComponentInfo,
        started: float,
        step: str,
        error: str,
        exception: BaseException | None = None,
        *,
        timed_out: bool = False,
    ) -> ProviderOutcome:
        return ProviderOutcome(
            component=info.component,
            status=RequestStatus.FAILED,
            duration=self._elapsed(started),
            step=step,
            error=error,
            timed_out=timed_out,
            exception=exception,
        )

    @staticmethod
    def _null_outcome(info: ComponentInfo) -> ProviderOutcome:
        return ProviderOutcome(
            component=info.component,
            status=RequestStatus.COMPLETED,
            duration=dt.timedelta(0),
            null_provider=True,
        )

    @staticmethod
    def _approved(turn: Turn, provider: RequestProvider, user_id: str) -> ApprovedContextList:
        turn.step = "get_contexts_for_userid"
        contextlist = as_contextlist(provider.get_contexts_for_userid(user_id), turn.component)
        return ApprovedContextList(user_id, contextlist.contexts, component=turn.component)

    def _each_request_provider(
        self,
        operation: str,
        step: Callable[[Turn, RequestProvider, GatedWriter | None], int],
        writer: ContentWriter | None = None,
    ) -> RequestResult:
        """Run ``step`` in a turn of every request provider (with its own gate on
        ``writer`` if given); a null provider completes at once. One outcome each."""
        outcomes: list[ProviderOutcome] = []
        for info in self._infos.values():
            if not info.handles_requests:
                outcomes.append(self._null_outcome(info))
                continue
            provider: RequestProvider = info.provider  # type: ignore[assignment]
            gate = None if writer is None else GatedWriter(writer, info.component)

            def body(
                turn: Turn, provider: RequestProvider = provider, gate: GatedWriter | None = gate
            ) -> int:
                return step(turn, provider, gate)

            outcomes.append(self._run(info, body, gate))
        return RequestResult(operation=operation, outcomes=tuple(outcomes))

    # -- requests ---------------------------------------------------------------------

    def get_contexts_for_userid(self, user_id: str | int) -> dict[str, ContextList]:
        """The non-empty context lists of every provider for ``user_id``, by component.

        A provider that fails or runs late raises ``ProviderError`` naming it.
        """
        subject = normalise_user_id(user_id)
        found: dict[str, ContextList] = {}
        for info in self._infos.values():
            if not info.handles_requests:
                continue
            provider: RequestProvider = info.provider  # type: ignore[assignment]
            lists: list[ContextList] = []

            def body(
                turn: Turn, provider: RequestProvider = provider, lists: list[ContextList] = lists
            ) -> int:
                approved = self._approved(turn, provider, subject)
                lists.append(ContextList(approved.contexts, component=turn.component))
                return len(approved)

            outcome = self._run(info, body)
            if not outcome.completed:
                raise ProviderError(str(outcome.error), component=info.component)
            if lists and len(lists[0]):
                found[info.component] = lists[0]
        return found

    def get_users_in_context(self, context: Context) -> dict[str, UserList]:
        """The users with data in ``context``, by component (user-list providers only)."""
        found: dict[str, UserList] = {}
        for info in self._infos.values():
            if not info.handles_userlists:
                continue
            provider: UserListProvider = info.provider  # type: ignore[assignment]
            userlist = UserList(context, info.component)

            def body(
                turn: Turn, provider: UserListProvider = provider, userlist: UserList = userlist
            ) -> int:
                turn.step = "get_users_in_context"
                provider.get_users_in_context(userlist)
                return 1

            outcome = self._run(info, body)
            if not outcome.completed:
                raise ProviderError(str(outcome.error), component=info.component)
            if len(userlist):
                found[info.component] = userlist
        return found

    def export_user_data(self, user_id: str | int, writer: ContentWriter) -> RequestResult:
        """Export everything every provider holds about ``user_id`` into ``writer``.

        A FAILED result means the export is incomplete: do not hand it to the subject.
        """
        subject = normalise_user_id(user_id)

        def step(turn: Turn, provider: RequestProvider, gate: GatedWriter | None) -> int:
            assert gate is not None  # given a writer, every provider gets its gate
            approved = self._approved(turn, provider, subject)
            if len(approved):
                turn.step = "export_user_data"
                provider.export_user_data(approved, gate)
            if isinstance(provider, UserPreferenceProvider):
                turn.step = "export_user_preferences"
                provider.export_user_preferences(subject, gate)
            return len(approved)

        return self._each_request_provider("export_user_data", step, writer)

    def delete_data_for_user(self, user_id: str | int) -> RequestResult:
        """Delete everything every provider holds about ``user_id``, and check it is gone.

        After each provider's delete, the manager asks it again (its contexts, then an
        export counted by kind): a provider is COMPLETED only when nothing of the user
        remains beyond what it declares the law keeps (``kept_by_law(user_id)``, a mapping
        of kind to count, e.g. invoices inside their legal minimum); otherwise FAILED at
        step ``verify_erasure``, its outcome's ``remaining`` counting what is left.

        Idempotent: running it again after a success finds no context and changes nothing;
        after a failure it finishes what is left.
        """
        subject = normalise_user_id(user_id)

        def step(turn: Turn, provider: RequestProvider, _gate: GatedWriter | None) -> int:
            approved = self._approved(turn, provider, subject)
            if len(approved):
                turn.step = "delete_data_for_user"
                provider.delete_data_for_user(approved)
            # Asked again even when nothing was found to delete: a provider whose
            # contexts miss data must not pass for one that erased it.
            turn.step = "verify_erasure"
            turn.kept = _verify_erased(provider, subject, turn.component)
            return len(approved)

        return self._each_request_provider("delete_data_for_user", step)

    def delete_data_for_all_users_in_context(self, context: Context) -> RequestResult:
        """Delete every user's data in ``context`` from every provider."""

        def step(turn: Turn, provider: RequestProvider, _gate: GatedWriter | None) -> int:
            turn.step = "delete_data_for_all_users_in_context"
            provider.delete_data_for_all_users_in_context(context)
            return 1

        return self._each_request_provider("delete_data_for_all_users_in_context", step)

    def delete_data_for_users(
        self, context: Context, user_ids: Iterable[str | int]
    ) -> RequestResult:
        """Delete the data of ``user_ids`` in ``context`` from every user-list provider."""
        users = tuple(user_ids)
        outcomes: list[ProviderOutcome] = []
        for info in self._infos.values():
            if not info.handles_userlists:
                continue
            provider: UserListProvider = info.provider  # type: ignore[assignment]
            approved = ApprovedUserList(context, info.component, users)

            def body(
                turn: Turn, provider: UserListProvider = provider, approved: Any = approved
            ) -> int:
                turn.step = "delete_data_for_users"
                provider.delete_data_for_users(approved)
                turn.step = "verify_erasure"
                listed = UserList(context, turn.component)
                provider.get_users_in_context(listed)
                still = [user for user in approved.user_ids if user in listed]
                if still and isinstance(provider, RequestProvider):
                    # Still listed may mean kept by law: ask what remains, user by user.
                    for user in still:
                        _verify_erased(provider, user, turn.component)
                    still = []
                if still:
                    raise ErasureIncomplete(
                        f"{len(still)} approved user(s) still listed in the context after "
                        "delete_data_for_users",
                        component=turn.component,
                        remaining={"users": len(still)},
                    )
                return 1

            outcomes.append(self._run(info, body))
        return RequestResult(operation="delete_data_for_users", outcomes=tuple(outcomes))

    def __repr__(self) -> str:
        return f"PrivacyManager(components={list(self._infos)!r})"
