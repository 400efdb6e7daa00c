"""What sweeps, erasures and replays report back. No personal value in any repr."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

import attrs

from learnprivacy._vocabulary import Action

__all__ = ["ErasureOutcome", "ErasureReport", "ReplayReport", "ReviewItem", "SweepReport"]


def _count(value: object) -> str:
    return f"<{len(value)} item(s)>" if hasattr(value, "__len__") else "<...>"


@attrs.frozen(kw_only=True)
class ReviewItem:
    """A record the schedule cannot decide on: a person must (``record_id`` masked)."""

    record_type: str
    record_id: str = attrs.field(repr=False)
    reason: str


@attrs.frozen(kw_only=True)
class SweepReport:
    """Counts of one retention sweep (a dry run reports what a real run would do).

    ``erased``, ``anonymised`` and ``restricted`` count rows changed (rows already
    restricted are counted as ``kept``), ``review`` the rows a person must decide on
    (listed in ``review_items``, at most ``review_limit`` of them), ``kept`` the rest.
    ``by_type`` breaks the counts down per record type; ``shredded`` counts the
    (subject, scope) keys destroyed because no remaining row used them.
    """

    erased: int = 0
    anonymised: int = 0
    restricted: int = 0
    review: int = 0
    kept: int = 0
    shredded: int = 0
    dry_run: bool = False
    now: dt.datetime
    by_type: Mapping[str, Mapping[str, int]] = attrs.field(factory=dict)
    review_items: tuple[ReviewItem, ...] = attrs.field(default=(), repr=_count)
    review_truncated: bool = False
    #: Per record type, how many rows each trigger decided: ``"erase: created
    #: (fallback)"``, ``"keep"`` aside (kept rows are never read). Filled by dry runs
    #: (and ``"restrict: dependent records kept"`` by every run). ``(records)`` marks a
    #: last activity taken from the learner's records rather than their account;
    #: ``"restrict: dependent records kept"`` an account kept for its records.
    decided_by: Mapping[str, Mapping[str, int]] = attrs.field(factory=dict)
    #: ``False`` when the sweep's closing checkpoint could not fold SQLite's write-ahead
    #: log into the file (see :attr:`ErasureReport.folded`).
    folded: bool = True

    @property
    def changed(self) -> int:
        """How many rows the sweep erased, anonymised or restricted."""
        return self.erased + self.anonymised + self.restricted


@attrs.frozen(kw_only=True)
class ErasureOutcome:
    """What an erasure request did to one record, and the GDPR article it rests on.

    ``action`` is ``Action.ERASE``, ``Action.RESTRICT`` (kept, under a legal minimum or a
    hold) or ``Action.REVIEW`` (a person must decide; the record is left as it is).
    """

    record_type: str
    record_id: str = attrs.field(repr=False)
    action: Action
    article: str
    reason: str
    due_at: dt.datetime | None = None


@attrs.frozen(kw_only=True)
class ErasureReport:
    """The result of :meth:`Store.erase_subject` (the learner id is not kept here).

    ``erased``/``restricted`` count records; ``outcomes`` lists each one with its article
    (``"GDPR Art. 17(1)"`` erased, ``"GDPR Art. 17(3)(b)"`` kept under a legal obligation
    and restricted); ``shredded_scopes`` names the key scopes destroyed and
    ``kept_scopes`` those still needed by restricted records.
    """

    erased: int
    restricted: int
    outcomes: tuple[ErasureOutcome, ...] = attrs.field(repr=_count)
    shredded_scopes: tuple[str, ...] = ()
    kept_scopes: tuple[str, ...] = ()
    subject_ref: str = ""
    #: ``False`` when the erased rows' earlier page images (or the destroyed keys', in
    #: the key database) could not yet leave SQLite's write-ahead log for the file:
    #: another connection's read transaction, older than the erasure, outlasted the
    #: busy timeout. The rows are gone from every query; the
    #: log keeps the old pages until a later checkpoint (each erasure, sweep and store
    #: opening tries again).
    folded: bool = True


@attrs.frozen(kw_only=True)
class ReplayReport:
    """What :meth:`Store.replay_erasures` re-applied to a restored database."""

    entries: int = 0
    erased: int = 0
    anonymised: int = 0
    restricted: int = 0
    lifted: int = 0
    shredded: int = 0
    #: Rows whose rectified dates (a consent's ``withdrawn_at``...) were written again.
    rectified: int = 0
    #: Rectifications of other values (personal ones: the log never carries them), not
    #: re-applied: redo them from the request book or the LMS.
    rectifications_left: int = 0
