"""Account and course facts read from Moodle, before they become learnprivacy records.

These hold no personal text (no names, no addresses): only ids, flags and dates, which is
what retention needs, so they are safe to print and to keep in reports.
"""

from __future__ import annotations

import datetime as dt

import attrs

__all__ = ["MoodleCourse", "MoodleUser"]


@attrs.frozen(kw_only=True)
class MoodleUser:
    """One row of Moodle's ``user`` table, as retention sees it.

    ``last_access_at`` is ``user.lastaccess``; ``last_course_access_at`` the latest
    ``user_lastaccess.timeaccess``. Moodle updates both, but not always together (imports,
    web services, restored backups), so :attr:`last_activity_at` takes the later one.
    """

    id: int
    deleted: bool
    suspended: bool
    guest: bool
    created_at: dt.datetime | None
    first_access_at: dt.datetime | None
    last_access_at: dt.datetime | None
    last_course_access_at: dt.datetime | None

    @property
    def last_activity_at(self) -> dt.datetime | None:
        """The later of ``lastaccess`` and the per-course accesses; None if never seen."""
        seen = [d for d in (self.last_access_at, self.last_course_access_at) if d is not None]
        return max(seen, default=None)

    @property
    def never_logged_in(self) -> bool:
        """True when Moodle has no access date at all for this account."""
        return self.first_access_at is None and self.last_activity_at is None


@attrs.frozen(kw_only=True)
class MoodleCourse:
    """One course (the site's front page excluded). ``end_at`` is None without end date.

    Moodle's retention of course data only starts at the course end date, so a course
    without one (``enddate = 0``, the default for years) never expires.
    """

    id: int
    shortname: str
    fullname: str
    category: int
    start_at: dt.datetime | None
    end_at: dt.datetime | None
    created_at: dt.datetime | None
    visible: bool
