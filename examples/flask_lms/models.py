"""The LMS's own models: ordinary SQLAlchemy 2 declarative classes, with privacy declared.

Every column says whether it is personal; each table names its learner (``subject``),
its purpose and its lawful basis. That is all the integration needs.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

import learnprivacy.sqlalchemy as lps
from learnprivacy import DataCategory, LawfulBasis

__all__ = ["Base", "Course", "Enrolment", "Post", "User"]


class Base(DeclarativeBase):
    """The LMS's declarative base."""


class User(Base):
    """A learner's account."""

    __tablename__ = "users"
    __privacy__ = lps.Privacy(
        subject="id",
        purpose="Learner accounts and access to the courses",
        basis=LawfulBasis.CONTRACT,
        activity="last_login_at",
        created="created_at",
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    email: Mapped[str] = lps.personal(DataCategory.CONTACT, "E-mail address", blind_index=True)
    name: Mapped[str] = lps.personal(DataCategory.IDENTITY, "Display name")
    created_at: Mapped[dt.datetime] = lps.not_personal("When the account was created")
    last_login_at: Mapped[dt.datetime | None] = lps.not_personal("Last login", nullable=True)


class Course(Base):
    """A course: no personal data, no declaration needed."""

    __tablename__ = "courses"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    title: Mapped[str] = mapped_column(String(200))


class Enrolment(Base):
    """A learner enrolled in a course, with the employer's reference for the training."""

    __tablename__ = "enrolments"
    __privacy__ = lps.Privacy(
        subject="user_id",
        purpose="Training follow-up",
        basis=LawfulBasis.CONTRACT,
        created="enrolled_at",
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    course_id: Mapped[str] = lps.not_personal("Course", ForeignKey("courses.id"))
    enrolled_at: Mapped[dt.datetime] = lps.not_personal("Enrolment date")
    employer_note: Mapped[str | None] = lps.personal(
        DataCategory.EMPLOYMENT, "Employer's note on the training", nullable=True
    )


class Post(Base):
    """A forum post."""

    __tablename__ = "forum_posts"
    __privacy__ = lps.Privacy(
        subject="author_id",
        purpose="Course forums",
        basis=LawfulBasis.CONTRACT,
        created="posted_at",
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    author_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    course_id: Mapped[str] = lps.not_personal("Course", ForeignKey("courses.id"))
    body: Mapped[str] = lps.personal(DataCategory.COMMUNICATION, "Post text")
    posted_at: Mapped[dt.datetime] = lps.not_personal("When it was posted")
