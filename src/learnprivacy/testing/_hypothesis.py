"""Hypothesis entry point: register learnprivacy's strategies with ``st.from_type``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def _record_strategy(cls: type[Any]) -> Any:
    from learnprivacy.testing.strategies import STRATEGIES

    return STRATEGIES[cls]


def _deferred_record(cls: type[Any]) -> Callable[[], Any]:
    def definition() -> Any:
        return _record_strategy(cls)

    return definition


def _retention_strategy(name: str) -> Any:
    from learnprivacy.testing import _retention_strategies

    return getattr(_retention_strategies, name)()


def _hypothesis_setup_hook() -> None:
    """Called by hypothesis at import time (entry point group ``hypothesis``).

    The strategies are registered deferred: hypothesis runs this hook while it is being
    imported, possibly from ``learnprivacy.testing.strategies`` itself, which cannot be
    read before it has finished importing.
    """
    from hypothesis import strategies as st

    from learnprivacy import records as r
    from learnprivacy.basis import LawfulBasis
    from learnprivacy.retention import Hold, Period

    types = (r.Learner, r.Progress, r.Certificate, r.Invoice, r.Consent, r.Funding, r.AccessEvent)
    for cls in (*types, r.Score):
        st.register_type_strategy(cls, st.deferred(_deferred_record(cls)))
    st.register_type_strategy(LawfulBasis, st.sampled_from(LawfulBasis))
    st.register_type_strategy(Period, st.deferred(lambda: _retention_strategy("periods")))
    st.register_type_strategy(Hold, st.deferred(lambda: _retention_strategy("holds")))
