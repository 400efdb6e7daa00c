"""``KeysRouter``: the key store in its own database, everything else out of it."""

from __future__ import annotations

from typing import Any

__all__ = ["KEY_MODELS", "KeysRouter"]

APP_LABEL = "learnprivacy"
#: The models (lower-case names) that live in the key store's database.
KEY_MODELS = frozenset({"keyentry", "keytombstone", "keymeta"})


def _is_key_model(app_label: str, model_name: str | None) -> bool:
    return app_label == APP_LABEL and model_name in KEY_MODELS


class KeysRouter:
    """Route the wrapped data keys to ``LEARNPRIVACY["KEYS"]`` and nothing else there.

    Keys apart from data: the key store's tables are created only by
    ``manage.py migrate --database <KEYS alias>``, never in the database that holds the
    application's models, and no other model is read from, written to or migrated into
    the key store's database. The audit log and the request book stay with the
    application's data (the default routing), so their entries commit with its changes.
    """

    def _keys(self) -> str:
        from learnprivacy.django._settings import keys_alias

        return keys_alias()

    def db_for_read(self, model: type[Any], **hints: Any) -> str | None:
        """The key store's alias for key models; no opinion otherwise."""
        meta = model._meta
        return self._keys() if _is_key_model(meta.app_label, meta.model_name) else None

    def db_for_write(self, model: type[Any], **hints: Any) -> str | None:
        """The key store's alias for key models; no opinion otherwise."""
        meta = model._meta
        return self._keys() if _is_key_model(meta.app_label, meta.model_name) else None

    def allow_relation(self, obj1: Any, obj2: Any, **hints: Any) -> bool | None:
        """No relation crosses into or out of the key store."""
        first = _is_key_model(obj1._meta.app_label, obj1._meta.model_name)
        second = _is_key_model(obj2._meta.app_label, obj2._meta.model_name)
        return False if first != second else None

    def allow_migrate(
        self, db: str, app_label: str, model_name: str | None = None, **hints: Any
    ) -> bool | None:
        """Key models only in the key store's database, and only they go there."""
        keys = self._keys()
        if _is_key_model(app_label, model_name):
            return db == keys
        if db == keys:
            return False
        return None
