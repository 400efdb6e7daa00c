"""Hypothesis entry point: register learnprivacy's strategies with ``st.from_type``."""

from __future__ import annotations


def _hypothesis_setup_hook() -> None:
    """Called by hypothesis at import time (entry point group ``hypothesis``)."""
    from hypothesis import strategies as st

    from learnprivacy.retention import Hold, Period
    from learnprivacy.testing.retention import holds, periods
    from learnprivacy.testing.strategies import STRATEGIES

    for cls, strategy in STRATEGIES.items():
        st.register_type_strategy(cls, strategy)
    st.register_type_strategy(Period, periods())
    st.register_type_strategy(Hold, holds())
