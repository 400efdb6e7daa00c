"""Erasure of the account row, a model the project does not own (``auth.User``).

When nothing keeps it, the account is deleted as Django deletes it and the request
completes; when kept rows refer to it, it is anonymised in place, kept restricted, and
the outcome says what keeps it; a hold keeps it untouched.

Attacks: the account left behind without a lawful reason (a table nobody declared
protects it) must still fail the manager's check; a held account is never deleted, by
the erasure, a sweep, or a delete; a second sweep must not anonymise or audit again.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import User
from django.db import connections
from django.test import TransactionTestCase

from learnprivacy.django._privacy import get_privacy
from learnprivacy.django._restrictions import reasons_of, restrict
from learnprivacy.django._settings import runtime
from learnprivacy.django.models import AuditEntry, Restriction
from learnprivacy.errors import IntegrityError, RestrictedRecordError
from learnprivacy.retention import Hold
from lms.models import Enrolment, ForumPost, Invoice, Profile
from lms.tests import (
    LONG_AGO,
    NOW,
    EnrolledLearnerCase,
    erasure_request,
    learner,
    profile,
    protected_account,
)


class AccountErasureTests(EnrolledLearnerCase):
    """What an erasure does to the learner's account."""

    def test_nothing_kept_the_account_is_deleted_and_the_request_completes(self) -> None:
        """No invoice: every row goes, the account too (as Django deletes it), nothing
        is listed as restricted, and the request is COMPLETED (it was FAILED at
        ``erase_providers``: the account stayed, anonymised, under the learner id)."""
        LogEntry.objects.create(user=self.ana, action_flag=1, object_repr="x")
        book, request_id, state = erasure_request(get_privacy(), self.ana)
        assert state == "completed", list(book.history(request_id))[-2:]
        step = book.get(request_id).step("erase_providers")
        assert step is not None
        assert [(o.action.value, o.reason) for o in step.records] == [
            ("erase", "all data of the component")
        ]
        assert not User.objects.filter(pk=self.ana.pk).exists()
        assert not Profile.objects.exists()
        assert not Enrolment.objects.exists()
        # Django's on_delete: the admin log's CASCADE went with the account.
        assert not LogEntry.objects.exists()
        assert not Restriction.objects.exists()
        erased = [e for e in AuditEntry.objects.filter(action="erase") if e.record_type == "User"]
        assert len(erased) == 1
        assert get_privacy().audit.verify()

    def test_an_invoice_keeps_the_account_anonymised_and_says_why(self) -> None:
        """With an invoice under its legal minimum: the invoice stays as it is, the
        account it refers to stays anonymised and restricted, and the outcome names
        the invoice, its basis and how long; the request completes."""
        Invoice.objects.create(
            user=self.ana, billing_name="Ana Silva", amount=Decimal("120"), issued_at=NOW
        )
        result = get_privacy().erase_subject(self.ana.pk, now=NOW)
        assert (result.erased, result.restricted, result.anonymised) == (3, 1, 1)
        assert result.left == ()
        kept = {k.table: k for k in result.kept}
        assert set(kept) == {"lms_invoice", "auth_user"}
        assert not kept["lms_invoice"].anonymised
        assert "Art. 6(1)(c)" in kept["lms_invoice"].reason
        assert "kept until 2036-06-15" in kept["lms_invoice"].reason
        account = kept["auth_user"]
        assert account.anonymised
        assert account.rows == 1
        assert account.reason.startswith("kept, anonymised: 1 lms_invoice row(s)")
        assert "Art. 6(1)(c)" in account.reason
        row = User.objects.get(pk=self.ana.pk)
        assert (row.email, row.first_name, row.is_active) == ("", "", False)
        assert "ana" not in row.username
        assert not row.has_usable_password()
        assert reasons_of("auth_user", [self.ana.pk], using="default") == {
            str(self.ana.pk): account.reason
        }
        # The manager's check accepts what is kept with a reason: the request completes.
        book, request_id, state = erasure_request(get_privacy(), self.ana)
        assert state == "completed", list(book.history(request_id))[-2:]
        assert get_privacy().kept_by_law(str(self.ana.pk)) == {"lms_invoice": 1, "auth_user": 1}
        # The request says what is kept, not "all data of the component" (it did).
        step = book.get(request_id).step("erase_providers")
        assert step is not None
        said = {(o.record_id, o.action.value): o.reason for o in step.records}
        assert set(said) == {("", "erase"), ("lms_invoice", "restrict"), ("auth_user", "restrict")}
        assert said[("", "erase")] == "the rest of the component's data"
        assert said[("lms_invoice", "restrict")].startswith("1 row(s) kept restricted")
        assert "Ana" not in " ".join(AuditEntry.objects.values_list("details", flat=True))

    def test_an_account_anonymisation_the_database_undid_is_not_reported(self) -> None:
        """Attack: a trigger puts the account's e-mail address back during the
        anonymising UPDATE (a guard keeping it as registered). The erasure reported the
        account anonymised and kept, and shredded the learner's keys, while the row kept
        the address. The row is read back: the erasure raises and rolls back."""
        Invoice.objects.create(
            user=self.ana, billing_name="Ana Silva", amount=Decimal("120"), issued_at=NOW
        )
        connection = connections["default"]
        sqlite = connection.vendor == "sqlite"
        with connection.cursor() as cursor:
            if sqlite:
                cursor.execute(
                    "CREATE TRIGGER keep AFTER UPDATE OF email ON auth_user BEGIN "
                    "UPDATE auth_user SET email = OLD.email WHERE id = NEW.id; END"
                )
            else:
                cursor.execute(
                    "CREATE FUNCTION keep() RETURNS trigger AS $$ BEGIN "
                    "NEW.email := OLD.email; RETURN NEW; END $$ LANGUAGE plpgsql"
                )
                cursor.execute(
                    "CREATE TRIGGER keep BEFORE UPDATE ON auth_user "
                    "FOR EACH ROW EXECUTE FUNCTION keep()"
                )
        try:
            with self.assertRaises(IntegrityError) as caught:
                get_privacy().erase_subject(self.ana.pk, now=NOW)
        finally:
            with connection.cursor() as cursor:
                cursor.execute(
                    "DROP TRIGGER keep"
                    if sqlite
                    else "DROP TRIGGER keep ON auth_user; DROP FUNCTION keep()"
                )
        assert "ana@" not in str(caught.exception)
        assert User.objects.get(pk=self.ana.pk).email == "ana@example.org"
        assert Profile.objects.filter(user=self.ana).exists()
        assert not runtime().keyring.is_shredded(str(self.ana.pk), "contract")
        assert not AuditEntry.objects.exists()

    def test_attack_an_account_left_without_a_reason_fails(self) -> None:
        """A table the project did not declare protects the account (``on_delete=
        PROTECT``): the account is anonymised but nothing lawful keeps it, so it is
        reported as left, not restricted, and the request FAILS truthfully."""
        with protected_account(self.ana):
            result = get_privacy().erase_subject(self.ana.pk, now=NOW)
            assert result.kept == ()
            assert [(k.table, k.rows) for k in result.left] == [("auth_user", 1)]
            assert "django_admin_log" in result.left[0].reason
            assert not Restriction.objects.filter(table="auth_user").exists()
            row = User.objects.get(pk=self.ana.pk)
            assert (row.email, row.is_active) == ("", False)
            book, request_id, state = erasure_request(get_privacy(), self.ana)
        assert state == "failed"
        assert list(book.history(request_id))[-1].to_dict()["detail"]["step"] == "erase_providers"

    def test_attack_a_dry_run_says_a_protected_account_stays(self) -> None:
        """The dry run tries the account's deletion (rolled back) instead of guessing:
        a table the project did not declare protects it, so the dry run reports it left,
        as the erasure then does, and changes nothing (it reported it deleted)."""
        audited = AuditEntry.objects.count()
        with protected_account(self.ana):
            dry = get_privacy().erase_subject(self.ana.pk, now=NOW, dry_run=True)
            assert dry.dry_run
            assert [(k.table, k.rows) for k in dry.left] == [("auth_user", 1)]
            assert "django_admin_log" in dry.left[0].reason
            assert (dry.erased, dry.anonymised) == (3, 1)
            row = User.objects.get(pk=self.ana.pk)
            assert (row.username, row.email, row.is_active) == ("ana", "ana@example.org", True)
            assert Profile.objects.filter(user=self.ana).exists()
            assert Enrolment.objects.filter(user=self.ana).exists()
            assert not Restriction.objects.exists()
            assert AuditEntry.objects.count() == audited
            done = get_privacy().erase_subject(self.ana.pk, now=NOW)
        assert (done.erased, done.anonymised, done.left) == (dry.erased, dry.anonymised, dry.left)
        assert not User.objects.get(pk=self.ana.pk).is_active

    def test_a_dry_run_says_a_free_account_is_deleted(self) -> None:
        """Control: nothing protects the account; the dry run counts it erased (profile,
        enrolment, post and the account), deletes nothing, and the erasure agrees."""
        dry = get_privacy().erase_subject(self.ana.pk, now=NOW, dry_run=True)
        assert (dry.erased, dry.anonymised, dry.left, dry.kept) == (4, 0, (), ())
        assert User.objects.filter(pk=self.ana.pk).exists()
        assert ForumPost.objects.filter(author=self.ana).exists()
        done = get_privacy().erase_subject(self.ana.pk, now=NOW)
        assert (done.erased, done.anonymised) == (4, 0)
        assert not User.objects.filter(pk=self.ana.pk).exists()

    def test_attack_a_held_account_is_never_deleted(self) -> None:
        """A hold on the learner: the account is kept as it is (not even anonymised),
        restricted; deleting it, by hand or through a sweep, is refused."""
        hold = Hold(reason="litigation", subject=str(self.ana.pk))
        privacy = get_privacy(holds=[hold])
        result = privacy.erase_subject(self.ana.pk, now=NOW)
        assert result.erased == 0
        assert {k.table for k in result.kept} >= {"auth_user", "lms_profile"}
        assert not any(k.anonymised for k in result.kept)
        row = User.objects.get(pk=self.ana.pk)
        assert (row.username, row.email, row.is_active) == ("ana", "ana@example.org", True)
        with self.assertRaises(RestrictedRecordError):
            row.delete()
        privacy.sweep(now=NOW + dt.timedelta(days=3650))
        assert User.objects.get(pk=self.ana.pk).username == "ana"
        assert Profile.objects.filter(user=self.ana).exists()

    def test_restricted_rows_of_another_learner_keep_the_account(self) -> None:
        """Bob's enrolment, restricted, names Ana as tutor (``SET_NULL``): deleting Ana's
        account would change it, so the account is kept, anonymised, with that reason,
        and Bob's row is untouched."""
        bob = learner("bob")
        enrolment = Enrolment.objects.create(
            user=bob, course=self.course, enrolled_at=LONG_AGO, tutor=self.ana
        )
        restrict(
            "lms_enrolment", [(enrolment.pk, "p1_bob", "legal hold")], now=NOW, using="default"
        )
        result = get_privacy().erase_subject(self.ana.pk, now=NOW)
        [account] = [k for k in result.kept if k.table == "auth_user"]
        assert account.anonymised
        assert "lms_enrolment" in account.reason
        assert Enrolment.objects.get(pk=enrolment.pk).tutor_id == self.ana.pk
        assert User.objects.get(pk=self.ana.pk).email == ""
        book, request_id, state = erasure_request(get_privacy(), self.ana)
        assert state == "completed", list(book.history(request_id))[-2:]


class AccountSweepTests(TransactionTestCase):
    """Sweeps reach accounts last, and keep what kept rows need."""

    databases = {"default", "learnprivacy_keys"}

    def test_an_invoice_keeps_a_swept_account_and_a_second_sweep_changes_nothing(self) -> None:
        """An inactive learner with a recent invoice: the profile goes, the account is
        kept anonymised (the invoice runs its own retention), and running the sweep
        again neither anonymises nor audits anything more."""
        runtime().keyring.clear_cache()
        later = NOW + dt.timedelta(days=6 * 365)
        ana = learner("ana")
        profile(ana)
        Invoice.objects.create(user=ana, billing_name="Ana Silva", amount=1, issued_at=NOW)
        first = get_privacy().sweep(now=later)
        assert (first.erased, first.anonymised) == (1, 1)
        row = User.objects.get(pk=ana.pk)
        assert (row.email, row.is_active) == ("", False)
        [reason] = reasons_of("auth_user", [ana.pk], using="default").values()
        assert reason.startswith("kept, anonymised: 1 lms_invoice row(s)")
        entries = AuditEntry.objects.count()
        second = get_privacy().sweep(now=later)
        assert (second.erased, second.anonymised, second.restricted) == (0, 0, 0)
        assert AuditEntry.objects.count() == entries
        # Once the invoice's ten years have passed, both go.
        third = get_privacy().sweep(now=NOW + dt.timedelta(days=3660 + 30))
        assert third.erased == 2
        assert not User.objects.filter(pk=ana.pk).exists()
        assert not Restriction.objects.exists()


class SkippedAccountDeleteTests(TransactionTestCase):
    """Attack: the database silently skips the ``DELETE`` of the account (a SQLite
    trigger; a rule on PostgreSQL). The erasure reported the account erased and shredded
    the learner's keys while the row kept the name and e-mail address; it now raises and
    rolls back, the keys kept."""

    databases = {"default", "learnprivacy_keys"}

    def test_an_account_delete_the_database_skipped_is_not_reported(self) -> None:
        runtime().keyring.clear_cache()
        cleo = learner("cleo")
        profile(cleo)
        connection = connections["default"]
        sqlite = connection.vendor == "sqlite"
        with connection.cursor() as cursor:
            cursor.execute(
                "CREATE TRIGGER keep BEFORE DELETE ON auth_user BEGIN SELECT RAISE(IGNORE); END"
                if sqlite
                else "CREATE RULE keep AS ON DELETE TO auth_user DO INSTEAD NOTHING"
            )
        try:
            with self.assertRaises(IntegrityError):
                get_privacy().erase_subject(cleo.pk, now=NOW)
        finally:
            with connection.cursor() as cursor:
                cursor.execute("DROP TRIGGER keep" if sqlite else "DROP RULE keep ON auth_user")
        assert User.objects.get(pk=cleo.pk).email == "cleo@example.org"
        assert Profile.objects.get(user=cleo).phone == "+33 6 12 34 56 78"
        assert not runtime().keyring.is_shredded(str(cleo.pk), "contract")
        assert not AuditEntry.objects.exists()
