"""Fixture accounts, their log-ins and their policy acceptances.

Names are common French and Belgian ones; addresses use the reserved ``example.*``
domains and IPs the documentation ranges (RFC 5737, RFC 3849): nothing is anyone's data.
"""

from __future__ import annotations

import hashlib
import json
import unicodedata

from learnprivacy.synthetic import FAMILY_NAMES, GIVEN_NAMES
from learnprivacy.testing._moodle_state import DAY, SiteState

__all__ = ["acceptance", "add_logs", "add_policies", "add_users"]

_DOMAINS = ("example.org", "example.net", "example.com")
# Addresses typed into Moodle before validation was enforced, or by imports.
_BAD_EMAILS = ("{u}@", "{u}", "{u} @example.org", "{u}@entreprise", "{u}@@example.org")
_SYSTEM_CONTEXT = 1
_USER_LEVEL = 30

LOGIN = "\\core\\event\\user_loggedin"
LOGOUT = "\\core\\event\\user_loggedout"
FAILED = "\\core\\event\\user_login_failed"
VIEWED = "\\core\\event\\course_viewed"


def _ascii(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()


def _ip(state: SiteState) -> str:
    roll = state.rng.random()
    if roll < 0.003:
        return "unknown"  # What some reverse proxies forward; not an address.
    if roll < 0.15:
        return f"2001:db8::{state.rng.randint(1, 0xFFFF):x}"
    net = state.rng.choice(("192.0.2", "198.51.100", "203.0.113"))
    return f"{net}.{state.rng.randint(1, 254)}"


def _user_row(state: SiteState, uid: int, **values: object) -> dict[str, object]:
    row: dict[str, object] = {
        "id": uid,
        "auth": "manual",
        "confirmed": 1,
        "deleted": 0,
        "suspended": 0,
        "mnethostid": 1,
        "password": "$2y$10$fixture.not.a.real.password.hash.............",
        "lang": "fr",
        "country": "FR",
        "firstaccess": 0,
        "lastaccess": 0,
        "lastlogin": 0,
        "currentlogin": 0,
        "lastip": "",
        "timecreated": 0,
        "timemodified": 0,
    }
    row.update(values)
    state.add("user", row)
    state.context(_USER_LEVEL, uid, _SYSTEM_CONTEXT)
    return row


def _builtin_accounts(state: SiteState) -> None:
    # Moodle's installer creates the guest (id 1) and the main administrator (id 2).
    _user_row(
        state, 1, username="guest", email="root@localhost", firstname="Guest user", lastname=" "
    )
    state.users[1] = (0, 0, 0)
    first = state.start
    last = state.now - 2 * DAY
    _user_row(
        state,
        2,
        username="admin",
        email="admin@example.org",
        firstname="Admin",
        lastname="Plateforme",
        timecreated=first,
        timemodified=first,
        firstaccess=first,
        lastaccess=last,
        lastlogin=last - DAY,
        currentlogin=last,
        lastip="192.0.2.10",
    )
    state.users[2] = (first, first, last)


def add_users(state: SiteState, count: int) -> None:
    """The guest, the administrator and ``count`` learners with a realistic mix of states."""
    rng = state.rng
    _builtin_accounts(state)
    for n in range(count):
        uid = 3 + n
        given, family = rng.choice(GIVEN_NAMES), rng.choice(FAMILY_NAMES)
        username = _ascii(f"{given}.{family}{uid}")
        email = f"{username}@{rng.choice(_DOMAINS)}"
        created = state.moment(state.start, state.now - 7 * DAY)
        deleted = rng.random() < 0.04
        never = not deleted and rng.random() < 0.10
        first = last = 0
        if not never:
            first = state.moment(created, min(created + 3 * DAY, state.now))
            # A third of the accounts went quiet long ago: what retention is about.
            quiet = rng.random() < 0.35
            end = min(first + rng.randint(10, 400) * DAY, state.now) if quiet else state.now
            last = state.moment(first, end)
        lastaccess = last
        if last and not deleted and rng.random() < 0.03:
            # Imports and web services update user_lastaccess but not user.lastaccess.
            lastaccess = max(first, last - rng.randint(1, 90) * DAY)
            state.notes["course_access_later"].add(uid)
        values: dict[str, object] = {
            "username": username,
            "email": email,
            "firstname": given,
            "lastname": family,
            "timecreated": created,
            "timemodified": max(created, last),
            "firstaccess": first,
            "lastaccess": lastaccess,
            "lastlogin": max(first, last - rng.randint(0, 30) * DAY) if last else 0,
            "currentlogin": last,
            "lastip": _ip(state) if last else "",
            "city": rng.choice(("Paris", "Lyon", "Lille", "Liège", "Bruxelles")),
            "country": rng.choice(("FR", "FR", "FR", "BE")),
            "institution": f"Client {rng.randint(1, 40)}" if rng.random() < 0.6 else "",
        }
        if not deleted and rng.random() < 0.01:
            values["email"] = rng.choice(_BAD_EMAILS).format(u=username)
            state.notes["invalid_email"].add(uid)
        if deleted:
            # What Moodle's delete_user() leaves: a tombstone without address or idnumber.
            when = state.moment(max(created, last), state.now)
            values.update(
                deleted=1,
                username=f"{email}.{when}",
                email=hashlib.md5(username.encode(), usedforsecurity=False).hexdigest(),
                timemodified=when,
            )
            state.notes["deleted"].add(uid)
        elif rng.random() < 0.05:
            values["suspended"] = 1
            state.notes["suspended"].add(uid)
        if never:
            state.notes["never_logged_in"].add(uid)
        _user_row(state, uid, **values)
        state.users[uid] = (created, first, last)


def add_logs(state: SiteState, per_user: float) -> None:
    """Log-ins, log-outs, failed log-ins and course views in the standard log store."""
    rng = state.rng
    if per_user <= 0:
        return
    for uid, (_created, first, last) in state.users.items():
        if not last:
            continue
        for _ in range(max(1, round(rng.uniform(0.5, 1.5) * per_user))):
            at = state.moment(first, last)
            ip = _ip(state)
            _log(state, LOGIN, "loggedin", uid, at, ip, {"username": f"user{uid}"})
            if rng.random() < 0.4:
                _log(state, VIEWED, "viewed", uid, at + 60, ip, {})
            if rng.random() < 0.5:
                _log(state, LOGOUT, "loggedout", uid, at + rng.randint(300, 7200), ip, {})
        if rng.random() < 0.05:
            _log(state, FAILED, "failed", uid, state.moment(first, last), _ip(state), {"reason": 3})
    for _ in range(max(1, len(state.users) // 100)):
        # Failed log-ins for names that match no account are logged with userid 0.
        at = state.moment(state.start, state.now)
        _log(state, FAILED, "failed", 0, at, _ip(state), {"reason": 1})


def _log(
    state: SiteState, event: str, action: str, uid: int, at: int, ip: str, other: dict[str, object]
) -> None:
    state.add(
        "logstore_standard_log",
        {
            "eventname": event,
            "component": "core",
            "action": action,
            "target": "course" if event == VIEWED else "user",
            "objecttable": None if event == VIEWED else "user",
            "objectid": None if event == VIEWED else uid,
            "crud": "r",
            "edulevel": 2 if event == VIEWED else 0,
            "contextid": _SYSTEM_CONTEXT,
            "contextlevel": 10,
            "contextinstanceid": 0,
            "userid": uid,
            "courseid": 0,
            "relateduserid": None,
            "anonymous": 0,
            "other": json.dumps(other),
            "timecreated": min(at, state.now),
            "origin": "web",
            "ip": ip,
            "realuserid": None,
        },
    )


def add_policies(state: SiteState) -> None:
    """A compulsory site policy (two versions) and an optional marketing policy."""
    rng = state.rng
    v2_date = state.start + (state.now - state.start) // 2
    policies = [
        (1, 1, "Politique de confidentialité", "v1", state.start, 1, 0),
        (2, 1, "Politique de confidentialité", "v2", v2_date, 0, 0),
        (3, 2, "Communications commerciales", "1.0", state.start, 0, 1),
    ]
    state.add("tool_policy", {"id": 1, "sortorder": 1, "currentversionid": 2})
    state.add("tool_policy", {"id": 2, "sortorder": 2, "currentversionid": 3})
    for vid, pid, name, revision, created, archived, optional in policies:
        state.add(
            "tool_policy_versions",
            {
                "id": vid,
                "name": name,
                "type": 0 if optional == 0 else 3,
                "audience": 0,
                "archived": archived,
                "usermodified": 2,
                "timecreated": created,
                "timemodified": created,
                "policyid": pid,
                "agreementstyle": optional,
                "optional": optional,
                "revision": revision,
                "summary": f"<p>{name} ({revision})</p>",
                "summaryformat": 1,
                "content": f"<p>{name}, version {revision}.</p>",
                "contentformat": 1,
            },
        )
    for uid, (_created, first, last) in state.users.items():
        if uid in state.notes["deleted"] or not last or uid == 1:
            continue
        if first < v2_date:
            _accept(state, 1, uid, first, first, 1)
        if last >= v2_date:
            at = state.moment(max(first, v2_date), last)
            _accept(state, 2, uid, at, at, 1)
        roll = rng.random()
        if roll < 0.30:
            given = state.moment(first, last)
            if rng.random() < 0.15 and last > given:
                _accept(state, 3, uid, given, state.moment(given + 1, last), 0)
            else:
                _accept(state, 3, uid, given, given, 1)
        elif roll < 0.45:
            declined = state.moment(first, last)
            _accept(state, 3, uid, declined, declined, 0)


def _accept(
    state: SiteState, version: int, uid: int, created: int, modified: int, status: int
) -> None:
    state.add("tool_policy_acceptances", acceptance(version, uid, status, created, modified))


def acceptance(
    version: int, uid: int, status: int | None, created: int, modified: int
) -> dict[str, object]:
    """A ``tool_policy_acceptances`` row (without its ``id``): user ``uid``'s answer to
    policy version ``version`` (``status`` 1 agreed, 0 declined or withdrawn, ``None``
    pending), given at ``created`` and last changed at ``modified`` (Unix seconds)."""
    return {
        "policyversionid": version,
        "userid": uid,
        "status": status,
        "lang": "fr",
        "usermodified": uid,
        "timecreated": created,
        "timemodified": modified,
        "note": None,
    }
