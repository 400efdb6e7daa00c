"""Fixture glossaries: one per course, with entries, aliases, categories, ratings and tags.

Added after every other step, from a random source of its own: a site populated with
glossaries holds the same rows in the other tables, plus the glossary module, its course
modules and their contexts at the end. Concepts are numbered so that each is unique.
"""

from __future__ import annotations

import random

from learnprivacy.testing._moodle_content import _moment
from learnprivacy.testing._moodle_state import SiteState

__all__ = ["add_glossaries"]

_GLOSSARY_MODULE = 7
_COURSE_LEVEL = 50
_MODULE_LEVEL = 70
_CONCEPTS = ("Compétence", "Évaluation formative", "Tutorat", "Référentiel", "Jalon")
_DEFINITIONS = (
    "Ce que l'apprenant sait mettre en œuvre en situation.",
    "Une évaluation qui sert à apprendre, pas à noter.",
    "L'accompagnement d'un apprenant par un pair ou un formateur.",
)


def add_glossaries(state: SiteState, seed: int) -> None:
    """A glossary in each course with activities, and entries by some of its learners."""
    rng = random.Random(seed * 104_729 + 31)  # noqa: S311 - synthetic data, not security
    state.add("modules", {"id": _GLOSSARY_MODULE, "name": "glossary", "search": "", "visible": 1})
    learners: dict[int, list[tuple[int, int]]] = {}
    for row in state.rows["course_completions"]:
        if row["timestarted"]:
            learners.setdefault(row["course"], []).append((row["userid"], row["timestarted"]))
    for cid in sorted(state.course_modules):
        start = state.courses[cid][0]
        glossary = state.add(
            "glossary",
            {"course": cid, "name": "Lexique du cours", "intro": "", "assessed": 1, "scale": 3,
             "timecreated": start, "timemodified": start},
        )  # fmt: skip
        cmid = state.add(
            "course_modules",
            {"course": cid, "module": _GLOSSARY_MODULE, "instance": glossary,
             "section": len(state.course_modules[cid]) + 1, "added": start, "completion": 0},
        )  # fmt: skip
        context = state.context(_MODULE_LEVEL, cmid, state.context_of[(_COURSE_LEVEL, cid)])
        category = state.add("glossary_categories", {"glossaryid": glossary, "name": "Notions"})
        authors = learners.get(cid, [])
        for uid, since in authors:
            if rng.random() < 0.4:
                continue
            for _ in range(rng.choice((1, 2))):
                at = _moment(rng, since, state.now)
                _entry(state, rng, glossary, context, category, uid, at, authors)


def _entry(
    state: SiteState,
    rng: random.Random,
    glossary: int,
    context: int,
    category: int,
    uid: int,
    at: int,
    authors: list[tuple[int, int]],
) -> None:
    number = len(state.rows["glossary_entries"]) + 1
    eid = state.add(
        "glossary_entries",
        {"glossaryid": glossary, "userid": uid,
         "concept": f"{rng.choice(_CONCEPTS)} {number}", "definition": rng.choice(_DEFINITIONS),
         "approved": int(rng.random() < 0.8), "timecreated": at, "timemodified": at},
    )  # fmt: skip
    if rng.random() < 0.5:
        state.add("glossary_alias", {"entryid": eid, "alias": f"terme {eid}"})
    if rng.random() < 0.5:
        state.add("glossary_entries_categories", {"categoryid": category, "entryid": eid})
    if rng.random() < 0.4:
        tag = state.add(
            "tag",
            {"userid": uid, "tagcollid": 1, "name": f"notion-{eid}", "rawname": f"Notion-{eid}"},
        )
        state.add(
            "tag_instance",
            {"tagid": tag, "component": "mod_glossary", "itemtype": "glossary_entries",
             "itemid": eid, "contextid": context, "tiuserid": 0, "timecreated": at,
             "timemodified": at},
        )  # fmt: skip
    raters = [other for other, _ in authors if other != uid]
    if raters and rng.random() < 0.6:
        state.add(
            "rating",
            {"contextid": context, "component": "mod_glossary", "ratingarea": "entry",
             "itemid": eid, "scaleid": -1, "rating": rng.randint(1, 3),
             "userid": rng.choice(raters), "timecreated": at + 3_600, "timemodified": at + 3_600},
        )  # fmt: skip
