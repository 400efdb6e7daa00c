"""Declared models, checked and bound when the app is ready.

``Privacy(...)`` on a model class registers it; :func:`declare` registers a model the
project does not own (``auth.User``). When Django has imported every model, the app
config calls :func:`bind_all`: each declaration is checked by the ORM-independent core
(:func:`learnprivacy._inplace.build_spec`) and the model is bound:

* its personal fields learn their table, key scope and subject attribute;
* ``from_db`` remembers the (key, subject) a row was read with, which its tokens are
  bound to;
* a new row with an auto-increment key takes its key from the database *before* the
  INSERT (PostgreSQL: the column's sequence; SQLite: ``sqlite_sequence``), so that each
  value is encrypted bound to its row in that single INSERT (``bulk_create`` too);
* an update of a restricted row raises ``RestrictedRecordError`` before any write.

A declaration that fails its check is not bound: ``manage.py check`` reports it
(``learnprivacy.E001``) and saving a personal field of that model raises.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from itertools import islice
from typing import Any

import attrs

from learnprivacy._inplace import ColumnPrivacy, ModelSpec, build_spec
from learnprivacy._inplace import Privacy as _CorePrivacy
from learnprivacy.basis import DataCategory
from learnprivacy.django import _settings
from learnprivacy.django._restrictions import (
    any_restricted,
    check_not_restricted,
    restricted_keys,
    row_ref,
    row_restricted,
)
from learnprivacy.django.fields import (
    AHEAD,
    INDEX_SUFFIX,
    ORIGIN_KEY,
    ORIGIN_SUBJECT,
    SEALED,
    BlindIndexField,
    PersonalField,
    SealPlan,
    declaration_of,
    origin_of,
    seal,
    seal_ahead,
)
from learnprivacy.errors import ConfigurationError, RestrictedRecordError, ValidationError

__all__ = ["Bound", "Privacy", "bind_all", "bound_models", "declare", "errors", "spec_of"]


@attrs.frozen(kw_only=True)
class Privacy(_CorePrivacy):
    """A model's privacy declaration: ``privacy = Privacy(subject="user", ...)``.

    ``subject`` names the field holding the learner (a foreign key to the user model, or
    the primary key of the user model itself); ``activity``, ``created`` and
    ``contract_end`` name date fields, possibly across a relation
    (``activity="user__last_login"``). See :class:`learnprivacy._inplace.Privacy`.
    """

    def contribute_to_class(self, cls: Any, name: str) -> None:
        """Keep the declaration on the class and register the model."""
        setattr(cls, name, self)
        if not cls._meta.abstract and cls.__module__ != "__fake__":
            _declared[cls] = (self, None)


@attrs.frozen(kw_only=True)
class Bound:
    """One bound Django model: the core spec and what the Django side needs."""

    model: type[Any]
    spec: ModelSpec
    #: Fields whose values are tokens in the table (this project's own models).
    encrypted: tuple[PersonalField, ...]
    #: Fields declared personal but stored in clear (models declared with declare()).
    clear_personal: tuple[str, ...]
    #: The ORM lookup of the subject (``user`` or ``pk``) and its attribute name.
    subject_lookup: str
    subject_attname: str

    @property
    def owned(self) -> bool:
        """Whether the project declared it on its own class (not through declare())."""
        return not self.clear_personal


_declared: dict[type[Any], tuple[Privacy, Mapping[str, ColumnPrivacy] | None]] = {}
_pending_labels: list[tuple[str, Privacy, Mapping[str, ColumnPrivacy]]] = []
_bound: dict[type[Any], Bound] = {}
_errors: dict[type[Any], str] = {}


def declare(
    model: Any,
    privacy: Privacy,
    *,
    personal: Mapping[str, tuple[DataCategory, str]],
    clear: Mapping[str, str] | None = None,
) -> None:
    """Declare a model the project does not own, such as ``auth.User``.

    Its columns cannot change, so its ``personal`` fields stay in clear; they are
    exported, counted in the register, and blanked (anonymised) by erasure. ``clear``
    lists the fields exported as they are; every other field is kept out of exports.
    ``model`` is the class or its ``"app_label.Model"`` label; call this in a
    ``models.py`` so it runs before the app is ready::

        declare("auth.User",
                Privacy(subject="id", purpose="accounts", basis=LawfulBasis.CONTRACT,
                        activity="last_login", created="date_joined"),
                personal={"username": (DataCategory.IDENTITY, "User name"),
                          "email": (DataCategory.CONTACT, "E-mail address"),
                          "first_name": (DataCategory.IDENTITY, "Given name"),
                          "last_name": (DataCategory.IDENTITY, "Family name")},
                clear={"date_joined": "Account created", "last_login": "Last login"})
    """
    if not isinstance(privacy, Privacy):
        raise ConfigurationError("declare() takes a learnprivacy.django.Privacy(...)")
    fields: dict[str, ColumnPrivacy] = {}
    for name, (category, description) in personal.items():
        fields[name] = ColumnPrivacy(personal=True, category=category, description=description)
    for name, description in (clear or {}).items():
        fields[name] = ColumnPrivacy(
            personal=False, category=DataCategory.NONE, description=description
        )
    if privacy.scope is None:
        # Nothing of such a model is encrypted: a scope of its own, so that keeping its
        # rows (restricted) never keeps the keys of the project's encrypted tables alive.
        privacy = attrs.evolve(privacy, scope="clear-columns")
    if isinstance(model, str):
        _pending_labels.append((model, privacy, fields))
    else:
        _declared[model] = (privacy, fields)


def _columns(
    model: Any, privacy: Privacy, foreign: Mapping[str, ColumnPrivacy] | None
) -> list[tuple[str, str, ColumnPrivacy | None]]:
    meta = model._meta
    columns: list[tuple[str, str, ColumnPrivacy | None]] = []
    roles = {getattr(privacy, r) for r in ("activity", "created", "contract_end")} - {None}
    for field in meta.concrete_fields:
        if field is meta.pk or isinstance(field, BlindIndexField):
            continue
        if foreign is None:
            declared = declaration_of(field)
        elif field.name in foreign:
            declared = foreign[field.name]
        elif field.name in roles or field.name == privacy.subject:
            declared = ColumnPrivacy(
                personal=False,
                category=DataCategory.NONE,
                description=str(field.verbose_name) or field.name,
                exported=False,
            )
        else:
            # A model the project does not own: only what the recipe names takes part
            # (a password hash never enters a record view nor an export).
            continue
        columns.append((field.name, field.column, declared))
    known = {name for name, _, _ in columns}
    for role in ("activity", "created", "contract_end"):
        path = getattr(privacy, role)
        if path is not None and "__" in path and path not in known:
            # A date across a relation: read by retention, never exported.
            columns.append(
                (
                    path,
                    path,
                    ColumnPrivacy(
                        personal=False,
                        category=DataCategory.NONE,
                        description=f"{role} date",
                        exported=False,
                    ),
                )
            )
            known.add(path)
    return columns


def _bind(model: Any, privacy: Privacy, foreign: Mapping[str, ColumnPrivacy] | None) -> Bound:
    meta = model._meta
    if meta.pk is None:
        raise ConfigurationError(f"{meta.db_table}: a declared model needs a primary key")
    spec = build_spec(
        model,
        table=meta.db_table,
        primary_key=[(meta.pk.name, meta.pk.column)],
        columns=_columns(model, privacy, foreign),
        privacy=privacy,
    )
    if privacy.subject in ("id", "pk", meta.pk.name):
        subject_lookup, subject_attname = "pk", meta.pk.attname
    else:
        subject_field = meta.get_field(privacy.subject)
        subject_lookup, subject_attname = privacy.subject, subject_field.attname
    encrypted = tuple(f for f in meta.concrete_fields if isinstance(f, PersonalField))
    if foreign is not None and encrypted:
        raise ConfigurationError(
            f"{meta.db_table}: use Privacy(...) on models with personal() fields"
        )
    for field in encrypted:
        field.lp_table = meta.db_table
        field.lp_scope = spec.scope
        field.lp_subject = subject_attname
        field.lp_pk = meta.pk.attname
    bound = Bound(
        model=model,
        spec=spec,
        encrypted=encrypted,
        clear_personal=tuple(c.attribute for c in spec.personal) if foreign is not None else (),
        subject_lookup=subject_lookup,
        subject_attname=subject_attname,
    )
    _guard_restricted(model, bound)
    if encrypted:
        _hook(model, bound)
    return bound


def bind_all() -> None:
    """Check and bind every declared model (called once the app registry is ready)."""
    from django.apps import apps

    while _pending_labels:
        label, privacy, fields = _pending_labels.pop()
        try:
            _declared[apps.get_model(label)] = (privacy, fields)
        except LookupError:
            raise ConfigurationError(f"declare(): no model {label!r} is installed") from None
    _install_queryset_hooks()
    for model, (privacy, foreign) in _declared.items():
        if model in _bound:
            continue
        try:
            _bound[model] = _bind(model, privacy, foreign)
            _errors.pop(model, None)
        except ConfigurationError as exc:
            _errors[model] = str(exc)


def bound_models() -> tuple[Bound, ...]:
    """Every bound model, in declaration order."""
    return tuple(_bound.values())


def errors() -> dict[type[Any], str]:
    """The declarations that failed their check, by model."""
    return dict(_errors)


def spec_of(model: Any) -> Bound:
    """The bound form of ``model``; ``ConfigurationError`` if it is not declared."""
    concrete = getattr(model._meta, "concrete_model", model)
    found = _bound.get(concrete)
    if found is None:
        problem = _errors.get(concrete)
        detail = f": {problem}" if problem else " with Privacy(...)"
        raise ConfigurationError(f"{model._meta.db_table} is not declared{detail}")
    return found


def refuse_move(bound: Bound, written: Iterable[str]) -> None:
    """Refuse a write of the fields ``written`` (names or attnames) that changes the
    rows' primary key or learner without rewriting every personal value: the tokens are
    bound to both and would no longer open; or that writes a blind index without its
    field, from which it is computed (``ValidationError`` naming the column)."""
    if not bound.encrypted:
        return
    meta = bound.model._meta
    names = set(written)
    for f in bound.encrypted:
        if f.lp_index and f.name + INDEX_SUFFIX in names and not names & {f.name, f.attname}:
            where = f"{meta.db_table}.{f.index_field.column}"
            raise ValidationError(
                f"{where}: a blind index is computed from its field, never written on its own",
                field=where,
            )
    rewritten = all(f.name in names or f.attname in names for f in bound.encrypted)
    moving = [meta.pk]
    if bound.subject_lookup != "pk":
        moving.append(meta.get_field(bound.subject_lookup))
    for field in moving:
        if not rewritten and names & {field.name, field.attname, "pk"}:
            where = f"{meta.db_table}.{field.column}"
            raise ValidationError(
                f"{where}: changing a row's key or learner without its personal values "
                "would leave their tokens bound to the old ones; save the whole instance",
                field=where,
            )


# -- hooks on the model class ------------------------------------------------------------


def _around_save_table(model: Any, step: Any) -> None:
    """Wrap ``model._save_table`` (every save's write of the row, ``loaddata`` included):
    ``step(instance, save, raw, cls, force_insert, force_update, using, update_fields)``
    runs instead, ``save`` being the method it wraps, called with the same arguments."""
    save = model._save_table

    def _save_table(
        self: Any,
        raw: bool = False,
        cls: Any = None,
        force_insert: Any = False,
        force_update: bool = False,
        using: str | None = None,
        update_fields: Any = None,
    ) -> Any:
        return step(self, save, raw, cls, force_insert, force_update, using, update_fields)

    model._save_table = _save_table


def _hook(model: Any, bound: Bound) -> None:
    meta = model._meta
    pk_attname = meta.pk.attname
    subject_attname = bound.subject_attname
    indexed = {f.name: f.name + "_bidx" for f in bound.encrypted if f.declaration.blind_index}
    auto = meta.auto_field is not None and meta.pk is meta.auto_field

    original_from_db = model.from_db.__func__

    table = bound.spec.table
    personal = [(f.attname, f"/{f.column}", f.lp_text, f) for f in bound.encrypted]
    concrete = len(meta.concrete_fields)

    def from_db(cls: Any, db: str, field_names: Any, values: Any) -> Any:
        # Tokens are opened with the row's (key, subject) once the learners' keys held in
        # memory are known alive: for a fetch of rows, when the fetch (or its chunk) has
        # been read (see _settling), else now. Attributes are read and set as attributes,
        # never through the instance's __dict__, which would make Python build a
        # dictionary for each row.
        instance = original_from_db(cls, db, field_names, values)
        if len(values) == concrete:
            loaded = personal
        else:  # deferred fields (only(), defer()) are left to their own loading
            loaded = [entry for entry in personal if entry[0] in field_names]
        if not loaded:
            return instance
        # A deferred subject is loaded now, when there are tokens to open.
        subject = getattr(instance, subject_attname)
        if subject is not None and type(subject) is not str:
            subject = str(subject)
        window = getattr(_fetch, "window", None)
        if window is not None:
            # Keys cached and not known alive at the key store's current shred mark wait
            # for one look-up of the fetch's learners; others open now (a learner with
            # nothing cached has her keys read from the key database itself).
            cached = window.cached
            if cached is None and subject is not None:
                cached = window.start()
            keys = None if subject is None else cached.get(subject)
            if keys is None or keys.checked == window.current():
                open_row(instance, loaded, subject)
            else:
                window.rows.append((open_row, instance, loaded, subject))
        else:
            if subject is not None:
                _settings.runtime().keyring._drop_stale((subject,))
            open_row(instance, loaded, subject)
        return instance

    def open_row(instance: Any, loaded: Any, subject: str | None) -> None:
        # A value that does not open is kept aside (seal), and reading it raises the
        # typed error then.
        if subject is None:
            for name, _suffix, _text, _field in loaded:
                token = getattr(instance, name)
                if type(token) is str:
                    seal(instance, name, token)
            return
        key = getattr(instance, pk_attname)
        setattr(instance, ORIGIN_KEY, key)
        setattr(instance, ORIGIN_SUBJECT, subject)
        decrypt = _settings.runtime().cipher.decrypt
        prefix = f"{table}/{key}"
        for name, suffix, text, field in loaded:
            token = getattr(instance, name)
            if type(token) is not str:
                continue
            try:
                plain = decrypt(token, subject=subject, context=prefix + suffix)
                value = plain if text else field.parse(plain)
            except Exception:  # any failure waits for the read, which says why
                seal(instance, name, token)
                continue
            setattr(instance, name, value)

    from_db.opens_tokens = True  # type: ignore[attr-defined]
    model.from_db = classmethod(from_db)

    def bind_new_row(
        self: Any,
        save: Any,
        raw: bool,
        cls: Any,
        force_insert: Any,
        force_update: bool,
        using: str | None,
        update_fields: Any,
    ) -> Any:
        sealed = self.__dict__.get(SEALED)
        unmoved = False
        if sealed and not raw:
            # Values that did not open at load are left out of Django's update_fields
            # (unset, they count as deferred) and keep their tokens: only in their own
            # row and learner. Anywhere else they must open first (they would be bound
            # to the new place), which raises the typed error.
            subject = getattr(self, subject_attname)
            here = (getattr(self, pk_attname), None if subject is None else str(subject))
            unmoved = origin_of(self) == here
            if not unmoved:
                for name in list(sealed):
                    getattr(self, name)
        state = self._state
        if (
            auto
            and not raw
            and state.adding
            and not force_update
            and not update_fields
            and getattr(self, pk_attname) is None
        ):
            setattr(self, pk_attname, _pool.take(model, using or "default"))
            force_insert = True
        if update_fields and not unmoved:
            refuse_move(bound, update_fields)
        if update_fields and indexed:
            extra = [indexed[name] for name in update_fields if name in indexed]
            if extra:
                update_fields = frozenset(update_fields) | frozenset(extra)
        owner = getattr(self, subject_attname)
        if owner is not None:
            # Keys cached here and shredded since by another process must not seal the
            # row's values (written under a destroyed key, they would be lost while the
            # save succeeds): checked as a fetch checks them (see _refuse_stale_keys).
            _refuse_stale_keys(str(owner), using or "default")
        if not raw:
            if update_fields or plan is None or not seal_ahead(self, plan):
                return save(self, raw, cls, force_insert, force_update, using, update_fields)
            try:
                return save(self, raw, cls, force_insert, force_update, using, update_fields)
            finally:
                self.__dict__.pop(AHEAD, None)
        # A raw save (loaddata) skips pre_save, which encrypts: the values are bound to
        # their row here, and the instance gets its plaintext back afterwards.
        with _tokens_in_place([self], bound.encrypted, add=state.adding):
            return save(self, raw, cls, force_insert, force_update, using, update_fields)

    # The row's values are encrypted together (seal_ahead) when they all share its table.
    plan = SealPlan.of(bound.encrypted) if all(f.model is model for f in bound.encrypted) else None
    _around_save_table(model, bind_new_row)

    if auto:
        pk_field = meta.pk
        original_value = pk_field.get_pk_value_on_save

        def get_pk_value_on_save(instance: Any) -> Any:
            # bulk_create asks for a key for each new row: reserve it, so the row's
            # values can be bound to it.
            value = original_value(instance)
            if value is None:
                from django.db import router

                value = _pool.take(model, router.db_for_write(model))
            return value

        pk_field.get_pk_value_on_save = get_pk_value_on_save


# -- restricted rows: no write, no delete, no cascade ------------------------------------


def _guard_restricted(model: Any, bound: Bound) -> None:
    """Refuse every ORM write to a restricted row of ``model``, whatever reaches it.

    * ``save()`` of a row that may exist (an update, or an insert with an explicit key
      that Django may turn into an update, ``loaddata`` included);
    * ``delete()`` of the row, and deletes that cascade into it from any other model:
      Django sends ``pre_delete`` for every collected row before it deletes anything,
      inside the delete's transaction, so the refusal rolls the whole delete back;
    * ``on_delete=SET_NULL`` / ``SET_DEFAULT`` / ``SET(...)`` changes the row when the
      row it points to is deleted: that delete is refused too;
    * ``QuerySet.update()``, ``bulk_update()`` and ``bulk_create(update_conflicts=True)``
      colliding with the row (see :func:`_install_queryset_hooks`).
    """
    from django.db import models
    from django.db.models.signals import pre_delete

    table = bound.spec.table

    def refuse_restricted_save(self: Any, save: Any, *args: Any) -> Any:
        # args: raw, cls, force_insert, force_update, using, update_fields.
        force_insert, using = args[2], args[4]
        if force_insert or self.pk is None:
            return save(self, *args)
        if self._state.adding:
            # A new instance (an explicit key that may still meet a stored row): checked,
            # without holding anything, as the common insert path must stay cheap.
            check_not_restricted(bound, self.pk, using or "default")
            return save(self, *args)
        from django.db import transaction

        db = using or "default"
        # The check and the write in one transaction, the row held from before the check
        # (PostgreSQL: FOR UPDATE; a restriction locks its rows too; SQLite: the write
        # lock): a restriction committed by another connection is either seen by the
        # check or waits for the write.
        with transaction.atomic(using=db, savepoint=False):
            check_held(bound, self.pk, db)
            return save(self, *args)

    _around_save_table(model, refuse_restricted_save)

    def refuse_restricted_delete(sender: Any, instance: Any, using: str, **kwargs: Any) -> None:
        # Rows a legal minimum or a hold keeps cannot be deleted behind the erasure rules.
        # Django sends this inside the delete's transaction: the row is held from
        # before the check, as a save holds it (SQLite: the write lock).
        if instance.pk is not None:
            check_held(bound, instance.pk, using)

    pre_delete.connect(
        refuse_restricted_delete, sender=model, weak=False, dispatch_uid=f"lp-restrict-{table}"
    )

    keeping = (models.CASCADE, models.PROTECT, models.RESTRICT, models.DO_NOTHING)
    for field in model._meta.concrete_fields:
        remote = getattr(field, "remote_field", None)
        if remote is None or (not field.many_to_one and not field.one_to_one):
            continue
        if remote.on_delete in keeping:
            continue
        _guard_set_on_delete(bound, field)


def _guard_set_on_delete(bound: Bound, field: Any) -> None:
    """Refuse deleting a row that restricted rows of ``bound`` point to through
    ``field``, whose ``on_delete`` would change them."""
    from django.db.models.signals import pre_delete

    model = bound.model
    target = field.remote_field.model

    def refuse(sender: Any, instance: Any, using: str, **kwargs: Any) -> None:
        if instance.pk is None:
            return
        hold_for_check(model, (), using)  # SQLite: the write lock, before the reads
        keys = list(
            model._base_manager.using(using)
            .filter(**{field.name: instance})
            .values_list("pk", flat=True)
        )
        if keys and restricted_keys(bound, keys, using):
            raise RestrictedRecordError(
                f"{bound.spec.table}: deleting this row would change restricted rows "
                f"through {field.name} (on_delete); they are kept, not processed"
            )

    pre_delete.connect(
        refuse,
        sender=target,
        weak=False,
        dispatch_uid=f"lp-restrict-{bound.spec.table}-{field.name}",
    )


_queryset_hooks = False

#: ``QuerySet.bulk_create``'s options after ``objs``, in order.
_BULK_CREATE_OPTIONS = (
    "batch_size",
    "ignore_conflicts",
    "update_conflicts",
    "update_fields",
    "unique_fields",
)


def _install_queryset_hooks() -> None:
    """``QuerySet.update()`` refuses restricted rows; ``bulk_update()`` binds personal
    values to their rows (and refuses restricted rows); ``bulk_create()`` refuses an
    upsert that collides with a restricted row, and makes the missing keys of its rows'
    learners in one key-store transaction first. Other models are untouched."""
    global _queryset_hooks
    if _queryset_hooks:
        return
    _queryset_hooks = True
    from django.db.models.query import QuerySet

    original_update = QuerySet.update
    original_bulk_update = QuerySet.bulk_update
    original_bulk_create = QuerySet.bulk_create

    def update(self: Any, **kwargs: Any) -> Any:
        bound = _bound.get(self.model._meta.concrete_model)
        if bound is None:
            return original_update(self, **kwargs)
        refuse_move(bound, kwargs)
        from django.db import connections, transaction

        # The check and the UPDATE in one transaction, the matched rows held from before
        # the check (as a save holds its row): a restriction committed by another
        # connection is either seen by the check or waits for the UPDATE.
        with transaction.atomic(using=self.db, savepoint=False):
            keys = None
            if connections[self.db].vendor != "sqlite":
                # By key, so that DISTINCT or GROUP BY in the query does not stop the lock.
                held = bound.model._base_manager.using(self.db).filter(pk__in=self.values("pk"))
                keys = list(held.select_for_update().values_list("pk", flat=True))
            else:
                hold_for_check(bound.model, (), self.db)
            if any_restricted(bound, self.db):
                if keys is None:
                    keys = list(self.values_list("pk", flat=True))
                if restricted_keys(bound, keys, self.db):
                    raise RestrictedRecordError(
                        f"{bound.spec.table}: the update reaches restricted rows "
                        "(GDPR Art. 18); they are kept, not processed, and cannot be changed"
                    )
            return original_update(self, **kwargs)

    def bulk_update(self: Any, objs: Any, fields: Any, batch_size: int | None = None) -> Any:
        bound = _bound.get(self.model._meta.concrete_model)
        if bound is None:
            return original_bulk_update(self, objs, fields, batch_size)
        objs = tuple(objs)
        names = list(fields)
        refuse_move(bound, names)
        keys = [obj.pk for obj in objs if obj.pk is not None]
        if keys and restricted_keys(bound, keys, self.db):
            raise RestrictedRecordError(
                f"{bound.spec.table}: bulk_update reaches restricted rows (GDPR Art. 18); "
                "they are kept, not processed, and cannot be changed"
            )
        personal = [f for f in bound.encrypted if f.name in names or f.attname in names]
        if not personal or any(obj.pk is None for obj in objs):
            # Without a primary key Django refuses the call itself.
            return original_bulk_update(self, objs, fields, batch_size)
        indexes = [f.name + INDEX_SUFFIX for f in personal if f.lp_index]
        with _tokens_in_place(objs, personal, add=False):
            return original_bulk_update(
                self, objs, names + [n for n in indexes if n not in names], batch_size
            )

    def bulk_create(self: Any, objs: Any, *args: Any, **kwargs: Any) -> Any:
        bound = _bound.get(self.model._meta.concrete_model)
        if bound is None:
            return original_bulk_create(self, objs, *args, **kwargs)
        objs = list(objs)
        # An upsert rewrites the stored rows its new ones collide with.
        options = {**dict(zip(_BULK_CREATE_OPTIONS, args, strict=False)), **kwargs}
        if options.get("update_conflicts"):
            from django.db import connections, transaction

            # The check and the upsert in one transaction, the colliding rows held from
            # before the check (PostgreSQL: FOR UPDATE; SQLite: the write lock), as
            # update() does: a restriction committed by another connection is either
            # seen by the check or waits for the write.
            with transaction.atomic(using=self.db, savepoint=False):
                unique, keys = options.get("unique_fields"), None
                if connections[self.db].vendor != "sqlite":
                    keys = _colliding_keys(bound.model, objs, unique, self.db)
                hold_for_check(bound.model, keys or (), self.db)
                if any_restricted(bound, self.db):
                    if keys is None:
                        keys = _colliding_keys(bound.model, objs, unique, self.db)
                    if keys and restricted_keys(bound, keys, self.db):
                        raise RestrictedRecordError(
                            f"{bound.spec.table}: bulk_create(update_conflicts=True) would "
                            "rewrite restricted rows (GDPR Art. 18); they are kept, not processed"
                        )
                return create(self, bound, objs, args, kwargs)
        return create(self, bound, objs, args, kwargs)

    def create(self: Any, bound: Bound, objs: list[Any], args: Any, kwargs: Any) -> Any:
        if not bound.encrypted:
            return original_bulk_create(self, objs, *args, **kwargs)
        subjects = {
            str(subject)
            for obj in objs
            if (subject := obj.__dict__.get(bound.subject_attname)) is not None and subject != ""
        }
        from learnprivacy.django._keystore import DjangoKeyStore

        keyring = _settings.runtime().keyring
        if len(subjects) > 1 and isinstance(keyring.store, DjangoKeyStore):
            # One key-store transaction for every learner new to it, committed before
            # the rows (as each key made on first use is): not one per learner. A
            # learner whose keys were shredded gets none here, and its row is refused
            # as before when its value is encrypted.
            from learnprivacy.django._privacy import prepare_keys

            prepare_keys(subjects, [bound.spec.scope])  # stale cached keys dropped first
        elif subjects:
            # Cached keys another process shredded since seal nothing (see save()).
            keyring._drop_stale(subjects)
        return original_bulk_create(self, objs, *args, **kwargs)

    QuerySet.update = update
    QuerySet.bulk_update = bulk_update
    QuerySet.bulk_create = bulk_create
    from django.db.models.query import ModelIterable, RawModelIterable

    ModelIterable.__iter__ = _settling(ModelIterable.__iter__)
    RawModelIterable.__iter__ = _settling(RawModelIterable.__iter__)


#: By database alias: ``(token, mark)``, the shred mark read by the first write of the
#: transaction under way that needed it, and the ``on_commit`` callable registered then.
_write_marks = threading.local()


def _refuse_stale_keys(subject: str, using: str) -> None:
    """Drop ``subject``'s cached keys if another process shredded them since they were
    last checked, so that a write cannot seal values under a destroyed key.

    A learner with nothing cached costs nothing (her keys come from the key store). In
    a transaction the key store's shred mark is read once, by its first write that
    needs it: every write of the transaction then uses no key shredded before that
    read, as a fetch uses none shredded before its own; a shred committed while the
    transaction writes is not seen by either. The transaction is told by a callable
    registered with ``on_commit``: Django drops it when the transaction (or the
    savepoint it was registered in) ends, and the next write reads the mark again.
    """
    from django.db import connections, transaction

    keyring = _settings.runtime().keyring
    keys = keyring._cache.subjects.get(subject)
    if keys is None:
        return
    connection = connections[using]
    mark: object = None
    if connection.in_atomic_block:
        held = getattr(_write_marks, using, None)
        if held is not None and any(hook[1] is held[0] for hook in connection.run_on_commit):
            mark = held[1]
        else:
            mark = keyring._current_mark()

            def token() -> None:
                """Marks the transaction the mark was read in; does nothing."""

            transaction.on_commit(token, using=using)
            setattr(_write_marks, using, (token, mark))
    if mark is None or keys.checked != mark:
        keyring._drop_stale((subject,))


#: ``window``: the :class:`_Window` of the fetch building instances in this thread.
_fetch = threading.local()


class _Window:
    """What a fetch (or a chunk of ``iterator()``) knows of the keys held in memory."""

    __slots__ = ("cached", "keyring", "mark", "rows")

    def __init__(self) -> None:
        # Set by start(), when the first row with a learner is built (a fetch of rows
        # with no tokens to open needs no keyring, nor the master key).
        self.keyring: Any = None
        #: The cached keys, by learner (the keyring's cache, read without a copy).
        self.cached: Any = None
        self.mark: object = _UNREAD
        #: Rows whose cached keys wait for the look-up: (open_row, instance, loaded,
        #: subject).
        self.rows: list[tuple[Any, Any, Any, str]] = []

    def start(self) -> Any:
        """Take the project's keyring; its cache of keys, by learner."""
        self.keyring = _settings.runtime().keyring
        self.cached = self.keyring._cache.subjects
        return self.cached

    def current(self) -> object:
        """The key store's shred mark, read once, when a row first needs it (an object
        no key is dated with when the store keeps none)."""
        mark = self.mark
        if mark is _UNREAD:
            found = self.keyring._current_mark()
            mark = self.mark = _NO_MARK if found is None else found
        return mark

    def settle(self) -> None:
        """Look up the learners of the waiting rows (one query), then open them."""
        rows = self.rows
        if rows:
            self.keyring._drop_stale({entry[3] for entry in rows})
            for open_row, instance, loaded, subject in rows:
                open_row(instance, loaded, subject)


#: Never a shred mark: the mark not read yet; a store that keeps none.
_UNREAD = object()
_NO_MARK = object()


def _settling(iterate: Any) -> Any:
    """Wrap the ``__iter__`` of Django's model iterables: the instances a fetch builds
    (its rows and those ``select_related`` brings) are handed out once the keys held in
    memory for their learners are known alive, checked for the whole fetch at once, or
    for each chunk of ``iterator()``: one read of the key store's shred mark, and one
    look-up of the learners whose cached keys were last checked under another mark. A
    process that holds a learner's keys must not open rows of hers restored from a copy
    after another process erased her."""

    def __iter__(self: Any) -> Any:
        queryset = self.queryset
        if not getattr(queryset.model.from_db, "opens_tokens", False) and not getattr(
            queryset.query, "select_related", False
        ):
            return iterate(self)
        return _settled(iterate(self), self.chunk_size if self.chunked_fetch else None)

    return __iter__


def _settled(rows: Iterator[Any], size: int | None) -> Iterator[Any]:
    local = _fetch
    while True:
        outer = getattr(local, "window", None)
        window = local.window = _Window()
        try:
            chunk = list(islice(rows, size))
        finally:
            local.window = outer
        window.settle()
        yield from chunk
        if size is None or len(chunk) < size:
            return


def _colliding_keys(
    model: Any, objs: Sequence[Any], unique_fields: Sequence[str] | None, using: str
) -> list[Any]:
    """Primary keys of the stored rows that ``objs`` collide with on ``unique_fields``
    (or, without them, on any unique field or set of fields of ``model``)."""
    from django.db.models import Q

    meta = model._meta
    if unique_fields:
        groups = [list(unique_fields)]
    else:
        groups = [[f.name] for f in meta.concrete_fields if f.unique]
        groups += [list(names) for names in meta.unique_together]
        groups += [list(c.fields) for c in meta.total_unique_constraints]
    fields = [[meta.pk if name == "pk" else meta.get_field(name) for name in g] for g in groups]
    # A token is new at every encryption: no insert collides on an encrypted column.
    fields = [g for g in fields if not any(isinstance(f, PersonalField) for f in g)]
    found: list[Any] = []
    for start in range(0, len(objs), 500):
        match = Q()
        for obj in objs[start : start + 500]:
            for group in fields:
                values = {f.attname: getattr(obj, f.attname) for f in group}
                if None not in values.values():
                    match |= Q(**values)
        if match:
            manager = model._base_manager.using(using)
            found.extend(manager.filter(match).values_list("pk", flat=True))
    return found


@contextmanager
def _tokens_in_place(objs: Sequence[Any], fields: Sequence[PersonalField], *, add: bool) -> Any:
    """Put in each instance's personal attributes the token of its value, bound to its
    row (as ``pre_save`` makes it), for writes that skip ``pre_save``; put the values
    back afterwards."""
    saved: list[tuple[Any, str, Any]] = []
    try:
        for obj in objs:
            data = obj.__dict__
            for field in fields:
                token = field.pre_save(obj, add)
                saved.append((obj, field.attname, data.get(field.attname)))
                data[field.attname] = token
        yield
    finally:
        for obj, attname, value in reversed(saved):
            obj.__dict__[attname] = value


class _KeyPool:
    """Primary keys reserved ahead, handed out within one transaction.

    Reserving one key per insert costs a statement each; inside a transaction, keys are
    reserved in growing runs (8, 16... up to 256) and handed out in order. The run is
    tied to the outermost atomic block: when that block ends, committed or rolled back,
    what is left is dropped (a rollback also undoes an SQLite reservation, so its keys
    must never be handed out afterwards). Outside a transaction, one key at a time.
    Unused keys are gaps, as with any sequence.
    """

    def __init__(self) -> None:
        self._local = threading.local()

    def take(self, model: Any, using: str) -> int:
        local = self._local
        try:
            connection, pools = local.aliases[using]
        except (AttributeError, KeyError):
            # Django keeps one connection object per thread and alias for the thread's
            # life (closing it does not replace it): looked up once, not per insert.
            from django.db import connections

            connection, pools = connections[using], {}
            if not hasattr(local, "aliases"):
                local.aliases = {}
            local.aliases[using] = (connection, pools)
        if not connection.in_atomic_block:
            return reserve_keys(model, using, 1)[0]
        block = connection.atomic_blocks[0]
        run = pools.get(model)
        if run is None or run[0] is not block:
            run = pools[model] = [block, [], 4]
        keys: list[int] = run[1]
        if not keys:
            run[2] = size = min(run[2] * 2, 256)
            keys.extend(reversed(reserve_keys(model, using, size)))
        return keys.pop()


_pool = _KeyPool()


def reserve_keys(model: Any, using: str, count: int) -> list[int]:
    """``count`` fresh values of ``model``'s auto-increment key, taken before inserting."""
    from django.db import connections

    connection = connections[using]
    meta = model._meta
    table, column = meta.db_table, meta.pk.column
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
                [connection.ops.quote_name(table), column, count],
            )
            return [int(row[0]) for row in cursor.fetchall()]
        if connection.vendor == "sqlite":
            # AUTOINCREMENT tables never reuse a value above sqlite_sequence.seq, which
            # also covers rows inserted with explicit keys: bumping it reserves the range.
            cursor.execute(
                "UPDATE sqlite_sequence SET seq = seq + %s WHERE name = %s RETURNING seq",
                [count, table],
            )
            row = cursor.fetchone()
            if row is None:
                quoted = connection.ops.quote_name(column)
                cursor.execute(
                    f"INSERT INTO sqlite_sequence (name, seq) SELECT %s, "
                    f"coalesce(max({quoted}), 0) + %s FROM {connection.ops.quote_name(table)} "
                    "RETURNING seq",
                    [table, count],
                )
                row = cursor.fetchone()
            last = int(row[0])
            return list(range(last - count + 1, last + 1))
    raise ConfigurationError(
        f"{table}: auto-increment keys are reserved on PostgreSQL and SQLite only; "
        f"on {connection.vendor} give the model a UUID or text primary key"
    )


def hold_for_check(model: Any, keys: Sequence[Any], using: str) -> None:
    """Inside a transaction, before a restriction check that guards a write of the rows
    ``keys`` of ``model`` (or the listing of them as restricted): hold what a competing
    write would need until the transaction ends, so that none slips between the check and
    the write. PostgreSQL: the rows (:func:`hold_rows`). SQLite: the database's write
    lock, taken by a write that changes nothing, as ``BEGIN IMMEDIATE`` would take it: a
    read alone does not block a writer in WAL mode, and the transaction's later write
    would fail (``database is locked``) once another connection had committed."""
    from django.db import connections

    connection = connections[using]
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute("UPDATE lpdj_restrictions SET id = id WHERE 1 = 0")
    elif keys:
        hold_rows(model, keys, using)


def check_held(bound: Bound, key: Any, using: str) -> None:
    """Inside the caller's transaction, hold the row ``key`` of ``bound`` as
    :func:`hold_for_check` does, then raise ``RestrictedRecordError`` if it is restricted.
    On PostgreSQL one statement does both (the row locked, the register read in the same
    query); a row that is not there is checked in the register alone."""
    from django.db import connections

    connection = connections[using]
    if connection.vendor == "sqlite":
        hold_for_check(bound.model, (), using)
        check_not_restricted(bound, key, using)
        return
    meta = bound.model._meta
    quote = connection.ops.quote_name
    table = bound.spec.table
    with connection.cursor() as cursor:
        cursor.execute(
            'SELECT EXISTS (SELECT 1 FROM lpdj_restrictions WHERE "table" = %s AND row_ref = %s) '
            f"FROM {quote(meta.db_table)} WHERE {quote(meta.pk.column)} = %s FOR UPDATE",
            [table, row_ref(table, key), meta.pk.get_db_prep_value(key, connection)],
        )
        found = cursor.fetchone()
    if found is None:
        check_not_restricted(bound, key, using)
    elif found[0]:
        raise row_restricted(table)


def hold_rows(model: Any, keys: Sequence[Any], using: str) -> None:
    """Lock the rows ``keys`` of ``model`` (``FOR UPDATE``) until the transaction ends:
    what a save checking a row's restriction and a restriction of that row both take
    first, so neither slips between the other's check and write."""
    list(
        model._base_manager.using(using)
        .filter(pk__in=list(keys))
        .select_for_update()
        .values_list("pk", flat=True)
    )
