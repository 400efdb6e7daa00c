"""JSON form of a whole request, for persistent backends.

The form holds the request's personal parts (requester, parameters, reasons): backends
that write it somewhere store it as personal data (the SQL backend encrypts it when given
a cipher).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from learnprivacy.errors import ValidationError
from learnprivacy.requests._deadlines import Extension, HolidayCalendar
from learnprivacy.requests._model import (
    Failure,
    IdentityCheck,
    Refusal,
    Requester,
    SubjectRequest,
)
from learnprivacy.requests._outcomes import StepResult
from learnprivacy.requests._params import params_from_dict
from learnprivacy.requests._vocabulary import Channel, RequestState, RequestType

__all__ = ["request_from_dict", "request_to_dict"]

#: Bumped when the form changes incompatibly.
FORMAT = 1


def _time(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _parse_time(value: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(value) if value is not None else None


def _zone(value: dt.datetime) -> str | None:
    """The IANA name of ``value``'s time zone, when it has one."""
    return value.tzinfo.key if isinstance(value.tzinfo, ZoneInfo) else None


def _in_zone(value: dt.datetime, zone: str | None) -> dt.datetime:
    if zone is None:
        return value
    try:
        return value.astimezone(ZoneInfo(zone))
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationError(
            "stored request has an unknown time zone", field="received_zone"
        ) from None


def request_to_dict(request: SubjectRequest) -> dict[str, Any]:
    """The JSON-ready form of ``request``."""
    return {
        "format": FORMAT,
        "id": request.id,
        "type": request.type.value,
        "learner_id": request.learner_id,
        "received_at": request.received_at.isoformat(),
        # A named zone (Europe/Paris) survives storage: an offset alone would move an
        # end-of-day deadline by an hour across a change of daylight saving time.
        "received_zone": _zone(request.received_at),
        "calendar": request.calendar.value,
        "channel": request.channel.value,
        "requester": request.requester.to_dict(),
        "identity": request.identity.to_dict(),
        "params": request.params.to_dict() if request.params is not None else None,
        "state": request.state.value,
        "version": request.version,
        "updated_at": _time(request.updated_at),
        "extension": request.extension.to_dict() if request.extension else None,
        "compelling_grounds": request.compelling_grounds,
        "refusal": request.refusal.to_dict() if request.refusal else None,
        "failure": request.failure.to_dict() if request.failure else None,
        "steps": [step.to_dict() for step in request.steps],
        "retry_of": request.retry_of,
        "closed_at": _time(request.closed_at),
    }


def request_from_dict(data: Mapping[str, Any]) -> SubjectRequest:
    """Rebuild a request from :func:`request_to_dict` output."""
    if data.get("format") != FORMAT:
        raise ValidationError("unsupported request format", field="format")
    try:
        return SubjectRequest(
            id=data["id"],
            type=RequestType(data["type"]),
            learner_id=data["learner_id"],
            received_at=_in_zone(
                dt.datetime.fromisoformat(data["received_at"]), data.get("received_zone")
            ),
            channel=Channel(data["channel"]),
            requester=Requester.from_dict(data["requester"]),
            identity=IdentityCheck.from_dict(data["identity"]),
            params=params_from_dict(data["params"]),
            state=RequestState(data["state"]),
            version=int(data["version"]),
            updated_at=_parse_time(data["updated_at"]),
            extension=Extension.from_dict(data["extension"]) if data["extension"] else None,
            compelling_grounds=data["compelling_grounds"],
            refusal=Refusal.from_dict(data["refusal"]) if data["refusal"] else None,
            failure=Failure.from_dict(data["failure"]) if data["failure"] else None,
            steps=tuple(StepResult.from_dict(s) for s in data["steps"]),
            retry_of=data["retry_of"],
            closed_at=_parse_time(data["closed_at"]),
            calendar=HolidayCalendar(data.get("calendar", HolidayCalendar.FR.value)),
        )
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, ValidationError):
            raise
        raise ValidationError("stored request is malformed", field="request") from None
