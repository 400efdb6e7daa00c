"""Privacy on the application's own SQLAlchemy 2 and SQLModel models, in place.

>>> import learnprivacy.sqlalchemy as lps                          # doctest: +SKIP
>>> class User(Base):                                               # doctest: +SKIP
...     __tablename__ = "users"
...     __privacy__ = lps.Privacy(subject="id", purpose="accounts",
...                               basis=LawfulBasis.CONTRACT, activity="last_login_at")
...     id: Mapped[str] = mapped_column(primary_key=True)
...     email: Mapped[str] = lps.personal(DataCategory.CONTACT, "E-mail address",
...                                       blind_index=True)
...     last_login_at: Mapped[dt.datetime | None] = lps.not_personal("Last login",
...                                                                  nullable=True)
>>> privacy = lps.LearnPrivacy(Base, keyring=keyring, keys="sqlite:///keys.db")  # doctest: +SKIP

Personal values are stored as tokens under each learner's key, bound to (table, primary
key, column), and decrypted on load; :meth:`LearnPrivacy.find` looks them up by blind
index; erasure, retention sweeps, restriction and exports work on the application's
tables with the store's guarantees. See ``docs/howto-integrate.md``.

Importing this module imports SQLAlchemy; ``import learnprivacy`` alone does not.
"""

from learnprivacy._inplace import Privacy
from learnprivacy.sqlalchemy._columns import (
    not_personal,
    not_personal_field,
    personal,
    personal_field,
)
from learnprivacy.sqlalchemy._migrate import migrate_encrypt
from learnprivacy.sqlalchemy._privacy import LearnPrivacy

__all__ = [
    "LearnPrivacy",
    "Privacy",
    "migrate_encrypt",
    "not_personal",
    "not_personal_field",
    "personal",
    "personal_field",
]
