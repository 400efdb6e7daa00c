"""FieldCipher: authenticated encryption of single field values, bound to their place."""

from __future__ import annotations

from binascii import a2b_base64, b2a_base64
from collections.abc import Sequence
from typing import Any, Never

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from learnprivacy.crypto import _token
from learnprivacy.crypto._keyring import Keyring
from learnprivacy.crypto._nonce import random_nonce
from learnprivacy.crypto._nonce import take as _take_nonce
from learnprivacy.crypto._validate import DEFAULT_SCOPE, check_context, check_scope, check_subject
from learnprivacy.errors import ArgumentError, ValidationError

__all__ = ["FieldCipher"]


class _Required:
    """The default of ``subject`` and ``context``: they must be given, by keyword.

    Python itself would refuse ``encrypt(value, "L1", "ctx")`` with a bare ``TypeError``
    before the method runs; a default that no call may leave in place lets the method see
    the misuse and raise :class:`~learnprivacy.errors.ArgumentError` instead, at no cost
    to a well-formed call (a wrapper around the hot path would cost a sixth of it).
    """

    def __repr__(self) -> str:
        return "<required>"


_REQUIRED: Any = _Required()


def _misused(method: str, misplaced: tuple[object, ...], subject: object, context: object) -> None:
    """Raise the ArgumentError for a call with positional or missing arguments, if any."""
    if misplaced:
        raise ArgumentError(
            f"FieldCipher.{method} takes one positional argument; "
            "pass subject= and context= by keyword"
        )
    missing = [name for name, v in (("subject", subject), ("context", context)) if v is _REQUIRED]
    if missing:
        raise ArgumentError(f"FieldCipher.{method} is missing argument {', '.join(missing)}")


_PREFIX = _token.PREFIX
_ENCODE = _token.ENCODE_TABLE
_DECODE = _token.DECODE_TABLE
_ONE_PAD = _token.BEFORE_ONE_PAD
_TWO_PADS = _token.BEFORE_TWO_PADS

_KIND_TEXT = _token.KIND_TEXT
_KIND_BYTES = _token.KIND_BYTES
_HEADER = _token.HEADER_SIZE
_HEADER_TEXT = _token.HEADER_TEXT_SIZE
_BODY = _token.HEADER_SIZE + _token.NONCE_SIZE
# The very object callers get as the default, so the hot path can compare by identity
# (a scope equal to it but not identical takes the checked path, with the same result).
_DEFAULT = DEFAULT_SCOPE


def _padded_canonical(token: str) -> bool:
    """Whether ``token``, text ending in padding that the strict base64 decoder accepted,
    is the canonical spelling: a length that is a multiple of four and no unused bits set
    before the padding (see ``_token.canonical_tail``). The fast paths test
    ``token[-1] != "="`` inline first, so unpadded tokens never call it."""
    return not len(token) & 3 and (
        token[-2] in _ONE_PAD if token[-2] != "=" else token[-3] in _TWO_PADS
    )


class FieldCipher:
    """Encrypt and decrypt field values with the data keys of a :class:`Keyring`.

    >>> cipher = FieldCipher(Keyring.generate())
    >>> token = cipher.encrypt("ana@example.org", subject="L1", context="Learner/L1/email")
    >>> cipher.decrypt(token, subject="L1", context="Learner/L1/email")
    'ana@example.org'

    Each value is encrypted with AES-256-GCM under the data key of its ``subject`` and
    ``scope``, with a fresh 96-bit random nonce. The token (``lp1.`` + URL-safe base64;
    format in ``learnprivacy.crypto._token``) names its key, and its associated data binds
    the header, the subject and the ``context`` (by convention ``Type/record-id/field``),
    so a token copied to another field, record or learner does not decrypt.

    Decryption raises, never returns a verdict: any failure (tampering, truncation,
    garbage, unknown version, wrong subject or context) is one
    :class:`~learnprivacy.errors.DecryptionError` with a fixed message; a value whose key
    was shredded raises :class:`~learnprivacy.errors.KeyShreddedError` (a subclass).
    Bad arguments (a value that is neither ``str`` nor ``bytes``, an empty subject or
    context) raise :class:`~learnprivacy.errors.ValidationError`.

    ``str`` values come back from :meth:`decrypt`, ``bytes`` values from
    :meth:`decrypt_bytes`; the kind is recorded (and authenticated) in the token, and
    :meth:`decrypt_value` returns whichever was stored.

    Random 96-bit nonces keep the chance of a repeat below 2**-32 for up to 2**32 values
    per data key; with one key per (subject, scope) that bound is far away.
    """

    __slots__ = ("_cache", "_keyring", "_keys", "_scoped", "_texts")

    def __init__(self, keyring: Keyring) -> None:
        """A cipher drawing its keys from ``keyring``."""
        if not isinstance(keyring, Keyring):
            raise ValidationError("keyring must be a Keyring", field="keyring")
        self._keyring = keyring
        # The keyring's cached keys by subject, and their text keys unpacked: the default
        # scope's by subject (KeyCache.texts), the other scopes' by (subject, scope)
        # (KeyCache.scoped), read directly on the hot path; the keyring only ever
        # changes these mappings in place, so the references stay valid.
        self._keys = keyring._cache
        self._cache = keyring._cache.subjects
        self._texts = keyring._cache.texts
        self._scoped = keyring._cache.scoped

    def __repr__(self) -> str:
        return f"FieldCipher(keyring={self._keyring!r})"

    @property
    def keyring(self) -> Keyring:
        """The keyring the data keys come from."""
        return self._keyring

    def encrypt(
        self,
        value: str | bytes,
        *misplaced: Never,
        subject: str = _REQUIRED,
        context: str = _REQUIRED,
        scope: str = DEFAULT_SCOPE,
    ) -> str:
        """Encrypt ``value`` for ``subject`` at ``context``, under the key of ``scope``.

        ``subject`` and ``context`` are required, by keyword: anything else (given by
        position, or left out) raises :class:`~learnprivacy.errors.ArgumentError`.
        Raises :class:`~learnprivacy.errors.KeyShreddedError` if ``(subject, scope)`` was
        shredded (see :meth:`Keyring.revive`).
        """
        # The common case first: a str value, a context and a cached key of the scope
        # (the default scope's by subject, any other by subject and scope). Only validated
        # subjects and scopes ever enter the cache, so a hit needs no further checks.
        # Any failure here (a miss, an unhashable argument, an empty nonce pool,
        # text that is not UTF-8) falls through to _encrypt(), which checks everything in
        # order and raises the right error, outside this handler so that no error chains
        # one whose message may quote the subject or the value.
        if type(value) is str and type(context) is str and context and not misplaced:
            try:
                head, aead, prefix, _ = (
                    self._texts[subject] if scope is _DEFAULT else self._scoped[subject, scope]
                )
                nonce = _take_nonce()
                # The header is a whole number of base64 quanta, so its text is cached and
                # only the nonce and ciphertext are encoded here.
                return (
                    head
                    + b2a_base64(
                        nonce + aead.encrypt(nonce, value.encode(), prefix + context.encode()),
                        newline=False,
                    )
                    .translate(_ENCODE)
                    .decode()
                )
            except (KeyError, TypeError, IndexError, ValueError):
                pass
        return self._encrypt(value, misplaced, subject, context, scope)

    def _encrypt(
        self,
        value: str | bytes,
        misplaced: tuple[object, ...],
        subject: str,
        context: str,
        scope: str,
    ) -> str:
        """:meth:`encrypt`, every check in order."""
        if misplaced:
            _misused("encrypt", misplaced, subject, context)
        if type(value) is str:
            text = True
            try:
                data = value.encode()
            except UnicodeEncodeError:
                raise ValidationError("value must be encodable as UTF-8", field="value") from None
        else:
            text = False
            data = _as_bytes(value)
        if type(context) is not str or not context:
            _misused("encrypt", misplaced, subject, context)
            check_context(context)
        if subject is _REQUIRED:
            _misused("encrypt", misplaced, subject, context)
        sealer = self._sealer_of(subject, scope)
        if text:
            self._remember_text(subject, scope, sealer)
        try:
            place = context.encode()
        except UnicodeEncodeError:
            raise ValidationError("context must be encodable as UTF-8", field="context") from None
        # Indexed rather than unpacked: only the objects this kind needs are touched.
        if text:
            header, associated = sealer[1], sealer[3] + place
        else:
            header, associated = sealer[2], sealer[4] + place
        nonce = random_nonce()
        sealed = b2a_base64(nonce + sealer[0].encrypt(nonce, data, associated), newline=False)
        return header + sealed.translate(_ENCODE).decode("ascii")

    def decrypt(
        self,
        token: str,
        *misplaced: Never,
        subject: str = _REQUIRED,
        context: str = _REQUIRED,
    ) -> str:
        """The ``str`` value of ``token``, encrypted for ``subject`` at ``context``.

        ``subject`` and ``context`` are required, by keyword (``ArgumentError``
        otherwise). A token made from ``bytes`` raises ``ValidationError``: use
        :meth:`decrypt_bytes`.
        """
        # Optimistic path for the common case: a well-formed token whose key is cached.
        # The token's first 20 characters (prefix and header, naming key and kind) either
        # start like the text tokens of the learner's default-scope key (KeyCache.texts)
        # or are looked up among the cached openers, so a hit also vouches for them.
        # Anything unusual (bad argument, cache miss, failed authentication, non-canonical
        # text, bytes) falls through to _decrypt(), which checks everything in order and
        # raises the right error: this path never accepts what _decrypt() would refuse.
        try:
            usual = self._texts.get(subject)
            if usual is not None and token.startswith(usual[0]):
                # A text token of the default scope's active key (the header names key
                # and kind), the one encryption uses.
                aead, prefix = usual[1], usual[2]
            else:
                # Any other cached key of the subject (a purpose scope's, a retired one),
                # found by the token's header: _text_opener() inline.
                keys = self._cache[subject]
                keys.used = True
                aead, prefix, kind = keys.openers[token[:_HEADER_TEXT]]
                if kind != _KIND_TEXT:
                    raise KeyError(kind)
            # The prefix and header are translated too, then cut off: it is the cheapest
            # order, and what they say was just matched.
            raw = a2b_base64(token.encode().translate(_DECODE)[_HEADER_TEXT:], strict_mode=True)
            plain = aead.decrypt(raw[:12], raw[12:], prefix + context.encode())
            # The canonical spelling only (see _token.canonical_tail and decode: padding
            # only where the text is not a whole number of quanta), inline.
            if not misplaced and (token[-1] != "=" or _padded_canonical(token)):
                return plain.decode()
        except (ValueError, KeyError, TypeError, AttributeError, InvalidTag):
            pass
        # Outside the handler: the errors raised here must not chain the fast path's
        # exception, whose message may quote the subject.
        return self._decrypt(token, misplaced, subject, context)

    def _decrypt(
        self, token: str, misplaced: tuple[object, ...], subject: str, context: str
    ) -> str:
        """:meth:`decrypt`, every check in order."""
        if misplaced:
            _misused("decrypt", misplaced, subject, context)
        kind, plain = self._open(token, subject, context)
        if kind != _KIND_TEXT:
            raise ValidationError("token holds bytes; use decrypt_bytes()", field="token")
        try:
            return plain.decode()
        except UnicodeDecodeError:
            # Unreachable for tokens this class made; the codec's message would quote
            # plaintext bytes, so it is replaced.
            raise _token.decryption_failed() from None

    def encrypt_raw(
        self,
        value: str,
        *misplaced: Never,
        subject: str = _REQUIRED,
        context: str = _REQUIRED,
        scope: str = DEFAULT_SCOPE,
    ) -> bytes:
        """The binary form of :meth:`encrypt`'s token, for ``BLOB``/``bytea`` columns.

        The same version 1 token as :meth:`encrypt` gives, as the bytes that its text
        encodes (version byte first; see ``learnprivacy.crypto._token``), without the
        ``lp1.`` prefix and base64: a third smaller, and cheaper to make and open.
        :meth:`decrypt_raw` opens it; a text token and a binary token of the same bytes
        open alike. ``str`` values only (``ValidationError`` otherwise); arguments and
        errors as :meth:`encrypt`.
        """
        # encrypt()'s short path without the text: header bytes, nonce, ciphertext.
        if type(value) is str and type(context) is str and context and not misplaced:
            try:
                _, aead, prefix, head = (
                    self._texts[subject] if scope is _DEFAULT else self._scoped[subject, scope]
                )
                nonce = _take_nonce()
                return head + nonce + aead.encrypt(nonce, value.encode(), prefix + context.encode())
            except (KeyError, TypeError, IndexError, ValueError):
                pass
        # Outside the handler, as encrypt(): every check in order, then the text token's
        # bytes (always canonical text, so decoding it cannot fail).
        if misplaced:
            _misused("encrypt_raw", misplaced, subject, context)
        if type(value) is not str:
            raise ValidationError("value must be str; use encrypt() for bytes", field="value")
        return _token.decode(self._encrypt(value, misplaced, subject, context, scope))

    def decrypt_raw(
        self,
        token: bytes,
        *misplaced: Never,
        subject: str = _REQUIRED,
        context: str = _REQUIRED,
    ) -> str:
        """The ``str`` value of the binary token ``token`` (from :meth:`encrypt_raw`).

        ``bytes``, ``bytearray`` or ``memoryview``; anything else raises
        ``ValidationError``. Every check and error of :meth:`decrypt` applies: a token
        that is tampered with, cut short, of another version, subject or context raises
        ``DecryptionError``.
        """
        # The common case: a binary token of the learner's default-scope key, whose 12
        # header bytes (version, algorithm, kind, reserved byte, key id) are compared
        # whole with the ones that key writes, so a hit vouches for all of them. The
        # header is also part of the associated data. Anything else (another key, any
        # failure) goes to the checked path, outside this handler. The offsets are
        # _HEADER and _BODY, written as constants. The key is looked up by subscript and
        # unpacked in one step: a miss (KeyError) costs only the cold path, and one
        # unpacking is cheaper than three subscripts of the tuple.
        try:
            _, aead, prefix, head = self._texts[subject]
            if token[:12] == head and not misplaced:
                return aead.decrypt(token[12:24], token[24:], prefix + context.encode()).decode()
        except (ValueError, KeyError, TypeError, AttributeError, InvalidTag):
            pass
        # The checked path: the binary token written as the text token it is, which
        # _decrypt() decodes and checks in full.
        if misplaced:
            _misused("decrypt_raw", misplaced, subject, context)
        if not isinstance(token, bytes | bytearray | memoryview):
            raise ValidationError("token must be bytes", field="token")
        return self._decrypt(_token.encode(bytes(token)), misplaced, subject, context)

    def encrypt_many(
        self,
        values: Sequence[str],
        *,
        subject: str,
        contexts: Sequence[str],
        scope: str = DEFAULT_SCOPE,
    ) -> list[str]:
        """Encrypt ``values[i]`` at ``contexts[i]`` for one ``subject``: a record's fields.

        The same tokens as :meth:`encrypt` gives one by one (each with its own nonce), but
        the subject's key is looked up and checked once for the whole batch, which is
        where most of the per-call cost of a short value goes. ``str`` values only; the
        two sequences must have the same length.
        """
        if len(values) != len(contexts):
            raise ValidationError("values and contexts must have the same length", field="contexts")
        if len(values) < 2:
            # No batch: encrypt()'s short path is cheaper than the batch's set-up, and
            # gives the same token and, for a str value, the same errors.
            if not values:
                return []
            value = values[0]
            if type(value) is str:
                return [self.encrypt(value, subject=subject, context=contexts[0], scope=scope)]
        usual = None
        if type(subject) is str:
            try:
                usual = self._texts[subject] if scope is _DEFAULT else self._scoped[subject, scope]
            except (KeyError, TypeError):
                usual = None
        if usual is None:
            sealer = self._sealer_of(subject, scope)
            self._remember_text(subject, scope, sealer)  # for the short paths
            usual = _token.text_of(sealer)
        header, aead, prefix, _ = usual
        seal = aead.encrypt
        # One expression per value, no call of ours: any value or context that is not a
        # plain non-empty str stops the batch (_refused), as does an empty nonce pool or
        # text that is not UTF-8, and the checked loop below starts it again from the top
        # (nonces drawn so far are dropped, never reused) and raises the right error.
        # The header's text and the translation to the URL-safe alphabet are done once
        # for the batch: each value's base64 line (ending in a newline, which no base64
        # character is) is joined after a copy of the header, the whole text translated
        # (the header is in the URL-safe alphabet already) and cut at the newlines.
        head = header.encode()
        try:
            tokens = (
                (
                    head
                    + head.join(
                        [
                            b2a_base64(
                                (nonce := _take_nonce())
                                + seal(nonce, value.encode(), prefix + context.encode())
                            )
                            if type(value) is str and type(context) is str and context
                            else _refused()
                            for value, context in zip(values, contexts, strict=True)
                        ]
                    )
                )
                .translate(_ENCODE)
                .decode()
                .split("\n")
            )
            del tokens[-1]  # after the last newline
            return tokens
        except (_Refused, IndexError, ValueError):
            pass
        # Outside the handler: no error raised there may chain one quoting a value.
        return _encrypt_each(values, contexts, header, aead, prefix)

    def decrypt_many(
        self, tokens: Sequence[str], *, subject: str, contexts: Sequence[str]
    ) -> list[str]:
        """The ``str`` values of ``tokens[i]`` at ``contexts[i]``, all for one ``subject``.

        Equivalent to calling :meth:`decrypt` on each (the same errors for the same
        tokens), with the subject's keys looked up once for the batch.
        """
        if len(tokens) != len(contexts):
            raise ValidationError("tokens and contexts must have the same length", field="contexts")
        if len(tokens) == 1:
            # No batch: decrypt()'s short path, cheaper than the batch's set-up.
            return [self.decrypt(tokens[0], subject=subject, context=contexts[0])]
        # As decrypt()'s short path, one expression per token: a token that is not a
        # canonical text token of the key named by the first token's header (a cached
        # text key of the subject, of any scope: see decrypt()), or fails in any way,
        # sends the whole batch to the loop below, which opens each token as decrypt()
        # does and raises the right error.
        try:
            first = tokens[0]
            usual = self._texts.get(subject)
            if usual is not None and type(first) is str and first.startswith(usual[0]):
                head, aead, prefix, _ = usual
            elif type(first) is str:
                aead, prefix = self._text_opener(subject, first)
                head = first[:_HEADER_TEXT]
            else:
                _refused()
            opens = aead.decrypt
            return [
                opens(
                    (raw := a2b_base64(token.encode().translate(_DECODE)[20:], strict_mode=True))[
                        :12
                    ],
                    raw[12:],
                    prefix + context.encode(),
                ).decode()
                if token.startswith(head) and (token[-1] != "=" or _padded_canonical(token))
                else _refused()
                for token, context in zip(tokens, contexts, strict=True)
            ]
        except (_Refused, IndexError, ValueError, KeyError, TypeError, AttributeError, InvalidTag):
            pass
        return self._decrypt_with(self._openers_of(subject), tokens, subject, contexts)

    def _decrypt_with(
        self,
        openers: dict[str, _token.Opener] | None,
        tokens: Sequence[str],
        subject: str,
        contexts: Sequence[str],
    ) -> list[str]:
        """:meth:`decrypt_many` with ``openers`` (the subject's, by header text) at hand.

        The caller vouches that ``openers`` were made for ``subject`` by the keyring
        (:meth:`Keyring._openers_of_subjects`, or the cache). A token they do not open,
        or that fails any check, goes through :meth:`decrypt`, which checks everything
        in order and raises the right error: this path never accepts what it refuses.
        """
        open_text = self._open_text
        values: list[str] = []
        append = values.append
        for token, context in zip(tokens, contexts, strict=True):
            append(open_text(openers, token, subject, context))
            if openers is None:
                # A cold subject's first token went through decrypt(), which loaded its
                # key into the cache for the rest of the batch.
                openers = self._openers_of(subject)
        return values

    def _open_text(
        self,
        openers: dict[str, _token.Opener] | None,
        token: str,
        subject: str,
        context: str,
    ) -> str:
        """:meth:`decrypt` of one token, with ``openers`` (``subject``'s) at hand.

        The caller vouches for ``openers`` as :meth:`_decrypt_with` says. A token they
        do not open, or that fails any check, goes through :meth:`decrypt`, which checks
        everything in order and raises the right error, outside this handler so that
        nothing chains the fast path's exception.
        """
        try:
            aead, prefix, kind = openers[token[:20]]  # type: ignore[index]
            rest = a2b_base64(token.encode().translate(_DECODE)[20:], strict_mode=True)
            plain = aead.decrypt(rest[:12], rest[12:], prefix + context.encode())
            if kind == 1 and (token[-1] != "=" or _padded_canonical(token)):
                return plain.decode()
        except (ValueError, KeyError, TypeError, AttributeError, InvalidTag):
            pass
        return self.decrypt(token, subject=subject, context=context)

    def _openers_of(self, subject: str) -> dict[str, _token.Opener] | None:
        """The cached openers of ``subject`` (marking them used), or ``None``."""
        keys = self._cache.get(subject) if type(subject) is str else None
        if keys is None:
            return None
        keys.used = True
        return keys.openers

    def decrypt_bytes(self, token: str, *, subject: str, context: str) -> bytes:
        """The ``bytes`` value of ``token``; a token made from ``str`` raises
        ``ValidationError`` (use :meth:`decrypt`).
        """
        kind, plain = self._open(token, subject, context)
        if kind != _KIND_BYTES:
            raise ValidationError("token holds text; use decrypt()", field="token")
        return plain

    def decrypt_value(self, token: str, *, subject: str, context: str) -> str | bytes:
        """The value of ``token`` as it was given to :meth:`encrypt`: ``str`` or ``bytes``."""
        kind, plain = self._open(token, subject, context)
        if kind == _KIND_BYTES:
            return plain
        try:
            return plain.decode()
        except UnicodeDecodeError:
            raise _token.decryption_failed() from None

    def reencrypt(
        self, token: str, *, subject: str, context: str, scope: str = DEFAULT_SCOPE
    ) -> str:
        """Decrypt ``token`` and encrypt its value again under the current key of ``scope``.

        Use it after :meth:`Keyring.retire` to move values off a retired key.
        """
        value = self.decrypt_value(token, subject=subject, context=context)
        return self.encrypt(value, subject=subject, context=context, scope=scope)

    def key_id(self, token: str) -> str:
        """The id of the data key ``token`` names, without decrypting it.

        The header is not authenticated until decryption; use the answer to find tokens
        to re-encrypt, not to make security decisions.
        """
        if type(token) is not str:
            raise ValidationError("token must be a str", field="token")
        return _token.parse_header(_token.decode(token)[:_HEADER]).hex()

    def _sealer_of(self, subject: str, scope: str) -> _token.Sealer:
        """The cached sealer of ``(subject, scope)``, or the keyring's checked path."""
        try:
            keys = self._cache[subject]
            keys.used = True
            sealer: _token.Sealer | None = keys.sealers[scope]
        except (KeyError, TypeError):
            sealer = None
        if sealer is None:
            sealer = self._keyring._sealer(subject, scope)
        return sealer

    def _remember_text(self, subject: str, scope: str, sealer: _token.Sealer) -> None:
        """Put ``sealer``, of ``(subject, scope)``, in ``KeyCache.texts`` (the default
        scope) or ``KeyCache.scoped`` for the short paths, if it is still the one cached
        for them and their subject's entry was used since eviction last passed over it:
        an entry there stands for that use (see KeyCache), so a key just made does not
        enter on its first use. Plain ``str`` arguments only (already checked by the
        keyring when ``sealer`` was made), so no look-alike ever becomes a key there."""
        if type(subject) is not str or type(scope) is not str:
            return
        keys = self._cache.get(subject)
        if keys is not None and keys.used:
            self._keys.remember_text(subject, scope, keys, sealer)

    def _text_opener(self, subject: str, token: str) -> tuple[AESGCM, bytes]:
        """The cached AEAD and associated-data prefix for ``token`` if it names a text
        key of ``subject`` cached already; raises ``KeyError`` (or ``TypeError`` for an
        unhashable argument) otherwise. The header is matched, not decoded."""
        keys = self._cache[subject]
        keys.used = True
        aead, prefix, kind = keys.openers[token[:_HEADER_TEXT]]
        if kind != _KIND_TEXT:
            raise KeyError(kind)
        return aead, prefix

    def _open(self, token: str, subject: str, context: str) -> tuple[int, bytes]:
        if type(token) is not str:
            raise ValidationError("token must be a str", field="token")
        if type(subject) is not str or type(context) is not str or not context:
            _misused("decrypt", (), subject, context)
            _check_arguments(subject, context, DEFAULT_SCOPE)
        raw = _token.decode(token)
        head = raw[:_HEADER]
        keys = self._cache.get(subject)
        opener = None
        if keys is not None:
            keys.used = True
            opener = keys.openers.get(token[:_HEADER_TEXT])
        if opener is None:
            opener = self._keyring._opener(subject, head)
        aead, prefix, kind = opener
        try:
            associated = prefix + context.encode()
        except UnicodeEncodeError:
            raise ValidationError("context must be encodable as UTF-8", field="context") from None
        try:
            return kind, aead.decrypt(raw[_HEADER:_BODY], raw[_BODY:], associated)
        except InvalidTag:
            raise _token.decryption_failed() from None


def _encrypt_each(
    values: Sequence[str], contexts: Sequence[str], header: str, aead: AESGCM, prefix: bytes
) -> list[str]:
    """:meth:`FieldCipher.encrypt_many` with the key at hand, every value checked in turn."""
    tokens: list[str] = []
    append = tokens.append
    for value, context in zip(values, contexts, strict=True):
        if type(value) is not str:
            raise ValidationError("values must be str; use encrypt() for bytes", field="value")
        if type(context) is not str or not context:
            check_context(context)
        nonce = random_nonce()
        try:
            sealed = aead.encrypt(nonce, value.encode(), prefix + context.encode())
        except UnicodeEncodeError:
            break
        append(header + b2a_base64(nonce + sealed, newline=False).translate(_ENCODE).decode())
    else:
        return tokens
    # Outside the loop's handler: the codec's message would quote the value.
    raise ValidationError("values and contexts must be encodable as UTF-8", field="value")


class _Refused(Exception):
    """A batch's short path met an input it leaves to the checked path."""


def _refused() -> Never:
    raise _Refused


def _check_arguments(subject: object, context: object, scope: object) -> None:
    check_subject(subject)
    check_context(context)
    check_scope(scope)


def _as_bytes(value: object) -> bytes:
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    raise ValidationError("value must be str or bytes", field="value")
