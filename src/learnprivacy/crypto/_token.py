"""The field token format, version 1.

A token is text: the prefix ``lp1.`` followed by the URL-safe base64 (RFC 4648 §5, with
padding) of these bytes::

    offset  size  content
    0       1     format version, 0x01
    1       1     algorithm, 0x01 = AES-256-GCM
    2       1     payload kind, 0x01 = UTF-8 text, 0x02 = bytes
    3       1     reserved, 0x00
    4       8     data key id
    12      12    random nonce
    24      n+16  AES-256-GCM ciphertext of the n-byte payload, then its 16-byte tag

The associated data authenticated with the payload is::

    header (bytes 0..11) || uint32_be(len(subject)) || subject || context

with ``subject`` and ``context`` UTF-8 encoded. The header, the subject and the context
are therefore all bound to the ciphertext: a token moved to another field, record or
learner, or given a different key id or kind, fails authentication. Only the last field
(context) is not length-prefixed; being last, it cannot be confused with another.

The header is 12 bytes so that it is exactly the 16 base64 characters after the prefix:
the first 20 characters of a token name its key and kind, which lets decryption find
the key before decoding anything, and lets encryption reuse the header's text.
"""

from __future__ import annotations

from binascii import a2b_base64, b2a_base64
from typing import Final

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from learnprivacy.errors import DecryptionError

__all__ = [
    "ALG_AES256GCM",
    "BEFORE_ONE_PAD",
    "BEFORE_TWO_PADS",
    "DECODE_TABLE",
    "ENCODE_TABLE",
    "HEADER_SIZE",
    "HEADER_TEXT_SIZE",
    "KEY_ID_SIZE",
    "KIND_BYTES",
    "KIND_TEXT",
    "MIN_SIZE",
    "NONCE_SIZE",
    "PREFIX",
    "TAG_SIZE",
    "VERSION",
    "Opener",
    "Sealer",
    "Text",
    "canonical_tail",
    "decode",
    "decryption_failed",
    "encode",
    "header",
    "header_text",
    "make_opener",
    "make_sealer",
    "openers_of",
    "parse_header",
    "subject_part",
    "text_of",
]

PREFIX: Final = "lp1."
VERSION: Final = 0x01
ALG_AES256GCM: Final = 0x01
KIND_TEXT: Final = 0x01
KIND_BYTES: Final = 0x02
_RESERVED: Final = 0x00
KEY_ID_SIZE: Final = 8
HEADER_SIZE: Final = 4 + KEY_ID_SIZE
#: Base64 characters of a header (12 bytes: four whole quanta).
_HEADER_CHARS: Final = HEADER_SIZE // 3 * 4
#: Characters of a token up to the end of its header: the prefix and 16 base64 characters.
HEADER_TEXT_SIZE: Final = len(PREFIX) + HEADER_SIZE * 4 // 3
NONCE_SIZE: Final = 12
TAG_SIZE: Final = 16
MIN_SIZE: Final = HEADER_SIZE + NONCE_SIZE + TAG_SIZE

#: What a sealer holds, flat: the AEAD of a data key, then the header's token text of
#: each kind (``sealer[kind]``), then the associated-data prefix (header + subject part)
#: of each kind (``sealer[kind + 2]``). One flat tuple rather than nested ones: on the hot
#: path every object reached is a potential cache miss when many learners are cycled.
Sealer = tuple[AESGCM, str, str, bytes, bytes]
#: What an opener holds: the AEAD, the associated-data prefix and the payload kind.
Opener = tuple[AESGCM, bytes, int]
#: What FieldCipher's short paths hold for a key's text tokens (``KeyCache.texts``): the
#: header's token text, the AEAD, the associated-data prefix (header + subject part) and
#: the 12 header bytes that begin the token's binary form.
Text = tuple[str, AESGCM, bytes, bytes]

ENCODE_TABLE: Final = bytes.maketrans(b"+/", b"-_")
# "+" and "/" are mapped to "!" so that the strict decoder rejects them: only one spelling
# of a token decodes, and a token cannot be altered into another string that still opens.
DECODE_TABLE: Final = bytes.maketrans(b"-_+/", b"+/!!")
# The base64 characters a padded token may have just before its padding. Before "=" the
# last base64 character has 2 unused bits, before "==" it has 4; when they are not zero
# the text decodes to the same bytes as the canonical spelling, so such tokens are
# refused. Short strings searched with ``in``: a set of every allowed three-character
# tail was a table of 32 KiB, whose lines missed the cache on hot paths.
_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
BEFORE_ONE_PAD: Final = _ALPHABET[::4]
BEFORE_TWO_PADS: Final = _ALPHABET[::16]
_FAILED = "token could not be decrypted: not a valid token for this subject and context"


def decryption_failed() -> DecryptionError:
    """The one error for every decryption failure; its message never varies."""
    return DecryptionError(_FAILED)


def header(kind: int, key_id: bytes) -> bytes:
    """The 12 header bytes of a version 1 token."""
    return bytes((VERSION, ALG_AES256GCM, kind, _RESERVED)) + key_id


def header_text(head: bytes) -> str:
    """The first 20 characters of every token whose header is ``head``."""
    return encode(head)


def subject_part(subject: str) -> bytes:
    """The subject's share of the associated data: its length, then its UTF-8 bytes."""
    raw = subject.encode()
    return len(raw).to_bytes(4, "big") + raw


def make_sealer(aead: AESGCM, key_id: bytes, subject: str) -> Sealer:
    """Pre-compute what encrypting for ``subject`` under ``key_id`` needs."""
    text, data = header(KIND_TEXT, key_id), header(KIND_BYTES, key_id)
    part = subject_part(subject)
    if len(text) != HEADER_SIZE:  # a key id of another size: each header on its own
        return (aead, header_text(text), header_text(data), text + part, data + part)
    # Both headers' text from one base64 pass: a 12-byte header is exactly 16 base64
    # characters (four whole quanta, no padding), so the text of the two headers joined
    # is the text of the first followed by the text of the second.
    both = b2a_base64(text + data, newline=False).translate(ENCODE_TABLE).decode("ascii")
    return (
        aead,
        PREFIX + both[:_HEADER_CHARS],
        PREFIX + both[_HEADER_CHARS:],
        text + part,
        data + part,
    )


def text_of(sealer: Sealer) -> Text:
    """What the short paths need to make and open the text-kind tokens of ``sealer``."""
    return (sealer[1], sealer[0], sealer[3], sealer[3][:HEADER_SIZE])


def openers_of(sealer: Sealer) -> dict[str, Opener]:
    """The openers of the tokens ``sealer`` makes, by header text, sharing its objects."""
    aead, text, data, text_prefix, data_prefix = sealer
    return {text: (aead, text_prefix, KIND_TEXT), data: (aead, data_prefix, KIND_BYTES)}


def make_opener(aead: AESGCM, head: bytes, subject: str) -> Opener:
    """Pre-compute what decrypting tokens with header ``head`` for ``subject`` needs."""
    return (aead, head + subject_part(subject), head[2])


def parse_header(head: bytes) -> bytes:
    """Check the version, algorithm, kind and reserved byte of ``head``; return its key id."""
    if (
        len(head) != HEADER_SIZE
        or head[0] != VERSION
        or head[1] != ALG_AES256GCM
        or head[2] not in (KIND_TEXT, KIND_BYTES)
        or head[3] != _RESERVED
    ):
        raise decryption_failed()
    return head[4:]


def encode(raw: bytes) -> str:
    """Token text of the binary token ``raw``."""
    return PREFIX + b2a_base64(raw, newline=False).translate(ENCODE_TABLE).decode("ascii")


def decode(token: str) -> bytes:
    """Binary token of ``token``; raises ``DecryptionError`` unless it is canonical text.

    Tokens shorter than a header, nonce and tag are refused here as well.
    """
    if not token.startswith(PREFIX):
        raise decryption_failed()
    try:
        raw = a2b_base64(token.encode()[4:].translate(DECODE_TABLE), strict_mode=True)
    except ValueError:  # binascii.Error and UnicodeEncodeError are both ValueErrors.
        raise decryption_failed() from None
    # The strict decoder accepts "=" after complete quanta (``QUJD=`` is ``ABC``): a
    # padded token whose length is not a multiple of four is another spelling.
    if len(raw) < MIN_SIZE or len(token) & 3 or not canonical_tail(token):
        raise decryption_failed()
    return raw


def canonical_tail(token: str) -> bool:
    """False if the base64 before the padding of ``token`` has non-zero unused bits.

    For text that the strict base64 decoder accepted (so it has at least one quantum,
    and nothing but the alphabet before its padding) and whose length is a multiple of
    four (the decoder also accepts padding after complete quanta: see :func:`decode`).
    """
    if token[-1] != "=":
        return True
    if token[-2] != "=":
        return token[-2] in BEFORE_ONE_PAD
    return token[-3] in BEFORE_TWO_PADS
