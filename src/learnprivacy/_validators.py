"""The checks on input, written once: aware datetimes, ids, text, e-mail addresses, money.

Two forms of each check. ``require_*(value, field)`` returns the value or raises
:class:`~learnprivacy.errors.ValidationError`; it serves function arguments (``now``,
``subject``). The attrs validators (``aware_datetime``, ``identifier``...) serve record
fields and name the field as ``Class.field``. Every message names the field and the
rule, never the value: a rejected value may itself be personal data.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import math
import re
from decimal import Decimal
from typing import Any

import attrs

from learnprivacy.errors import ValidationError

__all__ = [
    "aware_datetime",
    "currency_code",
    "email_address",
    "finite_decimal",
    "identifier",
    "instance_of",
    "ip_address",
    "is_aware",
    "learner_identifier",
    "non_empty_text",
    "optional",
    "optional_aware_datetime",
    "require_aware",
    "require_email",
    "require_identifier",
    "require_learner_id",
    "require_text",
    "utc_if_naive",
]

_EMAIL = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@"
    r"(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$"
)

# ISO 4217 active alphabetic codes (2024 list). Kept inline: it changes rarely and a
# wrong currency on an invoice is a bookkeeping error we want to catch at construction.
_ISO_4217 = frozenset(
    # A word list reads better than 180 quoted strings.
    """AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL BSD
    BTN BWP BYN BZD CAD CDF CHF CLP CNY COP CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR
    FJD FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD
    JPY KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT
    MOP MRU MUR MVR MWK MXN MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG
    QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS
    TMT TND TOP TRY TTD TWD TZS UAH UGX USD UYU UZS VED VES VND VUV WST XAF XCD XCG XOF XPF
    YER ZAR ZMW ZWG""".split()
)


def _name(instance: object, attribute: attrs.Attribute[Any]) -> str:
    return f"{type(instance).__name__}.{attribute.name}"


def is_aware(value: object) -> bool:
    """Whether ``value`` is a datetime whose instant is unambiguous (``utcoffset()`` set)."""
    return isinstance(value, dt.datetime) and value.utcoffset() is not None


def utc_if_naive(value: dt.datetime) -> dt.datetime:
    """A datetime read from a database column without a zone: naive means UTC there."""
    return value if is_aware(value) else value.replace(tzinfo=dt.UTC)


def require_aware(value: object, field: str) -> dt.datetime:
    """Return ``value`` if it is a timezone-aware datetime, else raise ``ValidationError``.

    Aware means ``utcoffset()`` is not None: a ``tzinfo`` that gives no offset leaves the
    instant as ambiguous as no ``tzinfo`` at all.
    """
    if is_aware(value):
        assert isinstance(value, dt.datetime)  # narrows the type for mypy
        return value
    if not isinstance(value, dt.datetime):
        raise ValidationError(
            f"{field} must be a datetime, got {type(value).__name__}", field=field
        )
    raise ValidationError(f"{field} must be timezone-aware (naive datetime refused)", field=field)


# NUL ends a string in C (drivers, file names, logs) and a lone surrogate cannot be
# encoded as UTF-8: neither is text, both would fail or be cut later, far from here.
_NOT_TEXT = re.compile("[\x00\ud800-\udfff]")


def require_text(value: object, field: str) -> str:
    """Return ``value`` if it is a ``str`` with a non-blank character and neither NUL nor
    a lone surrogate, else raise."""
    if type(value) is str and value and not value.isspace() and _NOT_TEXT.search(value) is None:
        return value
    if not isinstance(value, str):
        raise ValidationError(f"{field} must be str, got {type(value).__name__}", field=field)
    if not value.strip():
        raise ValidationError(f"{field} must not be empty", field=field)
    if _NOT_TEXT.search(value):
        raise ValidationError(
            f"{field} must not contain NUL or a lone surrogate (not encodable text)", field=field
        )
    return value


_CONTROL = re.compile("[\x00-\x1f\x7f\ud800-\udfff]")


def require_identifier(value: object, field: str) -> str:
    """Return ``value`` if it is an id: non-empty text, at most 255 characters, no control
    characters. A learner id (``subject``) is such an id."""
    # Hot path (every record has one to three ids): cheap checks first, regex over a loop.
    if (
        type(value) is str
        and 0 < len(value) <= 255
        and not value.isspace()
        and _CONTROL.search(value) is None
    ):
        return value
    text = require_text(value, field)
    if len(text) > 255 or _CONTROL.search(text):
        raise ValidationError(
            f"{field} must be at most 255 printable characters (no control character or lone "
            "surrogate)",
            field=field,
        )
    return text


# Something@something.tld: loose on purpose, a learner id only has to not look like one.
_EMAIL_LIKE = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


def require_learner_id(value: object, field: str) -> str:
    """Return ``value`` if it is a learner id: an identifier (see
    :func:`require_identifier`) that does not look like an e-mail address.

    A learner id is an opaque reference, kept in clear because every record joins on it
    and surviving in places erasure reaches late (logs, references held by others). An
    e-mail address there would be personal data in clear: refused.
    """
    text = require_identifier(value, field)
    if "@" in text and _EMAIL_LIKE.search(text):
        raise ValidationError(
            f"{field} looks like an e-mail address: use an opaque id (the address belongs "
            "in the learner's email field, encrypted)",
            field=field,
        )
    return text


def require_email(value: object, field: str) -> str:
    """Return ``value`` if it is a syntactically valid e-mail address (``local@domain.tld``)."""
    text = require_text(value, field)
    if len(text) > 320 or not _EMAIL.match(text):
        raise ValidationError(f"{field} is not a valid e-mail address", field=field)
    return text


def instance_of(*types: type) -> Any:
    """Like ``attrs.validators.instance_of`` but raising ``ValidationError`` (no value shown)."""

    exact = frozenset(types)

    def check(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if type(value) in exact:  # the common case, one set lookup
            return
        # bool is an int subclass; a boolean where a number is expected is a bug.
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            expected = " or ".join(t.__name__ for t in types)
            raise ValidationError(
                f"{_name(instance, attribute)} must be {expected}, got {type(value).__name__}",
                field=_name(instance, attribute),
            )

    return check


def optional(validator: Any) -> Any:
    """Accept ``None`` or whatever ``validator`` accepts."""

    def check(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if value is not None:
            validator(instance, attribute, value)

    return check


def aware_datetime(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """A ``datetime`` with a time zone; naive datetimes are ambiguous and refused."""
    if type(value) is dt.datetime and value.tzinfo is not None and value.utcoffset() is not None:
        return
    require_aware(value, _name(instance, attribute))


optional_aware_datetime = optional(aware_datetime)


def non_empty_text(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """A ``str`` with at least one non-blank character, no NUL, no lone surrogate."""
    if type(value) is str and value and not value.isspace() and _NOT_TEXT.search(value) is None:
        return
    require_text(value, _name(instance, attribute))


def identifier(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """A record id: non-empty text, at most 255 characters, no control characters."""
    require_identifier(value, _name(instance, attribute))


def learner_identifier(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """A learner id: an identifier that does not look like an e-mail address."""
    require_learner_id(value, _name(instance, attribute))


def email_address(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """A syntactically valid e-mail address (``local@domain.tld``)."""
    require_email(value, _name(instance, attribute))


#: Largest magnitude a number field accepts: beyond it a score or an amount is a unit or
#: parsing error, not data (and past 2**53 a float no longer holds every integer).
MAX_MAGNITUDE = 10**15
#: Finest step of money: a millionth of the unit (1e-1000 is a parsing error, not a price).
_MONEY_STEP = Decimal("1e-6")


def finite_decimal(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """A finite ``Decimal`` of sane size: floats are refused, money must not be rounded
    silently. Its magnitude stays below ``10**15`` and it has at most six decimals;
    negative amounts (credit notes) are valid."""
    if not isinstance(value, Decimal):
        raise ValidationError(
            f"{_name(instance, attribute)} must be a Decimal, got {type(value).__name__}",
            field=_name(instance, attribute),
        )
    if not value.is_finite():
        raise ValidationError(
            f"{_name(instance, attribute)} must be finite", field=_name(instance, attribute)
        )
    if abs(value) >= MAX_MAGNITUDE:
        raise ValidationError(
            f"{_name(instance, attribute)} must be below 10**15 in magnitude",
            field=_name(instance, attribute),
        )
    if value and value.as_tuple().exponent < -6 and value != value.quantize(_MONEY_STEP):  # type: ignore[operator]
        raise ValidationError(
            f"{_name(instance, attribute)} must have at most six decimals",
            field=_name(instance, attribute),
        )


def currency_code(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """An active ISO 4217 alphabetic code, upper case (``"EUR"``)."""
    if not isinstance(value, str) or value not in _ISO_4217:
        raise ValidationError(
            f"{_name(instance, attribute)} must be an ISO 4217 currency code such as 'EUR'",
            field=_name(instance, attribute),
        )


def finite_number(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """An int, float or Decimal that is finite (no NaN, no infinity, no bool) and below
    ``10**15`` in magnitude."""
    instance_of(int, float, Decimal)(instance, attribute, value)
    if isinstance(value, float) and not math.isfinite(value):
        raise ValidationError(
            f"{_name(instance, attribute)} must be finite", field=_name(instance, attribute)
        )
    if isinstance(value, Decimal) and not value.is_finite():
        raise ValidationError(
            f"{_name(instance, attribute)} must be finite", field=_name(instance, attribute)
        )
    if abs(value) >= MAX_MAGNITUDE:  # type: ignore[arg-type]
        raise ValidationError(
            f"{_name(instance, attribute)} must be below 10**15 in magnitude",
            field=_name(instance, attribute),
        )


def ip_address(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """An IPv4 or IPv6 address in text form."""
    non_empty_text(instance, attribute, value)
    try:
        ipaddress.ip_address(str(value))
    except ValueError:
        raise ValidationError(
            f"{_name(instance, attribute)} is not an IP address", field=_name(instance, attribute)
        ) from None
