"""The test suite."""

import datetime as _dt

#: The one "now" of the test suite: tests never read the clock (the ``now`` fixture of
#: tests/conftest.py returns it too).
NOW = _dt.datetime(2026, 6, 15, 12, 0, tzinfo=_dt.UTC)
