"""The test suite."""

import datetime as dt
import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterable, Iterator
from decimal import Decimal
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, TypeVar

import pytest

from learnprivacy import records
from learnprivacy.providers import ApprovedContextList, Context, ContextList, MetadataCollection
from learnprivacy.requests import (
    Channel,
    RequestBook,
    Requester,
    RequestState,
    RequestType,
    SubjectRequest,
)
from learnprivacy.requests._outcomes import RecordOutcome, StepResult
from learnprivacy.retention import Action

#: The one "now" of the test suite: tests never read the clock (the ``now`` fixture of
#: tests/conftest.py returns it too).
NOW = dt.datetime(2026, 6, 15, 12, 0, tzinfo=dt.UTC)

#: The one 32-byte key of the test suite (a pseudonym key, a keyring's master key): tests
#: that need a key but not a particular one take this.
KEY = bytes(range(32))

S = TypeVar("S")
R = TypeVar("R")

#: Ana Silva (learner ``L1``) and one record of each kind of hers (course ``C1``): the
#: values a test does not care about. :func:`sample` builds them, with the values a test
#: does.
SAMPLES: dict[type, dict[str, Any]] = {
    records.Learner: {
        "id": "L1",
        "username": "ana",
        "email": "ana@example.org",
        "given_name": "Ana",
        "family_name": "Silva",
        "created_at": dt.datetime(2020, 1, 1, tzinfo=dt.UTC),
    },
    records.Invoice: {
        "id": "INV-1",
        "learner_id": "L1",
        "billing_name": "Ana Silva",
        "billing_address": "1 rue de la Paix",
        "amount": Decimal("390.00"),
        "issued_at": dt.datetime(2024, 1, 1, tzinfo=dt.UTC),
    },
    records.Progress: {
        "id": "P1",
        "learner_id": "L1",
        "course_id": "C1",
        "status": records.ProgressStatus.PASSED,
        "recorded_at": NOW,
    },
    records.Certificate: {
        "id": "CERT1",
        "learner_id": "L1",
        "course_id": "C1",
        "issued_at": NOW,
        "verification_code": "K7Q2M9XP",
    },
    records.Consent: {"id": "CONS1", "learner_id": "L1", "purpose": "newsletter", "given_at": NOW},
    records.AccessEvent: {
        "id": "E1",
        "learner_id": "L1",
        "kind": records.AccessKind.LOGIN,
        "at": NOW,
    },
    records.Funding: {
        "id": "F1",
        "learner_id": "L1",
        "funder": records.Funder.OPCO,
        "dossier_reference": "OPCO-2024-17",
        "opened_at": NOW,
    },
}


def at(*fields: int) -> dt.datetime:
    """The UTC instant of ``fields`` (year, month, day, then hour... as ``datetime`` takes
    them): ``at(2024, 1, 31, 10)``."""
    return dt.datetime(*fields, tzinfo=dt.UTC)  # type: ignore[misc]


def assert_says(text: str, *phrases: str) -> None:
    """Every one of ``phrases`` is in ``text``; a failure names each phrase missing."""
    missing = [phrase for phrase in phrases if phrase not in text]
    assert not missing, f"missing from the text: {missing}"


def sample(record_type: type[R], **values: Any) -> R:
    """A ``record_type`` record of :data:`SAMPLES` with ``values`` instead of its own
    (``sample(Learner, id="7")`` is Ana with another id)."""
    return record_type(**{**SAMPLES[record_type], **values})


def record_of(learner_id: str, record_type: type[R], suffix: str, **values: Any) -> R:
    """A :func:`sample` ``record_type`` record of learner ``learner_id``, its id
    ``{learner_id}-{suffix}`` (``record_of("L2", Progress, "P1")`` is ``L2-P1``)."""
    return sample(record_type, id=f"{learner_id}-{suffix}", learner_id=learner_id, **values)


def days(count: float) -> dt.timedelta:
    """``count`` days, for instants written relative to a test's ``now``: ``T - days(90)``."""
    return dt.timedelta(days=count)


def account(learner_id: str, **values: Any) -> records.Learner:
    """Ana's :func:`sample` account as learner ``learner_id``: username ``user-{id}`` and
    e-mail ``{id}@example.org`` (lower case), unless ``values`` give them."""
    default = {"username": f"user-{learner_id}", "email": f"{learner_id.lower()}@example.org"}
    return sample(records.Learner, **{"id": learner_id, **default, **values})


def paid_and_logged_in(learner_id: str, now: dt.datetime) -> list[Any]:
    """An invoice of ``learner_id`` issued 20 days before ``now`` (``I1``: 490.00 to 1 rue
    de la Paix, Paris) and a login the day before (``A1``, from 192.0.2.7)."""
    return [
        record_of(
            learner_id,
            records.Invoice,
            "I1",
            billing_address="1 rue de la Paix, Paris",
            amount=Decimal("490.00"),
            issued_at=now - dt.timedelta(days=20),
        ),
        record_of(
            learner_id, records.AccessEvent, "A1", at=now - dt.timedelta(days=1), ip="192.0.2.7"
        ),
    ]


def assert_stale_move_refused(
    book: RequestBook, stale: SubjectRequest, previous: Any, *, event: str, at: dt.datetime
) -> RequestState:
    """Moving ``stale`` (a version of the request someone else has already moved past) by
    ``event`` at ``at``, chained after the history entry ``previous`` as the book would
    chain it, is refused by ``book``'s backend and writes nothing: the history still
    verifies. The state ``book`` reads afterwards is returned."""
    from learnprivacy.errors import RequestStateError
    from learnprivacy.requests._book import next_version

    moved, entry = next_version(stale, previous, now=at, event=event)
    with pytest.raises(RequestStateError):
        book.backend.replace_request(moved, entry)
    assert book.verify(moved)
    return book.get(moved).state


#: Invoice ``I1`` kept under its legal minimum by an erasure, and restricted.
INVOICE_KEPT = RecordOutcome(
    record_type="Invoice", record_id="I1", action=Action.RESTRICT, article="GDPR Art. 17(3)(b)"
)


def erase_store_step(at: dt.datetime, *records: RecordOutcome, **parts: Any) -> StepResult:
    """The store's erasure step of a request, done at ``at`` with the outcomes
    ``records``; ``parts``: the step's other fields (``facts``, ``artifact``...)."""
    return StepResult(name="erase_store", completed_at=at, records=records, **parts)


class PageReader(HTMLParser):
    """What a test reads of a generated HTML page (a letter, an export's index, a
    register, the learner's page): its tags, attribute names, links and script tags; its
    visible text (no style, no title), white space folded; and whether its tags balance
    (the void elements :attr:`VOID` excepted)."""

    VOID = frozenset({"meta", "br"})
    HIDDEN = frozenset({"style", "title"})

    def __init__(self, page: str) -> None:
        super().__init__()
        self.tags: set[str] = set()
        self.attributes: set[str] = set()
        self.hrefs: list[str] = []
        self.scripts = 0
        #: Tags opened and not closed yet; closing tags that closed another one.
        self.open: list[str] = []
        self.mismatched: list[tuple[str, str | None]] = []
        self._parts: list[str] = []
        self._hidden = 0
        self.feed(page)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        """Note the tag, its attributes and links; open it unless it is void."""
        self.tags.add(tag)
        self.scripts += tag == "script"
        for name, value in attrs:
            self.attributes.add(name)
            if name == "href" and value is not None:
                self.hrefs.append(value)
        self._hidden += tag in self.HIDDEN
        if tag not in self.VOID:
            self.open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        """Close the last open tag, which must be ``tag``."""
        self._hidden -= tag in self.HIDDEN
        last = self.open.pop() if self.open else None
        if last != tag:
            self.mismatched.append((tag, last))

    def handle_data(self, data: str) -> None:
        """Keep visible text."""
        if not self._hidden:
            self._parts.append(data)

    @property
    def text(self) -> str:
        """The visible text, one space between pieces."""
        return " ".join(" ".join(self._parts).split())

    @property
    def balanced(self) -> bool:
        """Whether every tag opened was closed, in order."""
        return not self.open and not self.mismatched


def names(text: str, value: str) -> bool:
    """Whether ``text`` holds ``value`` as a whole token (a learner id, a name), not as
    letters that a random keyed reference or hash (base64url, hex) happens to contain:
    ``'L1'`` and ``L1-P1`` name learner L1, ``k1_s3L1Xl0`` does not."""
    return re.search(rf"(?<![A-Za-z0-9]){re.escape(value)}(?![A-Za-z0-9])", text) is not None


def sqlite_copy(source: Path, target: Path) -> str:
    """Copy the SQLite database file ``source`` to ``target`` (a backup put back); the
    copy's URL."""
    shutil.copyfile(source, target)
    return f"sqlite:///{target}"


def serve_or_skip(server: S, unavailable: type[Exception]) -> Iterator[S]:
    """For a fixture: start a throwaway ``server`` (``learnprivacy.testing``), yield it and
    stop it afterwards; skip with the reason when it is ``unavailable`` here."""
    started: Any = server
    try:
        started.start()
    except unavailable as exc:
        pytest.skip(f"{type(server).__name__} unavailable: {exc}")
    try:
        yield server
    finally:
        started.stop()


#: Appended to the code a fresh interpreter runs: the modules loaded so far, on stderr.
_LOADED = "import json, sys; print(json.dumps(sorted(sys.modules)), file=sys.stderr)"


def fresh_stderr(*steps: str) -> list[str]:
    """Run ``steps`` in order in one fresh interpreter, the modules loaded so far printed
    after each, as one JSON line on stderr; the lines it printed on stderr."""
    code = "".join(f"{step}\n{_LOADED}\n" for step in steps)
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    return done.stderr.strip().splitlines()


def modules_after(*steps: str) -> set[str]:
    """The modules a fresh interpreter has loaded after running ``steps`` (several steps:
    the modules of the last; :func:`loaded_after` gives each step's)."""
    return loaded_after(*steps)[-1]


def loaded_after(*steps: str) -> list[set[str]]:
    """The modules a fresh interpreter has loaded after each of ``steps``, run in order."""
    return [set(json.loads(line)) for line in fresh_stderr(*steps)[-len(steps) :]]


def packages_in(modules: Iterable[str], packages: Iterable[str]) -> set[str]:
    """The ``modules`` that belong to one of the top-level ``packages`` (what an import
    must not load: ``packages_in(modules_after("import x"), ("sqlalchemy",)) == set()``)."""
    tops = set(packages)
    return {m for m in modules if m.split(".")[0] in tops}


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` runs (Linux): a zombie left for a non-reaping init counts as
    dead, it runs no code."""
    try:
        status = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return status.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def receive_request(
    book: RequestBook, kind: RequestType = RequestType.ACCESS, **arguments: Any
) -> SubjectRequest:
    """A ``kind`` request received by ``book``: from Ana (learner ``L1``), by e-mail, at
    :data:`NOW`, unless ``arguments`` (those of ``RequestBook.receive``) say otherwise."""
    defaults = {
        "learner_id": "L1",
        "received_at": NOW,
        "channel": Channel.EMAIL,
        "requester": Requester.subject("Ana"),
    }
    return book.receive(kind, **{**defaults, **arguments})


class UserContextProvider:
    """What most test providers share: their data sits in the learner's own context, and
    deleting it has nothing to do (a subclass names its ``component``, declares its
    metadata and exports; it overrides what it does differently).

    ``table`` (name, fields described, summary) is declared as kept under the contract,
    unless the subclass declares its metadata itself."""

    component: str
    table: tuple[str, dict[str, str], str]

    def get_metadata(self, collection: MetadataCollection) -> MetadataCollection:
        """The provider's ``table``, kept under the contract."""
        name, fields, summary = self.table
        return collection.add_database_table(name, fields, summary, basis="gdpr_art_6_1_b")

    def get_contexts_for_userid(self, user_id: str) -> ContextList:
        """The learner's context, always."""
        return ContextList([Context.user(user_id)], component=self.component)

    def delete_data_for_user(self, approved: ApprovedContextList) -> None:
        """Nothing to delete."""

    def delete_data_for_all_users_in_context(self, context: Context) -> None:
        """Nothing to delete."""


def count_calls(monkeypatch: Any, owner: Any, name: str) -> list[tuple[Any, ...]]:
    """Wrap ``owner.name`` for the test so that each call's arguments are appended to the
    list returned, the call itself still made."""
    original = getattr(owner, name)
    calls: list[tuple[Any, ...]] = []

    def counted(*args: Any) -> Any:
        calls.append(args)
        return original(*args)

    monkeypatch.setattr(owner, name, counted)
    return calls
