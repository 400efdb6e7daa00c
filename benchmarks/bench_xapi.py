"""xAPI: statement generation and delivery to a real Ralph LRS.

Two figures, each against a floor measured in the same run, interleaved, CPU time:

- *generation*: ``statements_for`` over 20,000 progress records (5,000 with ``--quick``),
  against a hand-written builder that makes the very same statements (same dicts, same
  id derivation: UUID 5 of the event's identity), with nothing but dict literals and
  ``uuid.uuid5``. The outputs are checked equal before timing. Target: within 1.5x.
- *push*: ``send_statements`` of 2,000 fresh statements (500 with ``--quick``) in batches
  of 100 to a real Ralph LRS on 127.0.0.1 (``TemporaryRalphLRS``), against plain batched
  POSTs of the same kind of statements with one ``httpx.Client`` (no reply check, no
  counting, no redirect or origin rule). The server's CPU time is not counted (another
  process tree): what is compared is the client's work per statement delivered. Target:
  within 1.2x.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

from benchmarks._measure import compare, ratio_row
from learnprivacy.crypto import Pseudonymiser
from learnprivacy.export._xapi import (
    ACTIVITY_TYPE_COURSE,
    ACTIVITY_TYPE_MODULE,
    STATEMENT_NAMESPACE,
)
from learnprivacy.export.xapi import XapiProfile, send_statements, statements_for
from learnprivacy.records import Progress, ProgressStatus, Score

UTC = dt.UTC
NOW = dt.datetime(2026, 6, 15, 12, 0, tzinfo=UTC)
T0 = dt.datetime(2024, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=1)))
PROFILE = XapiProfile(home_page="https://campus.example.org", platform="Campus")
KEY = bytes(range(32))
GENERATION_TARGET = 1.5
PUSH_TARGET = 1.2
_STATUSES = [
    ProgressStatus.PASSED,
    ProgressStatus.FAILED,
    ProgressStatus.COMPLETED,
    ProgressStatus.IN_PROGRESS,
]
_VERBS = {
    ProgressStatus.PASSED: ("http://adlnet.gov/expapi/verbs/passed", "passed", True, True),
    ProgressStatus.FAILED: ("http://adlnet.gov/expapi/verbs/failed", "failed", False, True),
    ProgressStatus.COMPLETED: (
        "http://adlnet.gov/expapi/verbs/completed",
        "completed",
        None,
        True,
    ),
    ProgressStatus.IN_PROGRESS: (
        "http://adlnet.gov/expapi/verbs/attempted",
        "attempted",
        None,
        False,
    ),
}


def _records(count: int, run: str) -> list[Progress]:
    return [
        Progress(
            id=f"P{i}-{run}",
            learner_id=f"L{i % 500}",
            course_id=f"C{i % 40}",
            activity_id=f"quiz-{i % 7}" if i % 3 == 0 else None,
            status=_STATUSES[i % 4],
            recorded_at=T0 + dt.timedelta(minutes=i),
            score=Score(raw=Decimal(i % 20), min=0, max=20) if i % 2 else None,
            time_spent=dt.timedelta(seconds=60 + i % 3600, microseconds=i % 1000)
            if i % 5
            else None,
        )
        for i in range(count)
    ]


def _duration(spent: dt.timedelta) -> str:
    centis = round(spent / dt.timedelta(milliseconds=10))
    hours, rest = divmod(centis, 360_000)
    minutes, rest = divmod(rest, 6_000)
    seconds, hundredths = divmod(rest, 100)
    out = "PT" + (f"{hours}H" if hours else "") + (f"{minutes}M" if minutes else "")
    if hundredths:
        return out + f"{seconds}.{hundredths:02d}".rstrip("0") + "S"
    return out + f"{seconds}S" if seconds or out == "PT" else out


def _hand_written(records: list[Progress], names: Pseudonymiser) -> list[dict[str, Any]]:
    """The floor: the same statements, built inline (no profile object, no checks)."""
    home = PROFILE.home_page
    base = f"{home}/xapi/activities/courses/"
    cache: dict[str, str] = {}
    out = []
    for record in records:
        verb, display, success, completion = _VERBS[record.status]
        at = record.recorded_at.astimezone(UTC)
        at = at.replace(microsecond=at.microsecond - at.microsecond % 1000)
        stamp = at.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        name = cache.get(record.learner_id)
        if name is None:
            name = cache[record.learner_id] = names.pseudonym(record.learner_id)
        course = {
            "objectType": "Activity",
            "id": base + record.course_id,
            "definition": {"type": ACTIVITY_TYPE_COURSE},
        }
        context: dict[str, Any] = {"platform": "Campus"}
        if record.activity_id is not None:
            target = {
                "objectType": "Activity",
                "id": f"{base}{record.course_id}/activities/{record.activity_id}",
                "definition": {"type": ACTIVITY_TYPE_MODULE},
            }
            context["contextActivities"] = {"parent": [course]}
        else:
            target = course
        result: dict[str, Any] = {"completion": completion}
        if success is not None:
            result["success"] = success
        if record.score is not None:
            result["score"] = {
                "raw": int(record.score.raw),
                "min": int(record.score.min),
                "max": int(record.score.max),
                "scaled": round(record.score.scaled, 6),
            }
        if record.time_spent is not None:
            result["duration"] = _duration(record.time_spent)
        score = result.get("score")
        scored = "" if score is None else f"{score['raw']}/{score['min']}/{score['max']}"
        identity = "\x1f".join(
            (
                home,
                "Progress",
                record.id,
                verb,
                stamp,
                target["id"],
                scored,
                result.get("duration", ""),
            )
        )
        out.append(
            {
                "id": str(uuid.uuid5(STATEMENT_NAMESPACE, identity)),
                "actor": {"objectType": "Agent", "account": {"homePage": home, "name": name}},
                "verb": {"id": verb, "display": {"en-US": display}},
                "object": target,
                "result": result,
                "context": context,
                "timestamp": stamp,
            }
        )
    return out


def _generation(quick: bool) -> dict[str, Any]:
    records = _records(5_000 if quick else 20_000, "gen")
    names = Pseudonymiser(KEY, domain=PROFILE.pseudonym_domain)

    def ours() -> list[dict[str, Any]]:
        return list(statements_for(records, pseudonyms=names, profile=PROFILE, now=NOW))

    def floor() -> list[dict[str, Any]]:
        return _hand_written(records, names)

    if ours() != floor():
        raise AssertionError("the hand-written builder must make the library's statements")
    samples = compare({"ours": ours, "floor": floor}, rounds=7)
    return _row(
        f"xAPI generation, {len(records):,} progress statements",
        samples,
        len(records),
        GENERATION_TARGET,
    )


def _row(name: str, samples: Any, work: int, target: float) -> dict[str, Any]:
    """Shown as rates; the verdict is on CPU time, ours over the floor's, at most ``target``."""
    ratio = samples["ours"].median / samples["floor"].median
    row = ratio_row(
        name, samples["ours"], samples["floor"], target=target, work=work, unit="statements/s"
    )
    return row | {"ratio": round(ratio, 3), "target": f"<= {target:g}x", "ok": ratio <= target}


def _push(quick: bool) -> dict[str, Any]:
    import httpx

    from learnprivacy.testing.lrs import TemporaryRalphLRS

    count = 500 if quick else 2_000
    rounds = 5
    names = Pseudonymiser(KEY, domain=PROFILE.pseudonym_domain)
    fresh: Iterator[list[dict[str, Any]]] = iter(
        [
            list(
                statements_for(
                    _records(count, uuid.uuid4().hex[:8]),
                    pseudonyms=names,
                    profile=PROFILE,
                    now=NOW,
                )
            )
            for _ in range(2 * rounds + 2)
        ]
    )
    with TemporaryRalphLRS() as lrs, httpx.Client(trust_env=False, timeout=60) as client:
        headers = {"X-Experience-API-Version": "1.0.3", "Content-Type": "application/json"}
        auth = lrs.auth

        def ours() -> None:
            report = send_statements(next(fresh), lrs.endpoint, auth, batch_size=100)
            assert report.delivered == count

        def floor() -> None:
            statements = next(fresh)
            for start in range(0, len(statements), 100):
                body = json.dumps(
                    statements[start : start + 100], ensure_ascii=False, separators=(",", ":")
                ).encode()
                response = client.post(lrs.endpoint, content=body, headers=headers, auth=auth)
                assert response.status_code == 200

        ours()  # warm both paths (imports, connection, server caches) alike
        floor()
        samples = compare({"ours": ours, "floor": floor}, rounds=rounds)
    return _row(
        f"xAPI push to Ralph, {count:,} statements in batches of 100",
        samples,
        count,
        PUSH_TARGET,
    )


def run(quick: bool = False) -> list[dict[str, Any]]:
    """Both figures, as rows for ``python -m benchmarks``."""
    return [_generation(quick), _push(quick)]


if __name__ == "__main__":
    for row in run(quick=True):
        print(json.dumps(row))
