"""The checks behind :func:`learnprivacy.testing.assert_provider_compliant`.

:class:`Kit` calls one provider and turns every wrong answer into an ``AssertionError``
naming the component, the check and the table or field concerned.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from learnprivacy.providers import ApprovedContextList, ContextList, MemoryWriter
from learnprivacy.providers._items import DatabaseTable

__all__ = ["Created", "Kit", "Scan", "created_counts", "scanner"]

#: What ``make_user_data(user_id)`` may return: rows (or a row count) per table created,
#: or ``None`` to mean "some data in every declared table".
Created = Mapping[str, Iterable[Mapping[str, Any]] | int] | None
#: What a raw scan may return: a count per table (or location), or locations, one per row.
Scan = Mapping[str, int] | Iterable[str] | None


class Kit:
    """The checks against one provider; each failure names the component and the check."""

    def __init__(self, provider: Any, component: str, tables: tuple[DatabaseTable, ...]) -> None:
        self.provider = provider
        self.component = component
        # A table declared once per purpose is one table: its fields are merged.
        self.tables: dict[str, dict[str, str]] = {}
        for table in tables:
            self.tables.setdefault(table.name, {}).update(table.fields)
        #: The caller's ``make_user_data`` and raw scan, once it has them.
        self.make_user_data: Callable[[str], Created] = _nothing_made
        self.scan: Callable[[str], Counter[str]] = _nothing_found

    def fail(self, check: str, detail: str) -> AssertionError:
        return AssertionError(f"{self.component}: {check} check failed: {detail}")

    # -- calls into the provider -----------------------------------------------------

    def call(self, check: str, step: str, function: Callable[..., Any], *args: Any) -> Any:
        """Call the provider; an exception becomes a failure naming the component, the
        check and the method (the exception's type only: its message may hold values)."""
        try:
            return function(*args)
        except AssertionError:
            raise
        except Exception as exc:
            raise self.fail(check, f"{step} raised {type(exc).__name__}") from exc

    def contexts(self, user_id: str) -> ContextList:
        result = self.call(
            "discovery",
            "get_contexts_for_userid",
            self.provider.get_contexts_for_userid,
            user_id,
        )
        if isinstance(result, ContextList):
            return result
        if isinstance(result, Iterable):
            return ContextList(result)
        raise self.fail("discovery", "get_contexts_for_userid did not return a ContextList")

    def approved(self, user_id: str) -> ApprovedContextList:
        contexts = self.contexts(user_id)
        return ApprovedContextList(user_id, contexts.contexts, component=self.component)

    def export(self, user_id: str) -> dict[tuple[str, str], list[dict[str, Any]]]:
        approved = self.approved(user_id)
        writer = MemoryWriter()
        if len(approved):
            self.call(
                "export", "export_user_data", self.provider.export_user_data, approved, writer
            )
        return writer.rows

    def make(self, user_id: str) -> dict[str, int] | None:
        """Create ``user_id``'s data; what was created, checked against the declaration."""
        created = created_counts(self.make_user_data(user_id))
        self.check_created(created)
        return created

    def snapshot(self, user_id: str) -> dict[str, Any]:
        rows = self.export(user_id)
        return {
            "contexts": sorted(self.contexts(user_id).contexts),
            "export": {
                f"{component}/{record_type}": sorted(
                    json.dumps(row, sort_keys=True, default=str) for row in bucket
                )
                for (component, record_type), bucket in rows.items()
            },
            "scan": dict(self.scan(user_id)),
        }

    # -- the checks ------------------------------------------------------------------

    def check_created(self, created: dict[str, int] | None) -> None:
        for table in created or {}:
            if table not in self.tables:
                raise self.fail(
                    "declaration",
                    f"make_user_data created data in table {table!r}, "
                    "which get_metadata does not declare",
                )

    def check_export(self, user_id: str, created: dict[str, int] | None) -> None:
        if created is not None and not any(created.values()):
            return
        if not len(self.contexts(user_id)):
            raise self.fail(
                "discovery", "get_contexts_for_userid returns no context for a user with data"
            )
        rows = self.export(user_id)
        for component, record_type in rows:
            if component != self.component:
                raise self.fail(
                    "export",
                    f"rows of {record_type!r} were written under component {component!r}",
                )
        for name, fields in self.tables.items():
            expected = None if created is None else created.get(name, 0)
            if expected == 0:
                continue
            exported = rows.get((self.component, name), [])
            if not exported:
                raise self.fail(
                    "export",
                    f"table {name!r} holds data of the user but nothing was exported "
                    f"under record type {name!r}",
                )
            if expected is not None and len(exported) < expected:
                raise self.fail(
                    "export",
                    f"table {name!r}: {expected} row(s) created, {len(exported)} exported",
                )
            for field in fields:
                if not any(field in row for row in exported):
                    raise self.fail(
                        "export",
                        f"field {name}.{field} is declared in get_metadata but missing "
                        "from the export",
                    )
        for (_component, record_type), bucket in rows.items():
            declared = self.tables.get(record_type)
            if declared is None:
                if bucket:
                    raise self.fail(
                        "declaration",
                        f"rows of {record_type!r} were exported but get_metadata declares "
                        "no such table: the register would not list them",
                    )
                continue
            undeclared = sorted({key for row in bucket for key in row} - set(declared))
            if undeclared:
                raise self.fail(
                    "declaration",
                    f"the export of {record_type!r} holds field(s) "
                    f"{', '.join(undeclared)} that get_metadata does not declare: "
                    "the register would under-declare them",
                )

    def check_erased_alone(
        self, user_id: str, other: str, before: dict[str, Any], after: str
    ) -> None:
        """``user_id``'s data is gone and ``other``'s is as in ``before``."""
        self.check_erased(user_id, after)
        self.check_unchanged(before, self.snapshot(other), after)

    def check_erased(self, user_id: str, after: str) -> None:
        problems: list[str] = []
        remaining = self.scan(user_id)
        problems.extend(
            f"the raw scan still finds {count} row(s) of the user in {where!r}"
            for where, count in sorted(remaining.items())
        )
        contexts = self.contexts(user_id)
        if len(contexts):
            problems.append(f"get_contexts_for_userid still returns {len(contexts)} context(s)")
        if not problems:
            # The export goes through the contexts, so it is only worth reading once they
            # are gone; rows then mean the export ignores the approved contexts.
            writer = MemoryWriter()
            self.call(
                "erasure",
                "export_user_data",
                self.provider.export_user_data,
                ApprovedContextList(user_id, (), component=self.component),
                writer,
            )
            problems.extend(
                f"the export still returns rows of {record_type!r}"
                for (_component, record_type), bucket in writer.rows.items()
                if bucket
            )
        if problems:
            raise self.fail("erasure", f"after {after}, " + "; ".join(problems))

    def check_unchanged(self, before: dict[str, Any], now: dict[str, Any], after: str) -> None:
        changed = [part for part in ("contexts", "export", "scan") if before[part] != now[part]]
        if not changed:
            return
        details = []
        for part in changed:
            if part == "contexts":
                details.append("their contexts")
            else:
                keys = sorted(set(before[part]) | set(now[part]))
                tables = [k for k in keys if before[part].get(k) != now[part].get(k)]
                details.append(f"their {part} of " + ", ".join(repr(t) for t in tables))
        raise self.fail("isolation", f"{after} changed another user's data: " + "; ".join(details))


def _nothing_made(_user_id: str) -> Created:
    return None


def _nothing_found(_user_id: str) -> Counter[str]:
    return Counter()


def created_counts(value: object) -> dict[str, int] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise AssertionError(
            "make_user_data must return a mapping of table name to rows (or counts), or None"
        )
    counts: dict[str, int] = {}
    for table, rows in value.items():
        counts[str(table)] = rows if isinstance(rows, int) else len(list(rows))
    return counts


def scanner(raw: Callable[[str], Scan]) -> Callable[[str], Counter[str]]:
    def scan(user_id: str) -> Counter[str]:
        found = raw(user_id)
        if found is None:
            return Counter()
        if isinstance(found, Mapping):
            return Counter({str(k): int(v) for k, v in found.items() if v})
        return Counter(str(where) for where in found)

    return scan
