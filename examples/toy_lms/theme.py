"""The theme's provider: a null provider, because the theme stores nothing personal."""

from __future__ import annotations


class ThemeProvider:
    """Privacy provider of the toy theme (component ``toy_theme``)."""

    component = "toy_theme"

    def get_reason(self) -> str:
        """Why the theme stores no personal data."""
        return "The theme only stores site-wide colours and logos, never anything about a user."
