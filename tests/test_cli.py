"""The `learnprivacy` command, run for real on files in a temporary folder."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import zipfile
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from learnprivacy.cli import main
from learnprivacy.cli._config import write_key_file

CONFIG = """
[controller]
name = "Formation Exemple SAS"
address = "12 rue de la République, 69002 Lyon, France"
contact = "privacy@formation-exemple.fr"
country = "FR"

[dpo]
name = "Claire Martin"
email = "dpo@formation-exemple.fr"

[policy]
languages = ["fr", "en"]
timezone = "Europe/Paris"
"""


class Cli:
    """Runs the command with --config/--db/--key-file pointing into one folder."""

    def __init__(self, folder: Path, config: str = CONFIG) -> None:
        self.folder = folder
        self.db = folder / "lms.db"
        self.key = folder / "master.key"
        self.config = folder / "learnprivacy.toml"
        if not self.config.exists():
            self.config.write_text(config, encoding="utf-8")
        self.runner = CliRunner()

    def __call__(self, *args: str, code: int = 0) -> Result:
        env = {"LEARNPRIVACY_MASTER_KEY": "", "LEARNPRIVACY_CONFIG": "", "LEARNPRIVACY_DB": ""}
        result = self.runner.invoke(
            main,
            [
                "--config",
                str(self.config),
                "--db",
                f"sqlite:///{self.db}",
                "--key-file",
                str(self.key),
                *args,
            ],
            env=env,
            catch_exceptions=False,
        )
        assert result.exit_code == code, result.output
        return result

    def json(self, *args: str, code: int = 0) -> Any:
        return json.loads(self("--json", *args, code=code).stdout)


LEARNERS = {
    "Learner": [
        {
            "id": "L1",
            "username": "ana",
            "email": "ana@example.org",
            "given_name": "Ana",
            "family_name": "Silva",
            "created_at": "2020-01-06T09:00:00+00:00",
            "last_activity_at": "2021-02-01T09:00:00+00:00",
        },
        {
            "id": "L2",
            "username": "bob",
            "email": "bob@example.org",
            "given_name": "Bob",
            "family_name": "Martin",
            "created_at": "2025-01-06T09:00:00+01:00",
            "last_activity_at": "2026-05-01T09:00:00+02:00",
        },
    ],
    "Invoice": [
        {
            "id": "INV-1",
            "learner_id": "L1",
            "billing_name": "Ana Silva",
            "billing_address": "1 rue de la Paix, Paris",
            "amount": "450.00",
            "issued_at": "2020-02-01T09:00:00+00:00",
        }
    ],
}


def initialised(folder: Path, config: str = CONFIG) -> Cli:
    """The command on a store in ``folder`` that ``init`` created and ``import`` filled
    with :data:`LEARNERS`."""
    tool = Cli(folder, config=config)
    tool("init")
    data = folder / "records.json"
    data.write_text(json.dumps(LEARNERS), encoding="utf-8")
    tool("import", str(data))
    return tool


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return initialised(tmp_path)


def test_init_writes_a_private_key_and_refuses_to_overwrite_it(tmp_path: Path) -> None:
    """init creates the store and a 0600 key file; a second init keeps the key."""
    tool = Cli(tmp_path)
    tool("init")
    mode = stat.S_IMODE(tool.key.stat().st_mode)
    assert mode == 0o600
    key = tool.key.read_bytes()
    tool("init")
    assert tool.key.read_bytes() == key


def test_import_encrypts_and_round_trips(cli: Cli) -> None:
    """Imported personal values are not in the database file in clear."""
    raw = cli.db.read_bytes()
    assert b"ana@example.org" not in raw
    assert b"Silva" not in raw


def test_import_is_all_or_nothing(cli: Cli, tmp_path: Path) -> None:
    """A file with one bad record imports nothing and exits 3 naming the field."""
    bad = tmp_path / "bad.json"
    bad.write_text(
        json.dumps(
            {
                "Learner": [
                    {**LEARNERS["Learner"][0], "id": "L9"},
                    {**LEARNERS["Learner"][0], "id": "L10", "created_at": "2020-01-06T09:00"},
                ]
            }
        ),
        encoding="utf-8",
    )
    result = cli("import", str(bad), code=3)
    assert "Learner.created_at" in result.stderr
    assert "ana@example.org" not in result.stderr
    swept = cli.json("sweep", "--dry-run", "--now", "2026-06-15")
    assert sum(swept[k] for k in ("erased", "kept", "review", "restricted", "anonymised")) == 3


def test_sweep_dry_run_then_real(cli: Cli) -> None:
    """The dry run reports what the real sweep then does; the invoice's minimum holds."""
    dry = cli.json("sweep", "--dry-run", "--now", "2026-06-15")
    assert dry["dry_run"] is True
    # L1: 18 months after last activity have passed, but the account is kept (restricted)
    # while its invoice stays: erasing it would leave the invoice without an account.
    assert dry["erased"] == 0
    assert dry["restricted"] == 1
    real = cli.json("sweep", "--now", "2026-06-15")
    assert real["erased"] == dry["erased"]
    assert real["restricted"] == dry["restricted"]
    assert real["by_type"]["Invoice"].get("erase", 0) == 0
    again = cli.json("sweep", "--now", "2026-06-15")
    assert again["erased"] == 0


def test_erase_restricts_the_invoice_and_cites_articles(cli: Cli) -> None:
    """erase: the learner is erased (Art. 17(1)), the invoice restricted (Art. 17(3)(b))."""
    report = cli.json("erase", "L1", "--now", "2026-06-15")
    outcomes = {(o["record_type"], o["action"]): o["article"] for o in report["outcomes"]}
    assert "17(1)" in outcomes[("Learner", "erase")]
    assert "17(3)(b)" in outcomes[("Invoice", "restrict")]


def test_export_writes_a_zip_with_a_manifest(cli: Cli) -> None:
    """export writes a zip whose manifest hashes every other entry."""
    out = cli.folder / "ana.zip"
    cli("export", "L1", "--out", str(out), "--now", "2026-06-15")
    with zipfile.ZipFile(out) as archive:
        names = set(archive.namelist())
        manifest = json.loads(archive.read("manifest.json"))
    assert "index.html" in names
    assert {f["path"] for f in manifest["files"]} == names - {"manifest.json"}


def test_unknown_learner_is_one_clear_line(cli: Cli) -> None:
    """Errors are one line on stderr with a documented exit code, no traceback."""
    result = cli("export", "NOBODY", "--out", str(cli.folder / "x.zip"), code=3)
    assert result.stderr.startswith("error: ")
    assert "Traceback" not in result.stderr
    assert not (cli.folder / "x.zip").exists()


def test_wrong_master_key_exits_5(cli: Cli) -> None:
    """A store opened with another master key fails at open with exit code 5."""
    cli.key.unlink()
    result = cli("init", code=5)  # a new key cannot open the existing store...
    assert "WrongMasterKeyError" in result.stderr
    assert not cli.key.exists()  # ...and is not left behind
    write_key_file(cli.key)  # another random key
    result = cli("sweep", "--dry-run", code=5)
    assert "WrongMasterKeyError" in result.stderr


def test_world_readable_key_file_is_refused(cli: Cli) -> None:
    """A key file readable by others is refused rather than silently used."""
    os.chmod(cli.key, 0o644)
    cli("audit", "verify", code=3)


def test_audit_verify_detects_tampering(cli: Cli) -> None:
    """audit verify passes, then exits 6 after a raw edit of the log."""
    cli("erase", "L1", "--now", "2026-06-15")
    assert cli.json("audit", "verify")["verified"] is True
    with sqlite3.connect(cli.db) as connection:
        table = next(
            name
            for (name,) in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")
            if "audit" in name
        )
        columns = [row[1] for row in connection.execute(f"PRAGMA table_info({table})")]
        column = "action" if "action" in columns else columns[2]
        connection.execute(f"UPDATE {table} SET {column} = 'x' WHERE rowid = 1")
    result = cli("audit", "verify", code=6)
    assert "AuditTampered" in result.stderr


def test_keys_rotate_keeps_data_readable(cli: Cli) -> None:
    """After rotation the key file changes and the data still decrypts."""
    before = cli.key.read_bytes()
    cli("keys", "rotate")
    assert cli.key.read_bytes() != before
    assert stat.S_IMODE(cli.key.stat().st_mode) == 0o600
    cli("export", "L2", "--out", str(cli.folder / "bob.zip"), "--now", "2026-06-15")
    with zipfile.ZipFile(cli.folder / "bob.zip") as archive:
        learner = json.loads(archive.read("data/learnprivacy_store/Learner.json"))
    assert "bob@example.org" in json.dumps(learner)


def test_keys_compact_and_status_show_the_epoch(cli: Cli) -> None:
    """status counts the erased learner awaiting compaction; compact moves to a new epoch,
    destroys the old epoch key in the vault file, and the data stays readable."""
    before = cli.json("keys", "status")
    assert before["epoch"] == 0
    assert before["compacted_at"] is None
    assert before["vault"] == str(cli.folder / "lms.keys.vault")
    cli.json("erase", "L1", "--now", "2026-06-15")
    assert cli.json("keys", "status")["erased_awaiting_compaction"] == 1
    report = cli.json("keys", "compact")
    assert report["epoch"] == 1
    assert report["rewrapped"] > 0
    first = (cli.folder / "lms.keys.vault").read_bytes()
    assert cli.json("keys", "compact")["epoch"] == 2
    assert (cli.folder / "lms.keys.vault").read_bytes() != first
    after = cli.json("keys", "status")
    assert after["epoch"] == 2
    assert after["erased_awaiting_compaction"] == 0
    assert after["compacted_at"] is not None
    assert "Key epoch 2" in cli("keys", "status").stdout
    cli("export", "L2", "--out", str(cli.folder / "bob.zip"), "--now", "2026-06-15")
    with zipfile.ZipFile(cli.folder / "bob.zip") as archive:
        learner = json.loads(archive.read("data/learnprivacy_store/Learner.json"))
    assert "bob@example.org" in json.dumps(learner)


def test_register_formats(cli: Cli) -> None:
    """register prints the Art. 30 record as Markdown or JSON."""
    text = cli("register", "--format", "markdown").stdout
    assert "Billing" in text
    data = cli.json("register")
    assert data["activities"]


def test_register_internal_only(cli: Cli) -> None:
    """``--internal-only`` (repeatable, comma-separated) promises purposes internal: they
    lose their "no recipient declared" gap, the others keep it."""
    plain = cli.json("register")
    assert not any(a["internal_only"] for a in plain["activities"])
    named = cli.json(
        "register",
        "--internal-only",
        "Proof of consent, Billing and tax obligations",
        "--internal-only",
        "Issuing and verifying certificates",
    )
    promised = {a["purpose"] for a in named["activities"] if a["internal_only"]}
    assert promised == {
        "Proof of consent",
        "Billing and tax obligations",
        "Issuing and verifying certificates",
    }
    assert not [g for g in named["gaps"] if g.startswith(tuple(promised))]
    assert any(g.startswith("Proof of consent: no recipient") for g in plain["gaps"])
    assert any(g.startswith("Security of the platform") for g in named["gaps"])


def test_attack_register_internal_only_nobody_has_or_empty(cli: Cli) -> None:
    """A promised purpose no activity has is a gap, not silence; an empty name
    (``billing,``) is refused before anything is written."""
    gaps = cli.json("register", "--internal-only", "Marketing")["gaps"]
    assert "Marketing: declared shared internally only, but no activity has that purpose" in gaps
    out = cli.folder / "register.md"
    refused = cli("register", "--out", str(out), "--internal-only", "Proof of consent,", code=2)
    assert "--internal-only needs purpose names" in refused.output
    assert not out.exists()


def test_register_internal_only_names_a_purpose_with_a_comma(cli: Cli) -> None:
    """A purpose whose name holds a comma is named in double quotes (CSV): it is one
    purpose, named verbatim, next to the others of the same value."""
    data = cli.json("register", "--internal-only", '"Marketing, partners", Proof of consent')
    assert (
        "Marketing, partners: declared shared internally only, but no activity has that "
        "purpose" in data["gaps"]
    )
    assert not [g for g in data["gaps"] if g.startswith(("Marketing:", '"Marketing'))]
    promised = {a["purpose"] for a in data["activities"] if a["internal_only"]}
    assert promised == {"Proof of consent"}


@pytest.mark.parametrize(
    ("values", "purposes"),
    [
        (["billing, forum", "accounts"], ["billing", "forum", "accounts"]),
        (['"billing, invoices", forum'], ["billing, invoices", "forum"]),
        (['"the ""best"", we hope"'], ['the "best", we hope']),
        (["billing, invoices"], ["billing", "invoices"]),
    ],
)
def test_internal_only_option_rule(values: list[str], purposes: list[str]) -> None:
    """Comma-separated as one CSV line: double quotes keep a comma in a name, a doubled
    quote is a quote; without quotes a comma separates."""
    from learnprivacy.providers._register import purposes_option

    assert purposes_option(values) == purposes


@pytest.mark.parametrize("value", ["billing,", '"billing, x', '"billing"x', "", " "])
def test_attack_internal_only_option_refuses_a_typing_error(value: str) -> None:
    """An empty name, a quote left open or text after a closing quote is refused with
    the typed error."""
    from learnprivacy.errors import ValidationError
    from learnprivacy.providers._register import purposes_option

    with pytest.raises(ValidationError, match="needs purpose names"):
        purposes_option(["accounts", value])


def test_attack_register_internal_only_refuses_an_open_quote(cli: Cli) -> None:
    """A quote left open is a typing error: refused (exit 2), nothing written, rather
    than a promise about a purpose named by accident."""
    out = cli.folder / "register.md"
    refused = cli("register", "--out", str(out), "--internal-only", '"Marketing, partners', code=2)
    assert "--internal-only needs purpose names" in refused.output
    assert not out.exists()


def test_requests_workflow(cli: Cli) -> None:
    """new -> advance (identity asked) -> advance --identity -> advance (executed)."""
    created = cli.json(
        "requests",
        "new",
        "erasure",
        "L1",
        "--requester-name",
        "Ana Silva",
        "--received",
        "2026-06-01",
    )
    request_id = created["id"]
    assert created["due_at"].startswith("2026-07-01")
    assert cli.json("requests", "advance", request_id, "--now", "2026-06-02")["state"] == (
        "awaiting_identity"
    )
    moved = cli.json(
        "requests",
        "advance",
        request_id,
        "--identity",
        "email_confirmation",
        "--now",
        "2026-06-03",
    )
    assert moved["state"] == "in_progress"
    done = cli.json("requests", "advance", request_id, "--now", "2026-06-04")
    assert done["state"] == "completed"
    listed = cli.json("requests", "list", "--now", "2026-06-04")
    assert [r["id"] for r in listed] == [request_id]
    shown = cli.json("requests", "show", request_id, "--now", "2026-06-04")
    assert [h["state"] for h in shown["history"]][-1] == "completed"
    letter = cli("requests", "show", request_id, "--letter", "md", "--now", "2026-06-04").stdout
    assert "17(3)(b)" in letter


def test_overdue_requests_are_listed(cli: Cli) -> None:
    """A request received more than a month ago and not answered is overdue."""
    cli.json(
        "requests", "new", "access", "L2", "--requester-name", "Bob", "--received", "2026-01-10"
    )
    late = cli.json("requests", "list", "--overdue", "--now", "2026-03-01")
    assert len(late) == 1
    assert late[0]["overdue"] is True


def test_demo_runs_the_whole_story(tmp_path: Path) -> None:
    """demo stores, sweeps, exports, erases and verifies, writing only to its folder."""
    folder = tmp_path / "demo"
    result = CliRunner().invoke(
        main, ["demo", "--dir", str(folder), "--learners", "60"], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    assert "Audit chain intact" in result.output
    assert "17(3)(b)" in result.output
    written = {p.name for p in folder.iterdir()}
    assert {"lms.db", "master.key", "register.md", "register.html"} <= written
    assert any(name.startswith("export-") and name.endswith(".zip") for name in written)
    assert any(name.startswith("erasure-") for name in written)


def test_copy_to_another_database(cli: Cli) -> None:
    """copy moves the store to another database; the copy opens and verifies."""
    target = cli.folder / "copy.db"
    data = cli.json("copy", "--to", f"sqlite:///{target}")
    assert data["tables"]
    assert data["audit_entries"] >= 1
    # The copy shares the original's key database: its configuration names it.
    folder = cli.folder / "moved"
    folder.mkdir()
    keys = f"sqlite:///{cli.folder / 'lms.keys.db'}"
    other = Cli(folder, config=CONFIG + f'\n[keys]\nurl = "{keys}"\n')
    other.db = target
    other.key = cli.key
    assert other.json("audit", "verify")["verified"] is True
    assert cli("copy", "--to", f"sqlite:///{target}", code=3).stderr.startswith("error: ")


def test_request_choices_follow_the_vocabulary() -> None:
    """Every request type, channel and proof method of the library is offered, no more."""
    from learnprivacy.requests import Channel, ProofMethod, RequestType

    commands = main.commands["requests"].commands  # type: ignore[attr-defined]
    offered = {
        param.name: set(param.type.choices)
        for name in ("new", "advance")
        for param in commands[name].params
        if hasattr(param.type, "choices")
    }
    assert offered["request_type"] == {t.value for t in RequestType}
    assert offered["channel"] == {c.value for c in Channel}
    assert offered["identity"] == {m.value for m in ProofMethod}


def test_import_reads_xapi_statement_files(cli: Cli, tmp_path: Path) -> None:
    """An xAPI statements file (here the one of an export) gives Progress records of the
    store's learners; importing it again adds nothing (it used to fail with "Progress has
    no field(s) actor...")."""
    progress = tmp_path / "progress.json"
    progress.write_text(
        json.dumps(
            {
                "Progress": [
                    {
                        "id": "P1",
                        "learner_id": "L2",
                        "course_id": "SST",
                        "status": "passed",
                        "recorded_at": "2026-03-01T10:00:00+01:00",
                        "score": {"raw": "15", "min": "0", "max": "20"},
                    }
                ]
            }
        ),
        encoding="utf-8",
    )
    cli("import", str(progress))
    out = tmp_path / "bob.zip"
    cli("export", "L2", "--out", str(out), "--now", "2026-06-15")
    statements = tmp_path / "statements.json"
    with zipfile.ZipFile(out) as archive:
        statements.write_bytes(archive.read("xapi/statements.json"))
    first = cli.json("import", str(statements))
    assert first["imported"] == {"Progress": 1, "skipped statements": 0}
    again = cli.json("import", str(statements))
    assert again["imported"] == {"Progress": 0, "skipped statements": 1}
    exported = tmp_path / "bob2.zip"
    cli("export", "L2", "--out", str(exported), "--now", "2026-06-15")
    with zipfile.ZipFile(exported) as archive:
        rows = json.loads(archive.read("data/learnprivacy_store/Progress.json"))
    records = rows["records"] if isinstance(rows, dict) else rows
    imported = [r for r in records if r["id"].startswith("xapi-")]
    assert len(imported) == 1
    assert imported[0]["course_id"] == "SST"
    assert imported[0]["status"] == "passed"
    assert imported[0]["score"]["raw"] in ("15", 15)


def test_sweep_compacts_by_default(cli: Cli) -> None:
    """An erasing sweep ends with a compaction: a new epoch, nothing awaiting one."""
    swept = cli.json("sweep", "--now", "2030-01-01")
    assert swept["erased"] >= 1
    assert swept["key_epoch"] == 1
    status = cli.json("keys", "status")
    assert status["epoch"] == 1
    assert status["erased_awaiting_compaction"] == 0


def test_sweep_with_no_compact_leaves_the_keys_alone(cli: Cli) -> None:
    """--no-compact: the sweep erases, the epoch stays, the erased learners await one."""
    swept = cli.json("sweep", "--now", "2030-01-01", "--no-compact")
    assert swept["erased"] >= 1
    status = cli.json("keys", "status")
    assert status["epoch"] == 0
    assert status["erased_awaiting_compaction"] >= 1
