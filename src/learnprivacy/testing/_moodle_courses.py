"""Fixture courses, activities, enrolments, completions, grades and certificates."""

from __future__ import annotations

import string
from decimal import Decimal

from learnprivacy.testing._moodle_state import DAY, SiteState

__all__ = ["add_courses", "add_enrolments"]

_CATALOGUE = (
    ("SST", "Sauveteur secouriste du travail"),
    ("EXCEL", "Excel avancé"),
    ("RGPD", "RGPD : les fondamentaux"),
    ("MGT", "Manager une équipe"),
    ("ELEC", "Habilitation électrique"),
    ("ANG", "Anglais professionnel B2"),
    ("COMPTA", "Comptabilité pour non-comptables"),
    ("SECU", "Cybersécurité au quotidien"),
)
# Module ids as a fresh install numbers them are arbitrary; names are Moodle's.
_MODULES = {"assign": 1, "customcert": 2, "forum": 3, "page": 4, "quiz": 5, "scorm": 6}
_ACTIVITIES = ("quiz", "assign", "page", "forum", "scorm")
_GRADED = {"quiz": Decimal(20), "assign": Decimal(100)}
_CODE = string.ascii_letters + string.digits
# Names of the activities whose instance tables the fixture fills.
_INSTANCE_NAMES = {
    "forum": "Forum des apprenants",
    "assign": "Étude de cas",
    "quiz": "Quiz de validation",
}
_SITE_COURSE = 1
_SYSTEM_CONTEXT = 1


def add_courses(state: SiteState, count: int, activities: int) -> None:
    """The front page course and ``count`` courses, a third of them without end date."""
    rng = state.rng
    for name, mid in sorted(_MODULES.items(), key=lambda item: item[1]):
        state.add("modules", {"id": mid, "name": name, "search": "", "visible": 1})
    category_context = state.context(40, 1, _SYSTEM_CONTEXT)
    state.add(
        "course",
        {
            "id": _SITE_COURSE,
            "category": 0,
            "fullname": "Plateforme de formation",
            "shortname": "plateforme",
            "format": "site",
            "timecreated": state.start,
        },
    )
    state.context(50, _SITE_COURSE, _SYSTEM_CONTEXT)
    for n in range(count):
        cid = 2 + n
        code, title = _CATALOGUE[n % len(_CATALOGUE)]
        start = state.moment(state.start, state.now + 60 * DAY)
        # The first course never ends and the second ended long ago, whatever the seed,
        # so that small fixtures still show both cases.
        if n == 0 or (n > 1 and rng.random() < 0.3):
            end = 0
            state.notes["no_end_date"].add(cid)
        elif n == 1:
            start = state.start
            end = start + 90 * DAY
        else:
            end = start + rng.randint(30, 400) * DAY
        state.add(
            "course",
            {
                "id": cid,
                "category": 1,
                "sortorder": 10_000 + cid,
                "fullname": f"{title} (session {n // len(_CATALOGUE) + 1})",
                "shortname": f"{code}-{n + 1:03d}",
                "idnumber": f"{code}{n + 1:03d}",
                "format": "topics",
                "startdate": start,
                "enddate": end,
                "timecreated": max(state.start, start - 30 * DAY),
                "timemodified": max(state.start, start - 30 * DAY),
                "enablecompletion": 1,
            },
        )
        state.courses[cid] = (start, end)
        state.enrol_of[cid] = state.add(
            "enrol",
            {"enrol": "manual", "status": 0, "courseid": cid, "roleid": 5, "timecreated": start},
        )
        course_context = state.context(50, cid, category_context)
        _course_content(state, cid, course_context, activities, certified=n % 2 == 0)


def _course_content(
    state: SiteState, cid: int, course_context: int, activities: int, *, certified: bool
) -> None:
    rng = state.rng
    start = state.courses[cid][0]
    pass_mark = Decimal(10) if rng.random() < 0.5 else Decimal(0)
    state.add(
        "grade_items",
        {
            "courseid": cid,
            "itemtype": "course",
            "iteminstance": cid,
            "itemname": None,
            "itemmodule": None,
            "grademax": Decimal(20),
            "grademin": Decimal(0),
            "gradepass": pass_mark,
            "timecreated": start,
            "timemodified": start,
        },
    )
    modules: list[tuple[int, str, int, int]] = []
    names = [_ACTIVITIES[i % len(_ACTIVITIES)] for i in range(activities)]
    if certified:
        names.append("customcert")
    for section, name in enumerate(names, start=1):
        if name == "customcert":
            instance = state.add(
                "customcert",
                {"course": cid, "name": "Attestation de fin de formation", "protection": ""},
            )
        elif name in _INSTANCE_NAMES:
            # The activity's own row, whose name Moodle's export folders show.
            instance = state.add(name, _instance_row(name, cid, section, start))
        else:
            # The module's own table (page, scorm) is not part of the fixture.
            instance = state.reserve(name)
        cmid = state.add(
            "course_modules",
            {
                "course": cid,
                "module": _MODULES[name],
                "instance": instance,
                "section": section,
                "added": start,
                "completion": 2 if name in _GRADED else 1,
            },
        )
        state.context(70, cmid, course_context)
        item = 0
        if name in _GRADED:
            item = state.add(
                "grade_items",
                {
                    "courseid": cid,
                    "itemtype": "mod",
                    "itemmodule": name,
                    "iteminstance": instance,
                    "itemname": f"{name} {section}",
                    "grademax": _GRADED[name],
                    "grademin": Decimal(0),
                    "gradepass": _GRADED[name] / 2 if name == "quiz" else Decimal(0),
                    "timecreated": start,
                    "timemodified": start,
                },
            )
        modules.append((cmid, name, item, instance))
    state.course_modules[cid] = modules


def _instance_row(name: str, cid: int, section: int, start: int) -> dict[str, object]:
    row: dict[str, object] = {
        "course": cid,
        "name": f"{_INSTANCE_NAMES[name]} {section}",
        "intro": "",
        "timemodified": start,
    }
    if name == "quiz":
        row.update(sumgrades=Decimal(10), grade=_GRADED["quiz"], timecreated=start)
    elif name == "assign":
        row.update(grade=int(_GRADED["assign"]))
    return row


def _grade(state: SiteState, item: int, uid: int, high: Decimal, at: int) -> None:
    rng = state.rng
    final: Decimal | None = Decimal(rng.randint(0, int(high) * 2)) / 2
    if rng.random() < 0.1:
        final = None  # Graded later, or never.
    elif rng.random() < 0.003:
        final = high + 5  # An override left above the maximum after the item was rescaled.
    state.add(
        "grade_grades",
        {
            "itemid": item,
            "userid": uid,
            "rawgrade": final,
            "rawgrademax": high,
            "rawgrademin": Decimal(0),
            "finalgrade": final,
            "usermodified": 2,
            "timecreated": at,
            "timemodified": at,
        },
    )


def add_enrolments(state: SiteState) -> None:
    """Enrol live learners in one to three courses and record how far they got."""
    rng = state.rng
    course_ids = sorted(state.courses)
    shown: set[int] = set()
    course_items = {
        row["courseid"]: row["id"]
        for row in state.rows["grade_items"]
        if row["itemtype"] == "course"
    }
    for uid, (created, _first, last) in state.users.items():
        if uid < 3 or uid in state.notes["deleted"] or not course_ids:
            continue
        later = uid in state.notes["course_access_later"]
        for cid in rng.sample(course_ids, min(len(course_ids), rng.choice((0, 1, 1, 2, 2, 3)))):
            enrolled = min(
                state.moment(created, max(created, last or created + 30 * DAY)), state.now
            )
            state.add(
                "user_enrolments",
                {
                    "status": 0,
                    "enrolid": state.enrol_of[cid],
                    "userid": uid,
                    "timestart": enrolled,
                    "timeend": 0,
                    "modifierid": 2,
                    "timecreated": enrolled,
                    "timemodified": enrolled,
                },
            )
            started = state.moment(enrolled, last) if last and rng.random() < 0.85 else 0
            completed = state.moment(started, last) if started and rng.random() < 0.5 else None
            state.add(
                "course_completions",
                {
                    "userid": uid,
                    "course": cid,
                    # Enrolment methods without a start date leave timeenrolled at 0.
                    "timeenrolled": 0 if rng.random() < 0.05 else enrolled,
                    "timestarted": started,
                    "timecompleted": completed,
                    "reaggregate": 0,
                },
            )
            if not started:
                continue
            access = last if later else state.moment(started, last)
            state.add("user_lastaccess", {"userid": uid, "courseid": cid, "timeaccess": access})
            if later:
                shown.add(uid)
            later = False
            _grade(state, course_items[cid], uid, Decimal(20), completed or started)
            _activities(state, uid, cid, started, completed)
    # Accounts meant to show a later course access that got no course access at all keep
    # their real last access in user.lastaccess after all.
    for uid in state.notes["course_access_later"] - shown:
        row = state.rows["user"][uid - 1]
        row["lastaccess"] = state.users[uid][2]
    state.notes["course_access_later"] &= shown


def _activities(state: SiteState, uid: int, cid: int, started: int, completed: int | None) -> None:
    rng = state.rng
    until = completed or state.users[uid][2]
    for cmid, name, item, instance in state.course_modules[cid]:
        if name == "customcert":
            if completed and rng.random() < 0.9:
                state.add(
                    "customcert_issues",
                    {
                        "userid": uid,
                        "customcertid": instance,
                        "code": "".join(rng.choice(_CODE) for _ in range(10)),
                        "emailed": 1,
                        "timecreated": completed,
                    },
                )
            continue
        at = state.moment(started, until)
        if item and rng.random() < 0.8:
            _grade(state, item, uid, _GRADED[name], at)
        if rng.random() < 0.7:
            state_value = rng.choice((2, 3)) if name == "quiz" else rng.choice((0, 1, 1))
            state.add(
                "course_modules_completion",
                {
                    "coursemoduleid": cmid,
                    "userid": uid,
                    "completionstate": state_value,
                    "overrideby": None,
                    "timemodified": at,
                },
            )
