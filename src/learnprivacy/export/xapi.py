"""xAPI: statements for progress and certificates, delivery to an LRS, and reading back.

The profile (docs/xapi.md):

- the actor is ``{"objectType": "Agent", "account": {"homePage", "name"}}`` whose name is
  a keyed pseudonym, ``store.keyring.pseudonymiser(profile.pseudonym_domain)``
  (:func:`actor_pseudonyms`): never ``mbox``, never the internal learner id; exports,
  live pushes and erasure notifications all derive it the same way;
- verbs: ADL ``passed``, ``failed``, ``completed``, ``attempted`` (in progress) for
  progress (``not_started`` gives no statement), the Tin Can registry's ``earned`` for
  certificates, displayed in English (``en-US``), the language of those registries;
- objects: ADL ``course`` activities named from ``XapiProfile.course_names``, ADL
  ``module`` activities for a course's activities;
- ``result.score {raw, min, max, scaled}``, ``success``, ``completion``, ``duration``
  rounded to 0.01 s; ``timestamp`` in UTC to the millisecond, never after ``now``;
  ``context.platform`` and ``context.language`` only when configured,
  ``context.registration`` when the record has one; no ``version`` property;
- ids are UUID 5 of the event's identity (:func:`statement_id`); a corrected statement
  whose id was voided is re-issued under :func:`reissued_id`.

:func:`send_statements` delivers them (no redirected writes, credentials to the
endpoint's origin only, exact counts); :func:`read_statements` reads them back from an
LRS or a file, and :func:`progress_from_statements` turns them into Progress records;
:class:`LrsRecipient` makes erasure and rectification reach an LRS (voiding).
"""

from __future__ import annotations

from typing import Any

from learnprivacy.export._lrs import SendReport, send_statements
from learnprivacy.export._lrs_recipient import LrsRecipient, reissued_id
from learnprivacy.export._xapi import (
    Pseudonyms,
    XapiProfile,
    statements_for,
)
from learnprivacy.export._xapi_read import progress_from_statements, read_statements

__all__ = [
    "LrsRecipient",
    "SendReport",
    "XapiProfile",
    "learners_by_actor",
    "progress_from_statements",
    "read_statements",
    "reissued_id",
    "send_statements",
    "statements_for",
]


def actor_pseudonyms(store_or_keyring: Any, profile: XapiProfile | None = None) -> Pseudonyms:
    """The actor pseudonymiser of ``profile`` for a store (or its keyring).

    ``store.keyring.pseudonymiser(profile.pseudonym_domain)``: what exports use and what
    an :class:`LrsRecipient` is given as reference, so a live push names the learner as
    the export and the erasure notification do.
    """
    profile = profile or XapiProfile()
    keyring = getattr(store_or_keyring, "keyring", store_or_keyring)
    return keyring.pseudonymiser(profile.pseudonym_domain)  # type: ignore[no-any-return]


def learners_by_actor(store: Any, profile: XapiProfile | None = None) -> dict[str, str]:
    """Actor account name -> learner id, for every learner with data in ``store``.

    What :func:`progress_from_statements` needs as ``learner_of`` to import statements
    this store's learners were sent under.
    """
    names = actor_pseudonyms(store, profile)
    return {names.pseudonym(learner): learner for learner in store.subjects()}
