"""Audit entries of in-place erasures, restrictions, anonymisations and shreds.

The entries have the same form and hash chain as the store's (``learnprivacy.store``'s
``AuditLog``): an integration appends them in the application's own transaction, so
the change and its entry commit together or not at all. This module only builds the
events; it never holds a personal value: rows of the learners' own table (whose key is
the learner id) are named by the learner's pseudonymous reference, other rows by key
(a key of several columns as the list of its parts, the learner id among them replaced
by the learner's reference).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from learnprivacy._inplace._plan import ErasurePlan
from learnprivacy._inplace._spec import ModelSpec
from learnprivacy.store._audit import AuditEvent

__all__ = [
    "erasure_events",
    "rows_detail",
    "rows_event",
    "shred_event",
]

Ref = Callable[[str], str]


def rows_detail(
    ref: Ref, spec: ModelSpec, keys: Sequence[Any], subjects: Sequence[str]
) -> dict[str, Any]:
    """How an entry names rows: by key, or by learner reference where the key is the
    learner id. Enough to find them again in a restored backup."""
    if spec.is_subject_table:
        return {"subject_refs": sorted({ref(s) for s in subjects})}
    if spec.composite:
        # A key part that is the learner id is named by the learner's reference.
        return {"ids": [_key_parts(ref, spec, key) for key in keys]}
    return {"ids": [_id(k) for k in keys]}


def _id(part: Any) -> Any:
    return part if isinstance(part, int) and not isinstance(part, bool) else str(part)


def _key_parts(ref: Ref, spec: ModelSpec, key: Any) -> list[Any]:
    return [
        ref(str(part)) if name == spec.subject else _id(part)
        for name, part in zip(spec.key_attributes, key, strict=True)
    ]


def rows_event(
    action: str,
    ref: Ref,
    spec: ModelSpec,
    keys: Sequence[Any],
    subjects: Sequence[str],
    *,
    reason: str,
) -> AuditEvent:
    """One entry for ``action`` (``erase``, ``anonymise``, ``restrict``) on rows of a table."""
    owners = sorted(set(subjects))
    return AuditEvent(
        action=action,
        outcome="done",
        record_type=spec.name,
        subject_ref=ref(owners[0]) if len(owners) == 1 else None,
        details={
            **rows_detail(ref, spec, keys, subjects),
            "table": spec.table,
            "count": len(keys),
            "reason": reason,
        },
    )


def shred_event(
    ref: Ref, subjects: Sequence[str], scopes: Sequence[str], *, mode: str
) -> AuditEvent:
    """The entry announcing that keys of ``subjects`` in ``scopes`` are to be shredded.

    Written in the transaction that removes the rows; the keys themselves are shredded
    once it has committed (``mode``: ``tombstone`` for erasure requests, ``keys`` for
    sweeps, as in the store).
    """
    refs = sorted({ref(s) for s in subjects})
    return AuditEvent(
        action="shred",
        outcome="done",
        subject_ref=refs[0] if len(refs) == 1 else None,
        details={"scopes": list(scopes), "subject_refs": refs, "mode": mode},
    )


def erasure_events(ref: Ref, plan: ErasurePlan, by_table: dict[str, ModelSpec]) -> list[AuditEvent]:
    """Every entry of an erasure request: the request, each table's change, the shred."""
    subject = plan.subject
    events = [
        AuditEvent(
            action="erasure_request",
            outcome="done",
            subject_ref=ref(subject),
            details={
                "erased": plan.erased,
                "restricted": plan.restricted,
                "shredded_scopes": list(plan.shred_scopes),
                "kept_scopes": list(plan.kept_scopes),
            },
        )
    ]
    for table, keys in plan.erase.items():
        events.append(
            rows_event(
                "erase", ref, by_table[table], keys, [subject] * len(keys), reason="erasure request"
            )
        )
    for table, keys in plan.restrict.items():
        events.append(
            rows_event(
                "restrict",
                ref,
                by_table[table],
                keys,
                [subject] * len(keys),
                reason="erasure request: kept by law, hold or review",
            )
        )
    events.append(shred_event(ref, [subject], plan.shred_scopes, mode="tombstone"))
    return events
