"""Pseudonyms: stable, keyed, per-domain replacements for identifiers."""

from __future__ import annotations

from binascii import b2a_base64

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from learnprivacy.crypto._prekeyed import PrekeyedHmac
from learnprivacy.crypto._validate import KEY_SIZE, KeyHolder, check_key, length_prefixed
from learnprivacy.errors import ValidationError

__all__ = ["Pseudonymiser", "domain_key"]

_LABEL = b"learnprivacy/pseudonym/v1"
_KEY_SALT = b"learnprivacy/v1/pseudonym-key"
_PREFIX = "p1_"
_ENCODE = bytes.maketrans(b"+/", b"-_")


def domain_key(root: bytes, domain: str) -> bytes:
    """The 32-byte pseudonym key of ``domain``, derived from the secret ``root``.

    HKDF-SHA256 (RFC 5869) with salt ``b"learnprivacy/v1/pseudonym-key"`` and the UTF-8
    domain as info. The salt sets these keys apart from every other use of ``root``
    (the keyring passes its blind-index key, which the blind indexes and the store's
    audit keys also use, each under labels of their own).
    """
    raw = check_key(root, field="root")
    hkdf = HKDF(algorithm=hashes.SHA256(), length=KEY_SIZE, salt=_KEY_SALT, info=_domain(domain))
    return hkdf.derive(raw)


def _domain(domain: object) -> bytes:
    if type(domain) is not str or not domain:
        raise ValidationError("domain must be a non-empty str", field="domain")
    try:
        return domain.encode()
    except UnicodeEncodeError:
        raise ValidationError("domain must be encodable as UTF-8", field="domain") from None


class Pseudonymiser(KeyHolder):
    """Keyed HMAC-SHA256 pseudonyms for one ``domain`` (a recipient, a report, a study).

    >>> p = Pseudonymiser(bytes(32), domain="employer-report")
    >>> p.pseudonym("L1") == p.pseudonym("L1")
    True
    >>> p.pseudonym("L1").startswith("p1_")
    True

    A pseudonym is ``p1_`` followed by the URL-safe base64 (unpadded) of the first
    ``size`` bytes (16 by default, so 128 bits, 22 characters) of::

        HMAC-SHA256(key, uint32_be(len(label)) || label
                         || uint32_be(len(domain)) || domain || identifier)

    with ``label = b"learnprivacy/pseudonym/v1"`` and UTF-8 strings. The label and the
    domain are length-prefixed; the identifier, being last, needs no prefix.

    * Stable: the same key, domain and identifier always give the same pseudonym, so a
      recipient can follow one learner across reports.
    * Unlinkable: two domains (or two keys) give unrelated pseudonyms, so two recipients
      cannot join their data on it. Give each recipient its own domain.
    * Not reversible without the key; with the key, anyone can confirm a guessed
      identifier, so keep the key out of the recipient's reach. When the controller must
      map a pseudonym back, use a :class:`TokenVault`.

    Keys shorter than 32 bytes are refused.
    """

    __slots__ = ("_domain", "_mac", "_size")
    _holders = "pseudonymisers"

    def __init__(self, key: bytes, *, domain: str, size: int = 16) -> None:
        """Pseudonymise with ``key`` (32 bytes or more) for ``domain``, keeping ``size``
        bytes of the HMAC (16 to 32).
        """
        raw = check_key(key, field="key")
        encoded = _domain(domain)
        if type(size) is not int or not 16 <= size <= 32:
            raise ValidationError("size must be an int from 16 to 32", field="size")
        prefix = length_prefixed(_LABEL, encoded)
        self._domain = domain
        self._size = size
        # Keyed once: each pseudonym copies this state instead of rehashing the key,
        # the label and the domain.
        self._mac = PrekeyedHmac(raw, prefix)

    def __repr__(self) -> str:
        return f"Pseudonymiser(domain={self._domain!r})"

    @property
    def domain(self) -> str:
        """The domain pseudonyms are valid in."""
        return self._domain

    def pseudonym(self, identifier: str) -> str:
        """The pseudonym of ``identifier`` (a non-empty str) in this domain."""
        if type(identifier) is not str or not identifier:
            raise ValidationError("identifier must be a non-empty str", field="identifier")
        try:
            data = identifier.encode()
        except UnicodeEncodeError:
            raise ValidationError(
                "identifier must be encodable as UTF-8", field="identifier"
            ) from None
        text = b2a_base64(self._mac.digest(data)[: self._size], newline=False)
        return _PREFIX + text.translate(_ENCODE).rstrip(b"=").decode("ascii")
