"""The app's own tables: the key store, the audit log, the request book, pending work.

``KeyEntry``, ``KeyTombstone`` and ``KeyMeta`` live in the key store's database (``LEARNPRIVACY
["KEYS"]``, routed by :class:`~learnprivacy.django.KeysRouter`); every other model lives
with the application's data, so that its rows commit in the application's transaction.
Code reads and writes them through learnprivacy's own modules, mostly in plain SQL on
the hot paths; the models are here for migrations and the admin.
"""

from __future__ import annotations

from django.db import models

__all__ = [
    "AuditEntry",
    "AuditHead",
    "EncryptProgress",
    "KeyEntry",
    "KeyMeta",
    "KeyTombstone",
    "PendingShred",
    "RequestFact",
    "RequestHistory",
    "RequestRow",
    "Restriction",
]


class KeyEntry(models.Model):
    """A wrapped data key (never a key in clear), in the key store's database.

    ``subject_ref`` names the learner by a keyed pseudonym (``k1_...``, see
    :meth:`learnprivacy.crypto.Keyring.key_ref`), never by id: a copy of the key store
    names no learner.
    """

    subject_ref = models.CharField(max_length=64)
    scope = models.CharField(max_length=64)
    key_id = models.CharField(max_length=16)
    state = models.CharField(max_length=16)
    master_key_id = models.CharField(max_length=32)
    wrapped = models.BinaryField()

    class Meta:
        db_table = "lpdj_keys"
        constraints = [
            models.UniqueConstraint(fields=["subject_ref", "key_id"], name="lpdj_keys_ref_id"),
            # At most one active key per (subject, scope): concurrent writers converge.
            models.UniqueConstraint(
                fields=["subject_ref", "scope"],
                condition=models.Q(state="active"),
                name="lpdj_keys_ref_one_active",
            ),
        ]
        indexes = [models.Index(fields=["subject_ref", "scope"], name="lpdj_keys_ref_scope")]

    def __str__(self) -> str:
        return f"key {self.key_id} ({self.state})"


class KeyTombstone(models.Model):
    """A (subject, scope) shredded as a whole; scope ``*`` covers every scope.

    The subject is named by its keyed pseudonym, as in :class:`KeyEntry`.
    """

    subject_ref = models.CharField(max_length=64)
    scope = models.CharField(max_length=64)

    class Meta:
        db_table = "lpdj_key_tombstones"
        constraints = [
            models.UniqueConstraint(fields=["subject_ref", "scope"], name="lpdj_tombstones_ref")
        ]


class KeyMeta(models.Model):
    """State of the key store itself (a rotation or compaction under way, the epoch),
    in the key store's database; never a key in clear."""

    key = models.CharField(max_length=64, primary_key=True)
    value = models.TextField()

    class Meta:
        db_table = "lpdj_key_meta"


class AuditEntry(models.Model):
    """One entry of the hash-chained audit log (never a personal value)."""

    sequence = models.BigIntegerField(unique=True)
    at = models.DateTimeField()
    action = models.CharField(max_length=64)
    record_type = models.CharField(max_length=128, null=True)
    subject_ref = models.CharField(max_length=64, null=True, db_index=True)
    actor = models.CharField(max_length=128)
    outcome = models.CharField(max_length=32)
    details = models.TextField()
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)

    class Meta:
        db_table = "lpdj_audit"
        ordering = ["sequence"]
        verbose_name_plural = "audit entries"


class AuditHead(models.Model):
    """The one-row head of the audit chain: last sequence and hash, sealed."""

    id = models.IntegerField(primary_key=True)
    sequence = models.BigIntegerField()
    hash = models.CharField(max_length=64)
    seal = models.CharField(max_length=64)

    class Meta:
        db_table = "lpdj_audit_head"


class PendingShred(models.Model):
    """Keys to shred once the transaction that erased their rows has committed.

    Written in that transaction; removed once the keys are shredded. A row left behind
    (the process died between the commit and the shred) is finished by the next erasure,
    sweep or ``learnprivacy_keys --reconcile``. ``subject`` holds the learner's key
    reference (``k1_...``, as the key store names them), never the learner id.
    """

    subject = models.CharField(max_length=255)
    scope = models.CharField(max_length=64)
    mode = models.CharField(max_length=16)
    created_at = models.DateTimeField()

    class Meta:
        db_table = "lpdj_pending_shreds"


class Restriction(models.Model):
    """A row of a declared model whose processing is restricted (GDPR Art. 18).

    ``row_ref`` names the row by a keyed reference of its table and primary key
    (``p1_...``, :func:`learnprivacy.django._restrictions.row_ref`), never the key itself,
    which for a learner's account is the learner id; ``reason`` says why it is kept
    (the legal minimum, hold or kept rows that refer to it), never a personal value.
    """

    table = models.CharField(max_length=128)
    row_ref = models.CharField(max_length=64)
    subject_ref = models.CharField(max_length=64)
    reason = models.CharField(max_length=255)
    created_at = models.DateTimeField()

    class Meta:
        db_table = "lpdj_restrictions"
        constraints = [
            models.UniqueConstraint(fields=["table", "row_ref"], name="lpdj_restriction_ref")
        ]


class EncryptProgress(models.Model):
    """How far ``learnprivacy_encrypt_existing`` went on one table (resumable)."""

    table = models.CharField(max_length=128, unique=True)
    last_key = models.CharField(max_length=255)
    done = models.BigIntegerField(default=0)
    finished = models.BooleanField(default=False)

    class Meta:
        db_table = "lpdj_encrypt_progress"


class RequestRow(models.Model):
    """A data-subject request of the request book (its body encrypted; ``learner_id``
    holds the learner's keyed pseudonym, ``p1_...``, not the id)."""

    id = models.CharField(max_length=255, primary_key=True)
    learner_id = models.CharField(max_length=255, db_index=True)
    type = models.CharField(max_length=32)
    state = models.CharField(max_length=32, db_index=True)
    received_at = models.DateTimeField()
    due_at = models.DateTimeField(db_index=True)
    version = models.IntegerField()
    retry_of = models.CharField(max_length=255, null=True)
    body = models.TextField()

    class Meta:
        db_table = "lpdj_dsr_requests"


class RequestHistory(models.Model):
    """A hash-chained history entry of a request (never personal)."""

    request_id = models.CharField(max_length=255)
    sequence = models.IntegerField()
    at = models.DateTimeField()
    event = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)
    body = models.TextField()

    class Meta:
        db_table = "lpdj_dsr_history"
        constraints = [
            models.UniqueConstraint(fields=["request_id", "sequence"], name="lpdj_history_seq")
        ]


class RequestFact(models.Model):
    """A per-learner fact of the request book (objection, directive, death...)."""

    learner_id = models.CharField(max_length=255)
    kind = models.CharField(max_length=32)
    key = models.CharField(max_length=255)
    at = models.DateTimeField()
    body = models.TextField()

    class Meta:
        db_table = "lpdj_dsr_facts"
        constraints = [
            models.UniqueConstraint(fields=["learner_id", "kind", "key"], name="lpdj_fact_key")
        ]
