"""Moodle's data registry (``tool_dataprivacy``) as typed purposes, categories and a Schedule.

Moodle assigns a *purpose* (lawful bases, retention period, protected flag) and a
*category* to contexts: per context level (``tool_dataprivacy_ctxlevel`` for the system
and user levels, ``config_plugins`` defaults for the others) and per context instance
(``tool_dataprivacy_ctxinstance``). :class:`DataRegistry` holds all of it, resolves the
purpose that applies where, and builds a learnprivacy :class:`~learnprivacy.retention.Schedule`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from learnprivacy._vocabulary import ContextLevel
from learnprivacy.basis import LawfulBasis, SpecialCategoryCondition
from learnprivacy.retention import Action, Period, RetentionRule, Schedule, Trigger

__all__ = [
    "INHERIT",
    "NOT_SET",
    "ActivitySet",
    "Category",
    "DataRegistry",
    "InstanceAssignment",
    "LevelAssignment",
    "Purpose",
]

#: ``purposeid``/``categoryid`` value meaning "use the parent context's" (Moodle's INHERIT).
INHERIT = -1
#: ``purposeid``/``categoryid`` value meaning "nothing chosen here" (Moodle's NOTSET).
NOT_SET = 0


# Where a level inherits from when it has no purpose of its own (Moodle's data_registry).
_PARENT = {
    ContextLevel.USER: ContextLevel.SYSTEM,
    ContextLevel.COURSECAT: ContextLevel.SYSTEM,
    ContextLevel.COURSE: ContextLevel.COURSECAT,
    ContextLevel.MODULE: ContextLevel.COURSE,
    ContextLevel.BLOCK: ContextLevel.COURSE,
}


@attrs.frozen(kw_only=True)
class Category:
    """A data category of the registry (``tool_dataprivacy_category``)."""

    id: int
    name: str
    description: str | None = None
    description_format: int | None = None
    created_at: dt.datetime | None = None
    modified_at: dt.datetime | None = None


@attrs.frozen(kw_only=True)
class Purpose:
    """A processing purpose of the registry (``tool_dataprivacy_purpose``).

    ``retention`` is None when Moodle's ``retentionperiod`` could not be read (reported as
    a scan issue). ``protected`` purposes keep their data for the whole period even when
    the learner asks for erasure: a legal minimum, in learnprivacy terms.
    """

    id: int
    name: str
    lawful_bases: tuple[LawfulBasis, ...]
    retention: Period | None
    protected: bool = False
    sensitive_reasons: tuple[SpecialCategoryCondition, ...] = ()
    description: str | None = None
    description_format: int | None = None
    created_at: dt.datetime | None = None
    modified_at: dt.datetime | None = None

    @property
    def basis(self) -> LawfulBasis | None:
        """The basis that governs retention: legal obligation when listed, else the first."""
        if LawfulBasis.LEGAL_OBLIGATION in self.lawful_bases:
            return LawfulBasis.LEGAL_OBLIGATION
        return self.lawful_bases[0] if self.lawful_bases else None

    def rule(self, trigger: Trigger, *, fallback: Trigger | None = None) -> RetentionRule | None:
        """This purpose's retention as a rule counted from ``trigger`` (None without period)."""
        if self.retention is None:
            return None
        return RetentionRule(
            self.retention,
            trigger,
            purpose=self.name,
            basis=self.basis,
            minimum=self.protected,
            fallback=fallback,
            action=Action.ERASE,
        )


@attrs.frozen(kw_only=True)
class LevelAssignment:
    """A purpose and category set for a whole context level.

    ``source`` is ``"ctxlevel"`` (the ``tool_dataprivacy_ctxlevel`` table, system and user
    levels) or ``"config"`` (the defaults Moodle keeps in ``config_plugins``).
    ``purpose_id``/``category_id`` may be :data:`INHERIT` or :data:`NOT_SET`.
    """

    level: ContextLevel
    purpose_id: int
    category_id: int
    source: str = "ctxlevel"
    created_at: dt.datetime | None = None
    modified_at: dt.datetime | None = None
    #: For a default of one activity type (``context_module_forum_purpose``): ``"forum"``.
    module: str | None = None


@attrs.frozen(kw_only=True)
class InstanceAssignment:
    """A purpose and category set on one context (``tool_dataprivacy_ctxinstance``).

    ``level`` and ``instance_id`` say what the context is (a course id for
    ``ContextLevel.COURSE``); they are None when the context row is missing.
    """

    context_id: int
    purpose_id: int
    category_id: int
    level: ContextLevel | None = None
    instance_id: int | None = None
    created_at: dt.datetime | None = None
    modified_at: dt.datetime | None = None


@attrs.frozen(kw_only=True)
class DataRegistry:
    """A site's purposes, categories and where they apply."""

    purposes: tuple[Purpose, ...] = ()
    categories: tuple[Category, ...] = ()
    levels: tuple[LevelAssignment, ...] = ()
    instances: tuple[InstanceAssignment, ...] = ()

    def purpose(self, purpose_id: int) -> Purpose | None:
        """The purpose with id ``purpose_id``, or None."""
        return next((p for p in self.purposes if p.id == purpose_id), None)

    def category(self, category_id: int) -> Category | None:
        """The category with id ``category_id``, or None."""
        return next((c for c in self.categories if c.id == category_id), None)

    def _level_purpose_id(self, level: ContextLevel) -> int | None:
        # The ctxlevel table wins over the config defaults (Moodle syncs them anyway).
        for source in ("ctxlevel", "config"):
            for item in self.levels:
                if (
                    item.level is level
                    and item.module is None
                    and item.source == source
                    and item.purpose_id > 0
                ):
                    return item.purpose_id
        return None

    def module_purpose(self, module: str) -> Purpose | None:
        """The default purpose of activities of one type (``"forum"``), as Moodle resolves it.

        Moodle's per-activity-type default (``context_module_forum_purpose``) when set,
        else the activity level's (module, then course, category, system).
        """
        for item in self.levels:
            if item.module == module and item.purpose_id > 0:
                return self.purpose(item.purpose_id)
        return self.level_purpose(ContextLevel.MODULE)

    def activity_purpose(
        self, activity_id: int | str, module: str, course_id: int | str | None = None
    ) -> Purpose | None:
        """The purpose in effect for one activity context, as Moodle's expiry task reads it.

        The activity context's own purpose (``tool_dataprivacy_ctxinstance``) wins; one set
        to "inherit" takes its course context's (``course_id``); otherwise the activity
        type's default (:meth:`module_purpose`). A course's own purpose does not reach its
        activities unless they inherit it.
        """
        for item in self.instances:
            if item.level is ContextLevel.MODULE and item.instance_id == int(activity_id):
                if item.purpose_id > 0:
                    return self.purpose(item.purpose_id)
                if item.purpose_id == INHERIT and course_id is not None:
                    return self.instance_purpose(ContextLevel.COURSE, int(course_id))
                break
        return self.module_purpose(module)

    def has_activity_purposes(self) -> bool:
        """Whether any activity may have a purpose other than the course level's."""
        course = self.level_purpose(ContextLevel.COURSE)
        return (
            any(item.module is not None for item in self.levels)
            or self.level_purpose(ContextLevel.MODULE) is not course
            or any(item.level is ContextLevel.MODULE for item in self.instances)
        )

    def module_defaults(self) -> dict[str, Purpose]:
        """Activity types with a default purpose of their own, by module name."""
        out: dict[str, Purpose] = {}
        for item in self.levels:
            found = self.purpose(item.purpose_id) if item.purpose_id > 0 else None
            if item.module is not None and found is not None:
                out[item.module] = found
        return out

    def level_purpose(self, level: ContextLevel | int) -> Purpose | None:
        """The purpose in effect for a context level, following Moodle's inheritance."""
        current: ContextLevel | None = ContextLevel(level)
        while current is not None:
            found = self._level_purpose_id(current)
            if found is not None:
                return self.purpose(found)
            current = _PARENT.get(current)
        return None

    def instance_purpose(self, level: ContextLevel | int, instance_id: int) -> Purpose | None:
        """The purpose in effect for one instance (a course id at ``COURSE`` level).

        An instance's own purpose wins; ``INHERIT`` and ``NOT_SET`` fall back to the
        level's effective purpose.
        """
        wanted = ContextLevel(level)
        for item in self.instances:
            if item.level is wanted and item.instance_id == instance_id and item.purpose_id > 0:
                return self.purpose(item.purpose_id)
        return self.level_purpose(wanted)

    def course_overrides(self) -> dict[int, Purpose]:
        """Courses whose context has a purpose of its own, by course id."""
        out: dict[int, Purpose] = {}
        for item in self.instances:
            if item.level is ContextLevel.COURSE and item.instance_id is not None:
                found = self.purpose(item.purpose_id) if item.purpose_id > 0 else None
                if found is not None:
                    out[item.instance_id] = found
        return out

    def schedule(
        self,
        *,
        never_logged_in: Trigger | None = Trigger.CREATED,
        course_overrides: bool = True,
        activity_types: Mapping[Any, str] | None = None,
        activity_courses: Mapping[Any, int] | None = None,
    ) -> Schedule:
        """The registry's retention as a learnprivacy Schedule.

        - ``Learner`` and ``Consent`` (user context): the user level's purpose, counted
          from the last activity; ``never_logged_in`` is the fallback trigger for accounts
          without any access date (Moodle itself never expires those; pass None to get
          ``REVIEW`` decisions for them instead);
        - ``Progress`` and ``Certificate`` (course context): the course level's purpose,
          counted from the record's own date (Moodle counts from the course end date,
          which the records do not carry; ``moodle_report`` shows Moodle's view). With
          ``course_overrides``, a course with a purpose of its own adds a rule restricted
          to that course (``where={"course_id": ...}``): its records are kept until both
          the level's and the course's retention have ended, so an override can lengthen
          retention, never shorten it;
        - ``AccessEvent`` (system context): the system level's purpose, from the event.

        ``activity_types`` maps course module ids to their activity type (``{40:
        "forum"}``, what :meth:`MoodleDatabase.activity_types
        <learnprivacy.moodle.MoodleDatabase.activity_types>` reads) and
        ``activity_courses`` their course ids. An activity context whose purpose
        (:meth:`activity_purpose`: its own, else its type's default such as
        ``context_module_forum_purpose``, else the activity level's) is not the course
        level's is governed by that purpose alone, as Moodle's expiry task governs each
        activity context by its own: a forum default of one year erases forum progress
        after a year even when the course level keeps progress five years, and a longer
        one keeps it longer. Its ``Progress`` gets the rule of its purpose
        (``where={"activity_id": ActivitySet(...)}``) and none of the course level's.

        A level without purpose, or whose purpose has no readable period, gets no rule.
        """
        own_rules, apart = self._activity_rules(activity_types or {}, activity_courses or {})
        plan: list[tuple[str, ContextLevel, Trigger, Trigger | None]] = [
            ("Learner", ContextLevel.USER, Trigger.LAST_ACTIVITY, never_logged_in),
            ("Consent", ContextLevel.USER, Trigger.LAST_ACTIVITY, None),
            ("Progress", ContextLevel.COURSE, Trigger.CREATED, None),
            ("Certificate", ContextLevel.COURSE, Trigger.ISSUED, None),
            ("AccessEvent", ContextLevel.SYSTEM, Trigger.CREATED, None),
        ]
        rules: dict[type | str, list[RetentionRule]] = {}
        for name, level, trigger, fallback in plan:
            # Progress of activities governed by their own purpose escapes the course's rules.
            outside = {"activity_id": apart} if apart is not None and name == "Progress" else {}
            purpose = self.level_purpose(level)
            rule = None if purpose is None else purpose.rule(trigger, fallback=fallback)
            if rule is not None:
                rules[name] = [attrs.evolve(rule, where=outside) if outside else rule]
            if course_overrides and level is ContextLevel.COURSE:
                for course_id, own in sorted(self.course_overrides().items()):
                    extra = own.rule(trigger)
                    if extra is not None and own is not purpose:
                        where = {"course_id": str(course_id), **outside}
                        rules.setdefault(name, []).append(attrs.evolve(extra, where=where))
        if own_rules:
            rules.setdefault("Progress", []).extend(own_rules)
        return Schedule(rules, name="moodle-data-registry")

    def _activity_rules(
        self, activity_types: Mapping[Any, str], activity_courses: Mapping[Any, int]
    ) -> tuple[list[RetentionRule], ActivitySet | None]:
        """Rules for activities whose purpose is not the course level's, and their ids.

        One rule per purpose, selecting its activities through an :class:`ActivitySet`;
        the second item selects every activity *not* governed by the course level (None
        when there is none).
        """
        course = self.level_purpose(ContextLevel.COURSE)
        groups: dict[int, tuple[Purpose, set[str]]] = {}
        unruled: set[str] = set()
        courses = {str(k): v for k, v in activity_courses.items()}
        for cmid, module in activity_types.items():
            key = str(cmid)
            own = self.activity_purpose(key, module, courses.get(key))
            if own is None or own is course:
                continue
            if own.retention is None:
                unruled.add(key)  # no readable period: no rule, a person reviews it
                continue
            groups.setdefault(own.id, (own, set()))[1].add(key)
        out: list[RetentionRule] = []
        apart: set[str] = set(unruled)
        for own, ids in sorted(groups.values(), key=lambda item: item[0].id):
            rule = own.rule(Trigger.CREATED)
            if rule is not None:
                label = f"activities under {own.name!r}"
                out.append(attrs.evolve(rule, where={"activity_id": ActivitySet(ids, label)}))
            apart |= ids
        if not apart:
            return out, None
        return out, ActivitySet(apart, "activities with a purpose of their own", negated=True)


class ActivitySet:
    """A ``where`` value selecting activities by id: equal to each id it holds.

    ``RetentionRule.where`` compares a record's field to a value with ``==``; an
    ``ActivitySet`` compares equal to any activity id in ``ids`` (or, ``negated``, to any
    other value, ``None`` included), so one rule covers every activity of a purpose in a
    constant-time look-up. Its text names how many activities it holds, never which.
    """

    __slots__ = ("_key", "ids", "label", "negated")

    def __init__(self, ids: Iterable[str], label: str, *, negated: bool = False) -> None:
        self.ids = frozenset(str(i) for i in ids)
        self.label = label
        self.negated = negated
        ordered = sorted(self.ids, key=lambda i: (len(i), i))
        # Disjoint sets never share their smallest id: the text tells rules apart.
        self._key = f"{'not ' if negated else ''}{len(self.ids)} {label}" + (
            f" from {ordered[0]}" if ordered else ""
        )

    def __eq__(self, other: object) -> bool:
        if isinstance(other, ActivitySet):
            return (self.ids, self.negated) == (other.ids, other.negated)
        found = isinstance(other, str) and other in self.ids
        return found != self.negated

    def __ne__(self, other: object) -> bool:
        return not self == other

    def __hash__(self) -> int:
        return hash((self.ids, self.negated))

    def __repr__(self) -> str:
        return self._key
