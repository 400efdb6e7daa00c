"""Stateful property test: random sequences of request operations, with failing providers.

Checked after every step: no transition outside the state machine is ever stored, closed
requests never change, deadlines never shrink, a request whose provider or recipient
failed during execution is never COMPLETED, every history chain verifies, and
``overdue(now)`` lists exactly the open late requests.
"""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
)

from learnprivacy.errors import (
    ConfigurationError,
    PolicyError,
    RequestStateError,
    ValidationError,
)
from learnprivacy.providers import (
    ApprovedContextList,
    Context,
    ContextList,
    MetadataCollection,
    PrivacyManager,
)
from learnprivacy.providers.writer import ContentWriter
from learnprivacy.requests import (
    DeathAction,
    Notification,
    ObjectionParams,
    PostMortemDirective,
    ProofMethod,
    Recipients,
    RefusalGrounds,
    RequestBook,
    RequestExecutor,
    RequestState,
    RequestType,
    SubjectRequest,
)
from learnprivacy.requests._machine import is_allowed
from tests import receive_request

UTC = dt.UTC
T0 = dt.datetime(2025, 12, 31, 9, 0, tzinfo=UTC)


class Switch:
    """A flag the machine flips to make a component fail."""

    def __init__(self) -> None:
        self.broken = False
        self.tripped = 0

    def check(self, error: type[Exception]) -> None:
        """Raise ``error`` (and count it) while broken."""
        if self.broken:
            self.tripped += 1
            raise error("component unreachable")


class FlakyForum:
    """A real request provider over a dict; raises on deletion while its switch is on."""

    component = "flaky_forum"

    def __init__(self, switch: Switch) -> None:
        self.switch = switch
        self.posts: dict[str, list[str]] = {}

    def get_metadata(self, collection: MetadataCollection) -> MetadataCollection:
        """A table and an external location (an employer receiving reports)."""
        collection.add_database_table("forum_posts", {"message": "The post"}, "Posts")
        return collection.add_external_location_link(
            "employer", {"progress": "Progress shared with the employer"}, "Employer reports"
        )

    def get_contexts_for_userid(self, user_id: str) -> ContextList:
        """The user's context while they have posts."""
        contexts = ContextList(component=self.component)
        if self.posts.get(user_id):
            contexts.add_user_context(user_id)
        return contexts

    def export_user_data(self, approved: ApprovedContextList, writer: ContentWriter) -> None:
        """Write the posts."""
        writer.write_rows(
            self.component, "posts", [{"message": m} for m in self.posts[approved.user_id]]
        )

    def delete_data_for_all_users_in_context(self, context: Context) -> None:
        """Delete the posts of a user context."""
        self.posts.pop(context.instance_id, None)

    def delete_data_for_user(self, approved: ApprovedContextList) -> None:
        """Delete the user's posts, unless broken."""
        self.switch.check(ConnectionError)
        self.posts.pop(approved.user_id, None)


KINDS = st.sampled_from(
    [
        RequestType.ERASURE,
        RequestType.OBJECTION,
        RequestType.POST_MORTEM_DIRECTIVE,
        RequestType.ACCESS,
        RequestType.WITHDRAW_CONSENT,
    ]
)


def params_for(kind: RequestType) -> Any:
    """Valid parameters of each request type."""
    if kind is RequestType.OBJECTION:
        return ObjectionParams(purpose="security-logging")
    if kind is RequestType.POST_MORTEM_DIRECTIVE:
        return PostMortemDirective(on_death=DeathAction.ERASE)
    if kind is RequestType.WITHDRAW_CONSENT:
        from learnprivacy.requests import WithdrawConsentParams

        return WithdrawConsentParams(purpose="newsletter")
    return None


class RequestMachine(RuleBasedStateMachine):
    """Drives a book and an executor (no store: providers only) through random steps."""

    requests = Bundle("requests")

    def __init__(self) -> None:
        super().__init__()
        self.now = T0
        self.book = RequestBook()
        self.provider_switch = Switch()
        self.notifier_switch = Switch()
        self.forum = FlakyForum(self.provider_switch)
        manager = PrivacyManager([self.forum], discover=False, timeout=None)

        def notify(_notification: Notification) -> None:
            self.notifier_switch.check(TimeoutError)

        self.executor = RequestExecutor(
            self.book,
            manager=manager,
            recipients=Recipients(pseudonym_key=bytes(32), notifiers={"employer": notify}),
        )
        self.seen: dict[str, SubjectRequest] = {}
        self.longest_due: dict[str, dt.datetime] = {}
        self.poisoned: set[str] = set()
        self.counter = 0

    # -- helpers ---------------------------------------------------------------------

    def attempt(self, request_id: str, operation: Any) -> None:
        """Run a book operation; a refused one must leave the request unchanged."""
        before = self.book.get(request_id)
        try:
            operation()
        except (RequestStateError, PolicyError, ValidationError, ConfigurationError):
            assert self.book.get(request_id) == before
            return
        after = self.book.get(request_id)
        if after.state is not before.state:
            assert is_allowed(before.state, after.state), (before.state, after.state)
            assert not before.state.terminal

    # -- rules -----------------------------------------------------------------------

    @rule(target=requests, kind=KINDS, learner=st.sampled_from(["L1", "L2"]))
    def receive(self, kind: RequestType, learner: str) -> str:
        """A new request arrives now; the learner has forum posts."""
        self.counter += 1
        self.forum.posts[learner] = ["hello"]
        request = receive_request(
            self.book,
            kind,
            learner_id=learner,
            received_at=self.now,
            params=params_for(kind),
            request_id=f"R{self.counter}",
        )
        assert request.state is RequestState.RECEIVED
        return request.id

    @initialize(target=requests, broken=st.booleans())
    def erasure_under_way(self, broken: bool) -> str:
        """Start with an erasure in progress, its provider failing or not."""
        self.provider_switch.broken = broken
        return self.receive_from_logged_in_learner(RequestType.ERASURE)

    @rule(target=requests, kind=KINDS)
    def receive_from_logged_in_learner(self, kind: RequestType) -> str:
        """A request from a logged-in learner: identity established at once."""
        request_id = self.receive(kind, "L1")
        self.book.verify_identity(
            request_id, method=ProofMethod.AUTHENTICATED_SESSION, now=self.now
        )
        return request_id

    @rule(request_id=requests)
    def request_identity(self, request_id: str) -> None:
        """Ask for proof of identity."""
        self.attempt(request_id, lambda: self.book.request_identity(request_id, now=self.now))

    @rule(request_id=requests, method=st.sampled_from(list(ProofMethod)))
    def verify_identity(self, request_id: str, method: ProofMethod) -> None:
        """Identity established."""
        self.attempt(
            request_id, lambda: self.book.verify_identity(request_id, method=method, now=self.now)
        )

    @rule(request_id=requests, grounds=st.sampled_from(list(RefusalGrounds)))
    def refuse(self, request_id: str, grounds: RefusalGrounds) -> None:
        """Refuse, with a reason."""
        self.attempt(
            request_id,
            lambda: self.book.refuse(
                request_id, grounds=grounds, reason="Repeated request.", now=self.now
            ),
        )

    @rule(request_id=requests)
    def cancel(self, request_id: str) -> None:
        """The requester withdraws the request."""
        self.attempt(request_id, lambda: self.book.cancel(request_id, now=self.now))

    @rule(request_id=requests)
    def complete_by_hand(self, request_id: str) -> None:
        """Someone closes the request directly, bypassing the executor."""
        self.attempt(request_id, lambda: self.book.complete(request_id, now=self.now))

    @rule(request_id=requests, months=st.integers(0, 3), informed_days=st.integers(-1, 3))
    def extend(self, request_id: str, months: int, informed_days: int) -> None:
        """Try an extension (some invalid: zero or three months, told before receipt)."""
        informed = self.now - dt.timedelta(days=informed_days)
        self.attempt(
            request_id,
            lambda: self.book.extend(
                request_id,
                months=months,
                reasons="Several systems to search.",
                subject_informed_at=informed,
                now=self.now,
            ),
        )

    @rule(request_id=requests)
    def execute(self, request_id: str) -> None:
        """Execute; a provider or recipient failure during it must leave it FAILED."""
        tripped = self.provider_switch.tripped + self.notifier_switch.tripped
        before = self.book.get(request_id)
        try:
            after = self.executor.execute(request_id, now=self.now)
        except (RequestStateError, ConfigurationError):
            assert self.book.get(request_id) == before
            return
        event(f"execute {before.type.value}: {before.state.value} -> {after.state.value}")
        if self.provider_switch.tripped + self.notifier_switch.tripped > tripped:
            self.poisoned.add(request_id)
            assert after.state is RequestState.FAILED
            assert after.failure is not None
            assert after.failure.component in ("flaky_forum", "employer")

    @rule(request_id=requests)
    def retry(self, request_id: str) -> None:
        """Retry a failed request (the retry joins the pool of requests)."""
        try:
            retry = self.book.retry(request_id, now=self.now)
        except RequestStateError:
            assert self.book.get(request_id).state is not RequestState.FAILED
            return
        assert retry.due_at == self.book.get(request_id).due_at

    @rule(days=st.integers(0, 40))
    def advance(self, days: int) -> None:
        """Time passes."""
        self.now += dt.timedelta(days=days)

    @rule(broken=st.booleans())
    def flip_provider(self, broken: bool) -> None:
        """The forum provider starts or stops failing."""
        self.provider_switch.broken = broken

    @rule(broken=st.booleans())
    def flip_notifier(self, broken: bool) -> None:
        """The employer's notification endpoint starts or stops failing."""
        self.notifier_switch.broken = broken

    # -- invariants ------------------------------------------------------------------

    @invariant()
    def every_request_is_consistent(self) -> None:
        """Histories verify, only allowed transitions, closed stays closed, no shrinking."""
        for request in self.book.requests():
            assert self.book.verify(request)
            states = [e.state_after for e in self.book.history(request)]
            for before, after in itertools.pairwise(states):
                assert before is after or is_allowed(before, after)
            previous = self.seen.get(request.id)
            if previous is not None and previous.state.terminal:
                assert request == previous
            due = request.due_at
            assert due >= self.longest_due.get(request.id, due)
            self.longest_due[request.id] = due
            assert due >= request.received_at + dt.timedelta(days=28)
            self.seen[request.id] = request
            if request.id in self.poisoned:
                assert request.state is not RequestState.COMPLETED

    @invariant()
    def overdue_is_exactly_the_late_unanswered(self) -> None:
        """overdue(now) = open (or failed, not retried) requests past their deadline."""
        everything = self.book.requests()
        retried = {r.retry_of for r in everything if r.retry_of}
        expected = {
            r.id
            for r in everything
            if self.now > r.due_at
            and (r.is_open or (r.state is RequestState.FAILED and r.id not in retried))
        }
        assert {r.id for r in self.book.overdue(self.now)} == expected


RequestMachine.TestCase.settings = settings(
    max_examples=60,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestRequestMachine = RequestMachine.TestCase
