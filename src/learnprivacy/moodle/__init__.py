"""Read a Moodle site's database and data registry as learnprivacy records (read-only).

Importing this package loads SQLAlchemy (``import learnprivacy`` alone does not).

- :class:`MoodleDatabase`: the adapter. Learners from ``user`` (+ ``user_lastaccess``),
  Progress from course completions, grades and activity completions, AccessEvents from
  the standard log store, Consents from policy acceptances, Certificates from
  mod_customcert; Unix timestamps become aware UTC datetimes, ``0`` becomes None. It
  refuses to write (:class:`~learnprivacy.errors.PolicyError`).
- :class:`DataRegistry` (:class:`Purpose`, :class:`Category`...): the ``tool_dataprivacy``
  registry, its retention as a :class:`~learnprivacy.retention.Schedule`, and
  :func:`registry_rows` / :func:`insert_registry` to write it back in Moodle's format.
- :func:`moodle_report`: what the registry's retention means for the site today.
- :class:`MoodleProvider`: a privacy provider, so a Moodle learner is exported through
  a :class:`~learnprivacy.providers.PrivacyManager` like a stored one.
- :mod:`learnprivacy.testing.moodle`: a Moodle-shaped synthetic database for tests and demos.
"""

from learnprivacy.moodle._database import MoodleDatabase
from learnprivacy.moodle._issues import ScanIssue, ScanIssues
from learnprivacy.moodle._layout import MoodleContextTree, export_moodle_layout
from learnprivacy.moodle._models import MoodleCourse, MoodleUser
from learnprivacy.moodle._provider import (
    ACCEPTANCE_TYPE,
    ENROLMENT_TYPE,
    GRADE_TYPE,
    MOODLE_COMPONENT,
    MoodleProvider,
    context_of,
)
from learnprivacy.moodle._readonly import check_read_only
from learnprivacy.moodle._registry import (
    INHERIT,
    NOT_SET,
    Category,
    DataRegistry,
    InstanceAssignment,
    LevelAssignment,
    Purpose,
)
from learnprivacy.moodle._registry_write import REGISTRY_TABLES, insert_registry, registry_rows
from learnprivacy.moodle._report import CourseFinding, MoodleReport, moodle_report
from learnprivacy.moodle._schema import TABLE_NAMES, MoodleSchema
from learnprivacy.moodle._sources import tables_read
from learnprivacy.moodle._time import from_unix, to_unix

__all__ = [
    "ACCEPTANCE_TYPE",
    "ENROLMENT_TYPE",
    "GRADE_TYPE",
    "INHERIT",
    "MOODLE_COMPONENT",
    "NOT_SET",
    "REGISTRY_TABLES",
    "TABLE_NAMES",
    "Category",
    "CourseFinding",
    "DataRegistry",
    "InstanceAssignment",
    "LevelAssignment",
    "MoodleContextTree",
    "MoodleCourse",
    "MoodleDatabase",
    "MoodleProvider",
    "MoodleReport",
    "MoodleSchema",
    "MoodleUser",
    "Purpose",
    "ScanIssue",
    "ScanIssues",
    "check_read_only",
    "context_of",
    "export_moodle_layout",
    "from_unix",
    "insert_registry",
    "moodle_report",
    "registry_rows",
    "tables_read",
    "to_unix",
]
