"""What a ``LearnPrivacy`` binding costs the queries of models it does not own.

Run ``python benchmarks/bench_scope.py`` (``--quick`` for a short run). One process holds
an application whose models use no learnprivacy (``notes``, on SQLite in memory) and,
for the measured run, a live binding of another declarative base. The same ORM
``SELECT`` by key of a note runs ``QUERIES`` times in both runs, interleaved round after
round:

* ``floor``: no binding in the process;
* ``bound``: a binding of another base alive (the session-wide hooks see every query and
  hand none of these to the binding).

Row: bound against floor, CPU seconds of the whole run (target: at most 1.15x).
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from benchmarks._measure import bench_main, compare, ratio_row

QUERIES = 5_000
QUICK_QUERIES = 1_000


def run(quick: bool = False) -> list[dict[str, Any]]:
    """Measure an unrelated application's queries with and without a live binding."""
    from tests.inplace_models import accounts, new_base

    import learnprivacy.sqlalchemy as lps
    from learnprivacy.crypto import Keyring
    from learnprivacy.sqlalchemy._scope import attach, detach

    Other = new_base()

    class Note(Other):
        __tablename__ = "notes"
        id: Mapped[int] = mapped_column(primary_key=True)
        text: Mapped[str]

    # The other application's models: learners' accounts with a personal column.
    Base, _ = accounts()

    count = QUICK_QUERIES if quick else QUERIES
    engine = create_engine("sqlite://")
    Other.metadata.create_all(engine)
    with Session(engine) as s:
        s.add_all([Note(id=i, text=f"note {i}") for i in range(100)])
        s.commit()
    work = Path(tempfile.mkdtemp(prefix="lp-bench-scope-"))
    privacy = lps.LearnPrivacy(
        Base, keyring=Keyring.generate(), keys=f"sqlite:///{work / 'keys.db'}"
    )

    def queries() -> None:
        with Session(engine) as s:
            for i in range(count):
                s.scalars(select(Note).where(Note.id == i % 100)).one()

    def floor() -> None:
        detach(privacy)
        try:
            queries()
        finally:
            attach(privacy)

    try:
        samples = compare({"floor": floor, "bound": queries}, rounds=5 if quick else 7)
    finally:
        privacy.close()
        engine.dispose()
        shutil.rmtree(work, ignore_errors=True)
    return [
        ratio_row(
            f"ORM selects of unrelated models, a binding alive vs none ({count:,} queries)",
            samples["bound"],
            samples["floor"],
            target=1.15,
        )
    ]


def main(argv: list[str] | None = None) -> int:
    """Print the rows; exit 1 when a target is missed."""
    return bench_main(run, "bench_scope", argv)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    raise SystemExit(main())
