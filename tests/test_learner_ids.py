"""A learner id is an opaque reference: one that looks like an e-mail address is refused.

Learner ids are kept in clear (every record joins on them) and outlive erasure in places
it reaches late; an e-mail address used as the id would survive as personal data.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from learnprivacy.errors import ValidationError
from learnprivacy.records import Certificate, Consent, Invoice, Learner, Progress
from tests import sample

AT = dt.datetime(2024, 1, 5, tzinfo=dt.UTC)
EMAIL_IDS = ["ana@example.org", "Ana.Silva@Example.ORG", " ana@mail.example.fr", "a+b@x.io"]


def _learner(learner_id: str) -> Learner:
    return sample(Learner, id=learner_id, created_at=AT)


@pytest.mark.parametrize("learner_id", EMAIL_IDS)
def test_an_email_is_refused_as_learner_id(learner_id: str) -> None:
    """Learner.id and every record's learner_id refuse an e-mail-looking value, with a
    ValidationError that does not quote it."""
    with pytest.raises(ValidationError) as caught:
        _learner(learner_id)
    assert learner_id.strip() not in str(caught.value)
    makers = [
        lambda: sample(Progress, learner_id=learner_id, recorded_at=AT),
        lambda: sample(
            Certificate, id="C1", learner_id=learner_id, issued_at=AT, verification_code="V1"
        ),
        lambda: sample(Consent, id="K1", learner_id=learner_id, given_at=AT),
        lambda: Invoice(
            id="I1",
            learner_id=learner_id,
            billing_name="Ana",
            billing_address="1 rue",
            amount=Decimal("1.00"),
            issued_at=AT,
        ),
    ]
    for make in makers:
        with pytest.raises(ValidationError) as caught:
            make()
        assert learner_id.strip() not in str(caught.value)


@pytest.mark.parametrize("learner_id", ["L00001", "moodle:42", "team@42", "u-7f3a", "42"])
def test_opaque_ids_are_accepted(learner_id: str) -> None:
    """Opaque ids stay valid, an '@' without a domain included."""
    assert _learner(learner_id).id == learner_id
