"""Privacy on an application's own models, independent of the ORM (private, shared).

``learnprivacy.sqlalchemy`` and ``learnprivacy.django`` both build on this package; it
imports no ORM. What lives here, each in its module:

- ``_declare``: :class:`Privacy` (a table's declaration) and :class:`ColumnPrivacy` (a
  column's), and the default key scope of a lawful basis;
- ``_spec``: :func:`build_spec` checks a model's declarations and returns a
  :class:`ModelSpec` (table, key, subject, columns, record views for retention);
- ``_binding``: the binding context of a token, ``"<table>/<key>/<column>"``, and
  :class:`RowCipher`, which encrypts, decrypts and indexes the personal columns;
- ``_plan``: decisions on rows for erasure requests and retention sweeps, through the
  retention engine (same legal minimums and holds as the store), and
  :class:`ErasurePlan`;
- ``_audit``: the audit events of those changes (never a personal value);
- ``_provider``: :class:`DeclaredProvider`, a privacy provider built from the specs over a
  small backend the integration implements, and the register's metadata.
"""

from learnprivacy._inplace._binding import RowCipher, binding_context, index_field, is_token
from learnprivacy._inplace._declare import INFO_KEY, ColumnPrivacy, Privacy, default_scope
from learnprivacy._inplace._spec import (
    INDEX_SUFFIX,
    ColumnSpec,
    ModelSpec,
    RecordView,
    build_spec,
    row_key,
)

__all__ = [
    "INDEX_SUFFIX",
    "INFO_KEY",
    "ColumnPrivacy",
    "ColumnSpec",
    "ModelSpec",
    "Privacy",
    "RecordView",
    "RowCipher",
    "binding_context",
    "build_spec",
    "default_scope",
    "index_field",
    "is_token",
    "row_key",
]
