"""``export_subject``: one learner's data as a verified package, produced atomically.

The package is built in a temporary directory next to ``out`` and moved into place only
when every provider finished and every file is written, so ``out`` holds either the whole
package or nothing: an unknown learner, a failing provider or a full disk leave no file
behind, and the temporary files are removed.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import shutil
import tempfile
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from learnprivacy._documents import check_timezone
from learnprivacy._progress import ProgressReporter
from learnprivacy._validators import require_aware, require_identifier
from learnprivacy.basis import LawfulBasis
from learnprivacy.errors import ArgumentError, ConfigurationError, ValidationError
from learnprivacy.export._describe import descriptions_from_metadata
from learnprivacy.export._html import PageOptions
from learnprivacy.export._names import check_entry_name
from learnprivacy.export._package import ALL_FORMATS, PackageWriter
from learnprivacy.export._scope import Scope
from learnprivacy.export._sources import as_manager, feed_writer
from learnprivacy.export._xapi import Pseudonyms, XapiProfile

if TYPE_CHECKING:
    from learnprivacy._controller import Controller

__all__ = ["SUBJECT_REFERENCE_DOMAIN", "ExportResult", "export_subject"]

#: Pseudonym domain of the subject reference written in manifest.json.
SUBJECT_REFERENCE_DOMAIN = "subject-export"


@attrs.frozen(kw_only=True)
class ExportResult:
    """Where the package went and what its manifest says."""

    path: Path
    scope: Scope
    manifest: dict[str, Any] = attrs.field(repr=False)

    @property
    def records(self) -> int:
        """How many records the data files hold in all."""
        return sum(t["records"] for t in self.manifest["record_types"])


def _pseudonyms(key: bytes, domain: str) -> Pseudonyms:
    # Imported here: the crypto package is only needed once an export actually runs.
    from learnprivacy.crypto import Pseudonymiser

    return Pseudonymiser(key, domain=domain)


def _store_of(source: Any) -> Any:
    """The store behind ``source`` (a Store, or a PrivacyManager built with ``store=``),
    or ``None`` when there is none."""
    if callable(getattr(source, "export_user_data", None)):
        from learnprivacy.providers._store import STORE_COMPONENT

        try:
            component = source.component(STORE_COMPONENT)
        except (KeyError, AttributeError, TypeError):
            return None
        return getattr(component.provider, "store", None)
    return source


def _store_keyring(source: Any) -> Any:
    """The keyring of the store behind ``source``, or ``None`` when there is none."""
    from learnprivacy.crypto import Keyring

    keyring = getattr(_store_of(source), "keyring", None)
    return keyring if isinstance(keyring, Keyring) else None


def _now(source: Any, now: dt.datetime | None) -> dt.datetime:
    """``now``, else the clock of the store behind ``source``, else the system clock."""
    if now is not None:
        return require_aware(now, "now")
    from learnprivacy.store import Store

    store = _store_of(source)
    if isinstance(store, Store):
        # The store's injected clock is the one clock of everything time-based.
        return store.now()
    return dt.datetime.now(dt.UTC)


def _default_pseudonyms(source: Any, profile: XapiProfile) -> tuple[Pseudonyms, Pseudonyms]:
    """The subject reference and xAPI actor pseudonymisers when no key is given."""
    keyring = _store_keyring(source)
    if keyring is not None:
        # Derived from the store's keyring: the same for every export of this store (and
        # of its backups and copies), so re-exports give the same statement ids.
        return (
            keyring.pseudonymiser(SUBJECT_REFERENCE_DOMAIN),
            keyring.pseudonymiser(profile.pseudonym_domain),
        )
    # No store: one random key serves this export only and is never stored, so its
    # pseudonyms cannot be linked to the learner, nor to those of another export.
    key = secrets.token_bytes(32)
    return _pseudonyms(key, SUBJECT_REFERENCE_DOMAIN), _pseudonyms(key, profile.pseudonym_domain)


def export_subject(
    store_or_manager: Any,
    learner_id: str,
    out: str | os.PathLike[str],
    *,
    scope: str | Scope = "access",
    formats: Iterable[str] = ALL_FORMATS,
    now: dt.datetime | None = None,
    csv_bom: bool = False,
    pseudonym_key: bytes | None = None,
    xapi_profile: XapiProfile | None = None,
    overwrite: bool = False,
    lrs: Iterable[Any] = (),
    controller: Controller | None = None,
    language: str = "en",
    timezone: str = "UTC",
    progress: ProgressReporter | None = None,
) -> ExportResult:
    """Export everything (or the portable part) held about ``learner_id`` into ``out``.

    ``out`` ending in ``.zip`` gets a zip archive, anything else a directory, holding
    ``manifest.json``, ``data/<component>/<RecordType>.json``, ``csv/<RecordType>.csv``,
    ``xapi/statements.json`` and ``index.html`` (docs/export-schemas.md has the schemas).

    Args:
        store_or_manager: a ``Store`` or a ``PrivacyManager`` (its providers write the
            data; a store is asked for the subject's records).
        learner_id: the learner whose data is exported.
        out: the directory or ``.zip`` path to create.
        scope: ``"access"`` (GDPR Art. 15: everything) or ``"portability"`` (Art. 20:
            only data processed under consent or contract, so no invoice or funder file
            kept under legal obligation).
        formats: which of ``json``, ``csv``, ``xapi``, ``html`` to produce.
        now: the generation time written in the manifest. When it is ``None``, the
            store's clock (``Store(clock=...)``) is read here, once; the system clock only
            when no store is behind ``store_or_manager``.
        csv_bom: start CSV files with a UTF-8 byte order mark (spreadsheet users).
        pseudonym_key: 32-byte key of the subject reference and of the xAPI actor's
            account name. Without it, an export from a store (or from a manager built
            with ``store=``) uses the store keyring's pseudonymisers
            (``keyring.pseudonymiser("subject-export")`` and the profile's
            ``pseudonym_domain``): stable across exports, so a re-export has identical
            statement ids. Without a key and without a store, a random key serves this
            export only. Pass ``secrets.token_bytes(32)`` for pseudonyms that no other
            export shares.
        xapi_profile: home page and activity IRIs of the xAPI statements.
        overwrite: replace an existing ``out`` instead of refusing.
        lrs: LRSs (:class:`~learnprivacy.export.xapi.LrsRecipient`) whose statements about
            the learner (actor named as the exports and live pushes name it) are
            included, as ``data/lrs/LrsStatement.json``: what those recipients hold.
        controller: the :class:`~learnprivacy.Controller` the learner's page
            (``index.html``) names, with its DPO and its supervisory authority (where
            complaints go); without it the page says they were not stated.
        language: the page's language: ``"fr"``, ``"en"`` (``"nl"`` and ``"de"`` fall
            back to English until translated).
        timezone: the IANA time zone the page shows dates in (``"Europe/Paris"``).
        progress: told ``advance(1)`` for each row or record written (a progress bar).

    Returns:
        An :class:`ExportResult` with the path and the manifest.

    Raises:
        NotFoundError: the learner is unknown (nothing is written).
        ProviderError: a provider failed; its ``component`` names it (nothing is written).
        ConfigurationError: bad options, ``out`` exists (without ``overwrite``), or its
            parent directory does not exist.
    """
    now = _now(store_or_manager, now)
    require_identifier(learner_id, "learner_id")
    scope = Scope.parse(scope)
    page = PageOptions(
        controller=controller,
        language=_language(language),
        timezone=check_timezone(timezone),
    )
    if not isinstance(out, (str, os.PathLike)):
        raise ArgumentError(f"out must be a path (str or os.PathLike), got {type(out).__name__}")
    target = Path(out)
    as_zip = target.suffix.lower() == ".zip"
    if not target.parent.is_dir():
        raise ConfigurationError("the parent directory of out does not exist")
    if (target.exists() or target.is_symlink()) and not overwrite:
        raise ConfigurationError("out already exists (pass overwrite=True to replace it)")
    manager = as_manager(store_or_manager)
    profile = xapi_profile or XapiProfile()
    if pseudonym_key is None:
        reference, actor = _default_pseudonyms(store_or_manager, profile)
    else:
        reference = _pseudonyms(pseudonym_key, SUBJECT_REFERENCE_DOMAIN)
        actor = _pseudonyms(pseudonym_key, profile.pseudonym_domain)
    work = staging_beside(target)
    try:
        writer = PackageWriter(
            work / "package",
            subject_id=learner_id,
            subject_reference=reference.pseudonym(learner_id),
            xapi_actor=actor.pseudonym(learner_id),
            scope=scope,
            formats=formats,
            csv_bom=csv_bom,
            xapi_profile=profile,
            defaults=descriptions_from_metadata(manager),
            now=now,
            progress=progress,
        )
        try:
            feed_writer(manager, learner_id, writer)
            for source in lrs:
                _write_lrs(writer, source, learner_id, store_or_manager, pseudonym_key)
        except BaseException:
            writer.abandon()
            raise
        manifest = writer.finish(now, page=page)
        if as_zip:
            _publish_zip(work, manifest, target, now)
        else:
            _publish_directory(work, target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return ExportResult(path=target, scope=scope, manifest=manifest)


_STAGING_SUFFIX = ".partial"


def staging_beside(target: Path) -> Path:
    """A new hidden folder beside ``target`` to build it in, after removing those that
    killed builds of ``target`` left (:func:`remove_stale_staging`)."""
    remove_stale_staging(target)
    return Path(
        tempfile.mkdtemp(
            prefix=f".{target.name}.{os.getpid()}.", suffix=_STAGING_SUFFIX, dir=target.parent
        )
    )


def remove_stale_staging(target: Path) -> int:
    """Remove what killed exports to ``target`` left behind; return how many were removed.

    An export builds its package in a hidden folder beside the target,
    ``.<name>.<pid>.<random>.partial``, and removes it when it ends, however it ends, but
    a process killed outright (SIGKILL, power loss) cannot. That folder holds the learner's
    decrypted records, so the next export to the same target removes every such folder
    whose process is gone. A folder of a process still running (a concurrent export) is
    left alone.
    """
    prefix = f".{target.name}."
    removed = 0
    try:
        entries = list(target.parent.iterdir())
    except OSError:
        return 0
    for entry in entries:
        name = entry.name
        if not (name.startswith(prefix) and name.endswith(_STAGING_SUFFIX)):
            continue
        owner = name[len(prefix) :].split(".", 1)[0]
        if not owner.isdigit() or _process_alive(int(owner)):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
        removed += not entry.exists()
    return removed


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive, and not ours to judge
        return True
    except (OverflowError, OSError):
        return False
    return True


def _language(language: str) -> str:
    from learnprivacy._documents import DOCUMENT_LANGUAGES

    if language not in DOCUMENT_LANGUAGES:
        raise ValidationError(
            "language must be one of " + ", ".join(DOCUMENT_LANGUAGES), field="language"
        )
    return language


def _publish_directory(work: Path, target: Path) -> None:
    package = work / "package"
    if target.exists() or target.is_symlink():
        # A directory cannot be replaced in one rename: the old one is moved aside into
        # the work directory first (deleted with it), then the new one takes its name.
        aside = work / "previous"
        os.replace(target, aside)
    os.replace(package, target)


def _publish_zip(work: Path, manifest: dict[str, Any], target: Path, now: dt.datetime) -> None:
    package = work / "package"
    archive = work / "package.zip"
    # Entries carry the generation time, so the same export gives the same archive.
    stamp = now.astimezone(dt.UTC).timetuple()[:6]
    names = [entry["path"] for entry in manifest["files"]] + ["manifest.json"]
    with zipfile.ZipFile(archive, "x", compression=zipfile.ZIP_DEFLATED) as zf:
        for name in names:
            info = zipfile.ZipInfo(check_entry_name(name), date_time=stamp)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            source = package.joinpath(*name.split("/"))
            # An entry of unknown size needs ZIP64 declared up front once it may pass 2 GiB.
            large = source.stat().st_size > (1 << 31) - (1 << 24)
            with source.open("rb") as src, zf.open(info, "w", force_zip64=large) as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
    with archive.open("rb") as file:
        os.fsync(file.fileno())
    if target.is_dir() and not target.is_symlink():
        aside = work / "previous"
        os.replace(target, aside)
    os.replace(archive, target)


def _write_lrs(
    writer: PackageWriter, source: Any, learner_id: str, origin: Any, key: bytes | None
) -> None:
    """What ``source`` (an LrsRecipient) holds about the learner, one row per statement."""
    from urllib.parse import urlsplit

    profile = source.profile
    # The LRS knows the learner by the actor live pushes used: the store keyring's
    # pseudonym, whatever key the package's own pseudonyms use.
    keyring = _store_keyring(origin)
    if keyring is not None:
        names: Pseudonyms = keyring.pseudonymiser(profile.pseudonym_domain)
    elif key is not None:
        names = _pseudonyms(key, profile.pseudonym_domain)
    else:
        raise ConfigurationError("reading an LRS for an export needs a store or pseudonym_key")
    host = urlsplit(source.endpoint).hostname or ""
    rows = (
        {
            "learner_id": learner_id,
            "lrs": host,
            "statement_id": str(statement.get("id", "")),
            "verb": str((statement.get("verb") or {}).get("id", "")),
            "object": str((statement.get("object") or {}).get("id", "")),
            "timestamp": str(statement.get("timestamp", "")),
            "statement": json.dumps(statement, ensure_ascii=False, sort_keys=True),
            "basis": LawfulBasis.CONTRACT.name.lower(),
        }
        for statement in source.statements_about(names.pseudonym(learner_id))
    )
    writer.write_rows("lrs", "LrsStatement", rows)
