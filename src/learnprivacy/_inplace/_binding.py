"""Tokens bound to (table, primary key, column), and the checks on what a column holds.

Every personal value of an application's table is stored as a
:class:`~learnprivacy.crypto.FieldCipher` token under the learner's data key, with the
binding context ``"<table>/<primary key>/<column>"``: a token copied to another row, to
another column or to another learner's row fails to decrypt. Table and column names
never contain ``/`` (checked when binding), so the first and last slashes split the
context whatever the key holds. A key of several columns is bound as a whole, written
by :func:`~learnprivacy._inplace._spec.row_key` (each part length-prefixed): a token
of the row ``("u1", "c1")`` does not open in ``("u1", "c2")``, and no choice of parts
makes two keys write the same text.

:class:`RowCipher` is the one object the integrations call to encrypt a row, decrypt a
column and compute blind indexes; its errors name the table and the column only.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from learnprivacy._inplace._spec import ColumnSpec, ModelSpec, row_key
from learnprivacy.crypto import BlindIndex, FieldCipher
from learnprivacy.crypto._token import PREFIX
from learnprivacy.errors import (
    DecryptionError,
    KeyShreddedError,
    PlaintextError,
    ValidationError,
)

__all__ = ["ERASED", "RowCipher", "binding_context", "index_field", "is_token"]

#: What an anonymised value becomes in a column that cannot be NULL: it has the form of a
#: token (the column type lets it through), never decrypts, and reads back as ``""``.
ERASED = PREFIX + "erased"


def binding_context(table: str, key: object, column: str) -> str:
    """The context a token of ``table``'s row ``key``, column ``column`` is bound to.

    ``key`` is the row's key value, or the tuple of its values for a key of several
    columns (see :func:`~learnprivacy._inplace._spec.row_key`).
    """
    return f"{table}/{row_key(key)}/{column}"


def index_field(table: str, column: str) -> str:
    """The blind-index field name of a column: equal values in two columns index apart."""
    return f"{table}.{column}"


def is_token(value: object) -> bool:
    """Whether ``value`` has the form of a token (it may still fail to decrypt)."""
    return type(value) is str and value.startswith(PREFIX)


class RowCipher:
    """Encrypt, decrypt and index the personal columns of declared tables."""

    __slots__ = ("_cipher", "_index")

    def __init__(self, cipher: FieldCipher, index: BlindIndex) -> None:
        self._cipher = cipher
        self._index = index

    def __repr__(self) -> str:
        return "RowCipher()"

    @property
    def cipher(self) -> FieldCipher:
        """The field cipher (keys from the learner's keyring)."""
        return self._cipher

    @property
    def blind_index(self) -> BlindIndex:
        """The blind index (its fields named by :func:`index_field`)."""
        return self._index

    def encrypt(
        self, spec: ModelSpec, column: ColumnSpec, key: object, subject: str, value: Any
    ) -> str:
        """The token of ``value`` for ``column`` of row ``key`` of learner ``subject``."""
        if type(value) is not str and not isinstance(value, bytes):
            raise ValidationError(
                f"{spec.table}.{column.column} holds text or bytes only",
                field=f"{spec.table}.{column.column}",
            )
        if is_token(value):
            # Writing a token read elsewhere would store it bound to its old place.
            raise PlaintextError(
                f"{spec.table}.{column.column}: a token was assigned where a value is expected",
                table=spec.table,
                column=column.column,
            )
        return self._cipher.encrypt(
            value,
            subject=subject,
            context=binding_context(spec.table, key, column.column),
            scope=spec.scope,
        )

    def encrypt_row(
        self, spec: ModelSpec, key: object, subject: str, values: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Tokens (and blind indexes) of the personal ``values`` given by attribute.

        ``None`` stays ``None`` (and so does its index).
        """
        out: dict[str, Any] = {}
        for column in spec.personal:
            if column.attribute not in values:
                continue
            value = values[column.attribute]
            if value is None:
                out[column.attribute] = None
                if column.privacy.blind_index:
                    out[column.attribute + "_bidx"] = None
                continue
            out[column.attribute] = self.encrypt(spec, column, key, subject, value)
            if column.privacy.blind_index:
                out[column.attribute + "_bidx"] = self.index(spec, column, value)
        return out

    def decrypt(
        self, spec: ModelSpec, column: ColumnSpec, key: object, subject: str, token: Any
    ) -> Any:
        """The value of ``token`` read from ``column`` of row ``key`` (learner ``subject``).

        Raises :class:`~learnprivacy.errors.PlaintextError` when the column holds
        something that is not a token, :class:`~learnprivacy.errors.KeyShreddedError`
        when the learner's key was shredded and
        :class:`~learnprivacy.errors.DecryptionError` when the token does not belong to
        this row and column (copied from elsewhere, or altered).
        """
        if token is None:
            return None
        if token == ERASED:
            return ""
        if not is_token(token):
            raise PlaintextError(
                f"{spec.table}.{column.column}: the stored value is not a token "
                "(plaintext at rest? run learnprivacy migrate-encrypt)",
                table=spec.table,
                column=column.column,
            )
        context = binding_context(spec.table, key, column.column)
        try:
            return self._cipher.decrypt_value(token, subject=subject, context=context)
        except KeyShreddedError:
            raise KeyShreddedError(
                f"{spec.table}.{column.column}: the learner's key was shredded"
            ) from None
        except DecryptionError:
            raise DecryptionError(
                f"{spec.table}.{column.column}: the stored token does not open for this row "
                "and column (moved from another row or column, or altered)"
            ) from None

    def decrypt_text(
        self, spec: ModelSpec, column: ColumnSpec, key: object, subject: str, token: str
    ) -> Any:
        """:meth:`decrypt` on the fast path of :meth:`FieldCipher.decrypt` (text values)."""
        try:
            return self._cipher.decrypt(
                token, subject=subject, context=binding_context(spec.table, key, column.column)
            )
        except (DecryptionError, ValidationError):
            # Anything unusual (bytes, plaintext, a moved token): the checked path says what.
            return self.decrypt(spec, column, key, subject, token)

    def index(self, spec: ModelSpec, column: ColumnSpec, value: Any) -> str:
        """The blind index of ``value`` in ``column`` (normalised, case-folded)."""
        if type(value) is not str:
            raise ValidationError(
                f"{spec.table}.{column.column}: only text is blind-indexed",
                field=f"{spec.table}.{column.column}",
            )
        return self._index.compute(value, field=index_field(spec.table, column.column))

    def indexes(self, spec: ModelSpec, column: ColumnSpec, values: Iterable[str]) -> list[str]:
        """The blind indexes of several candidate values (lookups by any of them)."""
        return [self.index(spec, column, value) for value in values]
