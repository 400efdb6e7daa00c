"""Recipient-scoped reports and k-anonymous statistics.

- :class:`ReportProfile` declares what one recipient (an employer, a funder) may see:
  an allow-list of fields per record type and its own pseudonym domain;
  :func:`build_report` applies it to records and groups the rows per learner group
  (by default the learner's organisation), and :meth:`Report.write` writes CSV/JSON per
  group. Rows never carry the internal learner id nor a field outside the allow-list,
  and two recipients' pseudonyms of the same learner are unrelated.
- :func:`k_anonymous_aggregate` counts and averages records (typically the anonymised
  rows kept after retention) per group, and suppresses every group of fewer than ``k``
  learners and every mean computed from fewer than ``k`` of them.

Example::

    from learnprivacy.crypto import Pseudonymiser
    from learnprivacy.export.reports import ReportProfile, build_report

    employer = ReportProfile(
        recipient="employer",
        fields={"Progress": ["course_id", "status", "recorded_at"]},
        pseudonym_domain="report:employer",
    )
    report = build_report(
        employer, records, pseudonyms=Pseudonymiser(key, domain="report:employer")
    )
    report.write("reports/")   # reports/<organisation>/employer-Progress.csv, .json
"""

from learnprivacy.export._aggregate import AggregateReport, k_anonymous_aggregate
from learnprivacy.export._reports import Report, ReportProfile, build_report

__all__ = [
    "AggregateReport",
    "Report",
    "ReportProfile",
    "build_report",
    "k_anonymous_aggregate",
]
