"""PrivacyManager: requests across providers, failures and timeouts named, retries idempotent."""

from __future__ import annotations

import datetime as dt
import itertools
import threading
from pathlib import Path

import pytest
from examples.toy_lms import ForumProvider, ThemeProvider, ToyLMS, VideoConferenceProvider

from learnprivacy.errors import ConfigurationError, ProviderError, ValidationError
from learnprivacy.providers import (
    ApprovedContextList,
    ContentWriter,
    Context,
    ContextList,
    MemoryWriter,
    MetadataCollection,
    PrivacyManager,
)
from learnprivacy.providers._results import RequestStatus


@pytest.fixture
def lms(tmp_path: Path) -> ToyLMS:
    """A toy LMS in a real SQLite file, with data for 'ana' and 'ben'."""
    lms = ToyLMS(tmp_path / "toy.sqlite")
    for user in ("ana", "ben"):
        ForumProvider(lms).make_user_data(user)
        VideoConferenceProvider(lms).make_user_data(user)
    return lms


def toy_manager(lms: ToyLMS, *extra: object, **options: object) -> PrivacyManager:
    """The three toy providers plus ``extra``, without entry-point discovery."""
    providers = [ForumProvider(lms), VideoConferenceProvider(lms), ThemeProvider(), *extra]
    return PrivacyManager(providers, discover=False, **options)  # type: ignore[arg-type]


def remaining(lms: ToyLMS, user: str) -> dict[str, int]:
    """What a raw scan of every toy table still finds of ``user``."""
    tables = ("forum_posts", "forum_subscriptions", "videoconf_attendance")
    return lms.raw_scan(user, tables)


class Exploding:
    """A provider whose data cannot be read; its error message holds a personal value."""

    component = "toy_exploding"

    def __init__(self, failures: int = 10**6) -> None:
        self.failures = failures
        self.deleted: list[str] = []

    def get_metadata(self, collection: MetadataCollection) -> MetadataCollection:
        return collection.add_database_table("boom", {"user_id": "User"}, "Boom")

    def get_contexts_for_userid(self, user_id: str) -> ContextList:
        # Once deleted, the user has no context left: the manager's re-check sees it.
        if user_id in self.deleted:
            return ContextList([])
        return ContextList([Context.user(user_id)])

    def export_user_data(self, approved: ApprovedContextList, writer: ContentWriter) -> None:
        raise RuntimeError("cannot read the row of ana@example.org")

    def delete_data_for_user(self, approved: ApprovedContextList) -> None:
        if self.failures > 0:
            self.failures -= 1
            raise RuntimeError("cannot delete the row of ana@example.org")
        self.deleted.append(approved.user_id)

    def delete_data_for_all_users_in_context(self, context: Context) -> None:
        raise RuntimeError("no")


class Slow:
    """A provider that blocks until released: it stands for a hung database connection."""

    component = "toy_slow"

    def __init__(self) -> None:
        self.release = threading.Event()
        self.finished = threading.Event()

    def get_metadata(self, collection: MetadataCollection) -> MetadataCollection:
        return collection.add_database_table("slow", {"user_id": "User"}, "Slow")

    def get_contexts_for_userid(self, user_id: str) -> ContextList:
        return ContextList([Context.user(user_id)])

    def export_user_data(self, approved: ApprovedContextList, writer: ContentWriter) -> None:
        self.release.wait(10)
        try:
            writer.write_rows(self.component, "slow", [{"user_id": approved.user_id}])
        finally:
            self.finished.set()

    def delete_data_for_user(self, approved: ApprovedContextList) -> None:
        self.release.wait(10)
        self.finished.set()

    def delete_data_for_all_users_in_context(self, context: Context) -> None:
        """Nothing to do."""


def test_export_and_delete_across_providers(lms: ToyLMS) -> None:
    """Export gathers every provider's rows; deletion erases the subject and nobody else."""
    manager = toy_manager(lms)
    writer = MemoryWriter()
    export = manager.export_user_data("ana", writer)
    assert export.status is RequestStatus.COMPLETED
    assert [o.component for o in export.outcomes] == ["toy_forum", "toy_videoconf", "toy_theme"]
    assert export.outcome("toy_theme").null_provider
    assert {key for key, rows in writer.rows.items() if rows} == {
        ("toy_forum", "forum_posts"),
        ("toy_forum", "forum_subscriptions"),
        ("toy_videoconf", "videoconf_attendance"),
    }
    assert all(row["user_id"] == "ana" for rows in writer.rows.values() for row in rows)

    before_ben = remaining(lms, "ben")
    erasure = manager.delete_data_for_user("ana")
    assert erasure.completed
    assert erasure.failed_components == ()
    assert erasure.outcome("toy_forum").contexts == 2
    assert remaining(lms, "ana") == {}
    assert remaining(lms, "ben") == before_ben
    assert manager.get_contexts_for_userid("ana") == {}


def test_retry_is_idempotent(lms: ToyLMS) -> None:
    """A second deletion completes, finds no context and changes nothing."""
    manager = toy_manager(lms)
    manager.delete_data_for_user("ana").raise_for_status()
    before_ben = remaining(lms, "ben")
    again = manager.delete_data_for_user("ana")
    assert again.completed
    assert [o.contexts for o in again.outcomes] == [0, 0, 0]
    assert remaining(lms, "ana") == {}
    assert remaining(lms, "ben") == before_ben


def test_failing_provider_fails_the_request_and_is_named(lms: ToyLMS) -> None:
    """One provider raising makes the request FAILED, naming it; the others still run."""
    exploding = Exploding(failures=1)
    manager = toy_manager(lms, exploding)
    result = manager.delete_data_for_user("ana")
    assert result.status is RequestStatus.FAILED
    assert result.failed_components == ("toy_exploding",)
    outcome = result.outcome("toy_exploding")
    assert outcome.step == "delete_data_for_user"
    assert outcome.error == "delete_data_for_user raised RuntimeError"
    assert isinstance(outcome.exception, RuntimeError)
    # The personal value in the provider's message appears nowhere in the result.
    assert "example.org" not in repr(result)
    assert "example.org" not in str(result.to_dict())
    assert remaining(lms, "ana") == {}
    with pytest.raises(ProviderError, match="toy_exploding") as caught:
        result.raise_for_status()
    assert caught.value.component == "toy_exploding"

    # The retry finishes the job and changes nothing for the providers already done.
    retry = manager.delete_data_for_user("ana")
    assert retry.completed
    assert exploding.deleted == ["ana"]


def test_failed_export_is_never_complete(lms: ToyLMS) -> None:
    """An export with one failing provider is FAILED even though others wrote rows."""
    result = toy_manager(lms, Exploding()).export_user_data("ana", MemoryWriter())
    assert not result.completed
    assert result.to_dict()["failed_components"] == ["toy_exploding"]
    assert result.outcome("toy_forum").completed


def test_slow_provider_times_out_and_its_late_writes_are_refused(lms: ToyLMS) -> None:
    """A provider past its deadline makes the request FAILED; what it writes later is dropped."""
    slow = Slow()
    manager = toy_manager(lms, slow, timeout=0.2)
    writer = MemoryWriter()
    try:
        result = manager.export_user_data("ana", writer)
    finally:
        slow.release.set()
    assert slow.finished.wait(10)
    assert result.failed_components == ("toy_slow",)
    outcome = result.outcome("toy_slow")
    assert outcome.timed_out
    assert outcome.step == "export_user_data"
    assert "did not finish within 0.2s" in str(outcome.error)
    assert ("toy_slow", "slow") not in writer.rows or writer.rows[("toy_slow", "slow")] == []
    assert result.outcome("toy_forum").completed


def test_timeouts_per_component(lms: ToyLMS) -> None:
    """A per-component timeout overrides the default."""
    slow = Slow()
    manager = toy_manager(lms, slow, timeout=None, timeouts={"toy_slow": 0.1})
    try:
        result = manager.delete_data_for_user("ana")
    finally:
        slow.release.set()
    assert result.failed_components == ("toy_slow",)
    assert result.outcome("toy_slow").timed_out


def test_durations_use_the_injected_clock(lms: ToyLMS) -> None:
    """Each provider's turn is timed with the manager's clock."""
    ticks = itertools.count()
    manager = toy_manager(lms, clock=lambda: float(next(ticks)))
    result = manager.delete_data_for_user("ana")
    assert result.outcome("toy_forum").duration == dt.timedelta(seconds=1)
    assert result.outcome("toy_theme").duration == dt.timedelta(0)
    assert result.duration == dt.timedelta(seconds=2)


def test_context_and_user_list_requests(lms: ToyLMS) -> None:
    """Contexts by component, users in a context, and deletions by context and by users."""
    manager = toy_manager(lms)
    contexts = manager.get_contexts_for_userid("ben")
    assert sorted(contexts) == ["toy_forum", "toy_videoconf"]
    forum = contexts["toy_forum"].contexts[0]
    users = manager.get_users_in_context(forum)
    assert "ben" in users["toy_forum"]

    assert manager.delete_data_for_users(forum, ["ben"]).completed
    assert forum not in manager.get_contexts_for_userid("ben")["toy_forum"]

    meeting = Context.module("M1")
    assert manager.delete_data_for_all_users_in_context(meeting).completed
    assert lms.query("SELECT COUNT(*) FROM videoconf_attendance WHERE meeting_id = 'M1'") == [(0,)]


def test_context_queries_raise_naming_the_provider(lms: ToyLMS) -> None:
    """A provider failing while contexts are listed raises ProviderError naming it."""

    class Broken(Exploding):
        def get_contexts_for_userid(self, user_id: str) -> ContextList:
            raise KeyError(user_id)

    with pytest.raises(ProviderError) as caught:
        toy_manager(lms, Broken()).get_contexts_for_userid("ana")
    assert caught.value.component == "toy_exploding"
    assert "ana" not in str(caught.value)


def test_components_and_metadata(lms: ToyLMS) -> None:
    """The manager lists components, aggregates metadata and null-provider reasons."""
    manager = toy_manager(lms)
    assert manager.components == ("toy_forum", "toy_videoconf", "toy_theme")
    metadata = manager.get_metadata()
    assert list(metadata) == ["toy_forum", "toy_videoconf"]
    assert [t.name for t in metadata["toy_forum"].database_tables] == [
        "forum_posts",
        "forum_subscriptions",
    ]
    assert "colours" in manager.get_null_reasons()["toy_theme"]
    forum = manager.component("toy_forum")
    assert forum.handles_requests
    assert forum.handles_userlists
    assert not forum.is_null
    assert forum.source == "explicit"
    assert manager.component("toy_theme").is_null
    assert len(manager.get_metadata_for("toy_theme")) == 0


def test_bad_registrations_are_refused(lms: ToyLMS) -> None:
    """Duplicates, classes, half providers and reasonless null providers are refused."""

    class MetadataOnly:
        component = "toy_half"

        def get_metadata(self, collection: MetadataCollection) -> MetadataCollection:
            return collection

    class Silent:
        component = "toy_silent"

        def get_reason(self) -> str:
            return ""

    with pytest.raises(ConfigurationError, match="two providers"):
        PrivacyManager([ThemeProvider(), ThemeProvider()], discover=False)
    with pytest.raises(ConfigurationError, match="not classes"):
        PrivacyManager([ThemeProvider], discover=False)
    with pytest.raises(ConfigurationError, match="toy_half"):
        PrivacyManager([MetadataOnly()], discover=False)
    with pytest.raises(ConfigurationError, match="toy_silent"):
        PrivacyManager([Silent()], discover=False)
    with pytest.raises(ValidationError):
        toy_manager(lms).delete_data_for_user("")


def test_metadata_must_be_the_given_collection(lms: ToyLMS) -> None:
    """get_metadata returning another collection raises ProviderError naming the provider."""

    class Wrong(Exploding):
        def get_metadata(self, collection: MetadataCollection) -> MetadataCollection:
            return MetadataCollection("someone_else")

    with pytest.raises(ProviderError) as caught:
        toy_manager(lms, Wrong()).get_metadata()
    assert caught.value.component == "toy_exploding"


def test_user_preferences_are_exported(lms: ToyLMS) -> None:
    """A user-preference provider is asked for the user's preferences during an export."""

    class Preferences(Exploding):
        component = "toy_prefs"

        def get_contexts_for_userid(self, user_id: str) -> ContextList:
            return ContextList()

        def export_user_preferences(self, user_id: str, writer: ContentWriter) -> None:
            writer.write_rows(self.component, "preferences", [{"theme": "dark"}])

    manager = toy_manager(lms, Preferences())
    assert manager.component("toy_prefs").handles_preferences
    writer = MemoryWriter()
    assert manager.export_user_data("ana", writer).completed
    assert writer.rows[("toy_prefs", "preferences")] == [{"theme": "dark"}]
