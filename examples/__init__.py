"""Runnable examples of learnprivacy (importable from the repository root for the tests)."""
