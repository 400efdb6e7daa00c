"""The forum's privacy provider: posts and subscriptions in the toy LMS's own tables.

Each forum is an activity context. The provider implements the request and user-list
protocols, and every deletion is idempotent (a ``DELETE`` of rows already gone is a no-op).
"""

from __future__ import annotations

from collections.abc import Sequence

from examples.toy_lms.database import FORUMS, ActivityTables, activities
from learnprivacy import ContextLevel, DataCategory
from learnprivacy.providers import (
    ApprovedContextList,
    ApprovedUserList,
    ContentWriter,
    Context,
    ContextList,
    MetadataCollection,
    UserList,
)

PURPOSE = "Course discussions between learners and trainers"
RETENTION = "P18M"
#: The columns of each table the forum keeps about a user, described: what the metadata
#: declares is what an export reads.
POSTS = {
    "forum_id": "The forum the message was posted in",
    "user_id": "The author of the message",
    "subject": "The subject line of the message",
    "message": "The text of the message",
    "created_at": "When the message was posted",
}
SUBSCRIPTIONS = {
    "forum_id": "The forum subscribed to",
    "user_id": "The subscriber",
    "digest": "Whether new posts are sent as a daily digest",
}


class ForumProvider(ActivityTables):
    """Privacy provider of the toy forum (component ``toy_forum``)."""

    component = "toy_forum"
    tables: Sequence[str] = ("forum_posts", "forum_subscriptions")
    key = "forum_id"
    purpose = PURPOSE
    retention = RETENTION

    def get_metadata(self, collection: MetadataCollection) -> MetadataCollection:
        """Declare the two tables."""
        self.declare_table(
            collection,
            "forum_posts",
            POSTS,
            "Messages posted in course forums",
            [DataCategory.COMMUNICATION, DataCategory.LEARNING],
        )
        self.declare_table(
            collection,
            "forum_subscriptions",
            SUBSCRIPTIONS,
            "Who receives new forum posts by e-mail",
            [DataCategory.PREFERENCE],
            basis="gdpr_art_6_1_b",
        )
        return collection

    # -- finding data -----------------------------------------------------------------

    def get_contexts_for_userid(self, user_id: str) -> ContextList:
        """Every forum where the user posted or is subscribed."""
        rows = self.lms.query(
            "SELECT forum_id FROM forum_posts WHERE user_id = ?"
            " UNION SELECT forum_id FROM forum_subscriptions WHERE user_id = ?"
            " ORDER BY 1",
            (user_id, user_id),
        )
        return ContextList((Context.module(str(r[0])) for r in rows), component=self.component)

    def get_users_in_context(self, userlist: UserList) -> None:
        """Every user who posted in, or subscribed to, the forum of the context."""
        if userlist.context.level is not ContextLevel.MODULE:
            return
        rows = self.lms.query(
            "SELECT user_id FROM forum_posts WHERE forum_id = ?"
            " UNION SELECT user_id FROM forum_subscriptions WHERE forum_id = ?",
            (userlist.context.instance_id, userlist.context.instance_id),
        )
        userlist.add_users(str(r[0]) for r in rows)

    # -- export -----------------------------------------------------------------------

    def export_user_data(self, approved: ApprovedContextList, writer: ContentWriter) -> None:
        """Write the user's posts and subscriptions in the approved forums."""
        if not activities(approved):
            return
        posts = self.rows_of(approved, "forum_posts", POSTS, order="id")
        subscriptions = self.rows_of(
            approved, "forum_subscriptions", SUBSCRIPTIONS, order="forum_id"
        )
        self.write_described(writer, "forum_posts", "Messages you posted in course forums", posts)
        writer.write_rows(
            self.component,
            "forum_subscriptions",
            ({**row, "digest": bool(row["digest"])} for row in subscriptions),
        )

    # -- deletion ---------------------------------------------------------------------

    def delete_data_for_users(self, approved: ApprovedUserList) -> None:
        """Delete the approved users' posts and subscriptions in one forum."""
        if approved.context.level is ContextLevel.MODULE:
            forum = (approved.context.instance_id,)
            self.lms.delete_in(self.tables, self.key, forum, approved.user_ids)

    # -- test data --------------------------------------------------------------------

    def make_user_data(self, user_id: str) -> dict[str, int]:
        """Create posts and subscriptions for ``user_id``; returns the rows created per table.

        The forums are chosen from the id so that users share forums.
        """
        first = sum(map(ord, user_id)) % len(FORUMS)
        forums = [FORUMS[first], FORUMS[(first + 1) % len(FORUMS)]]
        for n, forum in enumerate(forums):
            self.lms.post(forum, user_id, f"Question {n}", f"Message {n} in {forum}", n)
        self.lms.subscribe(forums[0], user_id, digest=True)
        return {"forum_posts": len(forums), "forum_subscriptions": 1}
