"""A mailer component, for tests of the register's internal-only promises.

An application promises that a purpose's data stays inside (``internal_only=``); a second
component of the application that sends e-mail for that purpose to a recipient breaks
the promise when the recipient is outside. :class:`Mailer` is that component: a provider
declaring one external location (e-mails sent for one purpose, ``billing`` unless told),
its recipient internal or not as asked, and keeping no copy of what it sends.
"""

from __future__ import annotations

from learnprivacy.providers import (
    ApprovedContextList,
    Context,
    ContextList,
    MetadataCollection,
)

__all__ = ["Mailer"]

#: The recipient :class:`Mailer` declares by default when ``internal=True``, and when not.
INTERNAL_RECIPIENT = "Accounts team"
EXTERNAL_RECIPIENT = "Mailjet SAS"


class Mailer:
    """A component sending e-mails for ``purpose`` to an internal or an external recipient.

    ``Mailer(internal=False)`` passed in ``providers=`` to a register whose ``billing``
    purpose is internal only must show a gap naming its ``recipient`` (by default
    :data:`EXTERNAL_RECIPIENT`); ``Mailer(internal=True)`` must not. ``purpose``,
    ``basis`` and ``recipient`` change what it declares.
    """

    component = "mailer"

    def __init__(
        self,
        *,
        internal: bool,
        purpose: str = "billing",
        basis: str = "gdpr_art_6_1_c",
        recipient: str | None = None,
    ) -> None:
        self.internal = internal
        self.purpose = purpose
        self.basis = basis
        if recipient is None:
            recipient = INTERNAL_RECIPIENT if internal else EXTERNAL_RECIPIENT
        self.recipient = recipient

    def get_metadata(self, collection: MetadataCollection) -> MetadataCollection:
        """Declare the e-mails sent to the recipient."""
        return collection.add_external_location_link(
            "mail",
            {"email": "Address the e-mail is sent to"},
            "E-mails sent for " + self.purpose,
            purpose=self.purpose,
            basis=self.basis,
            categories=["contact"],
            recipient=self.recipient,
            internal=self.internal,
        )

    def metadata(self) -> MetadataCollection:
        """What :meth:`get_metadata` declares, in a collection of its own."""
        return self.get_metadata(MetadataCollection(self.component))

    # It keeps no copy of what it sends: nothing to find, export or delete.
    def get_contexts_for_userid(self, user_id: str) -> ContextList:
        """No context: the mailer keeps nothing."""
        return ContextList(component=self.component)

    def export_user_data(self, approved: ApprovedContextList, writer: object) -> None:
        """Nothing to export."""
        return

    def delete_data_for_all_users_in_context(self, context: Context) -> None:
        """Nothing to delete."""
        return

    def delete_data_for_user(self, approved_contexts: ApprovedContextList) -> None:
        """Nothing to delete."""
        return
