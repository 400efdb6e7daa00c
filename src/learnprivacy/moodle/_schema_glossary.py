"""The glossary activity's tables (mod_glossary).

Transcribed from Moodle 4.5's ``mod/glossary/db/install.xml``: ``glossary`` (the activity),
``glossary_entries`` (each concept and its definition, written by ``userid``),
``glossary_alias`` (other words an entry is linked from), ``glossary_categories`` (a
glossary's categories) and ``glossary_entries_categories`` (which entry is in which).
"""

from __future__ import annotations

from learnprivacy.moodle._columns import char, integer, text
from learnprivacy.moodle._table import MoodleTables

__all__ = ["GLOSSARY_TABLES", "glossary_tables"]


def glossary_tables(tables: MoodleTables) -> None:
    """Add mod_glossary's tables to ``tables``."""
    tables.add(
        "glossary",
        integer("course", 10, default=0),
        char("name", 255),
        text("intro", notnull=True),
        integer("introformat", 4, default=0),
        integer("allowduplicatedentries", 2, default=0),
        char("displayformat", 50, default="dictionary"),
        integer("mainglossary", 2, default=0),
        integer("defaultapproval", 2, default=1),
        integer("globalglossary", 2, default=0),
        integer("assessed", 10, default=0),
        integer("scale", 10, default=0),
        integer("timecreated", 10, default=0),
        integer("timemodified", 10, default=0),
        indexes=("course",),
    )
    tables.add(
        "glossary_entries",
        integer("glossaryid", 10, default=0),
        integer("userid", 10, default=0),
        char("concept", 255),
        text("definition", notnull=True),
        integer("definitionformat", 2, default=0),
        integer("definitiontrust", 2, default=0),
        char("attachment", 100),
        integer("timecreated", 10, default=0),
        integer("timemodified", 10, default=0),
        integer("teacherentry", 2, default=0),
        integer("sourceglossaryid", 10, default=0),
        integer("usedynalink", 2, default=0),
        integer("casesensitive", 2, default=0),
        integer("fullmatch", 2, default=1),
        integer("approved", 2, default=1),
        indexes=("userid", "concept", "glossaryid"),
    )
    tables.add(
        "glossary_alias",
        integer("entryid", 10, default=0),
        char("alias", 255),
        indexes=("entryid",),
    )
    tables.add(
        "glossary_categories",
        integer("glossaryid", 10, default=0),
        char("name", 255),
        integer("usedynalink", 2, default=1),
        indexes=("glossaryid",),
    )
    tables.add(
        "glossary_entries_categories",
        integer("categoryid", 10, default=0),
        integer("entryid", 10, default=0),
        indexes=("categoryid", "entryid"),
    )


#: Unprefixed names of these tables.
GLOSSARY_TABLES = frozenset(
    {
        "glossary",
        "glossary_entries",
        "glossary_alias",
        "glossary_categories",
        "glossary_entries_categories",
    }
)
