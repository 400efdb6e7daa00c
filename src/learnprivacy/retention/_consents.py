"""Which consents have lapsed: one rule for the store's sweep and both integrations."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from typing import Any

__all__ = ["lapsed_consents"]


def lapsed_consents(
    rows: Iterable[Any],
    now: dt.datetime,
    *,
    dates: Callable[[Any], Any] | None = None,
) -> dict[str, set[str]]:
    """For each purpose, the learners whose every consent to it has ended at ``now``.

    ``rows`` are ``(learner, purpose, given_at, withdrawn_at, expires_at)``; a row whose
    learner is ``None`` (anonymised) is no longer anyone's consent. A consent stands
    when given by ``now`` and neither withdrawn nor expired then. A learner with no
    consent row is not in the answer: their processing may rest on a consent recorded
    elsewhere. ``dates`` converts each date read (to compare with ``now``) if given.
    """
    running: dict[tuple[Any, Any], bool] = {}
    for learner, purpose, given, withdrawn, expires in rows:
        if learner is None:
            continue
        if dates is not None:
            given, withdrawn, expires = dates(given), dates(withdrawn), dates(expires)
        stands = (
            given is not None
            and given <= now
            and (withdrawn is None or withdrawn > now)
            and (expires is None or expires > now)
        )
        key = (purpose, learner)
        running[key] = running.get(key, False) or stands
    lapsed: dict[str, set[str]] = {}
    for (purpose, learner), stands in running.items():
        if not stands:
            lapsed.setdefault(str(purpose), set()).add(str(learner))
    return lapsed
