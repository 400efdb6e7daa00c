"""Plain-text rendering of a :class:`~learnprivacy.moodle.MoodleReport`."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from learnprivacy.moodle._report import MoodleReport

__all__ = ["render_text"]

_USER_LABELS = {
    "expired": "expired: Moodle would delete them now",
    "retention_running": "retention still running",
    "held_by_course_without_end_date": "held back by a course without end date",
    "held_by_course_not_expired": "held back by a course not yet expired",
    "never_logged_in": "never logged in (Moodle never expires them)",
    "not_expirable": "site administrators and guest (never expire)",
    "no_purpose": "no user purpose in the registry",
}
_COURSE_LABELS = {
    "expired": "expired (end date + retention passed)",
    "held_by_activity": "course expired, held back by an activity not yet expired",
    "retention_running": "ended, retention still running",
    "not_ended": "not ended yet",
    "no_end_date": "no end date (never expire in Moodle)",
    "no_purpose": "no course purpose in the registry",
}


def _lines(labels: dict[str, str], counts: dict[str, int]) -> list[str]:
    width = max(len(label) for label in labels.values())
    return [f"  {labels[key]:<{width}}  {counts.get(key, 0):>8}" for key in labels]


def render_text(report: MoodleReport) -> str:
    """The report as aligned plain text."""
    out = [
        f"Moodle retention report at {report.now.isoformat()} "
        f"({report.engine}, prefix {report.prefix!r}); nothing was written.",
        "",
        "Accounts: "
        + ", ".join(f"{report.accounts.get(k, 0)} {k}" for k in ("total", "live", "deleted"))
        + f" ({report.accounts.get('suspended', 0)} live ones suspended)",
        "",
    ]
    if report.user_purpose is None:
        out.append("Live accounts under Moodle's expiry rules (no user purpose set):")
    else:
        out.append(
            f"Live accounts under Moodle's expiry rules (purpose {report.user_purpose!r}, "
            f"{report.user_retention} after user.lastaccess):"
        )
    out += _lines(_USER_LABELS, report.users)
    if report.active_elsewhere:
        out.append(
            f"  of the expired, {report.active_elsewhere} show later course activity in "
            "user_lastaccess (learnprivacy counts from the later date)"
        )
    setting = "on" if report.require_all_end_dates else "off"
    out += ["", f"Courses (requireallenddatesforuserdeletion is {setting}):"]
    out += _lines(_COURSE_LABELS, report.courses)
    blocking = report.blocking_courses()
    if blocking:
        out.append("  courses without end date holding expired accounts back:")
        out += [f"    {c.shortname} (id {c.id}): {c.holding_users} accounts" for c in blocking]
    if report.activities:
        out += [
            "",
            "Activities under Moodle's expiry rules (Moodle's view: the course's end date "
            "+ the activity's own purpose, else its type's):",
        ]
        for module, counts in report.activities.items():
            shown = ", ".join(
                f"{_COURSE_LABELS.get(k, k).split(' (')[0]} {n}" for k, n in counts.items()
            )
            out.append(f"  {module}: {shown}")
    if report.deleted_awaiting_deletion:
        out += [
            "",
            "Deleted accounts whose user context Moodle's expiry task still has to delete: "
            f"{report.deleted_awaiting_deletion}",
        ]
    if report.sweep:
        out += [
            "",
            "learnprivacy's own view, NOT Moodle's: its sweep with the registry's "
            "schedule (dry run; each activity under its own purpose, counted from the "
            "record's date):",
        ]
        for name, counts in report.sweep.items():
            shown = ", ".join(f"{action} {n}" for action, n in sorted(counts.items())) or "none"
            out.append(f"  {name}: {shown}")
    leftovers = {k: v for k, v in report.deleted_leftovers.items() if v}
    if leftovers:
        out += ["", "Rows still held for deleted accounts:"]
        out += [f"  {name}: {n}" for name, n in leftovers.items()]
    if report.issues:
        out += ["", "Rows that could not be read as records (skipped or trimmed):"]
        out += [f"  {key}: {n}" for key, n in report.issues.items()]
    return "\n".join(out) + "\n"
