"""``learnprivacy.toml``: the one configuration file every command reads.

Found, in this order: ``--config PATH``, the ``LEARNPRIVACY_CONFIG`` environment variable,
``learnprivacy.toml`` in the working directory. Without a file the commands still open a
store (``sqlite:///learnprivacy.db`` and ``learnprivacy.key``), but those that write a
document for someone else (the register, letters, the learner's export page) refuse to run
until ``[controller]`` says who the controller is: the built-in example company is only
for ``learnprivacy demo``.

Command-line options and their environment variables (``--db``/``LEARNPRIVACY_DB``,
``--key-file``/``LEARNPRIVACY_KEY_FILE``) take precedence over the file.
"""

from __future__ import annotations

import importlib
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from learnprivacy.errors import ConfigurationError

if TYPE_CHECKING:
    from learnprivacy import Controller, SupervisoryAuthority
    from learnprivacy.retention import Schedule

__all__ = [
    "CONFIG_ENV",
    "CONFIG_FILE",
    "DEFAULT_DB",
    "DEFAULT_KEY_FILE",
    "LANGUAGES",
    "ControllerSettings",
    "DpoSettings",
    "RecipientSettings",
    "Settings",
    "find_config",
    "load_settings",
    "sample_config",
]

CONFIG_FILE = "learnprivacy.toml"
CONFIG_ENV = "LEARNPRIVACY_CONFIG"
DEFAULT_DB = "sqlite:///learnprivacy.db"
DEFAULT_KEY_FILE = "learnprivacy.key"
#: Languages the learner's page and the letters can be written in.
LANGUAGES = ("fr", "en", "nl", "de")

#: Kinds of ``[[recipients]]``: an xAPI learning record store (notified on erasure), or
#: another recipient (employer, funder) told by other means.
_RECIPIENT_KINDS = ("lrs", "other")
_SECTIONS = {"store", "keys", "controller", "dpo", "policy", "recipients", "xapi"}
_KEYS: dict[str, set[str]] = {
    "store": {"url"},
    "keys": {"url", "master_key_file", "master_key_env"},
    "controller": {"name", "address", "contact", "country"},
    "dpo": {"name", "email"},
    "policy": {"schedule", "module", "languages", "timezone"},
    "recipients": {"name", "kind", "url", "username", "password_env", "fields"},
    "xapi": {"home_page", "platform"},
}


@attrs.frozen(kw_only=True)
class ControllerSettings:
    """``[controller]``: who decides why and how the data is processed."""

    name: str
    address: str
    contact: str
    country: str


@attrs.frozen(kw_only=True)
class DpoSettings:
    """``[dpo]``: the data protection officer learners write to."""

    name: str
    email: str


@attrs.frozen(kw_only=True)
class RecipientSettings:
    """One ``[[recipients]]`` entry: an LRS or another recipient of learners' data."""

    name: str
    kind: str
    url: str | None = None
    username: str | None = None
    password_env: str | None = None
    fields: tuple[str, ...] = ()


@attrs.frozen(kw_only=True)
class Settings:
    """The configuration, after the file, the environment and the options are merged."""

    path: Path | None = None
    store_url: str = DEFAULT_DB
    keys_url: str | None = None
    key_file: str = DEFAULT_KEY_FILE
    master_key_env: str | None = None
    controller: ControllerSettings | None = None
    dpo: DpoSettings | None = None
    schedule_path: str | None = None
    policy_module: str | None = None
    languages: tuple[str, ...] = ("en",)
    timezone: str = "UTC"
    recipients: tuple[RecipientSettings, ...] = ()
    #: ``[xapi]``: the LMS's home page (the accounts of statement actors) and its name
    #: (``context.platform``); ``None`` leaves the profile's defaults.
    xapi_home_page: str | None = None
    xapi_platform: str | None = None

    @property
    def language(self) -> str:
        """The first configured language: the default of documents."""
        return self.languages[0]

    def recipients_for_requests(self) -> Any:
        """The ``Recipients`` a request executor notifies (Art. 19), from ``[[recipients]]``.

        An ``lrs`` recipient gets an :class:`~learnprivacy.export.xapi.LrsRecipient` (erasure
        voids the learner's statements), its password read from ``password_env``; other
        kinds have no notifier and are told by other means. ``None`` when none is declared.
        """
        lrs = [r for r in self.recipients if r.kind == "lrs"]
        if not lrs:
            return None
        from learnprivacy.export.xapi import LrsRecipient
        from learnprivacy.requests import Recipients

        notifiers: dict[str, Any] = {}
        for recipient in lrs:
            auth: tuple[str, str] | None = None
            if recipient.username is not None:
                if recipient.password_env is None or not os.environ.get(recipient.password_env):
                    raise ConfigurationError(
                        f"[[recipients]] {recipient.name}: set password_env to an environment "
                        "variable holding the LRS password"
                    )
                auth = (recipient.username, os.environ[recipient.password_env])
            assert recipient.url is not None  # checked when the file is read
            notifiers[recipient.name] = LrsRecipient(
                recipient.url, auth=auth, profile=self.xapi_profile()
            )
        return Recipients(notifiers=notifiers)

    def xapi_profile(self, *, home_page: str | None = None) -> Any:
        """The :class:`~learnprivacy.export.xapi.XapiProfile` of ``[xapi]``: statements
        exported, sent and voided by every command name the same actors and platform.
        ``home_page`` (a command-line option) takes precedence over the file."""
        from learnprivacy.export.xapi import XapiProfile

        chosen = home_page or self.xapi_home_page
        options: dict[str, Any] = {"platform": self.xapi_platform}
        if chosen is not None:
            options["home_page"] = chosen
        return XapiProfile(**options)

    def _where(self) -> str:
        return str(self.path) if self.path is not None else CONFIG_FILE

    def require_controller(self) -> Controller:
        """The controller of ``[controller]`` and ``[dpo]``, or a ``ConfigurationError``.

        Documents sent to learners and authorities must name the real controller: there is
        no fallback to an example company outside ``learnprivacy demo``.
        """
        from learnprivacy import Controller

        if self.controller is None:
            raise ConfigurationError(
                f"no [controller] in {self._where()}: set its name, address, contact and "
                "country (and [dpo] name and email) before producing documents; "
                "`learnprivacy init` writes a commented file"
            )
        dpo = f"{self.dpo.name} <{self.dpo.email}>" if self.dpo is not None else None
        return Controller(
            name=self.controller.name,
            address=self.controller.address,
            contact=self.controller.contact,
            dpo=dpo,
            authority=self._authority(self.controller.country),
        )

    def _authority(self, country: str) -> SupervisoryAuthority:
        """The supervisory authority of the controller's country (CNIL, APD/GBA)."""
        from learnprivacy import APD_GBA, CNIL

        known = {"FR": CNIL, "BE": APD_GBA}
        if country not in known:
            raise ConfigurationError(
                f"[controller] country {country!r}: the complaint route is known for FR "
                "(CNIL) and BE (APD/GBA) only"
            )
        return known[country]

    def schedule(self) -> Schedule:
        """The retention schedule of ``[policy]``: a module object, a JSON file, or the
        built-in French training-organisation schedule when neither is set."""
        from learnprivacy.cli._schedules import default_schedule, load_schedule
        from learnprivacy.retention import Schedule

        if self.policy_module is not None:
            found = _import_object(self.policy_module)
            schedule = found() if callable(found) and not isinstance(found, Schedule) else found
            if not isinstance(schedule, Schedule):
                raise ConfigurationError(
                    f"[policy] module {self.policy_module} is not a Schedule (or a function "
                    "returning one)"
                )
            return schedule
        if self.schedule_path is not None:
            return load_schedule(self._relative(self.schedule_path))
        return default_schedule()

    def _relative(self, value: str) -> str:
        """A path of the file, read relative to the file's own folder."""
        path = Path(value)
        if path.is_absolute() or self.path is None:
            return str(path)
        return str(self.path.parent / path)


def _import_object(reference: str) -> Any:
    module_name, _, attribute = reference.partition(":")
    if not attribute:
        raise ConfigurationError(
            f"[policy] module must read 'package.module:NAME', got {reference!r}"
        )
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        raise ConfigurationError(f"[policy] module {module_name} cannot be imported") from None
    try:
        return getattr(module, attribute)
    except AttributeError:
        raise ConfigurationError(f"[policy] module {module_name} has no {attribute}") from None


def find_config(
    explicit: str | None, *, cwd: Path | None = None, must_exist: bool = True
) -> Path | None:
    """The configuration file to read: ``--config``, ``$LEARNPRIVACY_CONFIG``, or
    ``learnprivacy.toml`` in ``cwd``; ``None`` when there is none.

    A file named explicitly (option or environment) must exist, unless ``must_exist`` is
    false (``learnprivacy init`` is about to write it): then ``None``.
    """
    for value, origin in ((explicit, "--config"), (os.environ.get(CONFIG_ENV), CONFIG_ENV)):
        if value:
            path = Path(value)
            if not path.is_file():
                if not must_exist:
                    return None
                raise ConfigurationError(f"{origin}: configuration file {value} does not exist")
            return path
    local = (cwd or Path.cwd()) / CONFIG_FILE
    return local if local.is_file() else None


def _text(section: str, data: Mapping[str, Any], key: str, *, required: bool) -> str | None:
    value = data.get(key)
    if value is None:
        if required:
            raise ConfigurationError(f"[{section}] needs {key}")
        return None
    if not isinstance(value, str) or not value.strip():
        raise ConfigurationError(f"[{section}] {key} must be non-empty text")
    return value.strip()


def _table(data: Mapping[str, Any], name: str) -> Mapping[str, Any] | None:
    value = data.get(name)
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise ConfigurationError(f"[{name}] must be a table")
    unknown = sorted(set(value) - _KEYS[name])
    if unknown:
        raise ConfigurationError(f"[{name}] has unknown keys: {', '.join(unknown)}")
    return value


def _controller(data: Mapping[str, Any]) -> ControllerSettings | None:
    table = _table(data, "controller")
    if table is None:
        return None
    values = {k: _text("controller", table, k, required=True) for k in sorted(_KEYS["controller"])}
    country = str(values["country"]).upper()
    if len(country) != 2 or not country.isalpha():
        raise ConfigurationError("[controller] country must be an ISO 3166 code such as FR or BE")
    return ControllerSettings(
        name=str(values["name"]),
        address=str(values["address"]),
        contact=str(values["contact"]),
        country=country,
    )


def _dpo(data: Mapping[str, Any]) -> DpoSettings | None:
    table = _table(data, "dpo")
    if table is None:
        return None
    name = _text("dpo", table, "name", required=True)
    email = _text("dpo", table, "email", required=True)
    if email is None or "@" not in email:
        raise ConfigurationError("[dpo] email must be an e-mail address")
    return DpoSettings(name=str(name), email=email)


def _recipients(data: Mapping[str, Any]) -> tuple[RecipientSettings, ...]:
    items = data.get("recipients", [])
    if not isinstance(items, list):
        raise ConfigurationError("[[recipients]] must be an array of tables")
    out = []
    for index, item in enumerate(items):
        if not isinstance(item, Mapping):
            raise ConfigurationError(f"[[recipients]] entry {index + 1} must be a table")
        unknown = sorted(set(item) - _KEYS["recipients"])
        if unknown:
            raise ConfigurationError(
                f"[[recipients]] entry {index + 1} has unknown keys: {', '.join(unknown)}"
            )
        where = f"recipients {index + 1}"
        kind = item.get("kind")
        if kind not in _RECIPIENT_KINDS:
            raise ConfigurationError(f"[{where}] kind must be one of {', '.join(_RECIPIENT_KINDS)}")
        if kind == "lrs" and not item.get("url"):
            raise ConfigurationError(f"[{where}] an lrs recipient needs the url of its statements")
        fields = item.get("fields", [])
        if not isinstance(fields, list) or not all(isinstance(f, str) for f in fields):
            raise ConfigurationError(f"[{where}] fields must be a list of field names")
        out.append(
            RecipientSettings(
                name=str(_text(where, item, "name", required=True)),
                kind=str(_text(where, item, "kind", required=True)),
                url=_text(where, item, "url", required=False),
                username=_text(where, item, "username", required=False),
                password_env=_text(where, item, "password_env", required=False),
                fields=tuple(fields),
            )
        )
    return tuple(out)


def _xapi(data: Mapping[str, Any]) -> dict[str, Any]:
    table = _table(data, "xapi") or {}
    home_page = _text("xapi", table, "home_page", required=False)
    if home_page is not None and not home_page.startswith(("https://", "http://")):
        raise ConfigurationError("[xapi] home_page must be the LMS's http(s) address")
    return {
        "xapi_home_page": home_page,
        "xapi_platform": _text("xapi", table, "platform", required=False),
    }


def _policy(data: Mapping[str, Any]) -> dict[str, Any]:
    from learnprivacy._documents import check_timezone

    table = _table(data, "policy") or {}
    out: dict[str, Any] = {
        "schedule_path": _text("policy", table, "schedule", required=False),
        "policy_module": _text("policy", table, "module", required=False),
    }
    if out["schedule_path"] and out["policy_module"]:
        raise ConfigurationError("[policy] sets both schedule and module: choose one")
    languages = table.get("languages")
    if languages is not None:
        if (
            not isinstance(languages, list)
            or not languages
            or not all(isinstance(x, str) for x in languages)
        ):
            raise ConfigurationError("[policy] languages must be a list such as ['fr', 'en']")
        bad = [x for x in languages if x not in LANGUAGES]
        if bad:
            raise ConfigurationError(
                f"[policy] languages: {', '.join(bad)} not available "
                f"(available: {', '.join(LANGUAGES)})"
            )
        out["languages"] = tuple(languages)
    timezone = _text("policy", table, "timezone", required=False)
    if timezone is not None:
        out["timezone"] = check_timezone(timezone)
    return out


def load_settings(
    path: Path | None, *, db: str | None = None, key_file: str | None = None
) -> Settings:
    """Read ``path`` (``None``: no file) and apply the options given on the command line."""
    data: Mapping[str, Any] = {}
    if path is not None:
        try:
            with path.open("rb") as handle:
                data = tomllib.load(handle)
        except OSError as exc:
            raise ConfigurationError(f"cannot read {path}: {type(exc).__name__}") from None
        except tomllib.TOMLDecodeError as exc:
            # tomllib's message gives the line and column, never a value.
            raise ConfigurationError(f"{path} is not valid TOML: {exc}") from None
        unknown = sorted(set(data) - _SECTIONS)
        if unknown:
            raise ConfigurationError(f"{path}: unknown sections: {', '.join(unknown)}")
    store = _table(data, "store") or {}
    keys = _table(data, "keys") or {}
    settings = Settings(
        path=path,
        store_url=_text("store", store, "url", required=False) or DEFAULT_DB,
        keys_url=_text("keys", keys, "url", required=False),
        key_file=_text("keys", keys, "master_key_file", required=False) or DEFAULT_KEY_FILE,
        master_key_env=_text("keys", keys, "master_key_env", required=False),
        controller=_controller(data),
        dpo=_dpo(data),
        recipients=_recipients(data),
        **_policy(data),
        **_xapi(data),
    )
    if "master_key_file" in keys:
        # A key file named in the file is found next to it, wherever the command runs.
        settings = attrs.evolve(settings, key_file=settings._relative(settings.key_file))
    if db:
        settings = attrs.evolve(settings, store_url=db)
    if key_file:
        settings = attrs.evolve(settings, key_file=key_file)
    return settings


def sample_config(*, db: str, key_file: str) -> str:
    """The commented ``learnprivacy.toml`` that ``learnprivacy init`` writes."""
    from importlib import resources

    text = (
        resources.files("learnprivacy.cli")
        .joinpath("learnprivacy.sample.toml")
        .read_text(encoding="utf-8")
    )
    return text.replace("@DB@", db).replace("@KEY_FILE@", key_file)
