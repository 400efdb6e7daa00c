"""Subject exports (GDPR access and portability), xAPI statements and recipient reports.

- :func:`export_subject` writes one learner's data as a package (directory or ``.zip``):
  ``manifest.json`` with SHA-256 checksums, ``data/<component>/<RecordType>.json``,
  ``csv/<RecordType>.csv``, ``xapi/statements.json`` and a readable ``index.html``;
  :func:`read_package` reads it back, verified, into typed records.
- :class:`PackageWriter` is the streaming :class:`~learnprivacy.providers.ContentWriter`
  behind it, usable on its own.
- :mod:`learnprivacy.export.xapi` builds xAPI 1.0.3 statements and sends them to an LRS.
- :mod:`learnprivacy.export.reports` produces what an employer or a funder receives:
  allow-listed fields, per-recipient pseudonyms, k-anonymous statistics.
- :func:`to_records` / :func:`to_dataframe` flatten records for a notebook.
"""

from learnprivacy.export._frames import to_dataframe, to_records
from learnprivacy.export._names import check_entry_name, safe_segment
from learnprivacy.export._outputs import DATA_SCHEMA, MANIFEST_SCHEMA_VERSION
from learnprivacy.export._package import ALL_FORMATS, PackageWriter
from learnprivacy.export._read import ExportPackage, read_package
from learnprivacy.export._scope import Scope
from learnprivacy.export._subject import SUBJECT_REFERENCE_DOMAIN, ExportResult, export_subject
from learnprivacy.export._xapi import XapiProfile

__all__ = [
    "ALL_FORMATS",
    "DATA_SCHEMA",
    "MANIFEST_SCHEMA_VERSION",
    "SUBJECT_REFERENCE_DOMAIN",
    "ExportPackage",
    "ExportResult",
    "PackageWriter",
    "Scope",
    "XapiProfile",
    "check_entry_name",
    "export_subject",
    "read_package",
    "safe_segment",
    "to_dataframe",
    "to_records",
]
