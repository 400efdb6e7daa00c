"""The GDPR Art. 30 register: built from metadata, rendered safely in four formats."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from pathlib import Path
from typing import Any

import attrs
import pytest
from examples.policies import belgian_b2b_lms
from examples.registers import job_access
from examples.toy_lms import ThemeProvider, ToyLMS, VideoConferenceProvider

from learnprivacy import Controller, Hosting, LawfulBasis, Safeguard, SubProcessor, Transfer
from learnprivacy.errors import ValidationError
from learnprivacy.providers import MetadataCollection, PrivacyManager, Register
from learnprivacy.records import fields_of
from learnprivacy.records._base import record_type
from tests import PageReader

GOLDEN = Path(job_access.__file__).with_name("job_access.md")

HOSTILE = '=HYPERLINK("http://evil.test")|<script>alert(1)</script>[x](javascript:y)\nnext'


def controller(**changes: object) -> Controller:
    """A minimal controller hosted in France."""
    fields: dict[str, object] = {
        "name": "Acme Formation",
        "address": "1 rue de la Paix, Paris",
        "contact": "dpo@acme.test",
        "hosting": Hosting(provider="OVH", country="FR"),
    }
    fields.update(changes)
    return Controller(**fields)  # type: ignore[arg-type]


#: The tables the tests declare, one per purpose: (field, its description), purpose,
#: basis, category and retention.
TABLES = {
    "accounts": (("email", "E-mail"), "accounts", "gdpr_art_6_1_b", "contact", "P18M"),
    "invoices": (
        ("billing_name", "Name on the invoice"),
        "billing",
        "gdpr_art_6_1_c",
        "billing",
        "P10Y",
    ),
    "logs": (("ip", "IP address"), "security", "gdpr_art_6_1_f", "technical_log", "P1Y"),
}


def declare(collection: MetadataCollection, *tables: str) -> MetadataCollection:
    """``collection`` with the :data:`TABLES` named ``tables`` added."""
    for name in tables:
        (field, described), purpose, basis, category, retention = TABLES[name]
        collection.add_database_table(
            name,
            {field: described},
            name.capitalize(),
            purpose=purpose,
            basis=basis,
            categories=[category],
            retention=retention,
        )
    return collection


def invoicing() -> MetadataCollection:
    """A component keeping invoices: billing, legal obligation, ten years."""
    return declare(MetadataCollection("mod_billing"), "invoices")


def sent_for_bookkeeping(collection: MetadataCollection, **recipient: Any) -> None:
    """``collection``'s invoices are also sent to a ``recipient=`` (``internal=`` or not)."""
    collection.add_external_location_link(
        "accounting",
        {"billing_name": "Name on the invoice"},
        "Invoices sent for bookkeeping",
        purpose="billing",
        basis="gdpr_art_6_1_c",
        categories=["billing"],
        **recipient,
    )


def hostile_metadata() -> list[MetadataCollection]:
    """One collection whose texts try CSV, Markdown and HTML injection."""
    collection = MetadataCollection("mod_evil")
    collection.add_database_table(
        "t",
        {"user_id": "User"},
        HOSTILE,
        purpose=HOSTILE,
        basis="gdpr_art_6_1_b",
        categories=["identity"],
        retention="P1Y",
    )
    for start in ("+1", "-1", "@SUM(A1)", "\tx", "\rx"):
        collection.add_database_table(
            start, {"f": "F"}, start, purpose="p", basis="gdpr_art_6_1_b", retention="P1Y"
        )
    return [collection]


def test_job_access_register_matches_the_golden_file() -> None:
    """The example reproduces the committed Markdown register exactly (deterministic)."""
    assert job_access.register().to_markdown() == GOLDEN.read_text(encoding="utf-8")


def test_job_access_register_states_the_policy() -> None:
    """Hosting, transfer ground, purposes and bases are those the policy lists; the
    policy states no period, so every table's retention is a gap, and the purposes with
    no recipient say so (instead of "internal only")."""
    register = job_access.register()
    text = register.to_markdown()
    assert "Infomaniak Network SA (CH)" in text
    assert "| Infomaniak Network SA | CH | adequacy decision (Art. 45) |" in text
    bases = {a.purpose: a.bases for a in register.activities}
    assert bases["b2b-training"] == (LawfulBasis.CONTRACT,)
    assert bases["b2b-reporting"] == (LawfulBasis.CONTRACT,)
    assert bases["billing"] == (LawfulBasis.LEGAL_OBLIGATION,)
    assert bases["security"] == (LawfulBasis.LEGITIMATE_INTERESTS,)
    assert bases["prospecting"] == (LawfulBasis.CONSENT, LawfulBasis.LEGITIMATE_INTERESTS)
    assert bases["analytics"] == (LawfulBasis.CONSENT,)
    reporting = next(a for a in register.activities if a.purpose == "b2b-reporting")
    assert reporting.recipients == ("b2b-client",)
    # Switzerland is covered by the adequacy decision: no transfer gap.
    assert register.gaps
    assert all("no retention period" in g or "no recipient declared" in g for g in register.gaps)
    assert "Recipients: internal only" not in text
    assert register.null_components == (
        ("theme_jobaccess", belgian_b2b_lms.NULL_COMPONENTS["theme_jobaccess"]),
    )


def test_job_access_register_is_generated_from_the_policy_module() -> None:
    """The example declares nothing of its own: its register is the Belgian policy
    module's, so the two cannot drift. The store's tables list the record classes' real
    fields (the hand-written one said ``ip_address`` for ``ip``), and once the operator
    sets its periods the register states them instead of listing gaps."""
    assert (
        job_access.register().to_dict()
        == belgian_b2b_lms.register(as_of=job_access.AS_OF).to_dict()
    )
    assert not [name for name in vars(job_access) if name in ("metadata", "CONTROLLER")]
    register = job_access.register()
    access = next(e for e in register.entries if e.item.name == "AccessEvent")
    assert "ip" in access.item.fields
    assert "ip_address" not in access.item.fields
    for entry in register.entries:
        if entry.component == "learnprivacy_store":
            names = {f.name for f in fields_of(record_type(entry.item.name))}
            assert set(entry.item.fields) <= names, entry.item.name
    schedule = belgian_b2b_lms.make_schedule(
        after_contract="P3M", invoices="P10Y", security_logs="P1Y", consent_proof="P5Y"
    )
    chosen = belgian_b2b_lms.register(schedule=schedule)
    # The policy names no funding files (line 17): the store's Funding type is not in
    # the register, and every type it keeps has its period.
    assert [g for g in chosen.gaps if g.startswith("learnprivacy_store/")] == []
    assert "Funding" not in {e.item.name for e in chosen.entries}
    logs = next(e for e in chosen.entries if e.item.name == "AccessEvent")
    assert logs.retention_text == "P1Y after created"


def test_job_access_register_writes_four_formats(tmp_path: Path) -> None:
    """The example's main writes Markdown, HTML, CSV and JSON files that read back."""
    job_access.main([str(tmp_path)])
    assert (tmp_path / "job_access.md").read_text(encoding="utf-8") == GOLDEN.read_text(
        encoding="utf-8"
    )
    data = json.loads((tmp_path / "job_access.json").read_text(encoding="utf-8"))
    assert data["controller"]["transfers"][0]["safeguard"] == "adequacy_decision"
    assert data["controller"]["transfers"][0]["article"] == "Art. 45"
    rows = list(csv.DictReader(io.StringIO((tmp_path / "job_access.csv").read_text("utf-8"))))
    assert len(rows) == len(job_access.register().entries)
    invoice = next(r for r in rows if r["name"] == "Invoice")
    assert invoice["moodle_code"] == "gdpr_art_6_1_c"
    assert "<table>" in (tmp_path / "job_access.html").read_text(encoding="utf-8")


def test_transfers_outside_the_eea_need_a_safeguard() -> None:
    """Data processed outside the EEA without a declared transfer is listed as a gap."""
    us = controller(sub_processors=[SubProcessor(name="Mailer", service="E-mail", country="us")])
    gaps = Register.build(us, []).gaps
    assert gaps == ("sub-processor Mailer: data processed in US without a declared transfer",)
    covered = controller(
        sub_processors=[SubProcessor(name="Mailer", service="E-mail", country="US")],
        transfers=[
            Transfer(
                recipient="Mailer", country="US", safeguard=Safeguard.STANDARD_CONTRACTUAL_CLAUSES
            )
        ],
    )
    assert Register.build(covered, []).gaps == ()
    bare = controller(transfers=[Transfer(recipient="X", country="IN", safeguard=Safeguard.NONE)])
    assert Register.build(bare, []).gaps == ("transfer to X (IN): no safeguard",)
    assert Safeguard.STANDARD_CONTRACTUAL_CLAUSES.article == "Art. 46(2)(c)"


def test_incomplete_declarations_are_gaps() -> None:
    """Items without purpose, basis, category or retention are listed, not hidden."""
    collection = MetadataCollection("mod_x").add_database_table("t", {"a": "A"}, "T")
    register = Register.build(controller(), [collection])
    assert register.gaps == (
        "mod_x/t: no purpose declared",
        "mod_x/t: no lawful basis declared",
        "mod_x/t: no retention period declared",
        "mod_x/t: no data category declared",
        "(purpose not declared): no recipient declared (declare the recipients, or that "
        "the data is shared internally only)",
    )
    assert register.activities[0].purpose == "(purpose not declared)"


def test_csv_is_formula_injection_safe() -> None:
    """Every cell a spreadsheet would evaluate starts with a quote; values survive otherwise."""
    text = Register.build(controller(), hostile_metadata()).to_csv()
    rows = list(csv.reader(io.StringIO(text, newline="")))
    cells = [cell for row in rows[1:] for cell in row]
    assert not [c for c in cells if c[:1] in ("=", "+", "-", "@", "\t", "\r")]
    names = [row[2] for row in rows[1:]]
    assert names == ["t", "'+1", "'-1", "'@SUM(A1)", "'\tx", "'\rx"]
    assert rows[1][3] == "'" + HOSTILE


def test_html_is_escaped_and_self_contained() -> None:
    """Declared text cannot inject markup, and the page loads nothing from outside."""
    page = Register.build(controller(name="<b>Acme</b>"), hostile_metadata()).to_html()
    assert "<script>" not in page
    assert "&lt;script&gt;" in page
    assert "<b>Acme</b>" not in page
    assert "<link" not in page
    assert "src=" not in page
    assert "<script" not in page

    assert PageReader(page).tags <= {
        "html",
        "head",
        "meta",
        "title",
        "style",
        "body",
        "h1",
        "h2",
        "h3",
        "p",
        "ul",
        "li",
        "table",
        "thead",
        "tbody",
        "tr",
        "th",
        "td",
    }


def test_markdown_cells_are_escaped() -> None:
    """Pipes, newlines and tags in declared text cannot break the Markdown tables."""
    text = Register.build(controller(), hostile_metadata()).to_markdown()
    row = next(
        line for line in text.splitlines() if line.startswith("| mod_evil | database table | t |")
    )
    assert "\\|&lt;script&gt;" in row
    assert "\\[x\\](javascript:y) next" in row
    assert row.count(" | ") == 5  # six columns, the hostile pipe is escaped


def test_json_is_complete_and_dated() -> None:
    """to_json holds the controller, activities, entries and the as-of date."""
    register = Register.build(
        controller(dpo="Jeanne Martin"), hostile_metadata(), as_of=dt.date(2026, 6, 15)
    )
    data = json.loads(register.to_json())
    assert data["as_of"] == "2026-06-15"
    assert data["controller"]["dpo"] == "Jeanne Martin"
    assert data["entries"][0]["component"] == "mod_evil"
    assert data["entries"][0]["retention"] == "P1Y"
    assert "As of 2026-06-15." in register.to_markdown()


def test_manager_builds_the_register_from_live_providers(tmp_path: Path) -> None:
    """manager.register(controller) lists every provider's items and the null providers."""
    lms = ToyLMS(tmp_path / "toy.sqlite")
    manager = PrivacyManager([VideoConferenceProvider(lms), ThemeProvider()], discover=False)
    register = manager.register(controller())
    assert [e.location for e in register.entries] == [
        "toy_videoconf/videoconf_attendance",
        "toy_videoconf/videoconf_service",
    ]
    assert register.activities[0].recipients == ("Infomaniak kMeet",)
    assert register.activities[0].retention == ("P18M after last_activity",)
    # The video service is in Switzerland and this controller declared no transfer.
    assert register.gaps == (
        "toy_videoconf/videoconf_service: data processed in CH without a declared transfer",
    )
    assert register.null_components[0][0] == "toy_theme"


def test_controller_values_are_checked() -> None:
    """Countries must be text; two-letter codes are upper-cased."""
    assert Hosting(provider="Infomaniak", country="ch").country == "CH"
    with pytest.raises(ValidationError):
        Hosting(provider="Infomaniak", country="")


def test_register_headings_in_french_values_as_declared() -> None:
    """language="fr": the template's headings come from the French catalogue; declared
    values are shown as written, still escaped."""
    register = Register.build(
        controller(name="<b>Acme</b>"), hostile_metadata(), as_of=dt.date(2026, 6, 15)
    )
    text = register.to_markdown(language="fr")
    assert text.startswith("# Registre des activités de traitement (RGPD art. 30)\n")
    assert "## Activités de traitement" in text
    assert "Au 2026-06-15." in text
    assert "&lt;b&gt;Acme&lt;/b&gt;" in text
    page = register.to_html(language="fr")
    assert '<html lang="fr">' in page
    assert "<h2>Mesures de sécurité</h2>" in page
    assert "<b>Acme</b>" not in page
    assert register.to_markdown() != text  # English by default


def test_each_activity_shows_its_own_people_and_sheet_dates() -> None:
    """The CNIL sheet fields per activity: the people of that purpose (not the same list
    everywhere) and the dates the sheet was created and updated, in Markdown and HTML."""
    collection = declare(MetadataCollection("lms"), "accounts", "invoices")
    register = Register.build(
        controller(data_subjects=("learners",)),
        [collection],
        subjects_by_purpose={"billing": ["paying customers"]},
        created_on=dt.date(2025, 1, 6),
        updated_on=dt.date(2026, 6, 15),
    )
    text = register.to_markdown()
    accounts, billing = text.split("### ")[1:3]
    assert "- Data subjects: learners\n" in accounts
    assert "- Data subjects: paying customers\n" in billing
    for section in (accounts, billing):
        assert "- Sheet created: 2025-01-06\n" in section
        assert "- Sheet updated: 2026-06-15\n" in section
    french = register.to_markdown(language="fr")
    assert "Fiche mise à jour le : 2026-06-15" in french
    page = register.to_html()
    assert "paying customers" in page
    assert "Sheet created: 2025-01-06" in page


def test_internal_only_is_stated_only_when_declared_and_checked() -> None:
    """ "Internal only" is a promise, not a default: a purpose declared so may have an
    internal recipient (no gap, shown as internal), never an external one (a gap); a
    purpose with no recipient and no such promise shows "not declared" and is a gap
    (the register used to print "internal only" for it and list no gap)."""

    def build(*, internal: bool, internal_only: tuple[str, ...]) -> Register:
        collection = invoicing()
        sent_for_bookkeeping(collection, recipient="Accounting", internal=internal)
        declare(collection, "logs")
        return Register.build(controller(), [collection], internal_only=internal_only)

    external = build(internal=False, internal_only=("billing", "security"))
    assert external.gaps == (
        "billing: promised to be shared internally only, but Accounting is an external recipient",
    )
    internal = build(internal=True, internal_only=("billing", "security"))
    assert internal.gaps == ()
    text = internal.to_markdown()
    assert "- Recipients: Accounting (internal)" in text
    assert "- Recipients: internal only" in text
    assert "Accounting (interne)" in internal.to_markdown(language="fr")
    billing = next(a for a in internal.activities if a.purpose == "billing")
    assert billing.internal_recipients == ("Accounting",)
    assert billing.external_recipients == ()
    assert billing.to_dict()["internal_only"] is True
    undeclared = build(internal=True, internal_only=())
    assert undeclared.gaps == (
        "security: no recipient declared (declare the recipients, or that the data is "
        "shared internally only)",
    )
    assert "- Recipients: not declared" in undeclared.to_markdown()
    assert "internal only" not in undeclared.to_markdown()
    assert build(internal=True, internal_only=("billing", "security", "hr")).gaps == (
        "hr: declared shared internally only, but no activity has that purpose",
    )
    with pytest.raises(ValidationError):
        Register.build(controller(), [], internal_only="billing")


def test_the_controller_declares_its_internal_purposes() -> None:
    """``Controller(internal_only=...)`` is the same promise, for integrations that build
    the register from the controller alone (Django, SQLAlchemy): declared there, the
    purpose shows internal only with no gap; an external recipient for it is a gap; a
    purpose no activity has is a gap; a blank name is refused."""
    collection = invoicing()
    plain = Register.build(controller(), [collection])
    assert [g.partition(":")[0] for g in plain.gaps] == ["billing"]
    inside = attrs.evolve(controller(), internal_only=("billing",))
    assert Register.build(inside, [collection]).gaps == ()
    assert Register.build(inside, [collection]).activities[0].internal_only
    sent_for_bookkeeping(collection, recipient="Accounting firm")
    assert Register.build(inside, [collection]).gaps == (
        "billing: promised to be shared internally only, but Accounting firm is an "
        "external recipient",
    )
    typo = attrs.evolve(controller(), internal_only=("biling",))
    assert "biling: declared shared internally only, but no activity has that purpose" in (
        Register.build(typo, [collection]).gaps
    )
    with pytest.raises(ValidationError):
        attrs.evolve(controller(), internal_only=("billing", " "))
