"""The example LMS under Django's test runner, on SQLite or PostgreSQL (see settings).

Each promise of ``learnprivacy.django`` is checked here against the real database, and
attacked: tokens moved between rows and columns, plaintext written behind the ORM,
restricted rows written to, transactions rolled back, a crash between a commit and the
shredding of keys, a copy of the data taken before an erasure, a tampered audit log.
"""

from __future__ import annotations

import datetime as dt
import gc
import io
import json
import re
import tempfile
import threading
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any
from unittest import mock

from django.contrib.auth.models import User
from django.core import serializers
from django.core.management import call_command
from django.db import IntegrityError, connections, transaction
from django.forms import modelform_factory
from django.test import TestCase, TransactionTestCase
from django.test.utils import CaptureQueriesContext

from learnprivacy.django import lp_lookup
from learnprivacy.django._bind import bound_models, spec_of
from learnprivacy.django._encrypt import encrypt_existing
from learnprivacy.django._privacy import DjangoPrivacy, get_privacy, prepare_keys
from learnprivacy.django._settings import runtime
from learnprivacy.django.models import AuditEntry, KeyEntry, PendingShred, Restriction
from learnprivacy.errors import (
    AuditTampered,
    ConfigurationError,
    DecryptionError,
    KeyShreddedError,
    PlaintextError,
    RestrictedRecordError,
    ValidationError,
)
from learnprivacy.errors import IntegrityError as RecordsIntegrityError
from lms.models import Course, Enrolment, ForumPost, Invoice, Profile

NOW = dt.datetime(2026, 6, 15, 12, 0, tzinfo=dt.UTC)
LONG_AGO = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)


def raw(sql: str, params: list[object] | None = None, using: str = "default") -> list[tuple]:
    """Rows read behind the ORM, as an attacker with the database would."""
    with connections[using].cursor() as cursor:
        cursor.execute(sql, params or [])
        return [tuple(row) for row in cursor.fetchall()]


def write_raw(sql: str, params: list[object]) -> None:
    with connections["default"].cursor() as cursor:
        cursor.execute(sql, params)


def command_json(name: str, *args: str) -> Any:
    """What ``manage.py NAME ARGS --json`` prints, parsed (what it says on stderr dropped)."""
    out = io.StringIO()
    call_command(name, *args, "--json", stdout=out, stderr=io.StringIO())
    return json.loads(out.getvalue())


def learner(name: str, *, last_login: dt.datetime = LONG_AGO) -> User:
    return User.objects.create(
        username=name, email=f"{name}@example.org", first_name=name.title(), last_login=last_login
    )


def profile(user: User, phone: str = "+33 6 12 34 56 78", city: str = "Paris") -> Profile:
    return Profile.objects.create(
        user=user, phone=phone, city=city, birth_date=dt.date(1990, 5, 17), joined=LONG_AGO
    )


def erasing(learner: object, order: list[str]) -> threading.Thread:
    """A thread erasing ``learner`` in a connection of its own, which notes in ``order``
    ``"erased"`` or the error that stopped it (locked out: it made no restriction)."""

    def erase() -> None:
        try:
            get_privacy().erase_subject(learner, now=NOW)
            order.append("erased")
        except Exception as error:
            order.append(type(error).__name__)
        finally:
            connections.close_all()

    return threading.Thread(target=erase)


def erasure_request(privacy: DjangoPrivacy, user: User) -> tuple[Any, str, str]:
    """An erasure request for ``user`` received, verified and run through the request
    workflow: the book, the request id and its final state's value."""
    from learnprivacy.requests import Channel, ProofMethod, Requester, RequestType

    executor = privacy.request_executor()
    book = executor.book
    request = book.receive(
        RequestType.ERASURE,
        learner_id=str(user.pk),
        received_at=NOW,
        channel=Channel.WEB_FORM,
        requester=Requester.subject("Ana Silva", "ana@example.org"),
    )
    book.verify_identity(request, method=ProofMethod.AUTHENTICATED_SESSION, now=NOW)
    done = executor.execute(request.id, now=NOW)
    return book, request.id, done.state.value


@contextmanager
def protected_account(user: User) -> Iterator[Any]:
    """Deleting ``user`` is refused as an ``on_delete=PROTECT`` foreign key of a table
    the project did not declare refuses it (the admin log plays that table; yields its
    protecting row); every other delete runs as Django runs it."""
    from django.contrib.admin.models import LogEntry
    from django.db.models.deletion import Collector, ProtectedError

    log = LogEntry.objects.create(user=user, action_flag=1, object_repr="x")
    original = Collector.collect

    def protected(collector: Collector, objs: Any, *args: Any, **kwargs: Any) -> None:
        found = list(objs)
        if any(isinstance(o, User) and o.pk == user.pk for o in found):
            raise ProtectedError("protected by an undeclared table", {log})
        original(collector, found, *args, **kwargs)

    with mock.patch.object(Collector, "collect", protected):
        yield log


class FieldTests(TestCase):
    """Personal fields: tokens at rest, plaintext on instances, bound to their row."""

    databases = {"default", "learnprivacy_keys"}

    def setUp(self) -> None:
        # Each test's keys are rolled back with its transaction: forget cached ones.
        runtime().keyring.clear_cache()

    def test_values_are_tokens_at_rest_and_plaintext_on_load(self) -> None:
        """The table holds tokens only; a loaded instance reads the values back."""
        ana = profile(learner("ana"))
        row = raw("SELECT phone, city, birth_date FROM lms_profile WHERE id = %s", [ana.pk])[0]
        assert all(str(value).startswith("lp1.") for value in row)
        assert "Paris" not in repr(row)
        assert "1990" not in repr(row)
        loaded = Profile.objects.get(pk=ana.pk)
        assert (loaded.phone, loaded.city, loaded.birth_date) == (
            "+33 6 12 34 56 78",
            "Paris",
            dt.date(1990, 5, 17),
        )

    def test_non_text_fields_round_trip(self) -> None:
        """Decimal and date personal fields come back with their Python types."""
        user = learner("ana")
        course = Course.objects.create(code="C1", title="Privacy")
        enrolment = Enrolment.objects.create(
            user=user, course=course, enrolled_at=NOW, grade=Decimal("15.50")
        )
        assert Enrolment.objects.get(pk=enrolment.pk).grade == Decimal("15.50")

    def test_forms_and_serializers_see_plaintext(self) -> None:
        """Admin forms and serializers read decrypted values; values() never plaintext."""
        ana = Profile.objects.get(pk=profile(learner("ana")).pk)
        form = modelform_factory(Profile, fields=["phone", "city"])(instance=ana)
        assert form.initial["phone"] == "+33 6 12 34 56 78"
        dumped = json.loads(serializers.serialize("json", [ana]))[0]["fields"]
        assert dumped["city"] == "Paris"
        values = Profile.objects.filter(pk=ana.pk).values("phone")[0]["phone"]
        assert "+33" not in repr(values)

    def test_admin_shows_and_saves_plaintext(self) -> None:
        """The admin's change form shows decrypted values and saves edits as tokens."""
        ana = profile(learner("ana"))
        admin = User.objects.create_superuser("admin", "admin@example.org", "pw-for-tests")
        self.client.force_login(admin)
        page = self.client.get(f"/admin/lms/profile/{ana.pk}/change/")
        assert page.status_code == 200
        assert "+33 6 12 34 56 78" in page.content.decode()
        listing = self.client.get("/admin/lms/profile/")
        assert "Paris" in listing.content.decode()
        form = {
            "user": ana.user_id,
            "phone": "+33 7 00 00 00 00",
            "city": "Lyon",
            "birth_date": "1990-05-17",
            "joined_0": "2020-01-01",
            "joined_1": "00:00:00",
        }
        saved = self.client.post(f"/admin/lms/profile/{ana.pk}/change/", form)
        assert saved.status_code == 302, saved.content.decode()[:500]
        row = raw("SELECT city FROM lms_profile WHERE id = %s", [ana.pk])[0][0]
        assert row.startswith("lp1.")
        assert Profile.objects.get(pk=ana.pk).city == "Lyon"

    def test_blind_index_lookup(self) -> None:
        """lp_lookup finds rows by normalised value; plain lookups are refused."""
        ana = profile(learner("ana"), phone="+33 6 00 00 00 01")
        profile(learner("bob"), phone="+33 6 00 00 00 02")
        found = Profile.objects.filter(phone=lp_lookup(" +33 6 00 00 00 01 "))
        assert [p.pk for p in found] == [ana.pk]
        with self.assertRaises(ValidationError):
            list(Profile.objects.filter(phone="+33 6 00 00 00 01"))
        with self.assertRaises(ValidationError):
            list(Profile.objects.filter(city__icontains="par"))

    def test_find_checks_each_row_after_decrypting(self) -> None:
        """An index copied onto another row is found by the index alone; find() leaves
        that row out, because its value decrypts to something else."""
        ana = profile(learner("ana"), phone="+33 6 00 00 00 01")
        bob = profile(learner("bob"), phone="+33 6 00 00 00 02")
        index = raw("SELECT phone_bidx FROM lms_profile WHERE id = %s", [ana.pk])[0][0]
        write_raw("UPDATE lms_profile SET phone_bidx = %s WHERE id = %s", [index, bob.pk])
        by_index = Profile.objects.filter(phone=lp_lookup("+33 6 00 00 00 01"))
        assert sorted(p.pk for p in by_index) == sorted([ana.pk, bob.pk])
        privacy = get_privacy()
        assert [p.pk for p in privacy.find(Profile, "phone", " +33 6 00 00 00 01 ")] == [ana.pk]
        narrowed = Profile.objects.filter(user=bob.user)
        assert privacy.find(narrowed, "phone", "+33 6 00 00 00 01") == []
        with self.assertRaises(ConfigurationError):
            privacy.find(Profile, "joined", "2020")
        with self.assertRaises(ConfigurationError):
            privacy.find(Profile, "city", "Paris")

    def test_token_moved_to_another_row_fails(self) -> None:
        """A token copied into another learner's row does not decrypt there."""
        ana = profile(learner("ana"))
        bob = profile(learner("bob"), phone="+44 7700 900000")
        token = raw("SELECT phone FROM lms_profile WHERE id = %s", [ana.pk])[0][0]
        write_raw("UPDATE lms_profile SET phone = %s WHERE id = %s", [token, bob.pk])
        with self.assertRaises(DecryptionError) as caught:
            _ = Profile.objects.get(pk=bob.pk).phone
        assert "+33" not in str(caught.exception)
        assert "lms_profile.phone" in str(caught.exception)

    def test_token_moved_to_another_column_fails(self) -> None:
        """A token copied into another column of its own row does not decrypt."""
        ana = profile(learner("ana"))
        write_raw("UPDATE lms_profile SET city = phone WHERE id = %s", [ana.pk])
        with self.assertRaises(DecryptionError):
            _ = Profile.objects.get(pk=ana.pk).city

    def test_a_rows_values_encrypted_together_stay_each_its_own(self) -> None:
        """A save encrypts the row's text values in one call: each column gets the token
        of its own value (swapped tokens do not open), a value changed before the next
        save is written anew, and no token is left on the instance, even when the save
        fails."""
        from learnprivacy.django.fields import AHEAD

        ana = profile(learner("ana"), phone="+33 6 11", city="Lyon")
        assert AHEAD not in ana.__dict__
        phone, city = raw("SELECT phone, city FROM lms_profile WHERE id = %s", [ana.pk])[0]
        assert phone != city
        loaded = Profile.objects.get(pk=ana.pk)
        assert (loaded.phone, loaded.city) == ("+33 6 11", "Lyon")
        ana.phone = "+33 6 22"
        ana.save()
        assert Profile.objects.get(pk=ana.pk).phone == "+33 6 22"
        assert Profile.objects.get(pk=ana.pk).city == "Lyon"
        write_raw("UPDATE lms_profile SET phone = city, city = phone WHERE id = %s", [ana.pk])
        swapped = Profile.objects.get(pk=ana.pk)
        for name in ("phone", "city"):
            with self.assertRaises(DecryptionError):
                getattr(swapped, name)
        clash = Profile(user=ana.user, phone="+33 6 33", city="Nice", joined=NOW)
        with self.assertRaises(IntegrityError), transaction.atomic():
            clash.save()  # one profile per user
        assert AHEAD not in clash.__dict__

    def test_tokens_sealed_ahead_serve_only_the_very_binding_they_were_made_for(self) -> None:
        """Attack: the row's key, subject or value is changed between the row's values
        being encrypted together and the field writing its token (another field's
        pre_save, say). The token written is bound to what the instance holds then: it
        opens for the new row or learner, and the learner the tokens were made for
        gains nothing from it."""
        from learnprivacy.django._bind import spec_of
        from learnprivacy.django.fields import AHEAD, SealPlan, seal_ahead

        fields = {f.name: f for f in spec_of(Profile).encrypted}
        plan = SealPlan.of(spec_of(Profile).encrypted)
        assert plan is not None
        ana, bob = learner("ana"), learner("bob")
        cipher = runtime().cipher

        def opens(token: str, subject: object, key: object, column: str) -> str:
            return cipher.decrypt(
                str(token), subject=str(subject), context=f"lms_profile/{key}/{column}"
            )

        row = Profile(id=9001, user=ana, phone="+33 6 11", city="Lyon", joined=NOW)
        assert seal_ahead(row, plan)
        made = row.__dict__[AHEAD][2]
        # Unchanged: the tokens made together are the ones written.
        assert fields["phone"].pre_save(row, True) is made["phone"][1]
        # The subject moved to another learner: a new token, bound to bob.
        row.user_id = bob.pk
        token = fields["phone"].pre_save(row, True)
        assert token != made["phone"][1]
        assert opens(token, bob.pk, 9001, "phone") == "+33 6 11"
        with self.assertRaises(DecryptionError):
            opens(token, ana.pk, 9001, "phone")
        # An equal subject in another form, then another key: never the old tokens.
        row.user_id = str(ana.pk)
        assert fields["city"].pre_save(row, True) != made["city"][1]
        row.user_id = ana.pk
        row.id = 9002
        token = fields["city"].pre_save(row, True)
        assert opens(token, ana.pk, 9002, "city") == "Lyon"
        with self.assertRaises(DecryptionError):
            opens(token, ana.pk, 9001, "city")
        # A value replaced by an equal one is encrypted anew, for the row it is in now.
        row.id = 9001
        row.phone = "".join(["+33 6 ", "11"])
        assert fields["phone"].pre_save(row, True) != made["phone"][1]

    def test_a_value_that_does_not_open_stays_sealed_whatever_reads_it(self) -> None:
        """Attack: one column of a row gets another row's token. The row's other values
        read as usual; the moved one raises DecryptionError at every read, through
        forms, serializers and repr too, and no value leaks. Saving the row unchanged
        writes nothing new into that column; cloning it (the token would then be bound
        to a new row) is refused with the typed error and writes no row."""
        ana = profile(learner("ana"), phone="+33 6 11", city="Lyon")
        bob = profile(learner("bob"), phone="+44 7700 900000", city="Leeds")
        token = raw("SELECT phone FROM lms_profile WHERE id = %s", [ana.pk])[0][0]
        write_raw("UPDATE lms_profile SET phone = %s WHERE id = %s", [token, bob.pk])
        loaded = Profile.objects.get(pk=bob.pk)
        assert loaded.city == "Leeds"
        for read in (
            lambda: loaded.phone,
            lambda: loaded.phone,
            lambda: serializers.serialize("json", [loaded]),
            lambda: modelform_factory(Profile, fields=["phone"])(instance=loaded).initial,
        ):
            with self.assertRaises(DecryptionError) as caught:
                read()
            assert "+33" not in str(caught.exception)
            assert "+44" not in str(caught.exception)
        assert "+33" not in repr(loaded.__dict__)
        assert token not in repr(loaded)
        loaded.city = "York"
        loaded.save()
        assert raw("SELECT phone FROM lms_profile WHERE id = %s", [bob.pk])[0][0] == token
        assert Profile.objects.get(pk=bob.pk).city == "York"
        clone = Profile.objects.get(pk=bob.pk)
        clone.pk = clone.id = None
        clone.user = learner("cy")
        count = Profile.objects.count()
        with self.assertRaises(DecryptionError), transaction.atomic():
            clone.save()
        assert Profile.objects.count() == count

    def test_deferred_personal_fields_open_when_read(self) -> None:
        """only() and defer(), the subject's column deferred too: each personal value
        opens when it is read, in its own row; a deferred token moved from another row
        raises the typed error when read."""
        ana = profile(learner("ana"), phone="+33 6 11", city="Lyon")
        only = Profile.objects.only("id", "user").get(pk=ana.pk)
        assert (only.phone, only.city) == ("+33 6 11", "Lyon")
        no_subject = Profile.objects.defer("user", "city").get(pk=ana.pk)
        assert (no_subject.phone, no_subject.city) == ("+33 6 11", "Lyon")
        assert no_subject.birth_date == dt.date(1990, 5, 17)
        bob = profile(learner("bob"))
        token = raw("SELECT phone FROM lms_profile WHERE id = %s", [ana.pk])[0][0]
        write_raw("UPDATE lms_profile SET phone = %s WHERE id = %s", [token, bob.pk])
        deferred = Profile.objects.only("id", "user").get(pk=bob.pk)
        with self.assertRaises(DecryptionError) as caught:
            _ = deferred.phone
        assert "+33" not in str(caught.exception)
        assert deferred.city == "Paris"

    def test_missing_key_is_a_typed_error(self) -> None:
        """A key lost from the key store: reading raises DecryptionError, no value leaks."""
        ana = profile(learner("ana"))
        with connections["learnprivacy_keys"].cursor() as cursor:
            cursor.execute(
                "DELETE FROM lpdj_keys WHERE subject_ref = %s",
                [runtime().keyring.key_ref(str(ana.user_id))],
            )
        runtime().keyring.clear_cache()
        loaded = Profile.objects.get(pk=ana.pk)
        with self.assertRaises(DecryptionError) as caught:
            _ = loaded.phone
        assert "+33" not in str(caught.exception)

    def test_missing_master_key_is_a_configuration_error(self) -> None:
        """Without the master key in the environment, the keyring refuses to start and
        names the variable only."""
        from learnprivacy.django._settings import reset_runtime
        from learnprivacy.errors import ConfigurationError

        reset_runtime()
        try:
            with (
                mock.patch.dict("os.environ", {"LEARNPRIVACY_MASTER_KEY": ""}),
                self.assertRaises(ConfigurationError) as caught,
            ):
                runtime()
            assert "LEARNPRIVACY_MASTER_KEY" in str(caught.exception)
        finally:
            reset_runtime()

    def test_plaintext_at_rest_is_refused(self) -> None:
        """A value written in clear behind the ORM raises PlaintextError on read."""
        ana = profile(learner("ana"))
        write_raw("UPDATE lms_profile SET city = %s WHERE id = %s", ["Lyon", ana.pk])
        with self.assertRaises(PlaintextError) as caught:
            _ = Profile.objects.get(pk=ana.pk).city
        assert "Lyon" not in str(caught.exception)

    def test_queryset_update_cannot_write_personal_values(self) -> None:
        """QuerySet.update() cannot bind a value to rows: refused, nothing written."""
        ana = profile(learner("ana"))
        before = raw("SELECT phone FROM lms_profile WHERE id = %s", [ana.pk])
        with self.assertRaises(PlaintextError), transaction.atomic():
            Profile.objects.filter(pk=ana.pk).update(phone="+33 1 00 00 00 00")
        assert raw("SELECT phone FROM lms_profile WHERE id = %s", [ana.pk]) == before

    def test_token_assigned_as_value_is_refused(self) -> None:
        """Assigning a token read elsewhere would store it bound to its old place."""
        ana = profile(learner("ana"))
        token = raw("SELECT phone FROM lms_profile WHERE id = %s", [ana.pk])[0][0]
        bob = Profile(user=learner("bob"), phone=token, city="x", joined=NOW)
        with self.assertRaises(PlaintextError), transaction.atomic():
            bob.save()
        assert not Profile.objects.filter(user__username="bob").exists()

    def test_clone_rebinds_values_to_the_new_row(self) -> None:
        """Django's clone idiom (pk=None, save) re-encrypts under the new row's key."""
        original = Profile.objects.get(pk=profile(learner("ana")).pk)
        original.pk = None
        original.id = None
        original.user = learner("bob")
        original.save()
        assert Profile.objects.get(pk=original.pk).phone == "+33 6 12 34 56 78"

    def test_rolled_back_insert_then_more_inserts(self) -> None:
        """Keys reserved in a rolled-back savepoint: later rows still get keys of their
        own, and their values open in their rows."""
        with self.assertRaises(RuntimeError), transaction.atomic():
            profile(learner("ana"))
            raise RuntimeError("rolled back")
        rows = [profile(learner(f"r{i}"), phone=f"+33 6 0{i}") for i in range(3)]
        assert len({r.pk for r in rows}) == 3
        for i, row in enumerate(rows):
            assert Profile.objects.get(pk=row.pk).phone == f"+33 6 0{i}"

    def test_bulk_create_binds_each_row(self) -> None:
        """bulk_create reserves keys first, so every row's tokens open in that row."""
        users = [learner(f"u{i}") for i in range(5)]
        made = Profile.objects.bulk_create(
            [
                Profile(user=u, phone=f"+33 6 {i}", city="Nice", joined=NOW)
                for i, u in enumerate(users)
            ]
        )
        for i, item in enumerate(made):
            assert Profile.objects.get(pk=item.pk).phone == f"+33 6 {i}"

    def test_bulk_create_makes_its_learners_keys_in_one_statement(self) -> None:
        """bulk_create of six new learners' rows inserts their keys in one statement
        of one key-store transaction (it took one transaction per learner), and every
        row opens in its row."""
        users = [learner(f"b{i}") for i in range(6)]
        runtime().keyring.verify()  # the key store's own check key, made once
        keys = connections["learnprivacy_keys"]
        with CaptureQueriesContext(keys) as seen:
            made = Profile.objects.bulk_create(
                [
                    Profile(user=u, phone=f"+33 6 {i}", city="Nice", joined=NOW)
                    for i, u in enumerate(users)
                ]
            )
        inserts = [q["sql"] for q in seen.captured_queries if "INSERT INTO" in q["sql"]]
        assert len(inserts) == 1, inserts
        runtime().keyring.clear_cache()
        for i, item in enumerate(made):
            assert Profile.objects.get(pk=item.pk).phone == f"+33 6 {i}"

    def test_attack_bulk_create_does_not_revive_a_shredded_learner(self) -> None:
        """A learner whose keys were shredded, among new ones: bulk_create is refused
        with the typed error, no row is written, and no key is made for that learner."""
        users = [learner(f"s{i}") for i in range(3)]
        scope = spec_of(Profile).spec.scope
        profile(users[0])
        Profile.objects.filter(user=users[0]).delete()
        keyring = runtime().keyring
        keyring.shred(str(users[0].pk), scope)
        with self.assertRaises(KeyShreddedError), transaction.atomic():
            Profile.objects.bulk_create(
                [Profile(user=u, phone="+33 6", city="Nice", joined=NOW) for u in users]
            )
        assert not Profile.objects.filter(user__in=users).exists()
        assert keyring.is_shredded(str(users[0].pk), scope)
        ref = keyring.key_ref(str(users[0].pk))
        alive = KeyEntry.objects.using("learnprivacy_keys").filter(subject_ref=ref, scope=scope)
        assert not alive.exclude(state="shredded").exists()

    def test_keys_live_in_the_keys_database_only(self) -> None:
        """Wrapped keys are in the key store's database; the data's database has none."""
        profile(learner("ana"))
        assert KeyEntry.objects.using("learnprivacy_keys").filter(state="active").exists()
        tables = connections["default"].introspection.table_names()
        assert "lpdj_keys" not in tables
        assert "lms_profile" not in connections["learnprivacy_keys"].introspection.table_names()

    def test_prepare_keys_then_save(self) -> None:
        """prepare_keys creates many learners' keys at once; saves then find them."""
        users = [learner(f"p{i}") for i in range(20)]
        assert prepare_keys([u.pk for u in users]) == 20
        assert gc.isenabled()  # paused for the batch only
        keys = KeyEntry.objects.using("learnprivacy_keys").filter(state="active")
        refs = [runtime().keyring.key_ref(str(u.pk)) for u in users]
        assert keys.filter(subject_ref__in=refs).count() >= 20
        for u in users:
            profile(u)
        assert Profile.objects.filter(user__in=users).count() == 20

    def test_prepare_keys_keeps_its_whole_batch_cached(self) -> None:
        """A batch prepared into a full cache of learners used earlier stays cached as a
        whole: the older learners are evicted, not the batch's first learners (which
        made their saves go back to the key store for their keys), and the saves then
        ask the key store for no key: only its shred mark, one small query for the
        transaction (its first write that uses cached keys), so that keys another
        process shredded before it seal nothing."""
        keyring = runtime().keyring
        keyring.clear_cache()
        size = keyring._cache.size
        keyring._cache.size = 8
        try:
            for u in [learner(f"old{i}") for i in range(6)]:
                profile(u)  # cached, then used: the second chance of a busy learner
            users = [learner(f"batch{i}") for i in range(6)]
            prepare_keys([u.pk for u in users])
            assert {str(u.pk) for u in users} <= set(keyring._cache)
            with CaptureQueriesContext(connections["learnprivacy_keys"]) as seen:
                for u in users:
                    profile(u)
            asked = [q["sql"] for q in seen.captured_queries]
            assert len(asked) == 1, asked
            assert all("lpdj_key_meta" in sql for sql in asked), asked
        finally:
            keyring._cache.size = size

    def test_prepare_keys_skips_a_shredded_learner_and_makes_the_others(self) -> None:
        """A learner whose keys were shredded, among new ones: prepare_keys makes the
        new learners' keys in one insert, gives the shredded learner none (a save of
        theirs is still refused with the typed error) and raises nothing."""
        users = [learner(f"k{i}") for i in range(4)]
        scope = spec_of(Profile).spec.scope
        keyring = runtime().keyring
        keyring.verify()
        keyring.shred(str(users[0].pk), scope)
        keyring.clear_cache()
        with CaptureQueriesContext(connections["learnprivacy_keys"]) as seen:
            assert prepare_keys([u.pk for u in users], [scope]) == 4
        inserts = [q["sql"] for q in seen.captured_queries if "INSERT INTO" in q["sql"]]
        assert len(inserts) == 1, inserts
        assert keyring.is_shredded(str(users[0].pk), scope)
        for u in users[1:]:
            assert scope in keyring._cache.subjects[str(u.pk)].sealers
        with self.assertRaises(KeyShreddedError), transaction.atomic():
            profile(users[0])
        for u in users[1:]:
            profile(u)
        assert Profile.objects.filter(user__in=users[1:]).count() == 3

    def test_prepare_keys_inserts_in_key_reference_order(self) -> None:
        """A batch's keys reach the key store sorted by key reference (neighbouring rows
        share index pages), each learner's keys in the order they were made; every key
        is there once, and the saves then find them."""
        users = [learner(f"o{i}") for i in range(40)]
        scopes = sorted({b.spec.scope for b in bound_models() if b.encrypted})
        keyring = runtime().keyring
        keyring.clear_cache()
        prepare_keys([u.pk for u in users])
        refs = {keyring.key_ref(str(u.pk)) for u in users}
        rows = list(
            KeyEntry.objects.using("learnprivacy_keys")
            .filter(subject_ref__in=refs)
            .order_by("id")
            .values_list("subject_ref", "scope")
        )
        assert len(rows) == len(refs) * len(scopes) == len(set(rows))
        assert [ref for ref, _ in rows] == sorted(ref for ref, _ in rows)
        for ref in refs:
            assert [scope for r, scope in rows if r == ref] == scopes
        for u in users:
            profile(u)
        assert Profile.objects.filter(user__in=users).count() == 40


class EnrolledLearnerCase(TransactionTestCase):
    """Ana (``self.ana``), with a profile, enrolled in ``self.course`` (graded) where she
    posted once, long ago; on both databases, with no data key cached."""

    databases = {"default", "learnprivacy_keys"}

    def setUp(self) -> None:
        runtime().keyring.clear_cache()
        self.ana = learner("ana")
        profile(self.ana)
        self.course = Course.objects.create(code="RGPD", title="GDPR 101")
        Enrolment.objects.create(user=self.ana, course=self.course, enrolled_at=LONG_AGO, grade=12)
        ForumPost.objects.create(
            author=self.ana, course=self.course, body="Hello", posted_at=LONG_AGO
        )


class ErasureTests(EnrolledLearnerCase):
    """Erasure requests: rows, restrictions, audit, and keys shredded after commit."""

    def setUp(self) -> None:
        super().setUp()
        self.invoice = Invoice.objects.create(
            user=self.ana, billing_name="Ana Silva", amount=Decimal("120"), issued_at=NOW
        )
        self.bob = learner("bob")
        profile(self.bob, phone="+44 7700 900001")

    def test_erasure_erases_restricts_and_shreds(self) -> None:
        """Contract rows go, the invoice stays restricted, the contract key is shredded."""
        before = raw("SELECT phone FROM lms_profile WHERE user_id = %s", [self.ana.pk])[0][0]
        result = get_privacy().erase_subject(self.ana.pk, now=NOW)
        # Profile, enrolment and post erased; the invoice kept as it is; the account
        # the invoice refers to kept, anonymised.
        assert (result.erased, result.restricted, result.anonymised) == (3, 1, 1)
        assert "contract" in result.shredded
        assert not result.pending
        assert not Profile.objects.filter(user=self.ana).exists()
        assert Invoice.objects.get(pk=self.invoice.pk).billing_name == "Ana Silva"
        assert Restriction.objects.filter(table="lms_invoice").count() == 1
        assert runtime().keyring.is_shredded(str(self.ana.pk), "contract")
        assert not runtime().keyring.is_shredded(str(self.ana.pk), "legal")
        # A copy of the data taken before the erasure reads nothing of it any more.
        field = Profile._meta.get_field("phone")
        with self.assertRaises(KeyShreddedError):
            runtime().cipher.decrypt(
                before, subject=str(self.ana.pk), context=f"lms_profile/1/{field.column}"
            )
        # Bob is untouched.
        assert Profile.objects.get(user=self.bob).phone == "+44 7700 900001"
        assert get_privacy().audit.verify()
        actions = list(AuditEntry.objects.values_list("action", flat=True))
        assert actions[0] == "erasure_request"
        assert "shred" in actions
        details = " ".join(AuditEntry.objects.values_list("details", flat=True))
        # Whole words only: keyed references (base64url) may hold "Ana" by chance.
        assert re.search(r"(?<![\w-])Ana(?![\w-])", details) is None
        assert "ana@" not in details

    def test_restricted_row_cannot_be_written(self) -> None:
        """After erasure, writing the restricted invoice raises and changes nothing."""
        get_privacy().erase_subject(self.ana.pk, now=NOW)
        invoice = Invoice.objects.get(pk=self.invoice.pk)
        invoice.amount = Decimal("1")
        with self.assertRaises(RestrictedRecordError):
            invoice.save()
        assert Invoice.objects.get(pk=self.invoice.pk).amount == Decimal("120")
        with self.assertRaises(RestrictedRecordError):
            invoice.delete()
        assert Invoice.objects.filter(pk=self.invoice.pk).exists()

    def test_restricted_row_cannot_be_overwritten_by_an_upsert(self) -> None:
        """``bulk_create(update_conflicts=True)`` rewrites the rows its new ones collide
        with: a collision with a restricted row, on the primary key or on another unique
        field, is refused before anything is written; collisions with other rows go on."""
        get_privacy().erase_subject(self.ana.pk, now=NOW)
        forged = Invoice(
            pk=self.invoice.pk,
            user=self.bob,
            billing_name="Mallory",
            amount=Decimal("1"),
            issued_at=NOW,
        )
        with self.assertRaises(RestrictedRecordError), transaction.atomic():
            Invoice.objects.bulk_create(
                [forged],
                update_conflicts=True,
                unique_fields=["id"],
                update_fields=["amount", "user"],
            )
        kept = Invoice.objects.get(pk=self.invoice.pk)
        assert (kept.amount, kept.user_id) == (Decimal("120"), self.ana.pk)
        # The kept account, reached through its (anonymised) unique username.
        account = User.objects.get(pk=self.ana.pk)
        with self.assertRaises(RestrictedRecordError), transaction.atomic():
            User.objects.bulk_create(
                [User(username=account.username, is_active=True, last_login=NOW)],
                update_conflicts=True,
                unique_fields=["username"],
                update_fields=["is_active", "last_login"],
            )
        again = User.objects.get(pk=self.ana.pk)
        assert (again.is_active, again.last_login) == (account.is_active, account.last_login)
        # An upsert that collides with no restricted row is Django's own.
        User.objects.bulk_create(
            [User(username="bob", is_active=False, last_login=NOW)],
            update_conflicts=True,
            unique_fields=["username"],
            update_fields=["is_active"],
        )
        assert not User.objects.get(pk=self.bob.pk).is_active

    def test_dry_run_changes_nothing(self) -> None:
        """A dry run reports and leaves rows, keys and the audit log alone."""
        result = get_privacy().erase_subject(self.ana.pk, now=NOW, dry_run=True)
        assert result.dry_run
        assert result.erased == 3
        assert Profile.objects.filter(user=self.ana).exists()
        assert not AuditEntry.objects.exists()
        assert not runtime().keyring.is_shredded(str(self.ana.pk), "contract")

    def test_rollback_loses_nothing(self) -> None:
        """Erasure inside the caller's transaction: a rollback keeps rows and keys."""
        with self.assertRaises(RuntimeError), transaction.atomic():
            result = get_privacy().erase_subject(self.ana.pk, now=NOW)
            assert result.pending
            raise RuntimeError("the caller's transaction fails")
        assert Profile.objects.get(user=self.ana).phone == "+33 6 12 34 56 78"
        assert not PendingShred.objects.exists()
        assert not runtime().keyring.is_shredded(str(self.ana.pk), "contract")
        assert not AuditEntry.objects.exists()

    def test_crash_between_commit_and_shred_is_reconciled(self) -> None:
        """Keys listed by a committed erasure are shredded by the next call."""
        with mock.patch.object(DjangoPrivacy, "reconcile", return_value=0):
            result = get_privacy().erase_subject(self.ana.pk, now=NOW)
        assert result.pending
        # One pending shred per key scope the erasure frees (contract, consent).
        assert "contract" in result.shred_scopes
        assert PendingShred.objects.count() == len(result.shred_scopes)
        assert not runtime().keyring.is_shredded(str(self.ana.pk), "contract")
        # A dry run changes nothing, not even the keys a crash left owed.
        command_json("learnprivacy_erase", str(self.ana.pk), "--dry-run")
        command_json("learnprivacy_sweep", "--dry-run", f"--now={NOW.isoformat()}")
        assert PendingShred.objects.count() == len(result.shred_scopes)
        assert not runtime().keyring.is_shredded(str(self.ana.pk), "contract")
        reconciled = command_json("learnprivacy_keys", "reconcile")
        assert reconciled["shredded"] == len(result.shred_scopes)
        assert runtime().keyring.is_shredded(str(self.ana.pk), "contract")
        assert not PendingShred.objects.exists()

    def test_keys_owed_by_a_crash_inside_the_callers_transaction(self) -> None:
        """With ATOMIC_REQUESTS (every view in a transaction), the erasure retried after
        a crash runs inside the caller's transaction, where the owed keys cannot be
        shredded yet: it reports them pending, not done, and they are shredded when the
        caller's transaction commits."""
        with mock.patch.object(DjangoPrivacy, "reconcile", return_value=0):
            first = get_privacy().erase_subject(self.ana.pk, now=NOW)
        assert first.pending
        assert "contract" in first.shred_scopes
        with transaction.atomic():  # as a view under ATOMIC_REQUESTS runs
            again = get_privacy().erase_subject(self.ana.pk, now=NOW)
            assert again.erased == 0
            # Her keys are still alive: the retry does not say they are shredded.
            assert not runtime().keyring.is_shredded(str(self.ana.pk), "contract")
            assert again.pending
            assert "contract" in again.shred_scopes
            assert "contract" not in again.shredded
        # Committed: the owed keys are shredded, whatever else the transaction listed.
        assert runtime().keyring.is_shredded(str(self.ana.pk), "contract")
        assert not PendingShred.objects.exists()
        settled = get_privacy().erase_subject(self.ana.pk, now=NOW)
        assert not settled.pending

    def test_a_subject_that_is_no_learner_id_is_a_typed_error(self) -> None:
        """An erasure or export for a value no learner column can hold (a name typed where
        the id goes) raises ValidationError naming the column, never the value, and
        changes nothing; the command says so the same way."""
        from django.core.management.base import CommandError

        privacy = get_privacy()
        for wrong in ("ana.silva", "12 OR 1=1"):
            with self.assertRaises(ValidationError) as caught:
                privacy.erase_subject(wrong, now=NOW)
            assert wrong not in str(caught.exception)
            with self.assertRaises(ValidationError), tempfile.TemporaryDirectory() as folder:
                privacy.export_subject(wrong, Path(folder) / "x.zip", now=NOW)
            with self.assertRaises(CommandError) as failed:
                call_command("learnprivacy_erase", wrong, stdout=io.StringIO())
            assert "ValidationError" in str(failed.exception)
            assert wrong not in str(failed.exception)
        assert Profile.objects.filter(user=self.ana).exists()
        assert not AuditEntry.objects.exists()

    def test_audit_tampering_is_detected(self) -> None:
        """Editing an audit entry behind the ORM breaks the chain."""
        get_privacy().erase_subject(self.ana.pk, now=NOW)
        write_raw("UPDATE lpdj_audit SET outcome = %s WHERE sequence = %s", ["failed", 2])
        with self.assertRaises(AuditTampered):
            get_privacy().audit.verify()

    def test_erase_command_json(self) -> None:
        """learnprivacy_erase --json reports by reference, never the learner id."""
        data = command_json("learnprivacy_erase", str(self.ana.pk), f"--now={NOW.isoformat()}")
        assert data["erased"] == 3
        assert data["subject_ref"].startswith("p1_")

    def test_export_package_holds_decrypted_rows(self) -> None:
        """The export zip has every declared table's rows in clear, for this learner only."""
        with tempfile.TemporaryDirectory() as folder:
            target = Path(folder) / "ana.zip"
            exported = command_json(
                "learnprivacy_export", str(self.ana.pk), str(target), f"--now={NOW.isoformat()}"
            )
            assert exported["records"] == 5
            with zipfile.ZipFile(target) as archive:
                names = archive.namelist()
                profile_file = next(n for n in names if n.endswith("lms_profile.json"))
                body = archive.read(profile_file).decode()
        assert "+33 6 12 34 56 78" in body
        assert "+44" not in body
        assert "manifest.json" in names

    def test_register_lists_declared_tables(self) -> None:
        """The register names each declared table with its purpose and retention."""
        out = io.StringIO()
        call_command("learnprivacy_register", "--json", stdout=out)
        text = out.getvalue()
        for table in ("lms_profile", "lms_forumpost", "lms_invoice", "auth_user"):
            assert table in text
        # The LMS shares nothing outside (CONTROLLER.internal_only): every purpose says
        # so, and no recipient gap shows, not even "no activity has that purpose".
        register = json.loads(text)
        assert all(a["internal_only"] for a in register["activities"])
        assert [g for g in register["gaps"] if "recipient" in g or "internal" in g] == []

    def test_register_internal_only_argument(self) -> None:
        """``get_privacy().register(internal_only=...)``: purposes named there show no
        recipient gap; a component passed in ``providers`` with an external recipient
        under one of them is a gap, an internal recipient is not."""
        import attrs

        from learnprivacy.testing._mailer import Mailer
        from lms.privacy import CONTROLLER

        bare = attrs.evolve(CONTROLLER, internal_only=())
        privacy = get_privacy()
        plain = privacy.register(bare)
        assert any(g.startswith("billing: no recipient declared") for g in plain.gaps)
        promised = privacy.register(bare, internal_only=CONTROLLER.internal_only)
        assert all(a.internal_only for a in promised.activities)
        assert [g for g in promised.gaps if "recipient" in g or "internal" in g] == []
        inside = privacy.register(
            bare, internal_only=CONTROLLER.internal_only, providers=[Mailer(internal=True)]
        )
        assert [g for g in inside.gaps if "recipient" in g] == []
        outside = privacy.register(
            bare, internal_only=CONTROLLER.internal_only, providers=[Mailer(internal=False)]
        )
        assert [g for g in outside.gaps if "recipient" in g] == [
            "billing: promised to be shared internally only, but Mailjet SAS is an "
            "external recipient"
        ]

    def test_a_save_racing_the_erasure_that_restricts_its_row_never_changes_it(self) -> None:
        """Attack: just after a save's restriction check found Ana's invoice free, an
        erasure in another connection restricts it (kept by law) and commits; then the
        save's UPDATE ran and changed the restricted row. The save now holds the row
        from its check on: either the erasure waits for the save (it restricts the row
        as saved), or gives up at the lock, or the save sees the restriction."""
        from learnprivacy.django import _bind

        check, order = _bind.check_held, []
        intruder = erasing(self.ana.pk, order)

        def racing(bound: Any, key: Any, using: str) -> None:
            check(bound, key, using)
            if bound.spec.table == "lms_invoice" and not intruder.is_alive() and not order:
                intruder.start()
                intruder.join(2)  # it finishes, or waits on the save's lock

        invoice = Invoice.objects.get(pk=self.invoice.pk)
        invoice.amount = Decimal("1")
        with mock.patch.object(_bind, "check_held", racing):
            try:
                invoice.save()
                order.append("saved")
            except RestrictedRecordError:
                order.append("refused")
        intruder.join(60)
        assert order[:2] != ["erased", "saved"], order

    def test_an_erasure_the_database_skipped_is_not_reported(self) -> None:
        """Attack: the database silently skips the DELETE of Ana's forum post (a SQLite
        trigger; a rule on PostgreSQL). The erasure reported it erased and shredded her
        keys while the post stayed; it now raises and rolls back: the post, her key and
        the audit log are as they were."""
        sqlite = connections["default"].vendor == "sqlite"
        with connections["default"].cursor() as cursor:
            if sqlite:
                cursor.execute(
                    "CREATE TRIGGER keep BEFORE DELETE ON lms_forumpost "
                    "BEGIN SELECT RAISE(IGNORE); END"
                )
            else:
                cursor.execute("CREATE RULE keep AS ON DELETE TO lms_forumpost DO INSTEAD NOTHING")
        try:
            with self.assertRaises(RecordsIntegrityError):
                get_privacy().erase_subject(self.ana.pk, now=NOW)
        finally:
            with connections["default"].cursor() as cursor:
                cursor.execute("DROP TRIGGER keep" if sqlite else "DROP RULE keep ON lms_forumpost")
        assert ForumPost.objects.filter(author=self.ana).count() == 1
        assert Profile.objects.get(user=self.ana).phone
        assert not runtime().keyring.is_shredded(str(self.ana.pk), "contract")
        assert not AuditEntry.objects.exists()


class RequestWorkflowTests(TransactionTestCase):
    """Data-subject requests recorded in the app's database, run on the declared models."""

    databases = {"default", "learnprivacy_keys"}

    def test_erasure_request_runs_through_the_provider(self) -> None:
        """An erasure request received, verified and executed: rows gone, the invoice
        restricted, the request completed, its requester's identity encrypted at rest."""
        runtime().keyring.clear_cache()
        ana = learner("ana")
        profile(ana)
        Invoice.objects.create(user=ana, billing_name="Ana Silva", amount=1, issued_at=NOW)
        privacy = get_privacy()
        book, request_id, state = erasure_request(privacy, ana)
        assert state == "completed", [e.to_dict() for e in book.history(request_id)]
        assert not Profile.objects.filter(user=ana).exists()
        assert Restriction.objects.filter(table="lms_invoice").count() == 1
        bodies = " ".join(b for (b,) in raw("SELECT body FROM lpdj_dsr_requests"))
        assert "Ana Silva" not in bodies
        assert "ana@example.org" not in bodies
        assert book.verify(request_id)
        assert privacy.audit.verify()


class SweepTests(TransactionTestCase):
    """Retention sweeps on the declared models."""

    databases = {"default", "learnprivacy_keys"}

    def test_sweep_erases_expired_posts_only_and_is_idempotent(self) -> None:
        """Posts older than two years go; recent ones stay; a second sweep does nothing."""
        ana = learner("ana", last_login=NOW)
        course = Course.objects.create(code="C", title="T")
        old = ForumPost.objects.create(author=ana, course=course, body="old", posted_at=LONG_AGO)
        new = ForumPost.objects.create(author=ana, course=course, body="new", posted_at=NOW)
        profile(ana)
        assert (
            command_json("learnprivacy_sweep", "--dry-run", f"--now={NOW.isoformat()}")["erased"]
            == 1
        )
        assert ForumPost.objects.filter(pk=old.pk).exists()
        first = get_privacy().sweep(now=NOW)
        assert first.erased == 1
        assert list(ForumPost.objects.values_list("pk", flat=True)) == [new.pk]
        assert ForumPost.objects.get(pk=new.pk).body == "new"
        # The learner still has rows under the contract key: it is not shredded.
        assert not runtime().keyring.is_shredded(str(ana.pk), "contract")
        second = get_privacy().sweep(now=NOW)
        assert (second.erased, second.anonymised, second.restricted) == (0, 0, 0)
        assert get_privacy().audit.verify()

    def test_sweep_inside_the_callers_transaction_reports_keys_pending(self) -> None:
        """With ATOMIC_REQUESTS (or any caller's transaction), a sweep's shreds wait for
        the commit: it reports the learners pending, not shredded; keys a crashed
        erasure still owes are shredded at that commit too, even when the sweep itself
        shreds nothing."""
        owed = learner("owed", last_login=NOW)
        profile(owed)
        with mock.patch.object(DjangoPrivacy, "reconcile", return_value=0):
            assert get_privacy().erase_subject(owed.pk, now=NOW).pending
        gone = learner("gone", last_login=LONG_AGO)
        profile(gone)
        later = NOW + dt.timedelta(days=3650)
        with transaction.atomic():
            result = get_privacy().sweep(now=later)
            assert result.erased == 2
            assert not runtime().keyring.is_shredded(str(gone.pk), "contract")
            assert (result.shredded_subjects, result.pending_subjects) == (0, 1)
        assert runtime().keyring.is_shredded(str(gone.pk), "contract")
        assert runtime().keyring.is_shredded(str(owed.pk), "contract")
        # Outside a transaction, what the sweep reports shredded was checked shredded.
        other = learner("other", last_login=LONG_AGO)
        profile(other)
        done = get_privacy().sweep(now=later)
        assert (done.shredded_subjects, done.pending_subjects) == (1, 0)
        # Nothing to sweep, inside a transaction: the keys a crash left owed still go.
        again = learner("again", last_login=NOW)
        profile(again)
        with mock.patch.object(DjangoPrivacy, "reconcile", return_value=0):
            get_privacy().erase_subject(again.pk, now=NOW)
        with transaction.atomic():
            assert get_privacy().sweep(now=NOW).erased == 0
        assert runtime().keyring.is_shredded(str(again.pk), "contract")
        assert not PendingShred.objects.exists()

    def test_inactive_learner_is_swept_and_shredded(self) -> None:
        """A learner inactive for five years: rows and account erased, keys gone."""
        gone = learner("gone", last_login=LONG_AGO)
        profile(gone)
        later = NOW + dt.timedelta(days=3650)
        result = get_privacy().sweep(now=later)
        assert (result.erased, result.anonymised) == (2, 0)
        assert not Profile.objects.filter(user=gone).exists()
        assert not User.objects.filter(pk=gone.pk).exists()
        assert runtime().keyring.is_shredded(str(gone.pk), "contract")


class EncryptExistingTests(TransactionTestCase):
    """Plaintext left in columns newly declared personal, encrypted resumably."""

    databases = {"default", "learnprivacy_keys"}

    def test_dry_run_makes_no_key_and_writes_nothing(self) -> None:
        """``--dry-run`` counts what a run would encrypt and changes nothing: no row, no
        progress mark, and no key made in the key store for learners who had none."""
        users = [learner(f"d{i}") for i in range(3)]
        for i, user in enumerate(users):
            write_raw(
                "INSERT INTO lms_profile (user_id, phone, city, joined) VALUES (%s, %s, %s, %s)",
                [user.pk, f"+33 6 1{i}", f"Town {i}", NOW],
            )
        before = raw("SELECT id, phone, city, phone_bidx FROM lms_profile ORDER BY id")
        keyring = runtime().keyring
        keyring.clear_cache()
        keyring.verify()  # the key store's check value, flushed with the test databases
        keys = raw("SELECT count(*) FROM lpdj_keys", using="learnprivacy_keys")
        reports = command_json("learnprivacy_encrypt_existing", "--dry-run")["tables"]
        report = next(r for r in reports if r["table"] == "lms_profile")
        assert (report["encrypted"], report["verified"], report["dry_run"]) == (6, 0, True)
        assert raw("SELECT id, phone, city, phone_bidx FROM lms_profile ORDER BY id") == before
        assert raw("SELECT count(*) FROM lpdj_keys", using="learnprivacy_keys") == keys
        assert not raw("SELECT 1 FROM lpdj_encrypt_progress")
        done = encrypt_existing(spec_of(Profile))
        assert done.encrypted == 6
        assert Profile.objects.get(user=users[2]).city == "Town 2"

    def test_interrupted_run_resumes_and_verifies(self) -> None:
        """Killed after one batch, a second run finishes; every value opens as it was."""
        users = [learner(f"e{i}") for i in range(7)]
        for i, user in enumerate(users):
            write_raw(
                "INSERT INTO lms_profile (user_id, phone, city, joined) VALUES (%s, %s, %s, %s)",
                [user.pk, f"+33 6 0{i}", f"City {i}", NOW],
            )
        bound = spec_of(Profile)
        first = encrypt_existing(bound, batch_size=3, stop_after=1)
        assert first.encrypted == 6
        with self.assertRaises(PlaintextError):
            _ = Profile.objects.order_by("pk").last().phone
        report = command_json("learnprivacy_encrypt_existing", "--batch-size=3")["tables"][0]
        assert report["encrypted"] == 8
        assert report["verified"] == 14
        for i, user in enumerate(users):
            loaded = Profile.objects.get(user=user)
            assert (loaded.phone, loaded.city) == (f"+33 6 0{i}", f"City {i}")
        assert Profile.objects.filter(phone=lp_lookup("+33 6 03")).count() == 1
        again = encrypt_existing(bound, batch_size=3)
        assert again.encrypted == 0

    def test_a_value_rewritten_during_the_run_is_not_overwritten(self) -> None:
        """Attack: the project's previous version (during a rolling upgrade) rectifies a
        learner's city in clear, in a connection of its own, after the run read the row
        and before it writes it. The run wrote the token of the old city over it and
        verified. The row is now written only if it still holds what was read: the
        rectified value is left in clear, the verification refuses it, and the next run
        (from the first row again) encrypts it."""
        users = [learner(f"r{i}") for i in range(3)]
        for i, user in enumerate(users):
            write_raw(
                "INSERT INTO lms_profile (user_id, phone, city, joined) VALUES (%s, %s, %s, %s)",
                [user.pk, f"+33 6 2{i}", f"Village {i}", NOW],
            )
        done: list[str] = []

        def rectify() -> None:
            try:
                with connections["default"].cursor() as cursor:
                    cursor.execute(
                        "UPDATE lms_profile SET city = %s WHERE user_id = %s",
                        ["Rectified", users[0].pk],
                    )
                done.append("rectified")
            finally:
                connections.close_all()

        def racing(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
            if not done and sql.startswith('UPDATE "lms_profile"'):
                other = threading.Thread(target=rectify)
                other.start()
                other.join(10)
            return execute(sql, params, many, context)

        with connections["default"].execute_wrapper(racing), self.assertRaises(PlaintextError):
            encrypt_existing(spec_of(Profile))
        assert done == ["rectified"]
        assert raw("SELECT city FROM lms_profile WHERE user_id = %s", [users[0].pk]) == [
            ("Rectified",)
        ]
        report = encrypt_existing(spec_of(Profile))
        assert (report.encrypted, report.verified) == (2, 6)
        assert Profile.objects.get(user=users[0]).city == "Rectified"
        assert Profile.objects.get(user=users[1]).city == "Village 1"
