"""The privacy-provider compliance kit: check what a provider declares *and* what it does.

Moodle's own check (``component_is_compliant``) only asks whether a provider implements
the right interfaces. :func:`assert_provider_compliant` also runs it, for users generated
by hypothesis, against the provider's real storage:

1. **declaration**: a frankenstyle ``component`` name; a null provider gives a reason; a
   data provider implements the request methods and declares at least one item, each with
   a summary, a purpose and a lawful basis, tables with described fields and a retention;
2. **discovery**: ``get_contexts_for_userid`` finds the contexts of a user who has data,
   and ``make_user_data`` created data only in declared tables;
3. **export**: every field declared for a table the user has data in appears in the rows
   exported under that table's name, at least as many rows as were created; and every
   field exported is declared (else the register under-declares it);
4. **erasure**: after ``delete_data_for_user`` nothing of the user remains:
   ``get_contexts_for_userid`` is empty, the export is empty, and the provider's raw scan
   (which reads the storage directly, behind the provider's back) finds nothing;
5. **isolation**: another user's contexts, export and raw scan are unchanged;
6. **idempotence**: deleting again succeeds and changes nothing;
7. **user lists** (for :class:`~learnprivacy.providers.UserListProvider`):
   ``get_users_in_context`` lists a user who has data, ``delete_data_for_users`` erases
   only the approved users;
8. **context deletion**: ``delete_data_for_all_users_in_context`` empties the context.

A failure raises ``AssertionError`` naming the component, the check, and the table or
field concerned; a provider method that raises fails the same way, naming the method and
the exception's type. The kit writes and deletes data: give it storage of its own (a fresh
SQLite file in ``tmp_path``). In a pytest suite use the ``provider_compliance`` fixture::

    def test_forum_provider_is_compliant(provider_compliance, forum):
        provider_compliance(forum, forum.make_user_data)
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable
from typing import Any

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from learnprivacy.providers import (
    ApprovedUserList,
    Context,
    MetadataCollection,
    NullProvider,
    RequestProvider,
    UserList,
    UserListProvider,
)
from learnprivacy.providers._items import DatabaseTable
from learnprivacy.testing._compliance_checks import (
    Created,
    Kit,
    Scan,
    scanner,
)

__all__ = ["assert_provider_compliant"]


_FRANKENSTYLE = re.compile(r"[a-z][a-z0-9]*(?:_[a-z0-9]+)+")
_REQUEST_METHODS = (
    "get_metadata",
    "get_contexts_for_userid",
    "export_user_data",
    "delete_data_for_all_users_in_context",
    "delete_data_for_user",
)


def default_user_ids() -> st.SearchStrategy[str]:
    """Short user ids such as ``"u3k"``, as the kit generates them by default."""
    alphabet = string.ascii_lowercase + string.digits
    return st.text(alphabet, min_size=1, max_size=8).map(lambda s: "u" + s)


def _declaration(provider: Any, require_register_facts: bool) -> tuple[str, MetadataCollection]:
    component = getattr(provider, "component", None)
    label = component if isinstance(component, str) else type(provider).__name__
    if not isinstance(component, str) or not _FRANKENSTYLE.fullmatch(component):
        raise AssertionError(
            f"{label}: declaration check failed: component must be a frankenstyle name "
            "such as 'mod_forum'"
        )
    if not isinstance(provider, RequestProvider):
        missing = [m for m in _REQUEST_METHODS if not callable(getattr(provider, m, None))]
        raise AssertionError(
            f"{component}: declaration check failed: neither a null provider nor a request "
            f"provider (missing {', '.join(missing)})"
        )
    kit = Kit(provider, component, ())
    collection = kit.call(
        "declaration", "get_metadata", provider.get_metadata, MetadataCollection(component)
    )
    if not isinstance(collection, MetadataCollection) or collection.component != component:
        raise kit.fail("declaration", "get_metadata must return the collection it was given")
    if not len(collection):
        raise kit.fail(
            "declaration",
            "get_metadata declares nothing: a component storing no personal "
            "data should be a null provider",
        )
    for item in collection:
        where = f"{item.kind.value} {item.name!r}"
        if not item.summary.strip():
            raise kit.fail("declaration", f"{where} has no summary")
        if isinstance(item, DatabaseTable):
            for field, description in item.fields.items():
                if not description.strip():
                    raise kit.fail("declaration", f"field {item.name}.{field} has no description")
        if not require_register_facts:
            continue
        if item.purpose is None:
            raise kit.fail("declaration", f"{where} declares no purpose")
        if item.basis is None:
            raise kit.fail("declaration", f"{where} declares no lawful basis")
        if isinstance(item, DatabaseTable) and item.retention is None:
            raise kit.fail("declaration", f"{where} declares no retention period")
    return component, collection


def assert_provider_compliant(
    provider: object,
    make_user_data: Callable[[str], Created] | None = None,
    *,
    raw_scan: Callable[[str], Scan] | None = None,
    max_examples: int = 10,
    user_ids: st.SearchStrategy[str] | None = None,
    require_register_facts: bool = True,
) -> None:
    """Check that ``provider`` declares its data and really exports and erases it.

    ``make_user_data(user_id)`` must create data for that user in the provider's storage
    and return what it created: ``{table name: rows or row count}`` (or ``None`` for "some
    data in every declared table"). ``raw_scan(user_id)`` (default: the provider's own
    ``raw_scan`` method) must read the storage directly and return what still refers to the
    user: ``{table: row count}`` or an iterable of locations. Both are required for a
    provider that declares tables; a null provider needs neither.

    ``max_examples`` bounds the hypothesis examples (each creates three users);
    ``user_ids`` replaces the id strategy (:func:`default_user_ids`);
    ``require_register_facts=False`` drops the purpose/basis/retention requirement.

    Raises ``AssertionError`` naming the component, the check and the table or field.
    """
    if isinstance(provider, NullProvider) and not isinstance(provider, RequestProvider):
        reason = provider.get_reason()
        if not isinstance(reason, str) or not reason.strip():
            raise AssertionError(
                f"{provider.component}: declaration check failed: null provider gives no reason"
            )
        _declaration_name_only(provider.component)
        return
    component, collection = _declaration(provider, require_register_facts)
    tables = collection.database_tables
    kit = Kit(provider, component, tables)
    if make_user_data is None:
        if tables:
            raise kit.fail("declaration", "make_user_data is required for a provider with tables")
        return
    scan_source = raw_scan or getattr(provider, "raw_scan", None)
    if scan_source is None:
        if tables:
            raise kit.fail(
                "declaration",
                "no raw scan: pass raw_scan= or give the provider a raw_scan(user_id) method",
            )
        scan_source = _no_scan
    kit.make_user_data = make_user_data
    kit.scan = scanner(scan_source)
    ids = st.lists(user_ids or default_user_ids(), min_size=3, max_size=3, unique=True)
    # Every example uses ids never used before, even when hypothesis replays one: a storage
    # may rightly refuse to recreate a subject it erased (the store keeps tombstones of
    # shredded keys, for instance).
    used: set[str] = set()

    @settings(
        max_examples=max_examples,
        deadline=None,
        database=None,
        # One clear failure reads better than a group of variants of it.
        report_multiple_bugs=False,
        # Shrinking replays examples against storage that earlier examples changed; the user
        # ids are synthetic, so a smaller one would not make the message any clearer.
        phases=(Phase.explicit, Phase.generate),
        suppress_health_check=list(HealthCheck),
    )
    @given(ids)
    def run(users: list[str]) -> None:
        fresh = [_fresh(user, used) for user in users]
        _exercise(kit, *fresh)

    run()


def _fresh(user_id: str, used: set[str]) -> str:
    candidate, n = user_id, 0
    while candidate in used:
        n += 1
        candidate = f"{user_id}x{n}"
    used.add(candidate)
    return candidate


def _no_scan(_user_id: str) -> None:
    return None


def _declaration_name_only(component: str) -> None:
    if not _FRANKENSTYLE.fullmatch(component):
        raise AssertionError(
            f"{component}: declaration check failed: component must be a frankenstyle name "
            "such as 'mod_forum'"
        )


def _exercise(kit: Kit, target: str, other: str, third: str) -> None:
    created = kit.make(target)
    kit.make(other)
    kit.check_export(target, created)

    before = kit.snapshot(other)
    approved = kit.approved(target)
    kit.call("erasure", "delete_data_for_user", kit.provider.delete_data_for_user, approved)
    kit.check_erased_alone(target, other, before, "delete_data_for_user")
    try:
        kit.provider.delete_data_for_user(approved)
    except Exception as exc:
        raise kit.fail(
            "idempotence", f"a second delete_data_for_user raised {type(exc).__name__}"
        ) from exc
    kit.check_erased_alone(target, other, before, "a second delete_data_for_user")

    if isinstance(kit.provider, UserListProvider):
        _exercise_userlists(kit, other, third)

    for context in kit.contexts(other):
        kit.call(
            "context deletion",
            "delete_data_for_all_users_in_context",
            kit.provider.delete_data_for_all_users_in_context,
            context,
        )
        if context in kit.contexts(other):
            raise kit.fail(
                "context deletion",
                f"delete_data_for_all_users_in_context left data in context {context}",
            )
    kit.check_erased(other, "delete_data_for_all_users_in_context")


def _exercise_userlists(kit: Kit, other: str, third: str) -> None:
    provider: UserListProvider = kit.provider
    for context in kit.contexts(other):
        userlist = UserList(context, kit.component)
        kit.call("user list", "get_users_in_context", provider.get_users_in_context, userlist)
        if other not in userlist:
            raise kit.fail(
                "user list",
                f"get_users_in_context misses a user who has data in context {context}",
            )
    kit.make(third)
    before = kit.snapshot(other)
    contexts: list[Context] = list(kit.contexts(third))
    for context in contexts:
        kit.call(
            "user list",
            "delete_data_for_users",
            provider.delete_data_for_users,
            ApprovedUserList(context, kit.component, (third,)),
        )
    kit.check_erased_alone(third, other, before, "delete_data_for_users")
