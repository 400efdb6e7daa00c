"""Sweeps that read the learner's records: activity from every declared activity date,
and consents that ended (expired or withdrawn), as the store's sweep does.

Attacks: an account whose login is old but whose progress is recent must not be swept
(it was, when only the account's date counted); a subscription whose consent expired
or was withdrawn must go even though its retention period runs on; one a running or
renewed consent holds, or no consent row at all, or a restriction, stays.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.contrib.auth.models import User
from django.db import connections
from django.test import TransactionTestCase

from learnprivacy.django import lp_lookup
from learnprivacy.django._privacy import get_privacy
from learnprivacy.django._restrictions import restrict
from learnprivacy.django._settings import reset_runtime, runtime
from learnprivacy.django.models import AuditEntry, Restriction
from learnprivacy.errors import IntegrityError
from lms.models import Certificate, Consent, Course, Enrolment, NewsletterSubscription, Profile
from lms.tests import command_json, protected_account

NOW = dt.datetime(2026, 6, 15, 12, 0, tzinfo=dt.UTC)
LONG_AGO = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
LAST_YEAR = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)


class ActivityTests(TransactionTestCase):
    """A learner's last activity is the latest activity date over all their rows."""

    databases = {"default", "learnprivacy_keys"}

    def setUp(self) -> None:
        runtime().keyring.clear_cache()
        course = Course.objects.create(code="A1", title="Course")
        self.active = User.objects.create(username="active", last_login=LONG_AGO)
        self.gone = User.objects.create(username="gone", last_login=LONG_AGO)
        for user, progressed in ((self.active, NOW - dt.timedelta(days=14)), (self.gone, None)):
            Profile.objects.create(user=user, phone="+33 5", city="Pau", joined=LONG_AGO)
            Enrolment.objects.create(
                user=user, course=course, enrolled_at=LONG_AGO, progressed_at=progressed
            )

    def test_recent_progress_keeps_a_learner_whose_login_is_old(self) -> None:
        """The learner with recent progress keeps account, profile and enrolment; the
        other one, as old but without progress, is swept."""
        dry = command_json("learnprivacy_sweep", "--dry-run", f"--now={NOW.isoformat()}")
        # Profile, enrolment and, once nothing refers to it, the account itself.
        assert (dry["erased"], dry["anonymised"]) == (3, 0)
        result = get_privacy().sweep(now=NOW)
        assert (result.erased, result.anonymised) == (3, 0)
        assert Profile.objects.filter(user=self.active).exists()
        assert Enrolment.objects.filter(user=self.active).exists()
        kept = User.objects.get(pk=self.active.pk)
        assert kept.is_active
        assert kept.username == "active"
        assert not Profile.objects.filter(user=self.gone).exists()
        assert not Enrolment.objects.filter(user=self.gone).exists()
        assert not User.objects.filter(pk=self.gone.pk).exists()
        assert runtime().keyring.is_shredded(str(self.gone.pk), "contract")
        assert not runtime().keyring.is_shredded(str(self.active.pk), "contract")

    def test_attack_a_dry_sweep_says_a_protected_account_stays(self) -> None:
        """A table the project did not declare protects the swept learner's account:
        the dry sweep tries the deletion (after the learner's rows, as the sweep would)
        and counts the account anonymised, not erased, as the sweep then does; the dry
        sweep changes nothing (it counted the account erased)."""
        with protected_account(self.gone):
            dry = get_privacy().sweep(now=NOW, dry_run=True)
            assert (dry.erased, dry.anonymised) == (2, 1)
            assert Profile.objects.filter(user=self.gone).exists()
            assert User.objects.get(pk=self.gone.pk).username == "gone"
            assert not Restriction.objects.exists()
            assert not AuditEntry.objects.exists()
            result = get_privacy().sweep(now=NOW)
        assert (result.erased, result.anonymised) == (2, 1)
        assert not Profile.objects.filter(user=self.gone).exists()
        assert User.objects.get(pk=self.gone.pk).username != "gone"

    def test_the_sweep_command_compacts_the_keys_when_it_shredded(self) -> None:
        """``learnprivacy_sweep`` that shredded a learner's keys ends with a key
        compaction (epoch 1, audited); ``--no-compact`` leaves it to later."""
        from learnprivacy.django import _settings
        from learnprivacy.django._keys import epoch_status

        def sweep(*extra: str) -> dict[str, Any]:
            found: dict[str, Any] = command_json(
                "learnprivacy_sweep", f"--now={NOW.isoformat()}", *extra
            )
            return found

        vault = runtime().vault
        try:
            skipped = sweep("--no-compact")
            assert skipped["shredded_subjects"] == 1
            assert "compaction" not in skipped
            assert epoch_status()["epoch"] == 0
            assert epoch_status()["erased_awaiting_compaction"] == 1
            # Nothing left to shred: a second sweep does not compact either.
            assert "compaction" not in sweep()
            other = User.objects.create(username="other", last_login=LONG_AGO)
            Profile.objects.create(user=other, phone="+33 6", city="Dax", joined=LONG_AGO)
            done = sweep()
            assert done["shredded_subjects"] == 1
            assert done["compaction"]["epoch"] == 1
            assert epoch_status()["erased_awaiting_compaction"] == 0
            actions = [e.action for e in get_privacy().audit.entries()]
            assert actions[-1] == "compact_keys"
            assert Profile.objects.get(user=self.active).phone == "+33 5"
        finally:
            # The test databases are emptied between tests; so must their vault be.
            _settings._memory_vaults.clear()
            path = getattr(vault, "path", None)
            if path is not None:
                path.unlink(missing_ok=True)
            reset_runtime()

    def test_an_ended_restriction_does_not_stop_the_sweep(self) -> None:
        """An account restricted earlier (a hold since released) that the schedule now
        erases: the restriction ends and the account is deleted (the guard on restricted
        rows does not block the sweep itself)."""
        restrict(
            "auth_user", [(self.gone.pk, "p1_test", "legal hold")], now=LONG_AGO, using="default"
        )
        result = get_privacy().sweep(now=NOW)
        assert (result.erased, result.anonymised) == (3, 0)
        assert not User.objects.filter(pk=self.gone.pk).exists()
        assert not Restriction.objects.filter(table="auth_user").exists()

    def test_progress_too_old_as_well_is_swept(self) -> None:
        """Control: when the progress is old too, the learner is swept."""
        Enrolment.objects.filter(user=self.active).update(progressed_at=LONG_AGO)
        result = get_privacy().sweep(now=NOW)
        assert (result.erased, result.anonymised) == (6, 0)
        assert not Profile.objects.exists()
        assert not User.objects.exists()


class ConsentTests(TransactionTestCase):
    """What rests on consent ends with the consent."""

    databases = {"default", "learnprivacy_keys"}

    def setUp(self) -> None:
        runtime().keyring.clear_cache()
        self.users = {}
        for name in ("expired", "withdrawn", "running", "renewed", "unrecorded", "restricted"):
            user = User.objects.create(username=name, last_login=NOW)
            NewsletterSubscription.objects.create(
                user=user, address=f"{name}@example.org", subscribed_at=LAST_YEAR
            )
            self.users[name] = user

        def consent(name: str, **dates: dt.datetime) -> None:
            Consent.objects.create(
                user=self.users[name], purpose="newsletter", given_at=LAST_YEAR, **dates
            )

        consent("expired", expires_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
        consent("withdrawn", withdrawn_at=dt.datetime(2026, 3, 1, tzinfo=dt.UTC))
        consent("running")
        consent("renewed", expires_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
        Consent.objects.create(
            user=self.users["renewed"],
            purpose="newsletter",
            given_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
            expires_at=dt.datetime(2027, 1, 1, tzinfo=dt.UTC),
        )
        consent("restricted", withdrawn_at=dt.datetime(2026, 3, 1, tzinfo=dt.UTC))
        kept = NewsletterSubscription.objects.get(user=self.users["restricted"])
        listed = [(kept.pk, "p1_test", "legal hold")]
        restrict("lms_newslettersubscription", listed, now=NOW, using="default")

    def remaining(self) -> set[str]:
        return set(NewsletterSubscription.objects.values_list("user__username", flat=True))

    def test_expired_and_withdrawn_consents_end_their_subscriptions(self) -> None:
        """Expired and withdrawn: erased and their consent key shredded; running,
        renewed, unrecorded and restricted: kept. A second sweep changes nothing."""
        dry = get_privacy().sweep(now=NOW, dry_run=True)
        assert dry.erased == 2
        assert len(self.remaining()) == 6
        result = get_privacy().sweep(now=NOW)
        assert result.erased == 2
        assert self.remaining() == {"running", "renewed", "unrecorded", "restricted"}
        keyring = runtime().keyring
        assert keyring.is_shredded(str(self.users["expired"].pk), "consent")
        assert keyring.is_shredded(str(self.users["withdrawn"].pk), "consent")
        assert not keyring.is_shredded(str(self.users["running"].pk), "consent")
        got = NewsletterSubscription.objects.get(user=self.users["renewed"])
        assert got.address == "renewed@example.org"
        reasons = " ".join(AuditEntry.objects.values_list("details", flat=True))
        assert "consent to newsletter ended" in reasons
        assert "@example.org" not in reasons
        again = get_privacy().sweep(now=NOW)
        assert (again.erased, again.anonymised, again.restricted) == (0, 0, 0)
        assert get_privacy().audit.verify()

    def test_before_the_consent_ends_nothing_goes(self) -> None:
        """Control: a sweep before the expiry and the withdrawal keeps everything."""
        result = get_privacy().sweep(now=dt.datetime(2025, 6, 1, tzinfo=dt.UTC))
        assert result.erased == 0
        assert len(self.remaining()) == 6


class AnonymisedRowTests(TransactionTestCase):
    """A sweep's ANONYMISE rule on a model of the project's own (certificates)."""

    databases = {"default", "learnprivacy_keys"}

    def test_an_anonymised_row_is_not_found_by_its_blind_index(self) -> None:
        """The old certificate loses learner, token and blind index; the lookup finds
        only the recent one, which stays as it was; a second sweep does nothing."""
        runtime().keyring.clear_cache()
        ana = User.objects.create(username="ana", last_login=NOW)
        course = Course.objects.create(code="C1", title="Course")
        old, new = (
            Certificate.objects.create(
                user=ana, course=course, holder_name="Ana Silva", issued_at=when
            )
            for when in (LONG_AGO, NOW)
        )
        found = Certificate.objects.filter(holder_name=lp_lookup("Ana Silva"))
        assert sorted(c.pk for c in found) == sorted([old.pk, new.pk])
        result = get_privacy().sweep(now=NOW)
        assert (result.anonymised, result.erased) == (1, 0)
        with connections["default"].cursor() as cursor:
            cursor.execute(
                "SELECT user_id, holder_name, holder_name_bidx FROM lms_certificate WHERE id = %s",
                [old.pk],
            )
            rows = cursor.fetchall()
        assert rows == [(None, None, None)], rows
        found = Certificate.objects.filter(holder_name=lp_lookup("Ana Silva"))
        assert [c.pk for c in found] == [new.pk]
        assert get_privacy().find(Certificate, "holder_name", "Ana Silva") == [new]
        assert Certificate.objects.get(pk=new.pk).holder_name == "Ana Silva"
        assert get_privacy().sweep(now=NOW).anonymised == 0

    def _old_certificate(self) -> Certificate:
        """Ana's certificate, issued long ago: the rule anonymises it."""
        runtime().keyring.clear_cache()
        ana = User.objects.create(username="ana", last_login=NOW)
        course = Course.objects.create(code="C1", title="Course")
        return Certificate.objects.create(
            user=ana, course=course, holder_name="Ana Silva", issued_at=LONG_AGO
        )

    def test_an_anonymisation_the_database_skipped_is_not_reported(self) -> None:
        """Attack: the database silently skips the UPDATE that anonymises the old
        certificate (a SQLite trigger; a rule on PostgreSQL). The sweep reported it
        anonymised while it kept Ana's id and name; it now raises and rolls back."""
        old = self._old_certificate()
        connection = connections["default"]
        sqlite = connection.vendor == "sqlite"
        with connection.cursor() as cursor:
            cursor.execute(
                "CREATE TRIGGER keep BEFORE UPDATE ON lms_certificate "
                "BEGIN SELECT RAISE(IGNORE); END"
                if sqlite
                else "CREATE RULE keep AS ON UPDATE TO lms_certificate DO INSTEAD NOTHING"
            )
        try:
            with self.assertRaises(IntegrityError):
                get_privacy().sweep(now=NOW)
        finally:
            with connection.cursor() as cursor:
                cursor.execute(
                    "DROP TRIGGER keep" if sqlite else "DROP RULE keep ON lms_certificate"
                )
        assert Certificate.objects.get(pk=old.pk).holder_name == "Ana Silva"
        assert not AuditEntry.objects.exists()

    def test_an_anonymisation_the_database_undid_is_not_reported(self) -> None:
        """Attack: a trigger (a guard keeping a certificate's holder, or name, as issued)
        puts the column back during the anonymising UPDATE, which still counts its row.
        The sweep reported the certificate anonymised while it kept Ana's id, or her
        token and blind index. The rows are read back after the statement: the sweep
        raises and rolls back."""
        old = self._old_certificate()
        connection = connections["default"]
        sqlite = connection.vendor == "sqlite"
        for column in ("user_id", "holder_name", "holder_name_bidx"):
            with self.subTest(column=column), connection.cursor() as cursor:
                if sqlite:
                    cursor.execute(
                        f"CREATE TRIGGER keep AFTER UPDATE OF {column} ON lms_certificate "
                        f"BEGIN UPDATE lms_certificate SET {column} = OLD.{column} "
                        "WHERE id = NEW.id; END"
                    )
                else:
                    cursor.execute(
                        "CREATE FUNCTION keep() RETURNS trigger AS $$ BEGIN "
                        f"NEW.{column} := OLD.{column}; RETURN NEW; END $$ LANGUAGE plpgsql"
                    )
                    cursor.execute(
                        "CREATE TRIGGER keep BEFORE UPDATE ON lms_certificate "
                        "FOR EACH ROW EXECUTE FUNCTION keep()"
                    )
                try:
                    with self.assertRaises(IntegrityError) as caught:
                        get_privacy().sweep(now=NOW)
                    assert "Ana" not in str(caught.exception)
                finally:
                    cursor.execute(
                        "DROP TRIGGER keep"
                        if sqlite
                        else "DROP TRIGGER keep ON lms_certificate; DROP FUNCTION keep()"
                    )
                assert Certificate.objects.get(pk=old.pk).holder_name == "Ana Silva"
                assert not AuditEntry.objects.exists()
