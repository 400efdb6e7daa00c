"""Encrypting the plaintext already in columns newly declared ``personal`` (resumable).

After ``personal(...)`` wraps an existing field and its migration turns the column into
text, the rows still hold plaintext. :func:`encrypt_existing` walks each declared table
by primary key, in batches; a batch's tokens, blind indexes and the progress mark
(``lpdj_encrypt_progress``) commit together, so a killed run resumes after the last
committed batch and never encrypts a value twice (a value that already is a token is
left alone). At the end every personal value of the table is decrypted once to verify it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs

from learnprivacy._inplace import binding_context, index_field, is_token
from learnprivacy._vocabulary import BATCH_SIZE
from learnprivacy.django._bind import Bound, bound_models
from learnprivacy.django._settings import runtime
from learnprivacy.errors import IntegrityError

__all__ = ["EncryptReport", "encrypt_existing"]


@attrs.frozen(kw_only=True)
class EncryptReport:
    """What one table's pass did: rows seen, values encrypted, values verified."""

    table: str
    rows: int
    encrypted: int
    verified: int
    dry_run: bool

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return attrs.asdict(self)


def _subject_column(bound: Bound) -> str:
    """The column holding ``bound``'s learner id (its key, for the account table)."""
    meta = bound.model._meta
    subject = meta.get_field(bound.subject_attname) if bound.subject_lookup != "pk" else meta.pk
    return str(subject.column)


def _select(connection: Any, bound: Bound, after: Any, limit: int) -> list[tuple[Any, ...]]:
    meta = bound.model._meta
    quote = connection.ops.quote_name
    columns = [quote(meta.pk.column), quote(_subject_column(bound))]
    columns += [quote(f.column) for f in bound.encrypted]
    sql = f"SELECT {', '.join(columns)} FROM {quote(meta.db_table)}"
    params: list[Any] = []
    if after is not None:
        sql += f" WHERE {quote(meta.pk.column)} > %s"
        params.append(after)
    sql += f" ORDER BY {quote(meta.pk.column)} LIMIT %s"
    params.append(limit)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [tuple(row) for row in cursor.fetchall()]


def encrypt_existing(
    bound: Bound,
    *,
    using: str = "default",
    batch_size: int = BATCH_SIZE,
    dry_run: bool = False,
    progress: Callable[[str, int, int], None] | None = None,
    stop_after: int | None = None,
) -> EncryptReport:
    """Encrypt the plaintext values of ``bound``'s personal columns, batch by batch.

    ``stop_after`` (batches) exists for tests that interrupt a run on purpose.
    """
    from django.db import connections, transaction

    from learnprivacy.django.models import EncryptProgress

    connection = connections[using]
    meta = bound.model._meta
    table = meta.db_table
    quote = connection.ops.quote_name
    cipher = runtime().cipher
    # The blind-index key is made on first use: not by a dry run.
    index = None if dry_run else runtime().index
    mark = EncryptProgress.objects.using(using).filter(table=table).first()
    after = None if mark is None or not mark.last_key else meta.pk.to_python(mark.last_key)
    if mark is not None and mark.finished:
        after = None
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {quote(table)}")
        total = int(cursor.fetchone()[0])
    rows_seen = 0 if mark is None or mark.finished else int(mark.done)
    encrypted_columns = {f.column for f in bound.encrypted}
    subject_column = _subject_column(bound)
    encrypted = 0
    batches = 0
    while True:
        rows = _select(connection, bound, after, batch_size)
        if not rows:
            break
        updates: list[tuple[dict[str, Any], list[Any]]] = []
        for key, subject, *values in rows:
            changed: dict[str, Any] = {}
            # What the row held when read: it is written only if it still holds it.
            held = [key, subject]
            for field, value in zip(bound.encrypted, values, strict=True):
                if value is None or is_token(value):
                    continue
                if subject is None:
                    raise IntegrityError(f"{table}.{field.column}: a row has no subject")
                encrypted += 1
                if dry_run:
                    # Counted only: an encryption would make the learner's key in the key
                    # store, and a dry run changes nothing.
                    continue
                held.append(value)
                text = field.to_text(value)
                changed[field.column] = cipher.encrypt(
                    text,
                    subject=str(subject),
                    context=binding_context(table, key, field.column),
                    scope=bound.spec.scope,
                )
                if index is not None and field.declaration.blind_index:
                    changed[field.index_field.column] = index.compute(
                        text, field=index_field(table, field.column)
                    )
            if changed:
                updates.append((changed, held))
        after = rows[-1][0]
        rows_seen += len(rows)
        if not dry_run:
            with transaction.atomic(using=using), connection.cursor() as cursor:
                for changed, held in updates:
                    # A value another writer changed since the read (a rectification in
                    # clear by the project's previous version, an anonymisation) is not
                    # overwritten with the token of the old one: the verification reports
                    # it and the next run, from the first row, encrypts it.
                    assignments = ", ".join(f"{quote(c)} = %s" for c in changed)
                    read = [quote(meta.pk.column), quote(subject_column)]
                    read += [quote(c) for c in changed if c in encrypted_columns]
                    where = " AND ".join(f"{c} = %s" for c in read)
                    cursor.execute(
                        f"UPDATE {quote(table)} SET {assignments} WHERE {where}",
                        [*changed.values(), *held],
                    )
                EncryptProgress.objects.using(using).update_or_create(
                    table=table,
                    defaults={"last_key": str(after), "done": rows_seen, "finished": False},
                )
        if progress is not None:
            progress(table, rows_seen, total)
        batches += 1
        if stop_after is not None and batches >= stop_after:
            return EncryptReport(
                table=table, rows=rows_seen, encrypted=encrypted, verified=0, dry_run=dry_run
            )
    if not dry_run:
        # The pass is over: a run after a failed verification starts from the first row.
        EncryptProgress.objects.using(using).update_or_create(
            table=table, defaults={"last_key": "", "done": rows_seen, "finished": True}
        )
    verified = 0 if dry_run else verify_table(bound, using=using)
    return EncryptReport(
        table=table, rows=rows_seen, encrypted=encrypted, verified=verified, dry_run=dry_run
    )


def verify_table(bound: Bound, *, using: str = "default") -> int:
    """Decrypt every personal value of ``bound``'s table once; return how many.

    Raises :class:`~learnprivacy.errors.PlaintextError` on a value left in clear and
    :class:`~learnprivacy.errors.DecryptionError` on a token that does not belong there.
    """
    verified = 0
    manager = bound.model._base_manager.using(using)
    for instance in manager.order_by("pk").iterator(chunk_size=500):
        for field in bound.encrypted:
            if getattr(instance, field.attname) is not None:
                verified += 1
    return verified


def encryptable_models() -> tuple[Bound, ...]:
    """The declared models with encrypted columns."""
    return tuple(b for b in bound_models() if b.encrypted)
