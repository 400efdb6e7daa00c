"""A mailer component, for tests of the register's internal-only promises.

An application promises that a purpose's data stays inside (``internal_only=``); a second
component of the application that sends e-mail for that purpose to a recipient breaks
the promise when the recipient is outside. :class:`Mailer` is that component: a provider
declaring one external location (invoice e-mails, purpose ``billing``), its recipient
internal or not as asked, and keeping no copy of what it sends.
"""

from __future__ import annotations

from learnprivacy.providers import (
    ApprovedContextList,
    Context,
    ContextList,
    MetadataCollection,
)

__all__ = ["Mailer"]

#: The recipient :class:`Mailer` declares when ``internal=True``, and when not.
INTERNAL_RECIPIENT = "Accounts team"
EXTERNAL_RECIPIENT = "Mailjet SAS"


class Mailer:
    """A component sending billing e-mails to an internal or an external recipient.

    ``Mailer(internal=False)`` passed in ``providers=`` to a register whose ``billing``
    purpose is internal only must show a gap naming :data:`EXTERNAL_RECIPIENT`;
    ``Mailer(internal=True)`` must not.
    """

    component = "mailer"

    def __init__(self, *, internal: bool) -> None:
        self.internal = internal

    def get_metadata(self, collection: MetadataCollection) -> MetadataCollection:
        """Declare the invoice e-mails sent to the recipient."""
        return collection.add_external_location_link(
            "invoice_mail",
            {"email": "Address the invoice is sent to"},
            "Invoices sent by e-mail",
            purpose="billing",
            basis="gdpr_art_6_1_c",
            categories=["contact"],
            recipient=INTERNAL_RECIPIENT if self.internal else EXTERNAL_RECIPIENT,
            internal=self.internal,
        )

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
