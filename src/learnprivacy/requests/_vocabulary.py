"""The closed vocabularies of data-subject requests: types, states, channels, proofs."""

from __future__ import annotations

import enum

from learnprivacy._vocabulary import Article

__all__ = [
    "IDENTITY_PROOFS",
    "REQUIRED_PROOFS",
    "Channel",
    "IdentityStatus",
    "ProofMethod",
    "RefusalGrounds",
    "RequestState",
    "RequestType",
    "RequesterRole",
    "RestrictionGrounds",
]


class RequestType(enum.Enum):
    """The right a request exercises; ``article`` is where the law grants it."""

    ACCESS = "access"
    PORTABILITY = "portability"
    RECTIFICATION = "rectification"
    ERASURE = "erasure"
    RESTRICTION = "restriction"
    OBJECTION = "objection"
    WITHDRAW_CONSENT = "withdraw_consent"
    POST_MORTEM_DIRECTIVE = "post_mortem_directive"

    @property
    def article(self) -> str:
        """The legal reference of the right (``"GDPR Art. 17"``)."""
        return _ARTICLES[self]


_ARTICLES = {
    RequestType.ACCESS: Article.ART_15,
    RequestType.PORTABILITY: Article.ART_20,
    RequestType.RECTIFICATION: Article.ART_16,
    RequestType.ERASURE: Article.ART_17,
    RequestType.RESTRICTION: Article.ART_18,
    RequestType.OBJECTION: Article.ART_21,
    RequestType.WITHDRAW_CONSENT: Article.ART_7_3,
    RequestType.POST_MORTEM_DIRECTIVE: "Loi Informatique et Libertés art. 85",
}


class RequestState(enum.Enum):
    """Where a request stands. The machine only moves forward (see ``TRANSITIONS``)."""

    RECEIVED = "received"
    AWAITING_IDENTITY = "awaiting_identity"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    REFUSED = "refused"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        """Whether the request is closed for good (no transition leaves this state)."""
        return self in _TERMINAL

    @property
    def early(self) -> bool:
        """Whether nothing has been done on the subject's data yet (cancellable)."""
        return self in (RequestState.RECEIVED, RequestState.AWAITING_IDENTITY)


_TERMINAL = frozenset(
    {
        RequestState.COMPLETED,
        RequestState.REFUSED,
        RequestState.FAILED,
        RequestState.CANCELLED,
    }
)


class Channel(enum.Enum):
    """How the request reached the controller."""

    EMAIL = "email"
    WEB_FORM = "web_form"
    POST = "post"
    IN_PERSON = "in_person"


class RequesterRole(enum.Enum):
    """Who asks: the subject, someone acting for them, or after their death."""

    SUBJECT = "subject"
    #: A legal representative or a person holding the subject's mandate.
    REPRESENTATIVE = "representative"
    #: An heir (Loi Informatique et Libertés art. 85 II).
    HEIR = "heir"
    #: The person the subject's post-mortem directives designate.
    EXECUTOR = "executor"


class IdentityStatus(enum.Enum):
    """Where the identity check stands. Only the method is kept, never the proof itself."""

    UNVERIFIED = "unverified"
    REQUESTED = "requested"
    VERIFIED = "verified"
    FAILED = "failed"


class ProofMethod(enum.Enum):
    """How identity (or the requester's authority) was established.

    A document shown as proof is checked and *not* copied: only the method is recorded,
    as the CNIL recommends.
    """

    AUTHENTICATED_SESSION = "authenticated_session"
    EMAIL_CONFIRMATION = "email_confirmation"
    ID_DOCUMENT_SIGHTED = "id_document_sighted"
    SIGNED_LETTER = "signed_letter"
    IN_PERSON = "in_person"
    KNOWLEDGE_CHECK = "knowledge_check"
    MANDATE_SIGHTED = "mandate_sighted"
    DEATH_CERTIFICATE_SIGHTED = "death_certificate_sighted"
    #: A notarial deed or certificate of inheritance (acte de notoriété, certificat
    #: d'hérédité) showing the requester is an heir.
    HEIRSHIP_PROOF_SIGHTED = "heirship_proof_sighted"


#: The proofs of a person's own identity (the subject asking for themselves).
IDENTITY_PROOFS = frozenset(
    {
        ProofMethod.AUTHENTICATED_SESSION,
        ProofMethod.EMAIL_CONFIRMATION,
        ProofMethod.ID_DOCUMENT_SIGHTED,
        ProofMethod.SIGNED_LETTER,
        ProofMethod.IN_PERSON,
        ProofMethod.KNOWLEDGE_CHECK,
    }
)

#: What each requester must show: every set in the list is required, one method of each.
#: The subject proves their identity; a representative shows the mandate; an heir the
#: death certificate and the proof of heirship (Loi Informatique et Libertés art. 85 II);
#: the person a post-mortem directive designates, the death certificate.
REQUIRED_PROOFS: dict[RequesterRole, tuple[frozenset[ProofMethod], ...]] = {
    RequesterRole.SUBJECT: (IDENTITY_PROOFS,),
    RequesterRole.REPRESENTATIVE: (frozenset({ProofMethod.MANDATE_SIGHTED}),),
    RequesterRole.HEIR: (
        frozenset({ProofMethod.DEATH_CERTIFICATE_SIGHTED}),
        frozenset({ProofMethod.HEIRSHIP_PROOF_SIGHTED}),
    ),
    RequesterRole.EXECUTOR: (frozenset({ProofMethod.DEATH_CERTIFICATE_SIGHTED}),),
}


class RefusalGrounds(enum.Enum):
    """Why a request is not acted on; ``article`` is the provision relied on."""

    MANIFESTLY_UNFOUNDED = "manifestly_unfounded"
    EXCESSIVE = "excessive"
    IDENTITY_NOT_ESTABLISHED = "identity_not_established"
    #: A copy would disclose another person's data against their will (access and
    #: portability only).
    RIGHTS_OF_OTHERS = "rights_of_others"
    #: A restriction by law applies (Union or Member State law under Art. 23).
    LEGAL_RESTRICTION = "legal_restriction"

    @property
    def article(self) -> str:
        """The legal reference (``"GDPR Art. 12(5)"``)."""
        if self is RefusalGrounds.IDENTITY_NOT_ESTABLISHED:
            return Article.ART_11_2_12_2
        if self is RefusalGrounds.RIGHTS_OF_OTHERS:
            return Article.ART_15_4
        if self is RefusalGrounds.LEGAL_RESTRICTION:
            return Article.ART_23_1
        return Article.ART_12_5


class RestrictionGrounds(enum.Enum):
    """The Art. 18(1) case a restriction is asked under."""

    ACCURACY_CONTESTED = "accuracy_contested"
    UNLAWFUL_PROCESSING = "unlawful_processing"
    LEGAL_CLAIMS = "legal_claims"
    OBJECTION_PENDING = "objection_pending"

    @property
    def article(self) -> str:
        """The legal reference (``"GDPR Art. 18(1)(a)"``)."""
        letter = "abcd"[list(RestrictionGrounds).index(self)]
        return f"{Article.ART_18_1}({letter})"
