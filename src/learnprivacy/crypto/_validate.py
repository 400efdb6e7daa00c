"""Argument checks and unambiguous byte encodings shared by the crypto modules.

Every check raises :class:`~learnprivacy.errors.ValidationError` naming the argument and
the rule; none of them puts the offending value in the message, because a subject or a
context may itself be personal data.
"""

from __future__ import annotations

import re
from typing import ClassVar, NoReturn

from learnprivacy.errors import ValidationError

__all__ = [
    "DEFAULT_SCOPE",
    "KEY_SIZE",
    "SYSTEM_SUBJECT",
    "KeyHolder",
    "check_context",
    "check_key",
    "check_scope",
    "check_subject",
    "length_prefixed",
]


class KeyHolder:
    """Base of the objects that hold key material: a pickle would write the key in clear
    wherever it goes, so pickling one raises ``TypeError`` (rebuild it from its key)."""

    __slots__ = ()
    #: What the refusal calls these objects ("master keys").
    _holders: ClassVar[str]

    def __reduce__(self) -> NoReturn:
        raise TypeError(f"{self._holders} cannot be pickled: they hold a key")


#: The scope used when a caller does not name one.
DEFAULT_SCOPE = "default"

#: Size in bytes of master keys, data keys and the minimum size of HMAC keys.
KEY_SIZE = 32

#: Subjects starting with this prefix are reserved for the keyring's own keys (the store
#: check value and the blind-index key), so no learner id can ever collide with them.
_RESERVED_PREFIX = "learnprivacy:"

#: The reserved subject under which the keyring keeps its own keys.
SYSTEM_SUBJECT = _RESERVED_PREFIX + "system"

_SUBJECT_MAX = 255
_SCOPE_RE = re.compile(r"[a-z0-9][a-z0-9._-]{0,62}")


def check_subject(subject: object) -> str:
    """Return ``subject`` if it is a usable data-subject id, else raise ``ValidationError``.

    A subject is a non-empty printable string of at most 255 characters that does not use
    the reserved ``learnprivacy:`` prefix. Printable-only keeps ids safe for every SQL
    text column (PostgreSQL refuses NUL characters).
    """
    if type(subject) is not str or not subject:
        raise ValidationError("subject must be a non-empty str", field="subject")
    if len(subject) > _SUBJECT_MAX or not subject.isprintable():
        raise ValidationError(
            "subject must be printable and at most 255 characters", field="subject"
        )
    if subject.startswith(_RESERVED_PREFIX):
        raise ValidationError("subject uses the reserved 'learnprivacy:' prefix", field="subject")
    _check_encodable(subject, "subject")
    return subject


def check_scope(scope: object) -> str:
    """Return ``scope`` if it is a valid key scope name, else raise ``ValidationError``.

    Scopes are code constants such as ``"contract"``, ``"consent"`` or ``"legal"``: lower
    case letters, digits, ``.``, ``_`` and ``-``, at most 63 characters.
    """
    if type(scope) is not str or _SCOPE_RE.fullmatch(scope) is None:
        raise ValidationError(
            "scope must match [a-z0-9][a-z0-9._-]{0,62}, e.g. 'contract' or 'legal'",
            field="scope",
        )
    return scope


def check_context(context: object) -> str:
    """Return ``context`` if it is a non-empty encodable str, else raise ``ValidationError``."""
    if type(context) is not str or not context:
        raise ValidationError("context must be a non-empty str", field="context")
    _check_encodable(context, "context")
    return context


def check_key(key: object, *, field: str, exact: bool = False) -> bytes:
    """Return ``key`` as bytes if it holds at least (or exactly) 32 bytes.

    Only ``bytes``, ``bytearray`` and ``memoryview`` are accepted: a ``str`` key is almost
    always a passphrase or an encoded key passed by mistake, and silently encoding it
    would weaken it.
    """
    if not isinstance(key, bytes | bytearray | memoryview):
        raise ValidationError(f"{field} must be bytes", field=field)
    raw = bytes(key)
    if exact and len(raw) != KEY_SIZE:
        raise ValidationError(f"{field} must be exactly {KEY_SIZE} bytes", field=field)
    if len(raw) < KEY_SIZE:
        raise ValidationError(f"{field} must be at least {KEY_SIZE} bytes", field=field)
    return raw


def length_prefixed(*parts: bytes) -> bytes:
    """Concatenate ``parts``, each preceded by its length as 4 big-endian bytes.

    The encoding is injective: two different tuples of parts never give the same bytes,
    which is what keeps associated data and HMAC inputs unambiguous.
    """
    return b"".join(len(part).to_bytes(4, "big") + part for part in parts)


def _check_encodable(text: str, field: str) -> None:
    # Lone surrogates cannot be encoded as UTF-8; the codec's own message would quote the
    # text, so it is replaced by one that names the argument only.
    try:
        text.encode()
    except UnicodeEncodeError:
        raise ValidationError(f"{field} must be encodable as UTF-8", field=field) from None
