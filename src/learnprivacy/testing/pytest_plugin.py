"""pytest plugin (``pytest11`` entry point): fixtures for testing code that uses learnprivacy.

Loading it costs nothing: fixtures import their dependencies only when a test asks for them.
"""

from __future__ import annotations
