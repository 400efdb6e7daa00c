"""Read Moodle's data registry tables into a :class:`DataRegistry`."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa

from learnprivacy._vocabulary import ContextLevel
from learnprivacy.basis import LawfulBasis, SpecialCategoryCondition
from learnprivacy.errors import ValidationError
from learnprivacy.moodle._issues import ScanIssues
from learnprivacy.moodle._registry import (
    NOT_SET,
    Category,
    DataRegistry,
    InstanceAssignment,
    LevelAssignment,
    Purpose,
)
from learnprivacy.moodle._schema import MoodleSchema
from learnprivacy.moodle._time import from_unix_lenient as from_unix
from learnprivacy.retention import Period

__all__ = ["config_name", "parse_config_name", "parse_module_config_name", "read_registry"]

_LEVEL_NAMES = {
    "system": ContextLevel.SYSTEM,
    "user": ContextLevel.USER,
    "coursecat": ContextLevel.COURSECAT,
    "course": ContextLevel.COURSE,
    "module": ContextLevel.MODULE,
    "block": ContextLevel.BLOCK,
}
_SUFFIXES = ("_purpose", "_category")


def config_name(level: ContextLevel, element: str, module: str | None = None) -> str:
    """The ``config_plugins`` name Moodle 4.5 reads for a level (or activity type) default.

    ``context_course_purpose``, ``context_module_forum_category``: Moodle's data registry
    still builds these names from the legacy context class names, so they are the ones
    a site reads back, even though Moodle 4.2+ may write the namespaced form too.
    """
    name = next(k for k, v in _LEVEL_NAMES.items() if v is level)
    middle = f"_{module}" if module else ""
    return f"context_{name}{middle}_{element}"


def parse_config_name(name: str) -> tuple[ContextLevel, str] | None:
    """``(level, "purpose" | "category")`` for a level default's config name, else None.

    Moodle names these after the context class: ``context_course_purpose`` (what Moodle
    4.5 reads) or ``core\\context\\course_purpose``. Defaults for one activity type
    (``context_module_forum_purpose``) are not level defaults and give None: see
    :func:`parse_module_config_name`.
    """
    suffix = next((s for s in _SUFFIXES if name.endswith(s)), None)
    if suffix is None:
        return None
    stem = name[: -len(suffix)].rsplit("\\", 1)[-1].removeprefix("context_")
    level = _LEVEL_NAMES.get(stem)
    return None if level is None else (level, suffix[1:])


def parse_module_config_name(name: str) -> tuple[str, str] | None:
    """``(module, "purpose" | "category")`` for an activity type default, else None.

    >>> parse_module_config_name("context_module_forum_purpose")
    ('forum', 'purpose')
    """
    suffix = next((s for s in _SUFFIXES if name.endswith(s)), None)
    if suffix is None:
        return None
    stem = name[: -len(suffix)].rsplit("\\", 1)[-1].removeprefix("context_")
    module = stem.removeprefix("module_")
    if module == stem or not module.isidentifier():
        return None
    return module, suffix[1:]


def _codes(
    text: str | None, parse: Any, issues: ScanIssues, row_id: int, field: str
) -> tuple[Any, ...]:
    out = []
    for code in (text or "").split(","):
        if not code.strip():
            continue
        try:
            out.append(parse(code))
        except ValidationError:
            issues.report("tool_dataprivacy_purpose", row_id, field, "unknown code", skipped=False)
    return tuple(out)


def _purposes(
    connection: sa.Connection, schema: MoodleSchema, issues: ScanIssues
) -> Iterator[Purpose]:
    t = schema["tool_dataprivacy_purpose"]
    for row in connection.execute(sa.select(t).order_by(t.c.id)).mappings():
        try:
            retention: Period | None = Period.parse(row["retentionperiod"].strip())
        except (ValidationError, AttributeError):
            issues.report(
                "tool_dataprivacy_purpose",
                row["id"],
                "Purpose.retention",
                "not an ISO 8601 duration",
                skipped=False,
            )
            retention = None
        yield Purpose(
            id=int(row["id"]),
            name=row["name"],
            description=row["description"],
            description_format=row["descriptionformat"],
            lawful_bases=_codes(
                row["lawfulbases"],
                LawfulBasis.from_moodle,
                issues,
                row["id"],
                "Purpose.lawful_bases",
            ),
            sensitive_reasons=_codes(
                row["sensitivedatareasons"],
                SpecialCategoryCondition.from_moodle,
                issues,
                row["id"],
                "Purpose.sensitive_reasons",
            ),
            retention=retention,
            protected=bool(row["protected"]),
            created_at=from_unix(row["timecreated"]),
            modified_at=from_unix(row["timemodified"]),
        )


def _categories(connection: sa.Connection, schema: MoodleSchema) -> Iterator[Category]:
    t = schema["tool_dataprivacy_category"]
    for row in connection.execute(sa.select(t).order_by(t.c.id)).mappings():
        yield Category(
            id=int(row["id"]),
            name=row["name"],
            description=row["description"],
            description_format=row["descriptionformat"],
            created_at=from_unix(row["timecreated"]),
            modified_at=from_unix(row["timemodified"]),
        )


def _level(value: Any) -> ContextLevel | None:
    try:
        return ContextLevel(int(value))
    except (ValueError, TypeError):
        return None


def _levels(
    connection: sa.Connection, schema: MoodleSchema, issues: ScanIssues
) -> Iterator[LevelAssignment]:
    t = schema["tool_dataprivacy_ctxlevel"]
    for row in connection.execute(sa.select(t).order_by(t.c.contextlevel)).mappings():
        level = _level(row["contextlevel"])
        if level is None:
            issues.report(
                "tool_dataprivacy_ctxlevel", row["id"], "LevelAssignment.level", "unknown level"
            )
            continue
        yield LevelAssignment(
            level=level,
            purpose_id=int(row["purposeid"] or NOT_SET),
            category_id=int(row["categoryid"] or NOT_SET),
            source="ctxlevel",
            created_at=from_unix(row["timecreated"]),
            modified_at=from_unix(row["timemodified"]),
        )


def _defaults(connection: sa.Connection, schema: MoodleSchema) -> Iterator[LevelAssignment]:
    t = schema["config_plugins"]
    found: dict[ContextLevel, dict[str, int]] = {}
    modules: dict[str, dict[str, int]] = {}
    statement = sa.select(t.c.name, t.c.value).where(t.c.plugin == "tool_dataprivacy")
    for name, value in connection.execute(statement):
        parsed = parse_config_name(name)
        module = None if parsed is not None else parse_module_config_name(name)
        if parsed is None and module is None:
            continue
        try:
            number = int(str(value).strip())
        except ValueError:
            continue
        if parsed is not None:
            found.setdefault(parsed[0], {})[parsed[1]] = number
        elif module is not None:
            modules.setdefault(module[0], {})[module[1]] = number
    for name in sorted(modules):
        values = modules[name]
        yield LevelAssignment(
            level=ContextLevel.MODULE,
            purpose_id=values.get("purpose", NOT_SET),
            category_id=values.get("category", NOT_SET),
            source="config",
            module=name,
        )
    for level in sorted(found):
        values = found[level]
        yield LevelAssignment(
            level=level,
            purpose_id=values.get("purpose", NOT_SET),
            category_id=values.get("category", NOT_SET),
            source="config",
        )


def _instances(connection: sa.Connection, schema: MoodleSchema) -> Iterator[InstanceAssignment]:
    t, ctx = schema["tool_dataprivacy_ctxinstance"], schema["context"]
    statement = (
        sa.select(t, ctx.c.contextlevel, ctx.c.instanceid)
        .select_from(t.outerjoin(ctx, ctx.c.id == t.c.contextid))
        .order_by(t.c.contextid)
    )
    for row in connection.execute(statement).mappings():
        yield InstanceAssignment(
            context_id=int(row["contextid"]),
            purpose_id=int(row["purposeid"] or NOT_SET),
            category_id=int(row["categoryid"] or NOT_SET),
            level=_level(row["contextlevel"]),
            instance_id=None if row["instanceid"] is None else int(row["instanceid"]),
            created_at=from_unix(row["timecreated"]),
            modified_at=from_unix(row["timemodified"]),
        )


def read_registry(
    connection: sa.Connection, schema: MoodleSchema, issues: ScanIssues, present: set[str]
) -> DataRegistry:
    """Read every registry table in ``present`` (unprefixed names) through ``connection``."""
    return DataRegistry(
        purposes=tuple(_purposes(connection, schema, issues))
        if "tool_dataprivacy_purpose" in present
        else (),
        categories=tuple(_categories(connection, schema))
        if "tool_dataprivacy_category" in present
        else (),
        levels=(
            *(
                _levels(connection, schema, issues)
                if "tool_dataprivacy_ctxlevel" in present
                else ()
            ),
            *(_defaults(connection, schema) if "config_plugins" in present else ()),
        ),
        instances=tuple(_instances(connection, schema))
        if "tool_dataprivacy_ctxinstance" in present
        else (),
    )
