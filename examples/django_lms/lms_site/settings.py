"""Settings of the example LMS.

The databases come from the environment so the same project runs on SQLite (default:
two files under ``LMS_DATA_DIR``) and on PostgreSQL (``LMS_PG_HOST``, ``LMS_PG_PORT``,
``LMS_PG_USER``): the application's data in one database, the key store in another.
"""

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("LMS_DATA_DIR", BASE_DIR))

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "example-only-not-a-secret")
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "learnprivacy.django",
    "lms",
]
if os.environ.get("LMS_CHECKS_APP"):
    # Models that break the rules on purpose (tests of manage.py check only).
    INSTALLED_APPS.append("lms_checks")

MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]

ROOT_URLCONF = "lms_site.urls"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

if os.environ.get("LMS_PG_HOST"):
    _pg = {
        "ENGINE": "django.db.backends.postgresql",
        "HOST": os.environ["LMS_PG_HOST"],
        "PORT": os.environ.get("LMS_PG_PORT", "5432"),
        "USER": os.environ.get("LMS_PG_USER", "postgres"),
    }
    DATABASES = {
        "default": {**_pg, "NAME": os.environ.get("LMS_PG_DB", "lms")},
        "learnprivacy_keys": {**_pg, "NAME": os.environ.get("LMS_PG_KEYS_DB", "lms_keys")},
    }
else:
    DATABASES = {
        "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": DATA_DIR / "lms.sqlite3"},
        # Keys apart from data: a database of their own.
        "learnprivacy_keys": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": DATA_DIR / "lms.keys.sqlite3",
            # Shredded keys are overwritten on disk (secure_delete); WAL keeps the commit
            # of each new learner's key cheap, and learnprivacy checkpoints it after shreds.
            "OPTIONS": {
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; "
                "PRAGMA secure_delete=ON"
            },
        },
    }
DATABASE_ROUTERS = ["learnprivacy.django.KeysRouter"]

LEARNPRIVACY = {
    "MASTER_KEY_ENV": "LEARNPRIVACY_MASTER_KEY",
    "KEYS": os.environ.get("LMS_KEYS_ALIAS", "learnprivacy_keys"),
    # The vault of the epoch key: by default beside the SQLite key store (lms.keys.vault)
    # or <keys database>.vault in the working directory for PostgreSQL.
    "VAULT": os.environ.get("LMS_VAULT") or None,
    "SCHEDULE": "lms.privacy.SCHEDULE",
    "CONSENTS": "lms.Consent",
    "CONTROLLER": "lms.privacy.CONTROLLER",
}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
TIME_ZONE = "UTC"
LANGUAGE_CODE = "en"
STATIC_URL = "static/"
