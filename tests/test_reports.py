"""Recipient-scoped reports and k-anonymous aggregates."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from learnprivacy.crypto import Pseudonymiser
from learnprivacy.errors import ConfigurationError, ValidationError
from learnprivacy.export import to_dataframe, to_records
from learnprivacy.export._reports import SUBJECT_COLUMN
from learnprivacy.export.reports import ReportProfile, build_report, k_anonymous_aggregate
from learnprivacy.records import Certificate, Learner, Progress, Score
from learnprivacy.synthetic import generate_organisation
from tests import KEY, NOW, sample

EMPLOYER = ReportProfile(
    recipient="employer",
    fields={"Progress": ["course_id", "status", "score.scaled"], "Certificate": ["course_id"]},
    pseudonym_domain="report:employer",
    description="Training follow-up for the employer",
)
FUNDER = ReportProfile(
    recipient="opco",
    fields={"Progress": ["course_id", "status", "time_spent"]},
    pseudonym_domain="report:opco",
)


def _pseudonyms(profile: ReportProfile) -> Pseudonymiser:
    return Pseudonymiser(KEY, domain=profile.pseudonym_domain)


@pytest.fixture(scope="module")
def org() -> Any:
    """A seeded synthetic training organisation (names, e-mails, invoices...)."""
    return generate_organisation(now=NOW, seed=11, learners=60)


def _all_text(paths: list[Path]) -> str:
    return "\n".join(p.read_text("utf-8") for p in paths)


def test_reports_hold_only_pseudonyms_and_allowed_fields(org: Any, tmp_path: Path) -> None:
    """No learner id, name, e-mail or unlisted field reaches the recipient's files."""
    report = build_report(EMPLOYER, org.records(), pseudonyms=_pseudonyms(EMPLOYER))
    paths = report.write(tmp_path)
    text = _all_text(paths)
    for learner in org.learners:
        assert learner.id not in text
        assert learner.email not in text
        assert learner.family_name not in text
    for certificate in org.certificates:
        assert certificate.verification_code not in text
    for path in paths:
        if path.suffix == ".csv":
            header = next(csv.reader(io.StringIO(path.read_text("utf-8"))))
            kind = path.stem.removeprefix("employer-")
            assert tuple(header) == EMPLOYER.columns(kind)
        else:
            document = json.loads(path.read_text("utf-8"))
            allowed = set(EMPLOYER.columns(document["record_type"]))
            assert all(set(row) <= allowed for row in document["rows"])
    assert EMPLOYER.columns("Progress") == (SUBJECT_COLUMN, "course_id", "status", "score.scaled")


def test_recipients_get_unlinkable_pseudonyms(org: Any) -> None:
    """Employer and funder name the same learners with disjoint, stable pseudonyms."""
    employer = build_report(EMPLOYER, org.records(), pseudonyms=_pseudonyms(EMPLOYER))
    funder = build_report(FUNDER, org.records(), pseudonyms=_pseudonyms(FUNDER))
    again = build_report(EMPLOYER, org.records(), pseudonyms=_pseudonyms(EMPLOYER))

    def subjects(report: Any) -> set[str]:
        return {row[SUBJECT_COLUMN] for row in report.to_records()}

    assert subjects(employer)
    assert subjects(funder)
    assert subjects(employer).isdisjoint(subjects(funder))
    assert subjects(employer) == subjects(again)
    # Same learners behind them: one pseudonym per learner in each report.
    assert len(subjects(employer)) == len(subjects(funder))


def test_groups_default_to_the_learners_organisation(org: Any, tmp_path: Path) -> None:
    """Rows are grouped by organisation; learners without one are left out."""
    report = build_report(EMPLOYER, org.records(), pseudonyms=_pseudonyms(EMPLOYER))
    organisations = {lr.organisation_id for lr in org.learners if lr.organisation_id}
    assert set(report.groups) == organisations
    without = {lr.id for lr in org.learners if lr.organisation_id is None}
    hidden = {_pseudonyms(EMPLOYER).pseudonym(i) for i in without}
    assert hidden.isdisjoint({row[SUBJECT_COLUMN] for row in report.to_records()})
    paths = report.write(tmp_path, formats=("csv",))
    assert {p.parent.name for p in paths} <= {o.replace("/", "_") for o in organisations}


def test_explicit_groups_and_hostile_group_names(tmp_path: Path) -> None:
    """A mapping (or function) chooses the groups; group names become safe folders."""
    t0 = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    records = [
        sample(Progress, id=f"P{i}", learner_id=f"L{i}", course_id="C", recorded_at=t0)
        for i in range(3)
    ]
    groups = {"L0": "../../outside", "L1": "=cmd|x", "L2": None}
    report = build_report(
        FUNDER, records, pseudonyms=_pseudonyms(FUNDER), groups=lambda lid: groups.get(lid)
    )
    assert set(report.groups) == {"../../outside", "=cmd|x"}
    paths = report.write(tmp_path / "out")
    for path in paths:
        assert path.resolve().is_relative_to((tmp_path / "out").resolve())
    assert list(tmp_path.iterdir()) == [tmp_path / "out"]


def test_score_expands_to_its_parts() -> None:
    """Allowing "score" gives the four parts; "score.scaled" only that one."""
    profile = ReportProfile(
        recipient="r", fields={"Progress": ["score"]}, pseudonym_domain="report:r"
    )
    assert profile.columns("Progress") == (
        SUBJECT_COLUMN,
        "score.raw",
        "score.min",
        "score.max",
        "score.scaled",
    )
    record = sample(Progress, course_id="C", score=Score(raw=15, min=0, max=20))
    report = build_report(profile, [record], pseudonyms=_pseudonyms(profile), groups={"L1": "g"})
    (row,) = report.rows("g", "Progress")
    assert row["score.scaled"] == 0.75
    assert row["score.raw"] == 15


@pytest.mark.parametrize(
    "fields",
    [
        {"Progress": ["learner_id"]},  # the internal id
        {"Learner": ["id"]},  # the learner's own id
        {"Progress": ["nonexistent"]},
        {"Progress": ["score.secret"]},
        {"Progress": ["course_id.part"]},
        {"Unknown": ["x"]},
        {"Progress": "course_id"},  # a string, not a list
        {},
    ],
)
def test_profile_refuses_bad_allow_lists(fields: Any) -> None:
    """Identifiers, unknown fields or types and malformed lists are configuration errors."""
    with pytest.raises(ConfigurationError):
        ReportProfile(recipient="r", fields=fields, pseudonym_domain="report:r")


def test_pseudonymiser_must_use_the_profile_domain(org: Any) -> None:
    """A pseudonymiser of another domain would link recipients: refused."""
    with pytest.raises(ConfigurationError):
        build_report(EMPLOYER, org.records(), pseudonyms=_pseudonyms(FUNDER))


def test_report_rows_for_notebooks(org: Any) -> None:
    """to_records gives flat rows with group and record type."""
    report = build_report(EMPLOYER, org.records(), pseudonyms=_pseudonyms(EMPLOYER))
    rows = report.to_records()
    assert rows
    assert {row["record_type"] for row in rows} == {"Progress", "Certificate"}
    assert all("group" in row and SUBJECT_COLUMN in row for row in rows)


# -- k-anonymity ------------------------------------------------------------------------


def _rows(spec: list[tuple[str, str, int, float | None]]) -> list[dict[str, Any]]:
    """Anonymised progress rows: (course, learner token, count, scaled score)."""
    out = []
    for course, learner, count, scaled in spec:
        out += [
            {"course_id": course, "learner_id": learner, "score": {"scaled": scaled}}
            for _ in range(count)
        ]
    return out


def test_small_groups_are_suppressed() -> None:
    """Groups under k learners vanish; their number, not their size, is reported."""
    rows = _rows(
        [(c, f"{c}-{n}", 1, 0.5) for c in ("BIG",) for n in range(6)]
        + [("SMALL", f"s{n}", 1, 0.9) for n in range(4)]
        + [("ONE", "x", 30, 1.0)]  # 30 rows but one learner
    )
    result = k_anonymous_aggregate(rows, by=["course_id"], k=5, measures=["score.scaled"])
    assert [row["course_id"] for row in result.rows] == ["BIG"]
    assert result.rows[0]["learners"] == 6
    assert result.rows[0]["mean_score.scaled"] == 0.5
    assert result.suppressed_groups == 2
    assert all(row["learners"] >= 5 for row in result.rows)


def test_means_from_too_few_learners_are_blanked() -> None:
    """A large group whose measure only k-1 learners have gets no mean."""
    rows = _rows([("C", f"l{n}", 1, 0.8 if n < 4 else None) for n in range(10)])
    result = k_anonymous_aggregate(rows, by=["course_id"], k=5, measures=["score.scaled"])
    (row,) = result.rows
    assert row["learners"] == 10
    assert row["mean_score.scaled"] is None


def test_rows_without_a_person_column_are_refused(org: Any) -> None:
    """Rows that cannot say whose they are are refused, not counted one person each (five
    rows of one learner once passed as five learners); learner_field=None is explicit."""
    rows = [{"course_id": "C", "status": "passed"} for _ in range(5)]
    with pytest.raises(ValidationError, match="learner_id"):
        k_anonymous_aggregate(rows, by=["course_id", "status"], k=5)
    result = k_anonymous_aggregate(rows, by=["course_id", "status"], k=5, learner_field=None)
    assert result.rows[0]["learners"] == 5
    by_course = k_anonymous_aggregate(
        org.progress, by=["course_id", "status"], k=5, measures=["time_spent", "score.scaled"]
    )
    assert by_course.rows
    assert all(row["learners"] >= 5 for row in by_course.rows)


@settings(max_examples=50, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from("ABCD"), st.integers(0, 12), st.sampled_from([0.1, 0.5, None])),
        max_size=120,
    ),
    st.integers(2, 8),
)
def test_every_published_group_has_k_learners(
    spec: list[tuple[str, int, float | None]], k: int
) -> None:
    """Whatever the data: published groups have >= k learners, and every group is counted."""
    rows = [{"course_id": c, "learner_id": f"L{n}", "score": {"scaled": s}} for c, n, s in spec]
    result = k_anonymous_aggregate(rows, by=["course_id"], k=k, measures=["score.scaled"])
    groups = {c for c, _, _ in spec}
    assert len(result.rows) + result.suppressed_groups == len(groups)
    for row in result.rows:
        learners = {n for c, n, _ in spec if c == row["course_id"]}
        assert row["learners"] == len(learners) >= k
        scored = {n for c, n, s in spec if c == row["course_id"] and s is not None}
        assert (row["mean_score.scaled"] is None) == (len(scored) < k)


def test_aggregate_options_and_csv(tmp_path: Path) -> None:
    """k below 2 or no grouping is refused; text measures are rejected; CSV is safe."""
    with pytest.raises(ConfigurationError):
        k_anonymous_aggregate([], by=["course_id"], k=1)
    with pytest.raises(ConfigurationError):
        k_anonymous_aggregate([], by=[], k=5)
    with pytest.raises(ValidationError):
        k_anonymous_aggregate([{"c": "x", "m": "text"}], by=["c"], k=2, measures=["m"])
    rows = [{"course_id": "=HYPERLINK(1)", "learner_id": f"L{n}"} for n in range(3)]
    result = k_anonymous_aggregate(rows, by=["course_id"], k=2)
    path = result.write_csv(tmp_path / "agg.csv")
    assert path.read_bytes() == b"course_id,learners,records\r\n'=HYPERLINK(1),3,3\r\n"
    assert result.to_dict()["k"] == 2


# -- notebook helpers ---------------------------------------------------------------------


def test_to_records_flattens_records_and_rows() -> None:
    """Records become flat dicts with their type; nested values get dotted columns."""
    record = sample(Certificate, id="C1", course_id="X", verification_code="V")
    (flat,) = to_records([record])
    assert flat["record_type"] == "Certificate"
    assert flat["issued_at"] == NOW.isoformat()
    assert to_records([{"a": {"b": 1}}]) == [{"a.b": 1}]
    with pytest.raises(ConfigurationError):
        to_records([object()])


def test_to_dataframe_with_or_without_pandas() -> None:
    """With pandas a DataFrame; without it a ConfigurationError naming the extra."""
    learner = sample(
        Learner,
        username="u",
        email="u@example.org",
        given_name="A",
        family_name="B",
        created_at=NOW,
    )
    try:
        import pandas  # noqa: F401
    except ImportError:
        with pytest.raises(ConfigurationError, match="pandas"):
            to_dataframe([learner])
        return
    frame = to_dataframe([learner])
    assert list(frame["record_type"]) == ["Learner"]


def test_reports_never_overwrite_files(org: Any, tmp_path: Path) -> None:
    """Writing a report where one was already written is refused, the first one kept."""
    report = build_report(EMPLOYER, org.records(), pseudonyms=_pseudonyms(EMPLOYER))
    first = report.write(tmp_path)
    before = {p: p.read_bytes() for p in first}
    with pytest.raises(ConfigurationError):
        report.write(tmp_path)
    assert {p: p.read_bytes() for p in first} == before
    stats = k_anonymous_aggregate(org.progress, by=["course_id"], k=5)
    stats.write_csv(tmp_path / "stats.csv")
    with pytest.raises(ConfigurationError):
        stats.write_csv(tmp_path / "stats.csv")
