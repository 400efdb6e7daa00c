"""The Art. 30 register of Job Access solutions' LMS (a Belgian B2B LMS), generated.

Nothing is declared here: the register comes from the policy module
:mod:`examples.policies.belgian_b2b_lms`, which implements the published policy
(``seeds/000_1c49f1355f48d45f.txt``) line by line: the controller, the Swiss hosting under
the adequacy decision, the purposes and bases of :func:`make_schedule`, the store's
records with their real fields, the other components (helpdesk, payment, marketing,
cookie banner), the B2B client's report and the technical providers as recipients.

The policy states no retention period (line 57: « la durée strictement nécessaire »), so
the register, built without the periods an operator would choose, lists every table
under "Gaps in the declarations": that is what the policy leaves to be decided. Run
``python -m examples.registers.job_access [DIR]`` to write it in Markdown, HTML, CSV and
JSON; ``job_access.md`` beside this file is that Markdown output, and a test checks it is
what the module generates today.
"""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

from examples.policies import belgian_b2b_lms
from learnprivacy.providers import Register

__all__ = ["AS_OF", "main", "register"]

#: The date the committed register is generated as of (keeps the output deterministic).
AS_OF = dt.date(2026, 6, 15)


def register() -> Register:
    """The register of Job Access solutions' LMS, generated from its policy module."""
    return belgian_b2b_lms.register(as_of=AS_OF)


def main(argv: list[str]) -> None:
    """Write the register in the four formats into the directory given (default: here)."""
    out = Path(argv[0]) if argv else Path(__file__).parent
    built = register()
    (out / "job_access.md").write_text(built.to_markdown(), encoding="utf-8")
    (out / "job_access.html").write_text(built.to_html(), encoding="utf-8")
    (out / "job_access.csv").write_text(built.to_csv(), encoding="utf-8", newline="")
    (out / "job_access.json").write_text(built.to_json(), encoding="utf-8")


if __name__ == "__main__":
    main(sys.argv[1:])
