"""What the mini-LMS accepts: request bodies, validated before anything is stored.

Pydantic checks shapes and sizes here; learnprivacy's records check meaning (a valid
e-mail address, a score within its range) when they are built. Both kinds of error
become a 422 naming the field, never quoting the value.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from learnprivacy.records import ProgressStatus

__all__ = ["CertificateIn", "Enrolment", "ProgressIn", "RequestIn"]


class Enrolment(BaseModel):
    """A learner signing up for a course (its invoice is issued at once)."""

    model_config = ConfigDict(extra="forbid")
    username: str = Field(min_length=1, max_length=100)
    email: str = Field(max_length=320)
    given_name: str = Field(min_length=1, max_length=200)
    family_name: str = Field(min_length=1, max_length=200)
    course_id: str = Field(min_length=1, max_length=100)
    billing_address: str = Field(min_length=1, max_length=500)


class ProgressIn(BaseModel):
    """A status (and a score out of ``max_score``) reached in a course."""

    model_config = ConfigDict(extra="forbid")
    course_id: str = Field(min_length=1, max_length=100)
    status: ProgressStatus
    score: float | None = None
    max_score: float = Field(default=100, gt=0)
    minutes_spent: int | None = Field(default=None, ge=0)


class CertificateIn(BaseModel):
    """The course a certificate is asked for."""

    model_config = ConfigDict(extra="forbid")
    course_id: str = Field(min_length=1, max_length=100)


class RequestIn(BaseModel):
    """A data-subject request filed from the learner's account page."""

    model_config = ConfigDict(extra="forbid")
    learner_id: str = Field(min_length=1, max_length=100)
    type: Literal["access", "erasure"]
