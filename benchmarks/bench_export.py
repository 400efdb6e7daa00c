"""Subject export: peak memory and time for one learner with 100,000 progress rows.

``export_subject`` writes a package (JSON, CSV, xAPI, HTML, manifest, zipped) for a
learner whose LMS holds 100,000 progress records (10,000 with ``--quick``), produced one
at a time by a privacy provider (as an LMS cursor would). Three figures:

- *peak memory growth* of the export, measured with ``tracemalloc`` (Python allocations),
  against the floor of simply holding the same records in a list, which is what any
  exporter that collects before writing needs at least. Target: under 50 MB, whatever
  the floor.
- *time* (CPU) against the floor of the same package written by hand: a loop that turns
  each record into its JSON row, CSV row and xAPI statement (``json``, ``csv``,
  ``uuid``), writes the data JSON, CSV and statements files through the package's own
  ``HashingFile`` (hashed with ``hashlib`` as written), then the manifest, and zips them
  (``zipfile``, deflate). The floor writes no index.html, which the library adds.
  Target: within 1.2x of the floor.
- *from a Store*: the same learner, account and progress rows stored (encrypted) in a
  real SQLite ``Store``, exported with ``export_subject(store, ...)`` to a zip: the store
  pages through the learner's rows (``Store.iter_records_of``), its provider hands each
  record type to the writer as a stream, and the writer sends each row to disk. Peak
  memory growth against the same floor as above; target: under 50 MB.
"""

from __future__ import annotations

import csv
import datetime as dt
import gc
import json
import shutil
import tempfile
import tracemalloc
import uuid
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from tests import sample

from benchmarks._measure import compare, cpu_seconds, ratio_row
from learnprivacy.export import export_subject
from learnprivacy.export._files import HashingFile
from learnprivacy.providers import (
    ApprovedContextList,
    ContentWriter,
    Context,
    ContextList,
    MetadataCollection,
    PrivacyManager,
)
from learnprivacy.records import Learner, Progress, ProgressStatus, Score

UTC = dt.UTC
NOW = dt.datetime(2026, 6, 15, 12, 0, tzinfo=UTC)
T0 = dt.datetime(2018, 1, 1, tzinfo=UTC)
LEARNER = "L-bench"
KEY = bytes(range(32))
MEMORY_TARGET_MB = 50.0
TIME_TARGET = 1.2
_STATUSES = list(ProgressStatus)


def _learner() -> Learner:
    return sample(Learner, id=LEARNER, created_at=T0)


def _progress(count: int) -> Iterator[Progress]:
    for i in range(count):
        yield Progress(
            id=f"P{i:07d}",
            learner_id=LEARNER,
            course_id=f"COURSE-{i % 40}",
            status=_STATUSES[i % len(_STATUSES)],
            recorded_at=T0 + dt.timedelta(minutes=i),
            score=Score(raw=i % 21, min=0, max=20),
            time_spent=dt.timedelta(seconds=60 + i % 3600),
            activity_id=f"A{i % 500}",
        )


class StreamingTracker:
    """A provider that produces the learner's progress one record at a time."""

    component = "bench_tracker"

    def __init__(self, count: int) -> None:
        self.count = count

    def get_metadata(self, collection: MetadataCollection) -> MetadataCollection:
        return collection.add_database_table(
            "Progress", {"learner_id": "The learner"}, "Progress", basis="gdpr_art_6_1_b"
        )

    def get_contexts_for_userid(self, user_id: str) -> ContextList:
        return ContextList([Context.user(user_id)], component=self.component)

    def export_user_data(self, approved: ApprovedContextList, writer: ContentWriter) -> None:
        writer.write_records(self.component, [_learner()])
        writer.write_records(self.component, _progress(self.count))

    def delete_data_for_user(self, approved: ApprovedContextList) -> None:
        return None

    def delete_data_for_all_users_in_context(self, context: Context) -> None:
        return None


def _measure(action: Callable[[], Any]) -> tuple[float, float]:
    """(peak Python memory growth in MB, seconds) of ``action``."""
    gc.collect()
    tracemalloc.start()
    tracemalloc.reset_peak()
    base, _ = tracemalloc.get_traced_memory()
    began = cpu_seconds()
    try:
        action()
    finally:
        seconds = cpu_seconds() - began
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return (peak - base) / 1e6, seconds


def run(quick: bool = False) -> list[dict[str, Any]]:
    """Measure the export and its floors; one row per figure."""
    count = 10_000 if quick else 100_000
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="lp-bench-export-") as tmp:
        root = Path(tmp)
        manager = PrivacyManager([StreamingTracker(count)], discover=False, timeout=None)
        counter = iter(range(1_000))

        def export() -> None:
            out = root / f"export-{next(counter)}.zip"
            export_subject(manager, LEARNER, out, now=NOW, pseudonym_key=KEY)

        held: list[Progress] = []
        list_mb, _ = _measure(lambda: held.extend(_progress(count)))
        held.clear()
        export_mb, _ = _measure(export)
        rows.append(
            {
                "name": f"export_subject peak memory, {count:,} progress rows",
                "value": export_mb,
                "floor": list_mb,
                "ratio": export_mb / list_mb,
                "target": f"< {MEMORY_TARGET_MB:g} MB",
                "ok": export_mb < MEMORY_TARGET_MB,
                "unit": "MB",
            }
        )

        floors = iter(range(1_000))

        def floor() -> None:
            stdlib_package(root / f"floor-{next(floors)}", count)

        samples = compare({"library": export, "floor": floor})
        rows.append(
            ratio_row(
                f"export_subject time (zip, 4 formats), {count:,} progress rows",
                samples["library"],
                samples["floor"],
                target=TIME_TARGET,
            )
        )
        rows.append(_from_store(root, count, list_mb))
    return rows


_VERBS = {
    "in_progress": "attempted",
    "completed": "completed",
    "passed": "passed",
    "failed": "failed",
}
_HOME = "https://lms.invalid"
_NS = uuid.UUID("6ba7b811-9dad-11d1-80b4-00c04fd430c8")


def _duration(delta: dt.timedelta) -> str:
    seconds = int(delta.total_seconds())
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    text = "PT" + (f"{hours}H" if hours else "") + (f"{minutes}M" if minutes else "")
    return text + (f"{seconds}S" if seconds or text == "PT" else "")


def stdlib_package(folder: Path, count: int) -> None:
    """The floor: the same package (data JSON, CSV, xAPI, manifest, zip), written by hand."""
    names = ("data/Progress.json", "csv/Progress.csv", "xapi/statements.json")
    data, table, statements = (HashingFile(folder, name) for name in names)
    columns = ["id", "learner_id", "course_id", "status", "recorded_at", "score.raw"]
    columns += ["score.min", "score.max", "score.scaled", "time_spent", "activity_id", "basis"]
    data.write('{"schema":"records/1","record_type":"Progress","records":[\n')
    statements.write("[\n")
    writer = csv.writer(table, lineterminator="\r\n")
    writer.writerow(columns)
    dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
    first_row = first_statement = True
    for record in _progress(count):
        score = record.score
        assert score is not None
        assert record.time_spent is not None
        scaled = round((score.raw - score.min) / (score.max - score.min), 6)
        duration = _duration(record.time_spent)
        stamp = record.recorded_at.isoformat()
        status = record.status.value
        row = {
            "id": record.id,
            "learner_id": record.learner_id,
            "course_id": record.course_id,
            "status": status,
            "recorded_at": stamp,
            "score": {"raw": score.raw, "min": score.min, "max": score.max, "scaled": scaled},
            "time_spent": duration,
            "activity_id": record.activity_id,
            "basis": "contract",
        }
        data.write(dumps(row) if first_row else ",\n" + dumps(row))
        first_row = False
        cells = [record.id, record.learner_id, record.course_id, status, stamp, score.raw]
        cells.extend((score.min, score.max, repr(scaled), duration, record.activity_id))
        cells.append("contract")
        writer.writerow(cells)
        verb = _VERBS.get(status)
        if verb is None:
            continue
        course = f"{_HOME}/xapi/activities/courses/{record.course_id}"
        statement = {
            "id": str(uuid.uuid5(_NS, f"{record.id}|{verb}")),
            "actor": {"objectType": "Agent", "account": {"homePage": _HOME, "name": "abc"}},
            "verb": {"id": f"http://adlnet.gov/expapi/verbs/{verb}", "display": {"en-US": verb}},
            "object": {
                "objectType": "Activity",
                "id": f"{course}/activities/{record.activity_id}",
                "definition": {"type": "http://adlnet.gov/expapi/activities/module"},
            },
            "result": {
                "completion": status != "in_progress",
                "score": row["score"],
                "duration": duration,
            },
            "context": {
                "contextActivities": {
                    "parent": [
                        {
                            "objectType": "Activity",
                            "id": course,
                            "definition": {"type": "http://adlnet.gov/expapi/activities/course"},
                        }
                    ]
                }
            },
            "timestamp": record.recorded_at.astimezone(UTC).isoformat(timespec="milliseconds")[:-6]
            + "Z",
        }
        statements.write(dumps(statement) if first_statement else ",\n" + dumps(statement))
        first_statement = False
    data.write("\n]}\n")
    statements.write("\n]\n")
    media = ("application/json", "text/csv", "application/json")
    files = [
        out.close(records=None, media_type=kind).to_dict()
        for out, kind in zip((data, table, statements), media, strict=True)
    ]
    manifest = {"schema_version": "1.0", "files": files}
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", "utf-8")
    with zipfile.ZipFile(folder.with_suffix(".zip"), "x", zipfile.ZIP_DEFLATED) as archive:
        for name in [*names, "manifest.json"]:
            with (folder / name).open("rb") as src, archive.open(name, "w") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
    shutil.rmtree(folder)


def _from_store(root: Path, count: int, list_mb: float) -> dict[str, Any]:
    from learnprivacy.crypto import Keyring
    from learnprivacy.store import Store

    with Store(
        f"sqlite:///{root / 'bench.db'}", keyring=Keyring.generate(), clock=lambda: NOW
    ) as store:
        store.add(_learner())
        store.add_all(_progress(count))
        store_mb, _ = _measure(
            lambda: export_subject(store, LEARNER, root / "store.zip", now=NOW, pseudonym_key=KEY)
        )
    return {
        "name": f"export_subject(Store) peak memory, {count:,} progress rows (SQLite, zip)",
        "value": store_mb,
        "floor": list_mb,
        "ratio": store_mb / list_mb,
        "target": f"< {MEMORY_TARGET_MB:g} MB",
        "ok": store_mb < MEMORY_TARGET_MB,
        "unit": "MB",
    }


if __name__ == "__main__":
    from benchmarks.__main__ import render

    print(render(run(quick=True)))
