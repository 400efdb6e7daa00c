"""Fixture content: forum posts, submissions, quiz attempts, messages, files, badges, notes.

Drawn from a random source of its own (seeded from the site's seed), after every other
step: adding content leaves the rows of the other tables exactly as they were.
Texts are generic French phrases; nothing is anyone's data.
"""

from __future__ import annotations

import hashlib
import random
from decimal import Decimal

from learnprivacy.testing._moodle_state import DAY, SiteState

__all__ = ["add_content"]

_SUBJECTS = (
    "Question sur le module 2",
    "Ressources complémentaires",
    "Date de l'évaluation",
    "Exercice 3 : correction",
    "Présentation",
)
_SENTENCES = (
    "Merci pour ce support très clair.",
    "Je ne trouve pas le document mentionné en séance.",
    "Voici ma proposition pour l'exercice.",
    "Pouvez-vous préciser la consigne ?",
    "Bonne journée à tous.",
)
_PROFILE_FIELDS = (
    ("employeur", "Employeur", "text"),
    ("niveau", "Niveau de formation", "menu"),
)
_LEVELS = ("Bac", "Bac+2", "Bac+3", "Bac+5")
_USER_LEVEL = 30
_MODULE_LEVEL = 70
_TEACHER = 2


def _text(rng: random.Random, sentences: int = 2) -> str:
    return " ".join(rng.choice(_SENTENCES) for _ in range(sentences))


def _hash(*parts: object) -> str:
    return hashlib.sha1("/".join(map(str, parts)).encode(), usedforsecurity=False).hexdigest()


def _file(
    state: SiteState,
    context: int,
    component: str,
    area: str,
    item: int,
    uid: int,
    name: str,
    at: int,
) -> None:
    """A file and the "." directory entry Moodle's file API keeps beside it."""
    for filename, size in ((".", 0), (name, 1_000 + item * 37 % 50_000)):
        state.add(
            "files",
            {
                "contenthash": _hash("content", context, item, filename),
                "pathnamehash": _hash(context, component, area, item, "/", filename),
                "contextid": context,
                "component": component,
                "filearea": area,
                "itemid": item,
                "filepath": "/",
                "filename": filename,
                "userid": uid,
                "filesize": size,
                "mimetype": None if filename == "." else "application/pdf",
                "source": None if filename == "." else filename,
                "author": None,
                "license": None if filename == "." else "allrightsreserved",
                "timecreated": at,
                "timemodified": at,
            },
        )


def add_content(state: SiteState, seed: int) -> None:
    """Forum posts, assignment work, quiz attempts, messages, files, badges, notes, fields."""
    rng = random.Random(seed * 7_919 + 19)  # noqa: S311 - synthetic data, not security
    started = [
        (row["userid"], row["course"], row["timestarted"])
        for row in state.rows["course_completions"]
        if row["timestarted"]
    ]
    discussions: dict[int, list[tuple[int, int]]] = {}
    for uid, cid, since in started:
        until = max(since, state.users[uid][2] or since)
        for cmid, name, _item, instance in state.course_modules.get(cid, ()):
            context = state.context_of[(_MODULE_LEVEL, cmid)]
            if name == "forum":
                _forum(state, rng, discussions, uid, cid, instance, context, since, until)
            elif name == "assign" and rng.random() < 0.7:
                _assign(state, rng, uid, instance, context, since, until)
            elif name == "quiz" and rng.random() < 0.7:
                _quiz(state, rng, uid, instance, since, until)
    learners = sorted({uid for uid, _, _ in started})
    _messages(state, rng, learners)
    _badges(state, rng, learners)
    _notes(state, rng, started)
    _profile_fields(state, rng, learners)
    for uid in learners[::4]:
        context = state.context_of[(_USER_LEVEL, uid)]
        at = state.users[uid][2] or state.now
        _file(state, context, "user", "private", 0, uid, "cv.pdf", at)


def _moment(rng: random.Random, low: int, high: int) -> int:
    return low if high <= low else rng.randint(low, high)


def _forum(
    state: SiteState,
    rng: random.Random,
    discussions: dict[int, list[tuple[int, int]]],
    uid: int,
    cid: int,
    forum: int,
    context: int,
    since: int,
    until: int,
) -> None:
    if rng.random() < 0.4:
        at = _moment(rng, since, until)
        subject = rng.choice(_SUBJECTS)
        did = state.add(
            "forum_discussions",
            {
                "course": cid,
                "forum": forum,
                "name": subject,
                "userid": uid,
                "timemodified": at,
                "usermodified": uid,
                "pinned": int(rng.random() < 0.1),
            },
        )
        first = _post(state, rng, did, 0, uid, subject, at, context)
        state.rows["forum_discussions"][-1]["firstpost"] = first
        discussions.setdefault(forum, []).append((did, first))
    if discussions.get(forum) and rng.random() < 0.5:
        did, first = rng.choice(discussions[forum])
        _post(state, rng, did, first, uid, "Re: réponse", _moment(rng, since, until), context)


def _post(
    state: SiteState,
    rng: random.Random,
    discussion: int,
    parent: int,
    uid: int,
    subject: str,
    at: int,
    context: int,
) -> int:
    deleted = rng.random() < 0.05
    message = "" if deleted else _text(rng)
    pid = state.add(
        "forum_posts",
        {
            "discussion": discussion,
            "parent": parent,
            "userid": uid,
            "created": at,
            "modified": at,
            # Moodle blanks a deleted post's subject and message, and keeps the row.
            "subject": "" if deleted else subject,
            "message": message,
            "messageformat": 1,
            "deleted": int(deleted),
            "wordcount": len(message.split()),
            "charcount": len(message),
        },
    )
    if not deleted and rng.random() < 0.2:
        state.rows["forum_posts"][-1]["attachment"] = "1"
        _file(state, context, "mod_forum", "attachment", pid, uid, "piece-jointe.pdf", at)
    return pid


def _assign(
    state: SiteState,
    rng: random.Random,
    uid: int,
    assign: int,
    context: int,
    since: int,
    until: int,
) -> None:
    attempts = 2 if rng.random() < 0.15 else 1
    for attempt in range(attempts):
        at = _moment(rng, since, until)
        latest = attempt == attempts - 1
        status = "submitted" if not latest or rng.random() < 0.8 else "draft"
        sid = state.add(
            "assign_submission",
            {
                "assignment": assign,
                "userid": uid,
                "timecreated": at,
                "timemodified": at,
                "status": status,
                "attemptnumber": attempt,
                "latest": int(latest),
            },
        )
        state.add(
            "assignsubmission_onlinetext",
            {"assignment": assign, "submission": sid, "onlinetext": _text(rng, 3)},
        )
        if rng.random() < 0.3:
            _file(state, context, "assignsubmission_file", "submission_files", sid, uid,
                  "rendu.pdf", at)  # fmt: skip
        if status == "submitted" and rng.random() < 0.7:
            graded = at + rng.randint(1, 20) * DAY
            gid = state.add(
                "assign_grades",
                {
                    "assignment": assign,
                    "userid": uid,
                    "timecreated": graded,
                    "timemodified": graded,
                    "grader": _TEACHER,
                    "grade": Decimal(rng.randint(0, 200)) / 2,
                    "attemptnumber": attempt,
                },
            )
            if rng.random() < 0.6:
                state.add(
                    "assignfeedback_comments",
                    {"assignment": assign, "grade": gid, "commenttext": _text(rng)},
                )


def _quiz(
    state: SiteState, rng: random.Random, uid: int, quiz: int, since: int, until: int
) -> None:
    best: Decimal | None = None
    last = since
    for attempt in range(1, rng.choice((1, 1, 2, 3)) + 1):
        start = _moment(rng, since, until)
        finished = rng.random() < 0.85
        marks = Decimal(rng.randint(0, 20)) / 2 if finished else None
        state.add(
            "quiz_attempts",
            {
                "quiz": quiz,
                "userid": uid,
                "attempt": attempt,
                "uniqueid": state.reserve("question_usages"),
                "layout": "1,2,3,4,0",
                "state": "finished" if finished else "inprogress",
                "timestart": start,
                "timefinish": start + 1_200 if finished else 0,
                "timemodified": start + 1_200,
                "sumgrades": marks,
            },
        )
        last = max(last, start + 1_200)
        if marks is not None:
            best = marks if best is None else max(best, marks)
    if best is not None:
        # quiz.sumgrades is 10 and quiz.grade 20: the grade is twice the marks.
        state.add(
            "quiz_grades", {"quiz": quiz, "userid": uid, "grade": best * 2, "timemodified": last}
        )


def _messages(state: SiteState, rng: random.Random, learners: list[int]) -> None:
    if len(learners) < 2:
        return
    for _ in range(max(1, len(learners) // 3)):
        pair = sorted(rng.sample(learners, 2))
        at = _moment(rng, state.start, state.now)
        conversation = state.add(
            "message_conversations",
            {"type": 1, "convhash": _hash("pair", *pair), "enabled": 1, "timecreated": at},
        )
        for uid in pair:
            state.add(
                "message_conversation_members",
                {"conversationid": conversation, "userid": uid, "timecreated": at},
            )
        for n in range(rng.randint(1, 4)):
            state.add(
                "messages",
                {
                    "useridfrom": rng.choice(pair),
                    "conversationid": conversation,
                    "fullmessage": _text(rng, 1),
                    "fullmessageformat": 0,
                    "smallmessage": _text(rng, 1),
                    "timecreated": at + n * 3_600,
                },
            )
    members = rng.sample(learners, min(4, len(learners)))
    at = _moment(rng, state.start, state.now)
    group = state.add(
        "message_conversations",
        {"type": 2, "name": "Groupe de révision", "enabled": 1, "timecreated": at},
    )
    for uid in members:
        state.add(
            "message_conversation_members",
            {"conversationid": group, "userid": uid, "timecreated": at},
        )
        state.add(
            "messages",
            {
                "useridfrom": uid,
                "conversationid": group,
                "fullmessage": _text(rng, 1),
                "timecreated": at + uid,
            },
        )


def _badges(state: SiteState, rng: random.Random, learners: list[int]) -> None:
    course = min(state.courses, default=None)
    badges = [
        state.add(
            "badge",
            {
                "name": name,
                "description": "Décerné à la fin du parcours.",
                "usercreated": _TEACHER,
                "usermodified": _TEACHER,
                "issuername": "Plateforme de formation",
                "issuerurl": "https://lms.example.org",
                "type": 1 if course_id is None else 2,
                "courseid": course_id,
                "message": "",
                "messagesubject": "",
                "status": 1,
                "timecreated": state.start,
                "timemodified": state.start,
            },
        )
        for name, course_id in (("Assiduité", None), ("Premiers secours", course))
    ]
    for uid in learners:
        for badge in badges:
            if rng.random() < 0.2:
                issued = _moment(rng, state.users[uid][0], state.now)
                state.add(
                    "badge_issued",
                    {
                        "badgeid": badge,
                        "userid": uid,
                        "uniquehash": _hash("badge", badge, uid),
                        "dateissued": issued,
                        "dateexpire": None if rng.random() < 0.7 else issued + 730 * DAY,
                        "visible": int(rng.random() < 0.5),
                    },
                )


def _notes(state: SiteState, rng: random.Random, started: list[tuple[int, int, int]]) -> None:
    for uid, cid, since in started:
        if rng.random() < 0.25:
            # Personal notes ("draft") only their author sees: not the learner's data.
            state_value = rng.choice(("public", "public", "site", "draft"))
            state.add(
                "post",
                {
                    "module": "notes",
                    "userid": uid,
                    "courseid": cid,
                    "content": _text(rng, 1),
                    "format": 1,
                    "publishstate": state_value,
                    "uniquehash": "",
                    "subject": "",
                    "created": since,
                    "lastmodified": since,
                    "usermodified": _TEACHER,
                },
            )


def _profile_fields(state: SiteState, rng: random.Random, learners: list[int]) -> None:
    fields = [
        state.add(
            "user_info_field",
            {
                "shortname": shortname,
                "name": name,
                "datatype": datatype,
                "categoryid": 1,
                "sortorder": n,
                "param1": "\n".join(_LEVELS) if datatype == "menu" else None,
            },
        )
        for n, (shortname, name, datatype) in enumerate(_PROFILE_FIELDS, start=1)
    ]
    for uid in learners:
        if rng.random() < 0.5:
            state.add(
                "user_info_data",
                {"userid": uid, "fieldid": fields[0], "data": f"Entreprise {uid % 17}"},
            )
        if rng.random() < 0.5:
            state.add(
                "user_info_data",
                {"userid": uid, "fieldid": fields[1], "data": rng.choice(_LEVELS)},
            )
