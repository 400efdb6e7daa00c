"""The register of restricted rows (GDPR Art. 18), ``lpdj_restrictions``.

A row listed there is kept, not processed: the ORM refuses to change or delete it (see
:mod:`learnprivacy.django._bind`), erasure and sweeps leave it as it is while its reason
holds, and a manager's check after an erasure counts it as kept by law.

The register names each row by a keyed reference, never by its primary key: a learner
account's key *is* the learner id, and so is the key of a table whose primary key is a
one-to-one link to the account. The reference is the keyring's pseudonym (``p1_...``,
HMAC-SHA256 under a key derived from the blind-index key, as the request book's
``learner_id`` and the key store's ``k1_`` names are made) of the table name and the
key, in the ``learnprivacy-restrictions`` domain: stable across master-key rotation,
unlinkable to the learner without the master key, and different for equal keys of two
tables.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from learnprivacy._inplace._refs import ROW_REF_DOMAIN, row_ref_text
from learnprivacy._vocabulary import BATCH_SIZE
from learnprivacy.django._settings import runtime
from learnprivacy.errors import RestrictedRecordError

if TYPE_CHECKING:
    from learnprivacy.django._bind import Bound

__all__ = [
    "DOMAIN",
    "any_restricted",
    "check_not_restricted",
    "convert_clear_keys",
    "count_restricted",
    "lift",
    "reasons_of",
    "restrict",
    "restricted_keys",
    "row_ref",
    "row_refs",
    "row_restricted",
    "unconverted_rows",
]

#: The pseudonym domain of row references.
DOMAIN = ROW_REF_DOMAIN

_CHUNK = 500


def row_ref(table: str, key: object) -> str:
    """How the register names the row ``key`` of ``table``."""
    return runtime().row_refs.pseudonym(row_ref_text(table, str(key)))


def row_refs(table: str, keys: Iterable[object]) -> dict[str, str]:
    """:func:`row_ref` of many rows, by text key."""
    pseudonym = runtime().row_refs.pseudonym
    return {str(k): pseudonym(row_ref_text(table, str(k))) for k in keys}


def _chunks(items: Sequence[str]) -> Iterable[Sequence[str]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


def restricted_keys(bound: Bound, keys: Sequence[Any], using: str) -> set[str]:
    """Which of the rows ``keys`` of ``bound`` are restricted (as text keys)."""
    from django.db import connections

    refs = row_refs(bound.spec.table, keys)
    by_ref = {ref: key for key, ref in refs.items()}
    found: set[str] = set()
    with connections[using].cursor() as cursor:
        for chunk in _chunks(sorted(by_ref)):
            marks = ", ".join(["%s"] * len(chunk))
            cursor.execute(
                f'SELECT row_ref FROM lpdj_restrictions WHERE "table" = %s '
                f"AND row_ref IN ({marks})",
                [bound.spec.table, *chunk],
            )
            found.update(by_ref[str(row[0])] for row in cursor.fetchall())
    return found


def count_restricted(table: str, keys: Sequence[Any], using: str) -> int:
    """How many of the rows ``keys`` of ``table`` are restricted."""
    from learnprivacy.django.models import Restriction

    refs = sorted(row_refs(table, keys).values())
    manager = Restriction.objects.using(using)
    return sum(manager.filter(table=table, row_ref__in=chunk).count() for chunk in _chunks(refs))


def reasons_of(table: str, keys: Sequence[Any], *, using: str) -> dict[str, str]:
    """The reason each restricted row among ``keys`` of ``table`` is kept, by text key."""
    from learnprivacy.django.models import Restriction

    refs = row_refs(table, keys)
    by_ref = {ref: key for key, ref in refs.items()}
    manager = Restriction.objects.using(using)
    found: dict[str, str] = {}
    for chunk in _chunks(sorted(by_ref)):
        for ref, reason in manager.filter(table=table, row_ref__in=chunk).values_list(
            "row_ref", "reason"
        ):
            found[by_ref[ref]] = reason
    return found


def any_restricted(bound: Bound, using: str) -> bool:
    """Whether any row of ``bound`` is restricted (one indexed lookup)."""
    from django.db import connections

    with connections[using].cursor() as cursor:
        cursor.execute(
            'SELECT 1 FROM lpdj_restrictions WHERE "table" = %s LIMIT 1', [bound.spec.table]
        )
        return cursor.fetchone() is not None


def check_not_restricted(bound: Bound, key: Any, using: str) -> None:
    """Raise ``RestrictedRecordError`` when the row ``key`` of ``bound`` is restricted."""
    from django.db import connections

    table = bound.spec.table
    with connections[using].cursor() as cursor:
        cursor.execute(
            'SELECT 1 FROM lpdj_restrictions WHERE "table" = %s AND row_ref = %s',
            [table, row_ref(table, key)],
        )
        if cursor.fetchone() is not None:
            raise row_restricted(table)


def row_restricted(table: str) -> RestrictedRecordError:
    """The error for a write to a restricted row of ``table``."""
    return RestrictedRecordError(
        f"{table}: the row is restricted (GDPR Art. 18); "
        "it is kept, not processed, and cannot be changed"
    )


def restrict(
    table: str,
    rows: Iterable[tuple[Any, str, str]],
    *,
    now: dt.datetime,
    using: str,
) -> list[str]:
    """List the rows ``(key, subject_ref, reason)`` of ``table`` as restricted; rows
    already listed keep their entry. Returns the text keys newly listed."""
    from learnprivacy.django.models import Restriction

    wanted = {str(key): (subject_ref, reason) for key, subject_ref, reason in rows}
    refs = row_refs(table, wanted)
    manager = Restriction.objects.using(using)
    existing: set[str] = set()
    for chunk in _chunks(sorted(refs.values())):
        existing.update(
            manager.filter(table=table, row_ref__in=chunk).values_list("row_ref", flat=True)
        )
    fresh = [key for key in wanted if refs[key] not in existing]
    manager.bulk_create(
        Restriction(
            table=table,
            row_ref=refs[key],
            subject_ref=wanted[key][0],
            reason=wanted[key][1][:255],
            created_at=now,
        )
        for key in fresh
    )
    return fresh


def lift(table: str, keys: Sequence[Any], *, using: str) -> None:
    """End the restriction of the rows ``keys`` of ``table`` (its reason has ended)."""
    from learnprivacy.django.models import Restriction

    manager = Restriction.objects.using(using)
    for chunk in _chunks(sorted(row_refs(table, keys).values())):
        manager.filter(table=table, row_ref__in=chunk).delete()


# -- registers written before keyed references (migrations 0007 to 0009) ----------------


def unconverted_rows(alias: str) -> int:
    """How many restricted rows at ``alias`` are still named by their key in clear
    (migration ``0008_restriction_refs_convert`` has not finished); 0 once the clear
    column is gone."""
    from django.db import connections

    connection = connections[alias]
    with connection.cursor() as cursor:
        if "lpdj_restrictions" not in connection.introspection.table_names(cursor):
            return 0
        columns = {
            c.name
            for c in connection.introspection.get_table_description(cursor, "lpdj_restrictions")
        }
        if "row_key" not in columns:
            return 0
        cursor.execute("SELECT count(*) FROM lpdj_restrictions WHERE row_ref IS NULL")
        return int(cursor.fetchone()[0])


def convert_clear_keys(alias: str, *, batch_size: int = BATCH_SIZE) -> int:
    """Name every restricted row at ``alias`` still listed by its clear key by its
    reference instead, emptying the clear key in the same update; returns how many.

    ``batch_size`` rows per transaction: killed at any point, each row is converted or
    intact, and calling again carries on. Freed space is zeroed (SQLite
    ``secure_delete``); the caller rewrites the table once all are done
    (:func:`~learnprivacy.django._keystore.scrub_tables`: PostgreSQL keeps old row
    versions in dead tuples until then).
    """
    from django.db import connections, transaction

    if not unconverted_rows(alias):
        return 0
    connection = connections[alias]
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA secure_delete = ON")
    done = 0
    while True:
        with transaction.atomic(using=alias), connection.cursor() as cursor:
            cursor.execute(
                'SELECT id, "table", row_key FROM lpdj_restrictions WHERE row_ref IS NULL '
                "ORDER BY id LIMIT %s",
                [batch_size],
            )
            rows = cursor.fetchall()
            for row_id, table, key in rows:
                cursor.execute(
                    "UPDATE lpdj_restrictions SET row_ref = %s, row_key = NULL WHERE id = %s",
                    [row_ref(str(table), key), row_id],
                )
        if not rows:
            break
        done += len(rows)
    return done
