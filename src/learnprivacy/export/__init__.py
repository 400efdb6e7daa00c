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
from learnprivacy.export._package import PackageWriter
from learnprivacy.export._read import ExportPackage, read_package
from learnprivacy.export._scope import Scope
from learnprivacy.export._subject import export_subject
from learnprivacy.export._xapi import XapiProfile

__all__ = [
    "ExportPackage",
    "PackageWriter",
    "Scope",
    "XapiProfile",
    "export_subject",
    "read_package",
    "to_dataframe",
    "to_records",
]
