"""pytest plugin (``pytest11`` entry point): fixtures for testing code that uses learnprivacy.

Loading it costs nothing: fixtures import their dependencies only when a test asks for them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest


@pytest.fixture
def provider_compliance() -> Callable[..., None]:
    """The privacy-provider compliance kit, one line per provider::

        def test_forum_provider(provider_compliance, forum_provider):
            provider_compliance(forum_provider, forum_provider.make_user_data)

    It is :func:`learnprivacy.testing.assert_provider_compliant`: same arguments
    (``raw_scan=``, ``max_examples=``, ...), raising ``AssertionError`` on the first
    declaration or behaviour it finds wrong.
    """
    from learnprivacy.testing.compliance import assert_provider_compliant

    def check(provider: object, make_user_data: Any = None, **options: Any) -> None:
        assert_provider_compliant(provider, make_user_data, **options)

    return check
