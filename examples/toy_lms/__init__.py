"""A toy LMS with three privacy providers, as an LMS would write them.

- :class:`ForumProvider` (``toy_forum``): posts and subscriptions in the LMS's own SQLite
  tables; a request and user-list provider;
- :class:`VideoConferenceProvider` (``toy_videoconf``): an attendance table plus an
  external location (the data sent to the video-conferencing service);
- :class:`ThemeProvider` (``toy_theme``): a null provider.

Run ``python -m examples.toy_lms`` from the repository root to see a subject export and
an erasure go through :class:`learnprivacy.providers.PrivacyManager`.
"""

from examples.toy_lms.database import ToyLMS
from examples.toy_lms.forum import ForumProvider
from examples.toy_lms.theme import ThemeProvider
from examples.toy_lms.videoconf import VideoConferenceProvider

__all__ = ["ForumProvider", "ThemeProvider", "ToyLMS", "VideoConferenceProvider", "providers_for"]


def providers_for(lms: ToyLMS) -> list[object]:
    """The three providers of ``lms``."""
    return [ForumProvider(lms), VideoConferenceProvider(lms), ThemeProvider()]
