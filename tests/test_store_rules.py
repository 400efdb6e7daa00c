"""The store's consistency rules: restricted reads, one clock, one batch size, typed records."""

from __future__ import annotations

import datetime as dt
import inspect
import json
import typing
import zipfile
from pathlib import Path

import pytest

from learnprivacy.crypto import Keyring
from learnprivacy.errors import NotFoundError, RestrictedRecordError
from learnprivacy.export import export_subject
from learnprivacy.records import Learner, Progress, Record
from learnprivacy.requests import RequestBook, RequestType
from learnprivacy.retention import Period, RetentionRule, Schedule, Trigger
from learnprivacy.store import Store
from tests import receive_request
from tests.store_fixtures import NOW, learner, records_for

#: A clock far from NOW and from the system clock, so whichever was read shows.
PINNED = dt.datetime(2020, 3, 4, 5, 6, tzinfo=dt.UTC)


def test_get_is_none_only_when_absent(store: Store) -> None:
    """get: None for an absent record, RestrictedRecordError for a restricted one."""
    store.add_all([learner("L1"), *records_for("L1")])
    assert store.get(Progress, "nobody") is None
    store.restrict(Progress, "L1-P1", reason="accuracy contested")
    with pytest.raises(RestrictedRecordError) as info:
        store.get(Progress, "L1-P1")
    assert "L1" not in str(info.value)
    assert store.get(Progress, "L1-P1", include_restricted=True) is not None
    # Reads of many records leave it out unless asked, with the same flag.
    assert "L1-P1" not in {r.id for r in store.records_of("L1")}
    assert "L1-P1" in {r.id for r in store.records_of("L1", include_restricted=True)}
    assert store.query(Progress, id="L1-P1") == []
    store.lift_restriction(Progress, "L1-P1")
    assert store.get(Progress, "L1-P1") is not None


def test_request_book_get_follows_the_same_rule() -> None:
    """RequestBook.get is None when absent, as Store.get; acting on an unknown id raises."""
    book = RequestBook()
    assert book.get("unknown") is None
    request = receive_request(book, RequestType.ACCESS, received_at=NOW)
    assert book.get(request.id) == request
    with pytest.raises(NotFoundError):
        book.current("unknown")


def test_one_batch_size_default(tmp_path: Path) -> None:
    """The store's batch size is the one default of sweeps and copies."""
    from learnprivacy.store import copy_store

    with Store(f"sqlite:///{tmp_path / 'a.db'}", keyring=Keyring.generate()) as store:
        default = store.batch_size
    for function in (Store.sweep, copy_store):
        assert inspect.signature(function).parameters["batch_size"].default is None
    assert inspect.signature(Store).parameters["batch_size"].default == default


def test_everything_time_based_reads_the_store_clock(tmp_path: Path) -> None:
    """Without now=, adding, sweeping, erasing and exporting all read Store(clock=...)."""
    keyring = Keyring.generate()
    with Store(
        f"sqlite:///{tmp_path / 'clock.db'}", keyring=keyring, clock=lambda: PINNED
    ) as store:
        long_ago = dt.datetime(2010, 1, 1, tzinfo=dt.UTC)
        # L2 was last active in 2024: due in 2025 by the system clock, not by the store's.
        store.add_all(
            [learner("L1", created_at=long_ago, last_activity_at=long_ago), learner("L2")]
        )
        out = tmp_path / "l2.zip"
        export_subject(store, "L2", str(out))
        with zipfile.ZipFile(out) as package:
            manifest = json.loads(package.read("manifest.json"))
        assert manifest["generated_at"].startswith("2020-03-04")
        schedule = Schedule({Learner: RetentionRule(Period.parse("P18M"), Trigger.LAST_ACTIVITY)})
        report = store.sweep(schedule, dry_run=True)
        assert report.now == PINNED
        assert report.erased == 1  # L1 only: the store's clock says 2020
        erasure = store.erase_subject("L2")
        assert erasure.erased == 1
        stamps = {entry.at for entry in store.audit.entries()}
        assert stamps == {PINNED}


def test_record_api_is_typed_with_the_record_protocol() -> None:
    """add/add_all/update/erase_records take Records; get/query/find return the type asked."""
    hints = typing.get_type_hints(Store.add)
    assert hints["record"] is Record
    assert typing.get_type_hints(Store.update)["record"] is Record
    assert "Record" in str(typing.get_type_hints(Store.add_all)["records"])
    assert "Record" in str(typing.get_type_hints(Store.records_of)["return"])


def test_store_package_has_no_import_cycle() -> None:
    """store/ imports form no cycle, type-checking imports included: the operations are
    written against the private core protocol, not the facade that calls them."""
    import ast

    import learnprivacy.store as package

    root = Path(package.__file__).parent
    graph: dict[str, set[str]] = {}
    for path in root.glob("*.py"):
        name = f"learnprivacy.store.{path.stem}" if path.stem != "__init__" else package.__name__
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                if node.module == package.__name__:
                    targets.update(f"{node.module}.{a.name}" for a in node.names)
                elif node.module.startswith(package.__name__ + "."):
                    targets.add(node.module)
        graph[name] = {t for t in targets if t != name}
    graph.pop(package.__name__)  # the package re-exports; it is not imported back

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        for nxt in graph.get(start, ()):
            if nxt == goal or (nxt not in seen and reaches(nxt, goal, seen | {nxt})):
                return True
        return False

    cyclic = sorted(name for name in graph if reaches(name, name, set()))
    assert cyclic == []
