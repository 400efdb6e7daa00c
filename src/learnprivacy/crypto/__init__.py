"""Field-level encryption, crypto-shredding, blind indexes and pseudonyms.

>>> from learnprivacy.crypto import Keyring, FieldCipher, Pseudonymiser
>>> keyring = Keyring.generate()
>>> cipher = FieldCipher(keyring)
>>> token = cipher.encrypt("ana@example.org", subject="L1", context="Learner/L1/email")
>>> cipher.decrypt(token, subject="L1", context="Learner/L1/email")
'ana@example.org'
>>> keyring.shred("L1")
1

See ``docs/security-crypto.md`` for the token format, the key hierarchy, shredding and
the trade-offs of blind indexes.
"""

from __future__ import annotations

from learnprivacy.crypto._blind_index import BlindIndex
from learnprivacy.crypto._cipher import FieldCipher
from learnprivacy.crypto._keyring import Keyring
from learnprivacy.crypto._keystore import InMemoryKeyStore, KeyStore
from learnprivacy.crypto._pseudonym import Pseudonymiser
from learnprivacy.crypto._vault import TokenVault

__all__ = [
    "BlindIndex",
    "FieldCipher",
    "InMemoryKeyStore",
    "KeyStore",
    "Keyring",
    "Pseudonymiser",
    "TokenVault",
]
