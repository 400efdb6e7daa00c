"""Walk through a subject export and an erasure on a throwaway toy LMS."""

from __future__ import annotations

import tempfile
from pathlib import Path

from examples.toy_lms import ForumProvider, ThemeProvider, ToyLMS, VideoConferenceProvider
from learnprivacy.providers import MemoryWriter, PrivacyManager


def main() -> None:
    """Create two learners, export one, erase them, and print what happened."""
    with tempfile.TemporaryDirectory() as tmp:
        lms = ToyLMS(Path(tmp) / "toy.sqlite")
        forum, video, theme = ForumProvider(lms), VideoConferenceProvider(lms), ThemeProvider()
        manager = PrivacyManager([forum, video, theme], discover=False, timeout=5.0)
        for user in ("ana", "ben"):
            forum.make_user_data(user)
            video.make_user_data(user)

        writer = MemoryWriter()
        export = manager.export_user_data("ana", writer)
        print(f"export: {export.status.value}")
        for (component, record_type), rows in sorted(writer.rows.items()):
            print(f"  {component}/{record_type}: {len(rows)} row(s)")

        erasure = manager.delete_data_for_user("ana")
        print(f"erasure: {erasure.status.value}")
        for outcome in erasure.outcomes:
            print(f"  {outcome.component}: {outcome.status.value}, {outcome.contexts} context(s)")
        print(f"contexts left for ana: {len(manager.get_contexts_for_userid('ana'))}")
        holding = sorted(manager.get_contexts_for_userid("ben"))
        print(f"components still holding ben's data: {holding}")


if __name__ == "__main__":
    main()
