"""Personal fields on Django models: tokens at rest, plaintext on the instance.

``personal(models.CharField(max_length=40), category=..., description=...)`` returns a
field of the matching ``Personal*`` class below. Its column holds a
:class:`~learnprivacy.crypto.FieldCipher` token under the learner's data key, bound to
``"<table>/<primary key>/<column>"``: a token copied to another row, column or learner
fails to decrypt. Values are encrypted in ``pre_save`` (when the row's key is known) and
decrypted when the row is loaded into an instance, so admin, forms and serializers see
plaintext; a value that does not open is kept aside (see :data:`SEALED`) and reading it
raises the typed error. ``QuerySet.values()`` returns the tokens, never plaintext.

Personal columns are written by saving an instance, ``bulk_create``, ``bulk_update``,
``loaddata`` (each value bound to its row) and ``learnprivacy_encrypt_existing``.
``QuerySet.update()`` and raw values cannot bind a value to its row and raise
:class:`~learnprivacy.errors.PlaintextError`. Lookups go through the blind index:
``Profile.objects.filter(phone=lp_lookup("+33 6 12 34 56 78"))`` (declare
``blind_index=True``); other lookups on a personal field raise ``ValidationError``.

The classes are importable by path because migrations name them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import attrs
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import models
from django.db.models.lookups import Exact, IsNull
from django.db.models.query_utils import DeferredAttribute

from learnprivacy._inplace import ColumnPrivacy, index_field, is_token
from learnprivacy.basis import DataCategory
from learnprivacy.crypto._token import PREFIX as _TOKEN_PREFIX
from learnprivacy.django import _settings
from learnprivacy.errors import (
    ConfigurationError,
    DecryptionError,
    KeyShreddedError,
    PlaintextError,
    ValidationError,
)

__all__ = [
    "PersonalField",
    "lp_lookup",
    "not_personal",
    "personal",
]

#: The attribute a declared Django field carries its :class:`ColumnPrivacy` under.
DECLARATION = "learnprivacy"
#: Where an instance loaded from the database remembers the key and the subject (as
#: text) it was read with: tokens are bound to them, even if the instance's key is
#: changed (cloning). Two plain attributes, so that loading a row allocates no object
#: for them.
ORIGIN_KEY = "_lp_origin_key"
ORIGIN_SUBJECT = "_lp_origin_subject"
INDEX_SUFFIX = "_bidx"
#: Where an instance keeps the tokens read from its row that did not open at load, by
#: attribute name; those attributes are left unset, so reading one comes to
#: :class:`PersonalAttribute`, which opens it then or raises the typed error.
SEALED = "_lp_sealed"
#: Where a save keeps, while it runs, the tokens :func:`seal_ahead` made for the row's
#: text values at once: ``(key, subject, {attname: (value, token)})``, the key and
#: subject being the very objects the instance held.
AHEAD = "_lp_ahead"


class _Bound(str):
    """A token made by ``pre_save`` for its row: the only value a personal column takes."""

    __slots__ = ()


class LpLookup:
    """A value to find by blind index: ``filter(email=lp_lookup("ana@example.org"))``."""

    __slots__ = ("value",)

    def __init__(self, value: str) -> None:
        if type(value) is not str:
            raise ValidationError("lp_lookup() takes the text to look for", field="value")
        self.value = value

    def __repr__(self) -> str:
        return "lp_lookup(***)"


def lp_lookup(value: str) -> LpLookup:
    """Mark ``value`` for a blind-index lookup on a personal field."""
    return LpLookup(value)


class PersonalAttribute(DeferredAttribute):
    """Reads a personal attribute the instance does not hold: a value left sealed at load
    (kept under :data:`SEALED`) is opened now or raises its typed error; a deferred one
    is loaded as Django loads it.

    Like Django's own field attributes it defines no ``__set__``: an opened value is a
    plain attribute of the instance, read and written without a call of ours.
    """

    field: PersonalField

    def __get__(self, instance: Any, cls: Any = None) -> Any:
        if instance is None:
            return self
        name = self.field.attname
        sealed = instance.__dict__.get(SEALED)
        if not sealed or name not in sealed:
            try:
                return super().__get__(instance, cls)
            except KeyError:
                # Deferred, and its token did not open when Django loaded it: read the
                # token itself, to say why.
                token = (
                    type(instance)
                    ._base_manager.db_manager(instance._state.db)
                    .filter(pk=instance.pk)
                    .values_list(name, flat=True)
                    .get()
                )
                seal(instance, name, token)
                sealed = instance.__dict__[SEALED]
        value = self.field.open(instance, sealed[name])
        del sealed[name]
        setattr(instance, name, value)
        return value


def origin_of(instance: Any) -> tuple[Any, str] | None:
    """The (key, subject) ``instance`` was loaded with, or ``None`` if it was not."""
    data = instance.__dict__
    if ORIGIN_SUBJECT not in data:
        return None
    return data[ORIGIN_KEY], data[ORIGIN_SUBJECT]


def seal(instance: Any, name: str, token: str) -> None:
    """Keep ``token``, read for attribute ``name`` of ``instance`` and not opened, out of
    the instance's attributes: reading the attribute opens it then or raises why not."""
    data = instance.__dict__
    data.pop(name, None)
    data.setdefault(SEALED, {})[name] = token


class BlindIndexBadLookup(ValidationError):
    """Raised for a lookup an encrypted column cannot answer."""


class PersonalField(models.Field):
    """What every ``Personal*`` field adds to its Django base class (see module doc)."""

    descriptor_class = PersonalAttribute
    # Set by the app when it binds the model (learnprivacy.django._bind).
    lp_table: str = ""
    lp_scope: str = ""
    lp_subject: str = ""
    lp_pk: str = ""
    lp_text: bool = True
    lp_index: bool = False

    def __init__(
        self,
        *args: Any,
        category: DataCategory,
        description: str,
        blind_index: bool = False,
        exported: bool = True,
        **kwargs: Any,
    ) -> None:
        for option in ("primary_key", "unique", "db_index"):
            if kwargs.get(option):
                raise ConfigurationError(
                    f"a personal field cannot have {option}=True: its column holds tokens "
                    "(use blind_index=True to look values up)"
                )
        setattr(
            self,
            DECLARATION,
            ColumnPrivacy(
                personal=True,
                category=category,
                description=description,
                blind_index=blind_index,
                exported=exported,
            ),
        )
        self.lp_index = blind_index
        super().__init__(*args, **kwargs)

    @property
    def declaration(self) -> ColumnPrivacy:
        """The field's privacy declaration."""
        value: ColumnPrivacy = getattr(self, DECLARATION)
        return value

    @property
    def where(self) -> str:
        """``table.column``, as errors name the field."""
        return f"{self.model._meta.db_table}.{self.column}"

    # -- schema ----------------------------------------------------------------------

    def db_type(self, connection: Any) -> str | None:
        """Tokens are longer than the values: always a text column."""
        return str(connection.data_types["TextField"])

    def db_check(self, connection: Any) -> str | None:
        """No value check on a column of tokens."""
        return None

    def get_internal_type(self) -> str:
        """A text column for the database layer (no converters of the base type)."""
        return "TextField"

    def deconstruct(self) -> Any:
        """Migrations name this class and the declaration."""
        name, _path, args, kwargs = super().deconstruct()
        declared = self.declaration
        kwargs["category"] = declared.category
        kwargs["description"] = declared.description
        if declared.blind_index:
            kwargs["blind_index"] = True
        if not declared.exported:
            kwargs["exported"] = False
        return name, f"learnprivacy.django.fields.{type(self).__name__}", args, kwargs

    def contribute_to_class(self, cls: Any, name: str, **kwargs: Any) -> None:
        """Add the blind-index column next to the field when asked."""
        super().contribute_to_class(cls, name, **kwargs)
        # Models rendered from migrations ("__fake__") carry the index field explicitly.
        if self.declaration.blind_index and not cls._meta.abstract and cls.__module__ != "__fake__":
            cls.add_to_class(name + INDEX_SUFFIX, BlindIndexField(editable=False))

    @property
    def index_field(self) -> BlindIndexField:
        """The blind-index field of this field (``<name>_bidx``)."""
        if not self.declaration.blind_index:
            raise ConfigurationError(
                f"{self.where} has no blind index: declare it with blind_index=True"
            )
        field = self.model._meta.get_field(self.name + INDEX_SUFFIX)
        assert isinstance(field, BlindIndexField)
        return field

    # -- values ----------------------------------------------------------------------

    def parse(self, value: Any) -> Any:
        """``to_python(value)``, refused with the library's error naming the column:
        Django's own message quotes the value."""
        try:
            return self.to_python(value)
        except DjangoValidationError:
            raise ValidationError(
                f"{self.where}: not a valid value for this field", field=self.where
            ) from None

    def to_text(self, value: Any) -> str:
        """The text that gets encrypted for ``value``."""
        if self.lp_text:
            if type(value) is str:
                return value
            value = self.parse(value)
            if not isinstance(value, str):
                raise ValidationError(f"{self.where} holds text", field=self.where)
            return value
        value = self.parse(value)
        if isinstance(value, dt.datetime | dt.date):
            return value.isoformat()
        return str(value)

    def from_text(self, text: str) -> Any:
        """The Python value of decrypted ``text``."""
        return text if self.lp_text else self.parse(text)

    def index_of(self, value: Any) -> str:
        """The blind index of ``value`` in this field."""
        return _settings.runtime().index.compute(
            self.to_text(value), field=index_field(self.model._meta.db_table, self.column)
        )

    def binding(self, instance: Any) -> tuple[Any, str]:
        """The (primary key, subject) a value of ``instance`` is bound to now."""
        key = instance.pk
        subject = getattr(instance, self.lp_subject) if self.lp_subject else None
        if key is None:
            raise ValidationError(
                f"{self.where}: the row has no primary key yet, a value cannot be bound to it",
                field=self.where,
            )
        if subject is None or subject == "":
            raise ValidationError(
                f"{self.where}: the row has no subject, a personal value needs one",
                field=self.where,
            )
        return key, str(subject)

    def _unbound(self) -> ConfigurationError:
        return ConfigurationError(f"{self.where}: the model has no Privacy(...) declaration")

    def open(self, instance: Any, token: str) -> Any:
        """Decrypt ``token`` read from ``instance``'s row (typed errors, never a value)."""
        table = self.lp_table
        if not table:
            raise self._unbound()
        key, subject = origin_of(instance) or self.binding(instance)
        try:
            text = _settings.runtime().cipher.decrypt(
                token, subject=subject, context=f"{table}/{key}/{self.column}"
            )
        except KeyShreddedError:
            raise KeyShreddedError(f"{self.where}: the learner's key was shredded") from None
        except (DecryptionError, ValidationError):
            if not is_token(token):
                raise PlaintextError(
                    f"{self.where}: the stored value is not a token "
                    "(plaintext at rest? run manage.py learnprivacy_encrypt_existing)",
                    table=table,
                    column=self.column,
                ) from None
            raise DecryptionError(
                f"{self.where}: the stored token does not open for this row and column "
                "(moved from another row or column, or altered)"
            ) from None
        return text if self.lp_text else self.parse(text)

    def pre_save(self, model_instance: Any, add: bool) -> Any:
        """The token to write for the instance's value (the instance keeps plaintext)."""
        table = self.lp_table
        if not table:
            raise self._unbound()
        data = model_instance.__dict__
        name = self.attname
        if name in data:
            value = data[name]
        else:
            sealed = data.get(SEALED)
            if (
                sealed
                and name in sealed
                and not add
                and origin_of(model_instance) == self.binding(model_instance)
            ):
                # Unchanged and still in its row: written back as it was read.
                return _Bound(sealed[name])
            value = getattr(model_instance, name)  # opened, deferred, or the typed error
        ahead = data.get(AHEAD)
        if (
            ahead is not None
            and ahead[0] is data.get(self.lp_pk)
            and ahead[1] is data.get(self.lp_subject)
        ):
            made = ahead[2].get(name)
            if made is not None and made[0] is value:
                # Encrypted with the row's other values (seal_ahead), for this very value
                # and the very key and subject objects it was bound to.
                if self.lp_index:
                    setattr(model_instance, self.name + INDEX_SUFFIX, self.index_of(value))
                return made[1]
        if value is None:
            if self.lp_index:
                setattr(model_instance, self.name + INDEX_SUFFIX, None)
            return None
        key = data.get(self.lp_pk)
        subject = data.get(self.lp_subject)
        if key is None or subject is None or subject == "":
            key, subject = self.binding(model_instance)
        elif type(subject) is not str:
            subject = str(subject)
        text = value if self.lp_text and type(value) is str else self.to_text(value)
        if text.startswith(_TOKEN_PREFIX):
            raise PlaintextError(
                f"{self.where}: a token was assigned where a value is expected",
                table=table,
                column=self.column,
            )
        token = _settings.runtime().cipher.encrypt(
            text, subject=subject, context=f"{table}/{key}/{self.column}", scope=self.lp_scope
        )
        if self.lp_index:
            setattr(model_instance, self.name + INDEX_SUFFIX, self.index_of(text))
        return _Bound(token)

    def get_db_prep_save(self, value: Any, connection: Any) -> Any:
        """Only tokens made by :meth:`pre_save` reach the database.

        An expression passes only when every value it can write is such a token: the
        ``CASE WHEN pk = ... THEN <token>`` that ``bulk_update`` builds from tokens bound
        to each row.
        """
        if value is None or type(value) is _Bound:
            return value if value is None else str(value)
        if hasattr(value, "as_sql") and _only_tokens(value):
            return value
        raise PlaintextError(
            f"{self.where}: personal values are written by saving a model instance "
            "(or bulk_create, bulk_update, loaddata); QuerySet.update() and raw values "
            "cannot bind them to their row",
            table=self.model._meta.db_table,
            column=self.column,
        )

    def to_python(self, value: Any) -> Any:
        """The Python value of a decrypted value, as the base field makes it."""
        return super().to_python(value)

    # -- lookups ---------------------------------------------------------------------

    def get_lookup(self, lookup_name: str) -> Any:
        """``exact`` (through the blind index) and ``isnull``; nothing else."""
        if lookup_name == "exact":
            return BlindExact
        if lookup_name == "isnull":
            return IsNull
        if super().get_lookup(lookup_name) is not None:
            raise BlindIndexBadLookup(
                f"{self.where} is encrypted: only filter(field=lp_lookup(value)) and "
                f"__isnull work, not __{lookup_name}",
                field=self.where,
            )
        return None

    def get_transform(self, lookup_name: str) -> Any:
        """No transform reads into tokens."""
        if super().get_transform(lookup_name) is not None:
            raise BlindIndexBadLookup(
                f"{self.where} is encrypted: __{lookup_name} cannot read tokens",
                field=self.where,
            )
        return None


@attrs.frozen
class SealPlan:
    """What :func:`seal_ahead` needs of a bound model, worked out once per model."""

    #: The attribute names of the primary key and of the subject.
    pk: str
    subject: str
    table: str
    scope: str
    #: ``(attname, column)`` of each text field encrypted together.
    texts: tuple[tuple[str, str], ...]

    @classmethod
    def of(cls, fields: Sequence[PersonalField]) -> SealPlan | None:
        """The plan for ``fields`` (bound, of one table), or ``None`` when fewer than
        two of them hold text (one value gains nothing from a batch)."""
        texts = tuple((f.attname, f.column) for f in fields if f.lp_text)
        if len(texts) < 2:
            return None
        first = fields[0]
        return cls(
            pk=first.lp_pk,
            subject=first.lp_subject,
            table=first.lp_table,
            scope=first.lp_scope,
            texts=texts,
        )


def seal_ahead(instance: Any, plan: SealPlan) -> bool:
    """Encrypt the text values of ``plan``'s fields on ``instance`` in one call, before
    a save that writes them all: the learner's key is looked up once for the row instead
    of once per field. :meth:`PersonalField.pre_save` then returns these tokens for the
    very same value, key and subject objects, and makes any other as usual. Values that
    are not plain text, or a row without its key or subject yet, are left to
    ``pre_save``. Returns whether anything was made (remove :data:`AHEAD` from the
    instance after the save).
    """
    data = instance.__dict__
    key = data.get(plan.pk)
    subject = data.get(plan.subject)
    if key is None or subject is None or subject == "":
        return False
    names: list[str] = []
    values: list[str] = []
    contexts: list[str] = []
    prefix = f"{plan.table}/{key}/"
    for name, column in plan.texts:
        value = data.get(name)
        if type(value) is str and not value.startswith(_TOKEN_PREFIX):
            names.append(name)
            values.append(value)
            contexts.append(prefix + column)
    if len(values) < 2:
        return False
    tokens = _settings.runtime().cipher.encrypt_many(
        values,
        subject=subject if type(subject) is str else str(subject),
        contexts=contexts,
        scope=plan.scope,
    )
    made = {n: (v, _Bound(t)) for n, v, t in zip(names, values, tokens, strict=True)}
    # The key and subject objects themselves: pre_save takes these tokens only while the
    # instance holds the very same ones.
    data[AHEAD] = (key, subject, made)
    return True


def _only_tokens(expression: Any) -> bool:
    """Whether every value ``expression`` can produce is a bound token (or NULL)."""
    from django.db.models import Case, Value, When
    from django.db.models.functions import Cast

    if isinstance(expression, Value):
        return expression.value is None or type(expression.value) is _Bound
    if isinstance(expression, When):
        return _only_tokens(expression.result)
    if isinstance(expression, Case | Cast):
        return all(_only_tokens(e) for e in expression.get_source_expressions())
    return False


class BlindExact(Exact):
    """``personal_field = lp_lookup(value)``, answered by the blind-index column."""

    def __init__(self, lhs: Any, rhs: Any) -> None:
        field = getattr(lhs, "target", None)
        if not isinstance(field, PersonalField):
            raise ValidationError("a personal field is looked up through its own column")
        if not isinstance(rhs, LpLookup):
            raise BlindIndexBadLookup(
                f"{field.where} is encrypted: filter with lp_lookup(value)", field=field.where
            )
        from django.db.models.expressions import Col

        index = field.index_field
        super().__init__(Col(lhs.alias, index), field.index_of(rhs.value))


class BlindIndexField(models.CharField):
    """The keyed index column of a personal field (``b1_`` + 22 characters)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("max_length", 64)
        kwargs.setdefault("null", True)
        kwargs.setdefault("db_index", True)
        kwargs.setdefault("editable", False)
        super().__init__(*args, **kwargs)

    def deconstruct(self) -> Any:
        """Migrations name this class."""
        name, _path, args, kwargs = super().deconstruct()
        return name, "learnprivacy.django.fields.BlindIndexField", args, kwargs


def _personal_class(base: type[models.Field], text: bool) -> type[PersonalField]:
    return type(
        f"Personal{base.__name__}", (PersonalField, base), {"lp_text": text, "__module__": __name__}
    )


PersonalCharField = _personal_class(models.CharField, True)
PersonalTextField = _personal_class(models.TextField, True)
PersonalEmailField = _personal_class(models.EmailField, True)
PersonalURLField = _personal_class(models.URLField, True)
PersonalSlugField = _personal_class(models.SlugField, True)
PersonalGenericIPAddressField = _personal_class(models.GenericIPAddressField, True)
PersonalDateField = _personal_class(models.DateField, False)
PersonalDateTimeField = _personal_class(models.DateTimeField, False)
PersonalIntegerField = _personal_class(models.IntegerField, False)
PersonalBigIntegerField = _personal_class(models.BigIntegerField, False)
PersonalDecimalField = _personal_class(models.DecimalField, False)
PersonalBooleanField = _personal_class(models.BooleanField, False)

_BY_BASE: dict[type[Any], type[PersonalField]] = {
    models.CharField: PersonalCharField,
    models.TextField: PersonalTextField,
    models.EmailField: PersonalEmailField,
    models.URLField: PersonalURLField,
    models.SlugField: PersonalSlugField,
    models.GenericIPAddressField: PersonalGenericIPAddressField,
    models.DateField: PersonalDateField,
    models.DateTimeField: PersonalDateTimeField,
    models.IntegerField: PersonalIntegerField,
    models.BigIntegerField: PersonalBigIntegerField,
    models.DecimalField: PersonalDecimalField,
    models.BooleanField: PersonalBooleanField,
}


def personal(
    field: models.Field,
    *,
    category: DataCategory,
    description: str,
    blind_index: bool = False,
    exported: bool = True,
) -> Any:
    """Declare ``field`` personal: it becomes the matching encrypted ``Personal*`` field.

    ``personal(models.CharField(max_length=40), category=DataCategory.CONTACT,
    description="Phone")``. ``max_length`` and the other options keep validating the
    plaintext (forms, ``full_clean``); the column itself holds tokens (text).
    ``blind_index=True`` adds a ``<name>_bidx`` column for ``lp_lookup`` queries.
    """
    if not isinstance(field, models.Field) or isinstance(field, PersonalField):
        raise ConfigurationError(
            "personal() takes a Django field instance such as models.CharField()"
        )
    target = _BY_BASE.get(type(field))
    if target is None:
        raise ConfigurationError(
            f"personal() supports {sorted(c.__name__ for c in _BY_BASE)}, "
            f"not {type(field).__name__}"
        )
    _name, _path, args, kwargs = field.deconstruct()
    return target(
        *args,
        category=category,
        description=description,
        blind_index=blind_index,
        exported=exported,
        **kwargs,
    )


def not_personal(
    field: models.Field,
    *,
    description: str,
    category: DataCategory = DataCategory.NONE,
    exported: bool = True,
) -> Any:
    """Declare that ``field`` holds no personal value on its own (stored in clear).

    The field is returned unchanged (migrations do not see the declaration); it is
    exported with the learner's rows unless ``exported=False``.
    """
    if not isinstance(field, models.Field):
        raise ConfigurationError("not_personal() takes a Django field instance")
    setattr(
        field,
        DECLARATION,
        ColumnPrivacy(
            personal=False, category=category, description=description, exported=exported
        ),
    )
    return field


def declaration_of(field: Any) -> ColumnPrivacy | None:
    """The privacy declaration of a Django field, or ``None`` when it has none."""
    value = getattr(field, DECLARATION, None)
    return value if isinstance(value, ColumnPrivacy) else None
