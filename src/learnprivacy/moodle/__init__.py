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
from learnprivacy.moodle._issues import ScanIssues
from learnprivacy.moodle._provider import MoodleProvider
from learnprivacy.moodle._registry import Category, DataRegistry, Purpose
from learnprivacy.moodle._registry_write import insert_registry, registry_rows
from learnprivacy.moodle._report import MoodleReport, moodle_report
from learnprivacy.moodle._schema import MoodleSchema

__all__ = [
    "Category",
    "DataRegistry",
    "MoodleDatabase",
    "MoodleProvider",
    "MoodleReport",
    "MoodleSchema",
    "Purpose",
    "ScanIssues",
    "insert_registry",
    "moodle_report",
    "registry_rows",
]
