"""Writes that skip ``save()``: ``bulk_update``, ``loaddata``, ``QuerySet.update`` and
deletes that cascade, on the example LMS.

``bulk_update`` and ``loaddata`` of personal fields store tokens bound to each row under
its learner's key; a fixture holding a token instead of a value is refused whole. A
restricted row (GDPR Art. 18) is never changed nor deleted by any of them: not by an
update, a bulk update, a fixture over its key, a delete cascading from its learner or
its course, nor an ``on_delete=SET_NULL`` from a deleted tutor. Each refusal raises
``RestrictedRecordError`` and leaves every row as it was.
"""

from __future__ import annotations

import datetime as dt
import json
import tempfile
from decimal import Decimal
from pathlib import Path
from typing import Any
from unittest import mock

from django.contrib.auth.models import User
from django.core.management import call_command
from django.db import connections
from django.test import TransactionTestCase

from learnprivacy.django import lp_lookup
from learnprivacy.django._restrictions import restrict as restrict_rows
from learnprivacy.django._settings import runtime
from learnprivacy.django.models import Restriction
from learnprivacy.errors import (
    DecryptionError,
    PlaintextError,
    RestrictedRecordError,
    ValidationError,
)
from lms.models import Course, Enrolment, ForumPost, Invoice, Profile

NOW = dt.datetime(2026, 6, 15, 12, 0, tzinfo=dt.UTC)


def raw(sql: str, params: list[object] | None = None) -> list[tuple[object, ...]]:
    """Rows read behind the ORM."""
    with connections["default"].cursor() as cursor:
        cursor.execute(sql, params or [])
        return [tuple(row) for row in cursor.fetchall()]


def restrict(model: type, key: object) -> None:
    """List a row as restricted, as an erasure or a sweep does for a kept row."""
    listed = [(key, "p1_test", "legal hold")]
    restrict_rows(model._meta.db_table, listed, now=NOW, using="default")


def everything() -> dict[str, list[tuple[object, ...]]]:
    """Every row of the example's tables, raw, to compare before and after a refusal."""
    tables = ["auth_user", "lms_profile", "lms_course", "lms_enrolment", "lms_forumpost"]
    return {t: raw(f"SELECT * FROM {t} ORDER BY id") for t in tables}


class BulkUpdateTests(TransactionTestCase):
    """``bulk_update`` of personal fields binds each value to its own row."""

    databases = {"default", "learnprivacy_keys"}

    def setUp(self) -> None:
        runtime().keyring.clear_cache()
        self.profiles = []
        for i in range(3):
            user = User.objects.create(username=f"b{i}", last_login=NOW)
            self.profiles.append(
                Profile.objects.create(user=user, phone=f"+33 1 0{i}", city="Metz", joined=NOW)
            )

    def test_bulk_update_stores_tokens_bound_to_each_row(self) -> None:
        """New values are tokens at rest, read back as set, found by blind index; a
        token written for one row does not open in another."""
        loaded = list(Profile.objects.order_by("pk"))
        for i, item in enumerate(loaded):
            item.phone = f"+33 7 7{i}"
            item.city = f"Brest {i}"
        Profile.objects.bulk_update(loaded, ["phone", "city"], batch_size=2)
        stored = raw("SELECT id, phone, city FROM lms_profile ORDER BY id")
        for (_key, phone, city), i in zip(stored, range(3), strict=True):
            # A whole plaintext, not a stretch of it: "7" and a digit turn up in a
            # token's base64 by chance; a space never does.
            assert phone.startswith("lp1."), phone
            assert f"+33 7 7{i}" not in phone
            assert "Brest" not in city
        runtime().keyring.clear_cache()
        again = list(Profile.objects.order_by("pk"))
        assert [p.phone for p in again] == ["+33 7 70", "+33 7 71", "+33 7 72"]
        assert [p.city for p in again] == ["Brest 0", "Brest 1", "Brest 2"]
        assert Profile.objects.get(phone=lp_lookup("+33 7 71")).pk == again[1].pk
        assert not Profile.objects.filter(phone=lp_lookup("+33 1 01")).exists()
        # The instances keep their plaintext after the call.
        assert loaded[0].phone == "+33 7 70"
        # A token moved to another row does not open there.
        first, second = stored[0], stored[1]
        with connections["default"].cursor() as cursor:
            cursor.execute("UPDATE lms_profile SET phone = %s WHERE id = %s", [first[1], second[0]])
        with self.assertRaises(DecryptionError):
            _ = Profile.objects.get(pk=second[0]).phone

    def test_single_field_writes_take_the_cipher_short_path(self) -> None:
        """Writes that encrypt one field at a time (``save(update_fields=...)``,
        ``bulk_update``) of a model under a purpose scope take the cipher's short path
        once the learner's key is in use (the cache vouches for a key on its second
        checked use); the values read back as written."""
        from unittest import mock

        from learnprivacy.crypto._cipher import FieldCipher
        from learnprivacy.crypto._validate import DEFAULT_SCOPE
        from learnprivacy.django._bind import spec_of

        assert spec_of(Profile).spec.scope != DEFAULT_SCOPE
        loaded = list(Profile.objects.order_by("pk"))
        for item in loaded:
            item.city = "Metz"
        Profile.objects.bulk_update(loaded, ["city"])  # each key's second use
        checked = mock.patch.object(FieldCipher, "_encrypt", side_effect=AssertionError)
        with checked:
            loaded[0].city = "Nancy"
            loaded[0].save(update_fields=["city"])
            for i, item in enumerate(loaded):
                item.phone = f"+33 5 0{i}"
            Profile.objects.bulk_update(loaded, ["phone"])
        runtime().keyring.clear_cache()
        again = list(Profile.objects.order_by("pk"))
        assert [p.phone for p in again] == ["+33 5 00", "+33 5 01", "+33 5 02"]
        assert [p.city for p in again] == ["Nancy", "Metz", "Metz"]

    def test_expressions_carrying_plaintext_are_still_refused(self) -> None:
        """Only the CASE of bound tokens bulk_update builds passes: an update() with
        plaintext wrapped in Value, Case or Cast, or a copy of another column, is
        refused and writes nothing."""
        from django.db.models import Case, F, TextField, Value, When
        from django.db.models.functions import Cast

        key = self.profiles[0].pk
        before = raw("SELECT id, phone, city FROM lms_profile ORDER BY id")
        attempts = [
            Value("+33 0 00"),
            Case(When(pk=key, then=Value("+33 0 00")), default=Value(None)),
            Cast(Value("+33 0 00"), output_field=TextField()),
            F("city"),
        ]
        for attempt in attempts:
            with self.assertRaises(PlaintextError):
                Profile.objects.filter(pk=key).update(phone=attempt)
        assert raw("SELECT id, phone, city FROM lms_profile ORDER BY id") == before

    def test_bulk_update_of_a_restricted_row_changes_nothing(self) -> None:
        """One restricted row in the batch: RestrictedRecordError, no row changed."""
        restrict(Profile, self.profiles[1].pk)
        before = raw("SELECT id, phone, city FROM lms_profile ORDER BY id")
        loaded = list(Profile.objects.order_by("pk"))
        for item in loaded:
            item.city = "Changed"
        with self.assertRaises(RestrictedRecordError):
            Profile.objects.bulk_update(loaded, ["city"])
        assert raw("SELECT id, phone, city FROM lms_profile ORDER BY id") == before

    def test_queryset_update_of_restricted_rows_is_refused(self) -> None:
        """``update()`` of a non-personal column reaching a restricted row is refused."""
        user = self.profiles[0].user
        invoice = Invoice.objects.create(
            user=user, billing_name="B Zero", amount=Decimal("10"), issued_at=NOW
        )
        other = Invoice.objects.create(
            user=user, billing_name="B Zero", amount=Decimal("20"), issued_at=NOW
        )
        restrict(Invoice, invoice.pk)
        with self.assertRaises(RestrictedRecordError):
            Invoice.objects.filter(user=user).update(amount=Decimal("0"))
        assert Invoice.objects.get(pk=invoice.pk).amount == Decimal("10")
        assert Invoice.objects.get(pk=other.pk).amount == Decimal("20")
        # Rows that are not restricted still update.
        assert Invoice.objects.filter(pk=other.pk).update(amount=Decimal("21")) == 1

    def _raced(self, write: Any) -> list[str]:
        """What happened, in order, when ``write(invoice)`` of a learner's invoice ran
        while an erasure of that learner in another connection started just after the
        write's first restriction lookup (``any_restricted``) and had 2 s to finish:
        ``"written"`` or ``"refused"`` for the write, ``"erased"`` or an error's name for
        the erasure."""
        from learnprivacy.django import _bind
        from lms.tests import erasing

        user = self.profiles[0].user
        invoice = Invoice.objects.create(
            user=user, billing_name="B Zero", amount=Decimal("10"), issued_at=NOW
        )
        check, order = _bind.any_restricted, []
        intruder = erasing(user.pk, order)

        def racing(bound: object, using: str) -> bool:
            found = check(bound, using)
            if not intruder.is_alive() and not order:
                intruder.start()
                intruder.join(2)  # it finishes, or waits on the write's lock
            return found

        with mock.patch.object(_bind, "any_restricted", racing):
            try:
                write(invoice)
                order.append("written")
            except RestrictedRecordError:
                order.append("refused")
        intruder.join(60)
        return order

    def test_an_update_racing_the_erasure_that_restricts_its_row_never_changes_it(
        self,
    ) -> None:
        """Attack: just after ``QuerySet.update()`` found no restricted row, an erasure in
        another connection restricts the learner's invoice (kept by law) and commits;
        then the UPDATE changed the restricted row. The update now holds its rows from
        before the check: the erasure waits for it, or gives up at the lock."""
        order = self._raced(
            lambda invoice: Invoice.objects.filter(pk=invoice.pk).update(amount=Decimal("1"))
        )
        assert order[:2] != ["erased", "written"], order

    def test_an_upsert_racing_the_erasure_that_restricts_its_row_never_rewrites_it(
        self,
    ) -> None:
        """Attack: just after ``bulk_create(update_conflicts=True)`` found no restricted
        row, an erasure in another connection restricts the learner's invoice (kept by
        law) and commits; then the upsert rewrote the restricted row. The upsert now
        checks and writes in one transaction, the colliding rows held from before the
        check: the erasure waits for it, or gives up at the lock."""

        def upsert(invoice: Invoice) -> None:
            again = Invoice(
                pk=invoice.pk,
                user=invoice.user,
                billing_name="B Zero",
                amount=Decimal("1"),
                issued_at=NOW,
            )
            Invoice.objects.bulk_create(
                [again], update_conflicts=True, unique_fields=["id"], update_fields=["amount"]
            )

        order = self._raced(upsert)
        assert order[:2] != ["erased", "written"], order

    def test_a_delete_racing_the_erasure_that_restricts_its_row_never_deletes_it(
        self,
    ) -> None:
        """Attack: just after a delete's restriction check found the learner's invoice
        free, an erasure in another connection restricts it (kept by law) and commits;
        then the DELETE removed the restricted row, which the erasure reports kept. The
        delete now holds its row from before the check."""
        from learnprivacy.django import _bind
        from lms.tests import erasing

        user = self.profiles[0].user
        invoice = Invoice.objects.create(
            user=user, billing_name="B Zero", amount=Decimal("10"), issued_at=NOW
        )
        check, order = _bind.check_held, []
        intruder = erasing(user.pk, order)

        def racing(bound: Any, key: Any, using: str) -> None:
            check(bound, key, using)
            if bound.spec.table == "lms_invoice" and not intruder.is_alive() and not order:
                intruder.start()
                intruder.join(2)  # it finishes, or waits on the delete's lock

        with mock.patch.object(_bind, "check_held", racing):
            try:
                Invoice.objects.get(pk=invoice.pk).delete()
                order.append("deleted")
            except RestrictedRecordError:
                order.append("refused")
        intruder.join(60)
        assert order[:2] != ["erased", "deleted"], order

    def test_a_blind_index_written_on_its_own_is_refused(self) -> None:
        """A blind index is computed from its field: copied onto another row on its own
        (``update``, ``bulk_update``, ``save(update_fields=...)``), it would make
        ``lp_lookup`` of one learner's phone answer with another learner's row. Each is
        refused, naming table and column, and changes nothing."""
        first, second = self.profiles[0], self.profiles[1]
        stolen = raw("SELECT phone_bidx FROM lms_profile WHERE id = %s", [first.pk])[0][0]
        before = raw("SELECT id, phone, phone_bidx FROM lms_profile ORDER BY id")
        loaded = Profile.objects.get(pk=second.pk)
        loaded.phone_bidx = stolen
        writes = [
            lambda: Profile.objects.filter(pk=second.pk).update(phone_bidx=stolen),
            lambda: Profile.objects.bulk_update([loaded], ["phone_bidx"]),
            lambda: loaded.save(update_fields=["phone_bidx"]),
        ]
        for write in writes:
            with self.assertRaises(ValidationError) as refused:
                write()
            assert "lms_profile.phone_bidx" in str(refused.exception)
        assert raw("SELECT id, phone, phone_bidx FROM lms_profile ORDER BY id") == before
        found = Profile.objects.filter(phone=lp_lookup("+33 1 00"))
        assert [p.pk for p in found] == [first.pk]


class MovedRowTests(TransactionTestCase):
    """A row's tokens are bound to its key and learner: a write that changes either
    without re-encrypting the values would leave them unreadable (and shredded with the
    old learner's keys). ``update(author=...)``, ``update(id=...)``,
    ``bulk_update(..., ["author"])`` and ``save(update_fields=["author"])`` are refused,
    naming table and column, and change nothing; a full save re-encrypts the values."""

    databases = {"default", "learnprivacy_keys"}

    def test_moving_a_row_past_its_tokens_is_refused(self) -> None:
        runtime().keyring.clear_cache()
        ana = User.objects.create(username="ana", last_login=NOW)
        bob = User.objects.create(username="bob", last_login=NOW)
        course = Course.objects.create(code="M1", title="Course")
        post = ForumPost.objects.create(author=ana, course=course, body="Ana's", posted_at=NOW)
        before = raw("SELECT id, author_id, body FROM lms_forumpost")
        loaded = ForumPost.objects.get(pk=post.pk)
        loaded.author = bob
        moves = [
            lambda: ForumPost.objects.filter(pk=post.pk).update(author=bob),
            lambda: ForumPost.objects.filter(pk=post.pk).update(author_id=bob.pk),
            lambda: ForumPost.objects.filter(pk=post.pk).update(id=post.pk + 100),
            lambda: ForumPost.objects.bulk_update([loaded], ["author"]),
            lambda: loaded.save(update_fields=["author"]),
        ]
        for move in moves:
            with self.assertRaises(ValidationError) as refused:
                move()
            assert "lms_forumpost." in str(refused.exception)
            assert "Ana" not in str(refused.exception)
        assert raw("SELECT id, author_id, body FROM lms_forumpost") == before
        loaded.save()
        runtime().keyring.clear_cache()
        moved = ForumPost.objects.get(pk=post.pk)
        assert (moved.author_id, moved.body) == (bob.pk, "Ana's")


class UnparsableValueTests(TransactionTestCase):
    """A personal value that does not parse as its field's type is refused with the
    library's ``ValidationError`` naming table and column. Django's own message quotes
    the value (“12,5” value must be a decimal number.), which then reached logs and
    error reports."""

    databases = {"default", "learnprivacy_keys"}

    def test_the_refusal_never_quotes_the_value(self) -> None:
        runtime().keyring.clear_cache()
        ana = User.objects.create(username="ana", last_login=NOW)
        course = Course.objects.create(code="U1", title="Course")
        enrolment = Enrolment(user=ana, course=course, enrolled_at=NOW, grade="12,5")
        with self.assertRaises(ValidationError) as refused:
            enrolment.save()
        assert "lms_enrolment.grade" in str(refused.exception)
        assert "12,5" not in str(refused.exception)
        assert not Enrolment.objects.exists()
        profile = Profile(user=ana, phone="+33 1", city="Metz", joined=NOW)
        profile.birth_date = "17/05/1990"
        with self.assertRaises(ValidationError) as refused:
            profile.save()
        assert "lms_profile.birth_date" in str(refused.exception)
        assert "17/05/1990" not in str(refused.exception)
        assert not Profile.objects.exists()


class LoaddataTests(TransactionTestCase):
    """Fixtures with plaintext personal values are encrypted as they load."""

    databases = {"default", "learnprivacy_keys"}

    def setUp(self) -> None:
        runtime().keyring.clear_cache()

    def load(self, objects: list[dict[str, object]]) -> None:
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "fixture.json"
            path.write_text(json.dumps(objects), encoding="utf-8")
            call_command("loaddata", str(path), verbosity=0)

    @staticmethod
    def fixture(user: int, profile: int, phone: str) -> list[dict[str, object]]:
        return [
            {
                "model": "auth.user",
                "pk": user,
                "fields": {
                    "username": f"fx{user}",
                    "password": "!",
                    "date_joined": "2026-01-01T00:00:00Z",
                },
            },
            {
                "model": "lms.profile",
                "pk": profile,
                "fields": {
                    "user": user,
                    "phone": phone,
                    "city": "Dijon",
                    "birth_date": "1999-02-03",
                    "joined": "2026-01-01T00:00:00Z",
                },
            },
        ]

    def test_plaintext_fixture_is_encrypted_on_load(self) -> None:
        """Tokens at rest, plaintext on load, blind index filled, bound to the row."""
        self.load(self.fixture(500, 900, "+33 3 80 00 00 00"))
        phone, city, birth = raw("SELECT phone, city, birth_date FROM lms_profile WHERE id = 900")[
            0
        ]
        for stored in (phone, city, birth):
            assert "+33" not in str(stored)
            assert "Dijon" not in str(stored)
            assert "1999" not in str(stored)
        runtime().keyring.clear_cache()
        loaded = Profile.objects.get(pk=900)
        assert (loaded.phone, loaded.city, loaded.birth_date) == (
            "+33 3 80 00 00 00",
            "Dijon",
            dt.date(1999, 2, 3),
        )
        assert Profile.objects.get(phone=lp_lookup("+33 3 80 00 00 00")).pk == 900
        # dumpdata gives plaintext (serializers see plaintext), and loads back the same.
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "dump.json"
            call_command("dumpdata", "lms.profile", output=str(path), verbosity=0)
            dumped = json.loads(path.read_text(encoding="utf-8"))
        assert dumped[0]["fields"]["phone"] == "+33 3 80 00 00 00"
        Profile.objects.filter(pk=900).delete()
        self.load(dumped)
        runtime().keyring.clear_cache()
        assert Profile.objects.get(pk=900).city == "Dijon"

    def test_fixture_holding_a_token_is_refused_whole(self) -> None:
        """A token where a value is expected: PlaintextError, and nothing of the
        fixture is loaded (the user row before it either)."""
        source = Profile.objects.create(
            user=User.objects.create(username="src", last_login=NOW),
            phone="+33 9",
            city="Caen",
            joined=NOW,
        )
        token = raw("SELECT phone FROM lms_profile WHERE id = %s", [source.pk])[0][0]
        with self.assertRaises(PlaintextError):
            self.load(self.fixture(501, 901, token))
        assert not User.objects.filter(pk=501).exists()
        assert not Profile.objects.filter(pk=901).exists()

    def test_fixture_over_a_restricted_row_is_refused(self) -> None:
        """A fixture whose key names a restricted row does not overwrite it."""
        self.load(self.fixture(502, 902, "+33 2 00"))
        restrict(Profile, 902)
        before = everything()
        with self.assertRaises(RestrictedRecordError):
            self.load(self.fixture(502, 902, "+33 2 99"))
        assert everything() == before


class CascadeTests(TransactionTestCase):
    """Deletes that cascade (or SET_NULL) into a restricted row are refused whole."""

    databases = {"default", "learnprivacy_keys"}

    def setUp(self) -> None:
        runtime().keyring.clear_cache()
        self.ana = User.objects.create(username="ana", last_login=NOW)
        self.tutor = User.objects.create(username="tutor", last_login=NOW)
        Profile.objects.create(user=self.ana, phone="+33 4", city="Lyon", joined=NOW)
        self.course = Course.objects.create(code="C1", title="Course")
        self.enrolment = Enrolment.objects.create(
            user=self.ana, course=self.course, enrolled_at=NOW, grade=15, tutor=self.tutor
        )
        ForumPost.objects.create(author=self.ana, course=self.course, body="Hi", posted_at=NOW)
        restrict(Enrolment, self.enrolment.pk)

    def test_deleting_the_learner_cascading_into_a_restricted_row_deletes_nothing(self) -> None:
        """user.delete() and a queryset delete of users: refused, every row stays."""
        before = everything()
        with self.assertRaises(RestrictedRecordError):
            self.ana.delete()
        assert everything() == before
        with self.assertRaises(RestrictedRecordError):
            User.objects.filter(username__in=["ana", "tutor"]).delete()
        assert everything() == before

    def test_deleting_the_course_is_refused(self) -> None:
        """A model that is not declared cascades into the restricted row: refused."""
        before = everything()
        with self.assertRaises(RestrictedRecordError):
            self.course.delete()
        assert everything() == before

    def test_set_null_into_a_restricted_row_is_refused(self) -> None:
        """Deleting the tutor would null the restricted enrolment's tutor: refused."""
        before = everything()
        with self.assertRaises(RestrictedRecordError):
            self.tutor.delete()
        assert everything() == before
        assert Enrolment.objects.get(pk=self.enrolment.pk).tutor_id == self.tutor.pk

    def test_restricted_account_row_cannot_be_deleted_nor_saved(self) -> None:
        """auth.User is declared through declare() (no encrypted field): its restricted
        rows are guarded too."""
        restrict(User, self.ana.pk)
        before = everything()
        with self.assertRaises(RestrictedRecordError):
            User.objects.get(pk=self.ana.pk).delete()
        account = User.objects.get(pk=self.ana.pk)
        account.first_name = "Changed"
        with self.assertRaises(RestrictedRecordError):
            account.save()
        assert everything() == before

    def test_unrestricted_rows_still_cascade(self) -> None:
        """Once the restriction ends, the same delete goes through."""
        Restriction.objects.all().delete()
        self.ana.delete()
        assert not Enrolment.objects.exists()
        assert not Profile.objects.exists()
        assert not ForumPost.objects.exists()
