"""The compliance kit: the toy LMS's providers pass it, broken providers are caught by name."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from examples.toy_lms import ForumProvider, ThemeProvider, ToyLMS, VideoConferenceProvider

from learnprivacy.providers import ApprovedContextList, Context, ContextList, MetadataCollection
from learnprivacy.testing import assert_provider_compliant


@pytest.fixture
def lms(tmp_path: Path) -> ToyLMS:
    """A fresh toy LMS in a real SQLite file."""
    return ToyLMS(tmp_path / "toy.sqlite")


class ForgetsSubscriptions(ForumProvider):
    """Deletes the user's posts but forgets the subscriptions table."""

    def delete_data_for_user(self, approved: ApprovedContextList) -> None:
        forums = [c.instance_id for c in approved]
        with self.lms.connect() as conn:
            for forum in forums:
                conn.execute(
                    "DELETE FROM forum_posts WHERE forum_id = ? AND user_id = ?",
                    (forum, approved.user_id),
                )


class DeletesEveryone(ForumProvider):
    """Deletes every user's data in the approved forums, not only the requester's."""

    def delete_data_for_user(self, approved: ApprovedContextList) -> None:
        for context in approved:
            self.delete_data_for_all_users_in_context(context)


class ExportsTooLittle(ForumProvider):
    """Exports posts without their subject line."""

    def export_user_data(self, approved: ApprovedContextList, writer: object) -> None:
        rows = self.lms.query(
            "SELECT forum_id, user_id, message, created_at FROM forum_posts WHERE user_id = ?",
            (approved.user_id,),
        )
        writer.write_rows(  # type: ignore[attr-defined]
            self.component,
            "forum_posts",
            [
                dict(zip(("forum_id", "user_id", "message", "created_at"), r, strict=True))
                for r in rows
            ],
        )
        writer.write_rows(  # type: ignore[attr-defined]
            self.component, "forum_subscriptions", [{"forum_id": "F1", "user_id": "x", "digest": 1}]
        )


class FailsOnSecondDelete(ForumProvider):
    """Raises when asked to delete data that is already gone."""

    def delete_data_for_user(self, approved: ApprovedContextList) -> None:
        if not self.raw_scan(approved.user_id):
            raise LookupError("nothing to delete")
        super().delete_data_for_user(approved)


class UndeclaredTable(ForumProvider):
    """Declares only the posts table although it also stores subscriptions."""

    def get_metadata(self, collection: MetadataCollection) -> MetadataCollection:
        full = super().get_metadata(MetadataCollection(self.component))
        collection.add_item(full.database_tables[0])
        return collection


class LeaksOneContext(ForumProvider):
    """Finds only the first forum of a user, so the others are never exported or erased."""

    def get_contexts_for_userid(self, user_id: str) -> ContextList:
        contexts = super().get_contexts_for_userid(user_id).contexts
        return ContextList(contexts[:1], component=self.component)


def _kit_failure(broken: ForumProvider, *, max_examples: int) -> str:
    """The message with which the kit fails ``broken`` (it must fail)."""
    with pytest.raises(AssertionError) as caught:
        assert_provider_compliant(broken, broken.make_user_data, max_examples=max_examples)
    return str(caught.value)


def test_forum_provider_is_compliant(lms: ToyLMS) -> None:
    """The forum provider (two tables, user lists) passes every check."""
    forum = ForumProvider(lms)
    assert_provider_compliant(forum, forum.make_user_data, max_examples=8)


def test_videoconf_provider_is_compliant(lms: ToyLMS) -> None:
    """The video-conference provider (a table and an external location) passes."""
    video = VideoConferenceProvider(lms)
    assert_provider_compliant(video, video.make_user_data, max_examples=8)


def test_null_provider_is_compliant() -> None:
    """A null provider with a reason passes without any data."""
    assert_provider_compliant(ThemeProvider())


def test_fixture_gives_the_kit(provider_compliance: Callable[..., None], lms: ToyLMS) -> None:
    """The pytest plugin's `provider_compliance` fixture runs the kit in one line."""
    forum = ForumProvider(lms)
    provider_compliance(forum, forum.make_user_data, max_examples=3)
    broken = ForgetsSubscriptions(lms)
    with pytest.raises(AssertionError, match="forum_subscriptions"):
        provider_compliance(broken, broken.make_user_data, max_examples=3)


def test_kit_catches_a_table_forgotten_in_delete(lms: ToyLMS) -> None:
    """Forgetting a table in delete_data_for_user fails the erasure check, naming the table."""
    message = _kit_failure(ForgetsSubscriptions(lms), max_examples=3)
    assert message.startswith("toy_forum: erasure check failed: after delete_data_for_user")
    assert "the raw scan still finds 1 row(s) of the user in 'forum_subscriptions'" in message
    assert "forum_posts" not in message


#: Broken providers and the check that must name their fault.
BROKEN = [
    # Deleting a whole forum for one user's request fails the isolation check.
    pytest.param(
        DeletesEveryone,
        r"toy_forum: isolation check failed: .*another user",
        id="deleting-other-users",
    ),
    # A declared field left out of the export fails the export check, naming the field.
    pytest.param(
        ExportsTooLittle,
        r"toy_forum: export check failed: field forum_posts\.subject is declared",
        id="a-field-missing-from-the-export",
    ),
    # A second delete that raises fails the idempotence check.
    pytest.param(
        FailsOnSecondDelete,
        r"idempotence check failed: .*LookupError",
        id="a-delete-that-is-not-idempotent",
    ),
    # Data created in a table get_metadata does not declare fails the declaration check.
    pytest.param(
        UndeclaredTable,
        r"declaration check failed: .*'forum_subscriptions', which get_metadata",
        id="an-undeclared-table",
    ),
    # A context missing from get_contexts_for_userid shows as rows missing from the export.
    pytest.param(
        LeaksOneContext,
        r"toy_forum: export check failed: table 'forum_posts': 2 row\(s\) created, 1 exported",
        id="contexts-the-provider-does-not-find",
    ),
]


@pytest.mark.parametrize(("provider", "fault"), BROKEN)
def test_kit_catches(lms: ToyLMS, provider: type[ForumProvider], fault: str) -> None:
    """Each broken provider fails the kit, with the message of the check it breaks."""
    broken = provider(lms)
    with pytest.raises(AssertionError, match=fault):
        assert_provider_compliant(broken, broken.make_user_data, max_examples=3)


def test_kit_requires_a_raw_scan(lms: ToyLMS) -> None:
    """A provider with tables and no raw scan is refused: erasure could not be verified."""

    class NoScan(ForumProvider):
        raw_scan = None  # type: ignore[assignment]

    broken = NoScan(lms)
    with pytest.raises(AssertionError, match="no raw scan"):
        assert_provider_compliant(broken, broken.make_user_data, max_examples=1)


def test_kit_checks_declarations() -> None:
    """Bad names, reasonless null providers and half providers fail the declaration check."""

    class BadName:
        component = "Forum"

        def get_reason(self) -> str:
            return "nothing stored"

    class NoReason:
        component = "toy_blank"

        def get_reason(self) -> str:
            return " "

    class MetadataOnly:
        component = "toy_half"

        def get_metadata(self, collection: MetadataCollection) -> MetadataCollection:
            return collection

    with pytest.raises(AssertionError, match="frankenstyle"):
        assert_provider_compliant(BadName())
    with pytest.raises(AssertionError, match=r"toy_blank: declaration check failed: .*no reason"):
        assert_provider_compliant(NoReason())
    with pytest.raises(AssertionError, match=r"toy_half: .*missing get_contexts_for_userid"):
        assert_provider_compliant(MetadataOnly())


def test_kit_requires_register_facts(lms: ToyLMS) -> None:
    """An item without a purpose fails unless require_register_facts=False."""

    class NoPurpose(VideoConferenceProvider):
        def get_metadata(self, collection: MetadataCollection) -> MetadataCollection:
            return collection.add_database_table(
                "videoconf_attendance",
                {
                    "meeting_id": "Meeting",
                    "user_id": "Participant",
                    "display_name": "Name",
                    "joined_at": "Joined",
                    "minutes": "Stayed",
                },
                "Attendance",
            )

    provider = NoPurpose(lms)
    with pytest.raises(AssertionError, match="'videoconf_attendance' declares no purpose"):
        assert_provider_compliant(provider, provider.make_user_data, max_examples=1)
    assert_provider_compliant(
        provider, provider.make_user_data, max_examples=2, require_register_facts=False
    )
    assert Context.module("M1") not in provider.get_contexts_for_userid("nobody")


class ExportsAnUndeclaredField(ForumProvider):
    """Exports each post with the poster's IP address, which get_metadata never declares."""

    def export_user_data(self, approved: ApprovedContextList, writer: object) -> None:
        class Widening:
            def describe(self, description: object) -> None:
                writer.describe(description)  # type: ignore[attr-defined]

            def write_rows(self, component: str, record_type: str, rows: object) -> int:
                extra = [{**row, "ip_address": "203.0.113.9"} for row in rows]  # type: ignore[attr-defined]
                return int(writer.write_rows(component, record_type, extra))  # type: ignore[attr-defined]

        super().export_user_data(approved, Widening())  # type: ignore[arg-type]


class ExportRaises(ForumProvider):
    """An export that blows up with a message holding a personal value."""

    def export_user_data(self, approved: ApprovedContextList, writer: object) -> None:
        raise RuntimeError(f"cannot read posts of {approved.user_id}@example.org")


def test_kit_catches_a_field_exported_but_not_declared(lms: ToyLMS) -> None:
    """A field in the export that the metadata does not declare fails the kit, naming the
    component, the table and the field (the register would under-declare it)."""
    message = _kit_failure(ExportsAnUndeclaredField(lms), max_examples=2)
    assert message.startswith("toy_forum: declaration check failed")
    assert "'forum_posts'" in message
    assert "ip_address" in message
    assert "203.0.113.9" not in message


def test_kit_reports_an_exception_with_the_component(lms: ToyLMS) -> None:
    """A provider method that raises is reported with the component, the check and the
    method, and the exception's type, never its message (which may hold personal data)."""
    broken = ExportRaises(lms)
    with pytest.raises(AssertionError) as caught:
        assert_provider_compliant(broken, broken.make_user_data, max_examples=2)
    message = str(caught.value)
    assert message == "toy_forum: export check failed: export_user_data raised RuntimeError"
    assert isinstance(caught.value.__cause__, RuntimeError)
