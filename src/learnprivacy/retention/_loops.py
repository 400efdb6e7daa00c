"""Sweep loops specialised per date field, generated once per field and cached.

A sweep spends its time in one loop over the records. Reading the date as ``record.field``
written in the loop's source costs markedly less than calling an ``attrgetter`` per record,
so, like attrs generating ``__init__``, the engine generates that loop for each field it
meets. The template is fixed; the only variable part is the field name, which must be a
plain identifier (it comes from the record class's attrs fields).
"""

from __future__ import annotations

import keyword
from collections.abc import Callable
from typing import Any

__all__ = ["sweep_loop"]

#: ``loop(records, cut, to_missing, to_expired, to_keep, lookup)``; ``lookup`` maps a
#: learner id to the learner's date, for dates read on the learner.
Loop = Callable[..., None]

_TEMPLATE = """
def sweep(records, cut, to_missing, to_expired, to_keep, lookup):
    for record in records:
        anchor = {read}
        if anchor is None:
            to_missing(record)
        elif anchor <= cut:
            to_expired(record)
        else:
            to_keep(record)
"""

_CACHE: dict[tuple[str, bool], Loop] = {}


def sweep_loop(field: str, on_subject: bool) -> Loop:
    """The loop reading ``record.field``, or ``lookup(record.learner_id)`` when on_subject."""
    key = (field, on_subject)
    loop = _CACHE.get(key)
    if loop is None:
        if on_subject:
            read = "lookup(record.learner_id)"
        elif field.isidentifier() and not keyword.iskeyword(field):
            read = f"record.{field}"
        else:
            read = f"getattr(record, {field!r})"
        namespace: dict[str, Any] = {}
        code = compile(_TEMPLATE.format(read=read), f"<learnprivacy sweep {field}>", "exec")
        exec(code, namespace)  # noqa: S102 - fixed template; the field is checked or quoted
        loop = namespace["sweep"]
        _CACHE[key] = loop
    return loop
