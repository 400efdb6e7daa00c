"""learnprivacy: keep learning records lawfully.

Typed LMS records carrying their GDPR lawful basis and retention metadata, with
field-level encryption, retention enforcement, data-subject requests and portability
exports. The top level holds the vocabulary every package shares (:class:`Action`,
:class:`ContextLevel`, :class:`Article`, :class:`Controller`, the lawful bases, the
errors). It stays light: it does not import SQLAlchemy/SQLModel
(``learnprivacy.store`` and ``learnprivacy.moodle`` do, when imported).

>>> import learnprivacy as lp
>>> lp.LawfulBasis.CONTRACT.moodle_code
'gdpr_art_6_1_b'
"""

from learnprivacy import errors
from learnprivacy._controller import (
    APD_GBA,
    CNIL,
    Controller,
    Hosting,
    Safeguard,
    SubProcessor,
    SupervisoryAuthority,
    Transfer,
)
from learnprivacy._vocabulary import Action, Article, ContextLevel
from learnprivacy.basis import DataCategory, LawfulBasis, SpecialCategoryCondition
from learnprivacy.errors import (
    AuditTampered,
    CryptoError,
    DecryptionError,
    KeyShreddedError,
    LearnPrivacyError,
    PolicyError,
    RetentionViolation,
    ValidationError,
)

__version__ = "0.1.0.dev0"

__all__ = [
    "APD_GBA",
    "CNIL",
    "Action",
    "Article",
    "AuditTampered",
    "ContextLevel",
    "Controller",
    "CryptoError",
    "DataCategory",
    "DecryptionError",
    "Hosting",
    "KeyShreddedError",
    "LawfulBasis",
    "LearnPrivacyError",
    "PolicyError",
    "RetentionViolation",
    "Safeguard",
    "SpecialCategoryCondition",
    "SubProcessor",
    "SupervisoryAuthority",
    "Transfer",
    "ValidationError",
    "__version__",
    "errors",
]
