"""The video-conference activity's provider: an attendance table and an external service.

When a learner joins a virtual classroom, the LMS sends their display name and e-mail to
the video-conferencing service (an external location, declared for the register) and
keeps an attendance row of its own (a table, exported and erased like any other).
"""

from __future__ import annotations

from collections.abc import Sequence

from examples.toy_lms.database import MEETINGS, ActivityTables, ToyLMS, activities
from learnprivacy import DataCategory, LawfulBasis
from learnprivacy.providers import (
    ApprovedContextList,
    ContentWriter,
    Context,
    ContextList,
    MetadataCollection,
)

PURPOSE = "Virtual classrooms and attendance follow-up"
#: The attendance columns kept about a user, described: what the metadata declares is
#: what an export reads.
ATTENDANCE = {
    "meeting_id": "The virtual classroom joined",
    "user_id": "The participant",
    "display_name": "The name shown to the other participants",
    "joined_at": "When the participant joined",
    "minutes": "How long the participant stayed",
}


class VideoConferenceProvider(ActivityTables):
    """Privacy provider of the toy virtual classroom (component ``toy_videoconf``)."""

    component = "toy_videoconf"
    tables: Sequence[str] = ("videoconf_attendance",)
    key = "meeting_id"
    purpose = PURPOSE
    retention = "P18M"

    def __init__(self, lms: ToyLMS, *, service: str = "Infomaniak kMeet", country: str = "CH"):
        super().__init__(lms)
        self.service = service
        self.country = country

    def get_metadata(self, collection: MetadataCollection) -> MetadataCollection:
        """Declare the attendance table and the data sent to the video service."""
        self.declare_table(
            collection,
            "videoconf_attendance",
            ATTENDANCE,
            "Attendance of virtual classrooms",
            [DataCategory.LEARNING, DataCategory.TECHNICAL_LOG],
        )
        collection.add_external_location_link(
            "videoconf_service",
            {
                "display_name": "The name shown in the meeting",
                "email": "Sent so the service can recognise a returning participant",
            },
            "Data sent to the video-conferencing service when a participant joins",
            purpose=PURPOSE,
            basis=LawfulBasis.CONTRACT,
            categories=[DataCategory.IDENTITY, DataCategory.CONTACT],
            recipient=self.service,
            country=self.country,
        )
        return collection

    def get_contexts_for_userid(self, user_id: str) -> ContextList:
        """Every meeting the user joined."""
        rows = self.lms.query(
            "SELECT DISTINCT meeting_id FROM videoconf_attendance WHERE user_id = ? ORDER BY 1",
            (user_id,),
        )
        return ContextList((Context.module(str(r[0])) for r in rows), component=self.component)

    def export_user_data(self, approved: ApprovedContextList, writer: ContentWriter) -> None:
        """Write the user's attendance rows in the approved meetings."""
        if not activities(approved):
            return
        rows = self.rows_of(approved, "videoconf_attendance", ATTENDANCE, order="id")
        self.write_described(
            writer, "videoconf_attendance", "The virtual classrooms you joined", rows
        )

    def make_user_data(self, user_id: str) -> dict[str, int]:
        """Make ``user_id`` join one or two meetings; returns the rows created."""
        count = 1 + sum(map(ord, user_id)) % len(MEETINGS)
        for n, meeting in enumerate(MEETINGS[:count]):
            self.lms.attend(meeting, user_id, f"Learner {len(user_id)}-{n}", 30 + n)
        return {"videoconf_attendance": count}
