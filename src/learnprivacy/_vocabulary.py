"""The words every package shares, defined once below all of them.

- :class:`Action`: what is done, or was done, to one record. Retention decisions, sweep
  and erasure reports and data-subject request outcomes all speak it.
- :class:`ContextLevel`: where data lives, with Moodle's ``CONTEXT_*`` values.
- :class:`Article`: the GDPR articles the library cites, as one table.

Pure: no I/O, nothing but the standard library. The controller (who answers for the
processing) is the fourth shared word; it lives in :mod:`learnprivacy._controller`
because it carries more structure.

:data:`BATCH_SIZE` is the one default of every ``batch_size=``: rows or keys per
transaction, for writes, sweeps, conversions, key rotation and compaction alike.
"""

from __future__ import annotations

import enum

__all__ = ["BATCH_SIZE", "RETENTION_ACTIONS", "Action", "Article", "ContextLevel"]

#: Rows or keys per transaction when a caller gives no ``batch_size``: each commit is
#: durable progress, and a batch's working set stays a few megabytes.
BATCH_SIZE = 10_000


class Action(enum.Enum):
    """What is done to one record: decided by retention, reported by the store and requests.

    The first five are what a retention decision can ask for:

    - ``KEEP``: nothing, retention runs (a report says the record was kept).
    - ``ERASE``: delete (or crypto-shred) it.
    - ``ANONYMISE``: drop and replace its personal values, keep the rest for statistics.
    - ``RESTRICT``: keep it but stop processing it except for the reason it is kept
      (GDPR Art. 18).
    - ``REVIEW``: a person must decide; the library will not.

    The others only appear in what a data-subject request reports it did: ``EXPORT``
    (included in an access or portability package), ``RECTIFY`` (Art. 16),
    ``WITHDRAW_CONSENT`` (Art. 7(3)) and ``UPHOLD_OBJECTION`` (Art. 21).

    The value is the verb (``"erase"``); :attr:`done` is the past tense used in letters
    and reports (``"erased"``).
    """

    KEEP = "keep"
    ERASE = "erase"
    ANONYMISE = "anonymise"
    RESTRICT = "restrict"
    REVIEW = "review"
    EXPORT = "export"
    RECTIFY = "rectify"
    WITHDRAW_CONSENT = "withdraw_consent"
    UPHOLD_OBJECTION = "uphold_objection"

    @property
    def destructive(self) -> bool:
        """Whether the action removes personal data (erase or anonymise)."""
        return self in (Action.ERASE, Action.ANONYMISE)

    @property
    def retention(self) -> bool:
        """Whether a retention rule or decision may ask for this action."""
        return self in _RETENTION_ACTIONS

    @property
    def done(self) -> str:
        """The past tense: ``"erased"``, ``"kept"``, ``"objection_upheld"``."""
        return _DONE[self]

    @classmethod
    def _missing_(cls, value: object) -> Action | None:
        # Request books written before the one vocabulary stored the past tense
        # ("erased", "kept"): they still load.
        for member, done in _DONE.items():
            if value == done:
                return member
        return None


#: The actions a retention rule or decision may ask for, in declaration order.
RETENTION_ACTIONS = (Action.KEEP, Action.ERASE, Action.ANONYMISE, Action.RESTRICT, Action.REVIEW)
_RETENTION_ACTIONS = frozenset(RETENTION_ACTIONS)

_DONE = {
    Action.KEEP: "kept",
    Action.ERASE: "erased",
    Action.ANONYMISE: "anonymised",
    Action.RESTRICT: "restricted",
    Action.REVIEW: "review",
    Action.EXPORT: "exported",
    Action.RECTIFY: "rectified",
    Action.WITHDRAW_CONSENT: "consent_withdrawn",
    Action.UPHOLD_OBJECTION: "objection_upheld",
}


class ContextLevel(enum.IntEnum):
    """The level of a context; the values are Moodle's ``CONTEXT_*`` constants."""

    SYSTEM = 10
    USER = 30
    COURSECAT = 40
    COURSE = 50
    MODULE = 70
    BLOCK = 80


class Article(enum.StrEnum):
    """The GDPR articles the library cites, each written once.

    A member is its own text (``Article.ART_17_3_B == "GDPR Art. 17(3)(b)"``), so it goes
    into decisions, reports, letters and JSON as a plain string; :attr:`short` drops the
    ``"GDPR "`` prefix for tables that already say which regulation they cite.
    """

    #: Storage limitation: kept no longer than necessary for the purpose.
    ART_5_1_E = "GDPR Art. 5(1)(e)"
    #: Lawfulness of processing: the lawful bases.
    ART_6_1 = "GDPR Art. 6(1)"
    #: Withdrawal of consent, without retroactive effect.
    ART_7_3 = "GDPR Art. 7(3)"
    #: Conditions for processing special categories of data.
    ART_9_2 = "GDPR Art. 9(2)"
    #: A request the controller cannot tie to a subject it can identify.
    ART_11_2_12_2 = "GDPR Art. 11(2) and 12(2)"
    #: One month to answer a request, extendable by two.
    ART_12_3 = "GDPR Art. 12(3)"
    #: A manifestly unfounded or excessive request.
    ART_12_5 = "GDPR Art. 12(5)"
    #: Right of access.
    ART_15 = "GDPR Art. 15"
    #: A copy of the data must not adversely affect the rights and freedoms of others.
    ART_15_4 = "GDPR Art. 15(4)"
    #: Right to rectification.
    ART_16 = "GDPR Art. 16"
    #: Right to erasure.
    ART_17 = "GDPR Art. 17"
    #: Erasure of data a subject asked to have erased.
    ART_17_1 = "GDPR Art. 17(1)"
    #: Erasure because the data are no longer necessary for the purpose.
    ART_17_1_A = "GDPR Art. 17(1)(a)"
    #: Erasure because consent was withdrawn.
    ART_17_1_B = "GDPR Art. 17(1)(b)"
    #: Erasure refused: processing needed to comply with a legal obligation.
    ART_17_3_B = "GDPR Art. 17(3)(b)"
    #: Erasure refused: data needed for the establishment, exercise or defence of legal claims.
    ART_17_3_E = "GDPR Art. 17(3)(e)"
    #: Right to restriction of processing.
    ART_18 = "GDPR Art. 18"
    #: The cases where processing must be restricted.
    ART_18_1 = "GDPR Art. 18(1)"
    #: Right to data portability.
    ART_20 = "GDPR Art. 20"
    #: Right to object.
    ART_21 = "GDPR Art. 21"
    #: Objection on grounds relating to the subject's particular situation.
    ART_21_1 = "GDPR Art. 21(1)"
    #: Objection to direct marketing: always upheld.
    ART_21_3 = "GDPR Art. 21(3)"
    #: A restriction of the rights by Union or Member State law.
    ART_23_1 = "GDPR Art. 23(1)"
    #: Records of processing activities.
    ART_30 = "GDPR Art. 30"
    #: The register states the envisaged time limits for erasure.
    ART_30_1_F = "GDPR Art. 30(1)(f)"
    #: Transfer on the basis of an adequacy decision.
    ART_45 = "GDPR Art. 45"
    #: Transfer subject to standard data protection clauses.
    ART_46_2_C = "GDPR Art. 46(2)(c)"
    #: Transfer under binding corporate rules.
    ART_47 = "GDPR Art. 47"
    #: Derogations for specific situations.
    ART_49 = "GDPR Art. 49"

    @property
    def short(self) -> str:
        """The reference without the regulation's name: ``"Art. 17(3)(b)"``."""
        return self.value.removeprefix("GDPR ")
