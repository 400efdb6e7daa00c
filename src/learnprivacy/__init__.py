"""learnprivacy: keep learning records lawfully.

Typed LMS records carrying their GDPR lawful basis and retention metadata, with
field-level encryption, retention enforcement, data-subject requests and portability
exports. This top-level module stays light: it does not import SQLAlchemy/SQLModel
(``learnprivacy.store`` and ``learnprivacy.moodle`` do, when imported).

>>> import learnprivacy as lp
>>> lp.LawfulBasis.CONTRACT.moodle_code
'gdpr_art_6_1_b'
"""

from learnprivacy import errors
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
    "AuditTampered",
    "CryptoError",
    "DataCategory",
    "DecryptionError",
    "KeyShreddedError",
    "LawfulBasis",
    "LearnPrivacyError",
    "PolicyError",
    "RetentionViolation",
    "SpecialCategoryCondition",
    "ValidationError",
    "__version__",
    "errors",
]
