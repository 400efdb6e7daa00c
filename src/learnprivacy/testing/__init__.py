"""Test helpers shipped with learnprivacy (public API).

- :mod:`learnprivacy.testing.strategies`: hypothesis strategies for every record;
- :mod:`learnprivacy.testing.retention`: strategies and invariants for retention schedules;
- :mod:`learnprivacy.testing.postgres`: a throwaway real PostgreSQL server for tests;
- :mod:`learnprivacy.testing.lrs`: a throwaway real Ralph LRS for xAPI tests;
- :func:`assert_provider_compliant`: the privacy-provider compliance kit;
- :func:`assert_not_reidentifiable` / :mod:`learnprivacy.testing.reidentification`: a
  re-identification check (linking by id, exact timestamp, rare combination) to run on
  anonymised data;
- a pytest plugin (``pytest11`` entry point) with fixtures built on the above.

Submodules are imported on first use so that ``import learnprivacy.testing`` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["assert_not_reidentifiable", "assert_provider_compliant", "reidentification_risks"]

_LAZY = {
    "assert_not_reidentifiable": "learnprivacy.testing.reidentification",
    "assert_provider_compliant": "learnprivacy.testing.compliance",
    "reidentification_risks": "learnprivacy.testing.reidentification",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'learnprivacy.testing' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
