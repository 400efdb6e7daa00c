"""Write a :class:`DataRegistry` back as rows in Moodle's own column format.

:func:`registry_rows` gives plain dicts per (unprefixed) table, ready for Moodle's
``$DB->insert_record()``, a database tool or a test fixture. :func:`insert_registry` inserts
them into a target database that has Moodle's tables: another site, a staging copy, a
fixture. It is a deliberate, separate import step: :class:`MoodleDatabase` itself never
writes.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa

from learnprivacy.errors import ConfigurationError
from learnprivacy.moodle._registry import (
    Category,
    DataRegistry,
    InstanceAssignment,
    LevelAssignment,
    Purpose,
)
from learnprivacy.moodle._registry_read import config_name
from learnprivacy.moodle._schema import MoodleSchema, reset_sequences
from learnprivacy.moodle._time import to_unix

__all__ = ["REGISTRY_TABLES", "insert_registry", "registry_rows"]

#: The tables :func:`registry_rows` fills, in insertion order.
REGISTRY_TABLES = (
    "tool_dataprivacy_category",
    "tool_dataprivacy_purpose",
    "tool_dataprivacy_ctxlevel",
    "config_plugins",
    "tool_dataprivacy_ctxinstance",
)


def _stamps(
    created: dt.datetime | None, modified: dt.datetime | None, now: int, by: int
) -> dict[str, int]:
    return {
        "usermodified": by,
        "timecreated": to_unix(created) if created else now,
        "timemodified": to_unix(modified) if modified else now,
    }


def _category(item: Category, now: int, by: int) -> dict[str, Any]:
    return {
        "id": item.id,
        "name": item.name,
        "description": item.description,
        "descriptionformat": item.description_format,
        **_stamps(item.created_at, item.modified_at, now, by),
    }


def _purpose(item: Purpose, now: int, by: int) -> dict[str, Any]:
    if item.retention is None:
        raise ConfigurationError("a purpose without retention period cannot be written")
    reasons = ",".join(r.moodle_code for r in item.sensitive_reasons)
    return {
        "id": item.id,
        "name": item.name,
        "description": item.description,
        "descriptionformat": item.description_format,
        "lawfulbases": ",".join(b.moodle_code for b in item.lawful_bases),
        "sensitivedatareasons": reasons or None,
        "retentionperiod": str(item.retention),
        "protected": int(item.protected),
        **_stamps(item.created_at, item.modified_at, now, by),
    }


def _ctxlevel(item: LevelAssignment, now: int, by: int) -> dict[str, Any]:
    return {
        "contextlevel": int(item.level),
        "purposeid": item.purpose_id,
        "categoryid": item.category_id,
        **_stamps(item.created_at, item.modified_at, now, by),
    }


def _config(item: LevelAssignment) -> list[dict[str, Any]]:
    return [
        {
            "plugin": "tool_dataprivacy",
            "name": config_name(item.level, element, item.module),
            "value": str(value),
        }
        for element, value in (("purpose", item.purpose_id), ("category", item.category_id))
    ]


def _ctxinstance(item: InstanceAssignment, now: int, by: int) -> dict[str, Any]:
    return {
        "contextid": item.context_id,
        "purposeid": item.purpose_id,
        "categoryid": item.category_id,
        **_stamps(item.created_at, item.modified_at, now, by),
    }


def registry_rows(
    registry: DataRegistry,
    *,
    now: dt.datetime,
    modified_by: int = 2,
    include_instances: bool = False,
) -> dict[str, list[dict[str, Any]]]:
    """The registry as Moodle rows, keyed by unprefixed table name.

    Dates the registry does not know are ``now``; ``modified_by`` is the ``usermodified``
    user id (2 is the main administrator on a standard install). Per-context assignments
    point at context ids of the site they were read from, so they are only included with
    ``include_instances=True`` (for a copy of that same site). Purpose and category ids are
    kept; :func:`insert_registry` can renumber them for a site that already has some.
    """
    stamp = to_unix(now)
    rows: dict[str, list[dict[str, Any]]] = {name: [] for name in REGISTRY_TABLES}
    rows["tool_dataprivacy_category"] = [
        _category(c, stamp, modified_by) for c in registry.categories
    ]
    rows["tool_dataprivacy_purpose"] = [_purpose(p, stamp, modified_by) for p in registry.purposes]
    for level in registry.levels:
        if level.source == "ctxlevel":
            rows["tool_dataprivacy_ctxlevel"].append(_ctxlevel(level, stamp, modified_by))
        else:
            rows["config_plugins"].extend(_config(level))
    if include_instances:
        rows["tool_dataprivacy_ctxinstance"] = [
            _ctxinstance(i, stamp, modified_by) for i in registry.instances
        ]
    return rows


def _remap(row: dict[str, Any], purposes: dict[int, int], categories: dict[int, int]) -> None:
    # Only real ids are renumbered: INHERIT (-1) and NOT_SET (0) keep their meaning.
    if row.get("purposeid", 0) > 0:
        row["purposeid"] = purposes.get(row["purposeid"], row["purposeid"])
    if row.get("categoryid", 0) > 0:
        row["categoryid"] = categories.get(row["categoryid"], row["categoryid"])


def _replace_existing(
    connection: sa.Connection, schema: MoodleSchema, rows: dict[str, list[dict[str, Any]]]
) -> None:
    """Drop the target's own defaults the copy sets, in the same transaction.

    A site has one default per level (``tool_dataprivacy_ctxlevel.contextlevel``, unique)
    and per setting (``config_plugins`` (plugin, name), unique): the copied registry's
    assignments replace the site's, as copying means. Purposes and categories are kept.
    """
    level = schema["tool_dataprivacy_ctxlevel"]
    levels = [row["contextlevel"] for row in rows["tool_dataprivacy_ctxlevel"]]
    if levels:
        connection.execute(level.delete().where(level.c.contextlevel.in_(levels)))
    config = schema["config_plugins"]
    names = [row["name"] for row in rows["config_plugins"]]
    if names:
        connection.execute(
            config.delete().where(config.c.plugin == "tool_dataprivacy", config.c.name.in_(names))
        )
    instance = schema["tool_dataprivacy_ctxinstance"]
    contexts = [row["contextid"] for row in rows["tool_dataprivacy_ctxinstance"]]
    if contexts:
        connection.execute(instance.delete().where(instance.c.contextid.in_(contexts)))


def insert_registry(
    target: sa.Engine | sa.Connection,
    registry: DataRegistry,
    *,
    now: dt.datetime,
    prefix: str = "mdl_",
    keep_ids: bool = True,
    modified_by: int = 2,
    include_instances: bool = False,
) -> dict[str, int]:
    """Insert the registry into ``target`` (a database with Moodle's tables), in one transaction.

    With ``keep_ids=False`` purposes and categories get the target's next ids and every
    reference to them is renumbered, so the registry can join a site that has its own:
    the site's purposes and categories stay, and its level defaults (and, with
    ``include_instances``, the assignments of the same contexts) are replaced by the
    copy's. Level defaults are written under the names Moodle 4.5 reads
    (``context_course_purpose``). Returns the number of rows inserted per table.
    """
    schema = MoodleSchema(prefix)
    rows = registry_rows(
        registry, now=now, modified_by=modified_by, include_instances=include_instances
    )
    if isinstance(target, sa.Connection):
        return _insert(target, schema, rows, keep_ids)
    with target.begin() as connection:
        return _insert(connection, schema, rows, keep_ids)


def _insert(
    connection: sa.Connection,
    schema: MoodleSchema,
    rows: dict[str, list[dict[str, Any]]],
    keep_ids: bool,
) -> dict[str, int]:
    ids: dict[str, dict[int, int]] = {
        "tool_dataprivacy_category": {},
        "tool_dataprivacy_purpose": {},
    }
    for name in ("tool_dataprivacy_category", "tool_dataprivacy_purpose"):
        table = schema[name]
        for row in rows[name]:
            values = dict(row)
            old = values.pop("id")
            if keep_ids:
                values["id"] = old
            result = connection.execute(table.insert().values(**values))
            key = result.inserted_primary_key
            ids[name][old] = old if keep_ids or key is None else int(key[0])
    for name in ("tool_dataprivacy_ctxlevel", "tool_dataprivacy_ctxinstance"):
        for row in rows[name]:
            _remap(row, ids["tool_dataprivacy_purpose"], ids["tool_dataprivacy_category"])
    for row in rows["config_plugins"]:
        number = int(row["value"])
        mapping = ids[
            "tool_dataprivacy_purpose"
            if row["name"].endswith("_purpose")
            else "tool_dataprivacy_category"
        ]
        row["value"] = str(mapping.get(number, number)) if number > 0 else row["value"]
    _replace_existing(connection, schema, rows)
    for name in ("tool_dataprivacy_ctxlevel", "config_plugins", "tool_dataprivacy_ctxinstance"):
        if rows[name]:
            connection.execute(schema[name].insert(), rows[name])
    if keep_ids:
        reset_sequences(
            connection, [schema["tool_dataprivacy_category"], schema["tool_dataprivacy_purpose"]]
        )
    return {name: len(rows[name]) for name in REGISTRY_TABLES}
