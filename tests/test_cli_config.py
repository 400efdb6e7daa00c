"""learnprivacy.toml, progress bars and exit codes that tell the truth, run for real."""

from __future__ import annotations

import io
import json
import re
import tomllib
import zipfile
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from rich.console import Console

from learnprivacy.cli import main
from learnprivacy.cli._app import Env
from learnprivacy.cli._progress import progress
from learnprivacy.cli._settings import Settings, find_config, load_settings
from learnprivacy.errors import ConfigurationError
from tests import sample
from tests.test_cli import CONFIG, LEARNERS, Cli, initialised

BARE = '[policy]\nlanguages = ["en"]\n'


@pytest.fixture
def bare(tmp_path: Path) -> Cli:
    """A store configured without [controller]."""
    return initialised(tmp_path, config=BARE)


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return initialised(tmp_path)


# -- one configuration file ------------------------------------------------------------


def test_init_writes_a_commented_configuration_that_commands_then_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """init in an empty folder writes learnprivacy.toml; later commands find it in cwd."""
    monkeypatch.chdir(tmp_path)
    for name in ("LEARNPRIVACY_CONFIG", "LEARNPRIVACY_DB", "LEARNPRIVACY_MASTER_KEY"):
        monkeypatch.delenv(name, raising=False)
    runner = CliRunner()
    result = runner.invoke(main, ["--json", "init"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    assert info["config_created"] is True
    text = (tmp_path / "learnprivacy.toml").read_text("utf-8")
    assert "# [controller]" in text  # commented: the operator fills it in
    parsed = tomllib.loads(text)
    assert parsed["store"]["url"] == "sqlite:///learnprivacy.db"
    # Without [controller], documents are refused with what to configure.
    refused = runner.invoke(main, ["register"], catch_exceptions=False)
    assert refused.exit_code == 3
    assert "[controller]" in refused.stderr
    assert "Example Formation" not in refused.output
    # Uncomment the example [controller] and [dpo]: the register now names them.
    head, policy, tail = text.partition("[policy]")
    head = re.sub(
        r"^# (\[controller\]|\[dpo\]|(?:name|address|contact|country|email) =)",
        r"\1",
        head,
        flags=re.M,
    )
    (tmp_path / "learnprivacy.toml").write_text(head + policy + tail, encoding="utf-8")
    ok = runner.invoke(main, ["register", "--format", "markdown"], catch_exceptions=False)
    assert ok.exit_code == 0, ok.output
    assert "Formation Exemple SAS" in ok.stdout
    assert "Example Formation" not in ok.stdout
    # A second init keeps the operator's file.
    runner.invoke(main, ["init"], catch_exceptions=False)
    assert "Formation Exemple SAS" in (tmp_path / "learnprivacy.toml").read_text("utf-8")


def test_store_url_comes_from_the_file_unless_overridden(tmp_path: Path) -> None:
    """[store] url is used; --db wins over it; keys file paths are read from the file's folder."""
    config = tmp_path / "conf" / "learnprivacy.toml"
    config.parent.mkdir()
    config.write_text(
        '[store]\nurl = "sqlite:///from-file.db"\n[keys]\nmaster_key_file = "k.key"\n',
        encoding="utf-8",
    )
    settings = load_settings(config)
    assert settings.store_url == "sqlite:///from-file.db"
    assert settings.key_file == str(tmp_path / "conf" / "k.key")
    assert load_settings(config, db="sqlite:///cli.db").store_url == "sqlite:///cli.db"
    config.write_text('[keys]\nmaster_key_file = "learnprivacy.key"\n', encoding="utf-8")
    assert load_settings(config).key_file == str(tmp_path / "conf" / "learnprivacy.key")
    config.write_text("", encoding="utf-8")
    assert load_settings(config).key_file == "learnprivacy.key"  # the default: cwd


def test_config_is_found_by_option_then_environment_then_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--config, then LEARNPRIVACY_CONFIG, then ./learnprivacy.toml; a named file must exist."""
    local = tmp_path / "learnprivacy.toml"
    local.write_text(BARE, encoding="utf-8")
    other = tmp_path / "other.toml"
    other.write_text(BARE, encoding="utf-8")
    monkeypatch.delenv("LEARNPRIVACY_CONFIG", raising=False)
    assert find_config(None, cwd=tmp_path) == local
    monkeypatch.setenv("LEARNPRIVACY_CONFIG", str(other))
    assert find_config(None, cwd=tmp_path) == other
    assert find_config(str(local), cwd=tmp_path) == local
    with pytest.raises(ConfigurationError, match="does not exist"):
        find_config(str(tmp_path / "missing.toml"), cwd=tmp_path)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[store\n", "not valid TOML"),
        ("[stores]\nurl = 'x'\n", "unknown sections"),
        ("[controller]\nname = 'X'\n", "needs address"),
        (
            "[controller]\nname='X'\naddress='A'\ncontact='c@x.fr'\ncountry='France'\n",
            "ISO 3166",
        ),
        ("[dpo]\nname = 'D'\nemail = 'not-an-address'\n", "e-mail"),
        ("[policy]\nlanguages = ['klingon']\n", "not available"),
        ("[policy]\ntimezone = 'Mars/Olympus'\n", "unknown time zone"),
        ("[policy]\nmodule = 'no_such_module:X'\n", None),
    ],
)
def test_bad_configuration_is_a_clear_error(tmp_path: Path, text: str, message: str | None) -> None:
    """Every mistake in the file is a ConfigurationError naming the section and key."""
    path = tmp_path / "learnprivacy.toml"
    path.write_text(text, encoding="utf-8")
    if message is None:
        with pytest.raises(ConfigurationError, match="cannot be imported"):
            load_settings(path).schedule()
        return
    with pytest.raises(ConfigurationError, match=message):
        load_settings(path)


def test_documents_are_refused_without_a_controller(bare: Cli) -> None:
    """register, export and letters refuse the built-in example: exit 3 saying what to set."""
    for args in (
        ("register",),
        ("export", "L1", "--out", str(bare.folder / "x.zip")),
    ):
        result = bare(*args, code=3)
        assert "[controller]" in result.stderr
        assert "Example Formation" not in result.output
    created = bare.json("requests", "new", "access", "L2", "--requester-name", "Bob")
    letter = bare("requests", "show", created["id"], "--letter", "md", code=3)
    assert "[controller]" in letter.stderr
    assert not (bare.folder / "x.zip").exists()


def test_every_command_uses_the_configured_schedule(tmp_path: Path) -> None:
    """A 6-month schedule in [policy] reaches the register and erase, not the built-in P18M."""
    schedule = tmp_path / "six-months.json"
    schedule.write_text(
        json.dumps(
            {
                "Learner": {"period": "P6M", "trigger": "last_activity"},
                "Invoice": {"period": "P10Y", "trigger": "issued", "minimum": True},
            }
        ),
        encoding="utf-8",
    )
    tool = Cli(tmp_path, config=CONFIG + '\nschedule = "six-months.json"\n')
    tool("init")
    data = tmp_path / "records.json"
    data.write_text(json.dumps(LEARNERS), encoding="utf-8")
    tool("import", str(data))
    register = tool("register", "--format", "markdown").stdout
    assert "P6M" in register
    assert "P18M" not in register
    # L2 was active 2026-05-01: 6 months later (2026-11-02) the sweep erases the account.
    # L1's account is kept (restricted) while its invoice stays inside its legal minimum.
    swept = tool.json("sweep", "--dry-run", "--now", "2026-11-02")
    assert swept["erased"] == 1
    assert swept["restricted"] == 1


# -- exit codes that tell the truth ----------------------------------------------------


def test_json_errors_are_json(cli: Cli) -> None:
    """Under --json an error is a JSON object on stdout with its type and exit code."""
    result = cli("--json", "erase", "NOBODY", code=3)
    error = json.loads(result.stdout)["error"]
    assert error["type"] == "NotFoundError"
    assert error["exit_code"] == 3
    usage = cli(
        "--json", "export", "L1", "--out", str(cli.folder / "a.zip"), "--scope", "x", code=2
    )
    assert json.loads(usage.stdout)["error"]["exit_code"] == 2


def test_erasing_an_unknown_learner_is_an_error_and_erases_nobody(cli: Cli) -> None:
    """erase L2 NOBODY: exit 3 before anything is erased (L2 is still there)."""
    cli("erase", "L2", "NOBODY", code=3)
    out = cli.folder / "bob.zip"
    cli("export", "L2", "--out", str(out), "--now", "2026-06-15")
    assert out.exists()


def test_erase_of_many_reports_each(cli: Cli) -> None:
    """Several learners in one command: one report each."""
    reports = cli.json("erase", "L1", "L2", "--now", "2026-06-15")
    assert len(reports) == 2
    assert all(r["erased"] >= 1 for r in reports)


def test_export_refuses_to_overwrite_unless_asked(cli: Cli) -> None:
    """A second export to the same path exits 3 naming --overwrite; with it, it replaces."""
    out = cli.folder / "ana.zip"
    cli("export", "L1", "--out", str(out), "--now", "2026-06-15")
    result = cli("export", "L1", "--out", str(out), "--now", "2026-06-15", code=3)
    assert "--overwrite" in result.stderr
    assert "overwrite=True" not in result.stderr
    cli("export", "L1", "--out", str(out), "--now", "2026-06-16", "--overwrite")
    with zipfile.ZipFile(out) as archive:
        assert json.loads(archive.read("manifest.json"))["generated_at"].startswith("2026-06-16")


def test_a_failed_step_exits_9_with_its_reason_and_retry_completes(cli: Cli) -> None:
    """advance with a missing export folder: FAILED, exit 9, the reason; retry once fixed."""
    created = cli.json(
        "requests", "new", "access", "L2", "--requester-name", "Bob", "--received", "2026-06-01"
    )
    request_id = created["id"]
    cli(
        "requests", "advance", request_id, "--identity", "email_confirmation", "--now", "2026-06-02"
    )
    missing = cli.folder / "answers"
    failed = cli(
        "requests",
        "advance",
        request_id,
        "--export-dir",
        str(missing),
        "--now",
        "2026-06-03",
        code=9,
    )
    assert "FAILED" in failed.stderr
    assert "export" in failed.stderr
    assert "retry" in failed.stderr
    # Running advance again does not pretend: still exit 9, still the reason.
    again = cli("requests", "advance", request_id, "--export-dir", str(missing), code=9)
    assert "retry" in again.stderr
    missing.mkdir()
    done = cli.json(
        "requests", "retry", request_id[:10], "--export-dir", str(missing), "--now", "2026-06-04"
    )
    assert done["state"] == "completed"
    assert done["retry_of"] == request_id
    assert list(missing.glob("*.zip"))


def test_short_unique_id_prefixes_are_accepted(cli: Cli) -> None:
    """requests show accepts a unique prefix; an unknown prefix exits 3."""
    created = cli.json("requests", "new", "access", "L2", "--requester-name", "Bob")
    shown = cli.json("requests", "show", created["id"][:8])
    assert shown["id"] == created["id"]
    cli("requests", "show", "zzzz-not-an-id", code=3)
    listed = cli("requests", "list").stdout
    assert created["id"][:8] in listed


def test_help_summaries_are_not_cut() -> None:
    """The command list shows whole first sentences, "GDPR Art. 17" included."""
    text = CliRunner().invoke(main, ["--help"], terminal_width=200).output
    assert "Erase learners (GDPR Art. 17); records under a legal minimum are restricted." in text
    requests_help = CliRunner().invoke(main, ["requests", "--help"], terminal_width=200).output
    assert "retry" in requests_help


# -- progress ----------------------------------------------------------------------------


def _env(*, terminal: bool, as_json: bool = False) -> tuple[Env, io.StringIO]:
    sink = io.StringIO()
    err = Console(file=sink, force_terminal=terminal, width=120)
    return Env(settings=Settings(), json=as_json, debug=False, err=err), sink


def test_progress_bar_shows_count_rate_and_time_left() -> None:
    """For a person the bar shows done/total, a rate and an ETA."""
    env, sink = _env(terminal=True)
    with progress(env, "Importing", total=1_000, unit="records") as bar:
        for _ in range(10):
            bar.advance(100)
    drawn = sink.getvalue()
    assert "Importing" in drawn
    assert "records/s" in drawn
    assert "1000/1000" in drawn or "1,000" in drawn
    assert bar.done == 1_000


@pytest.mark.parametrize(("terminal", "as_json"), [(False, False), (True, True)])
def test_progress_is_quiet_for_machines(terminal: bool, as_json: bool) -> None:
    """Nothing is drawn when stderr is not a terminal or under --json; counts are kept."""
    env, sink = _env(terminal=terminal, as_json=as_json)
    with progress(env, "Sweeping", unit="rows") as bar:
        bar.expect(5)
        list(bar.track(range(5)))
    assert sink.getvalue() == ""
    assert (bar.done, bar.total) == (5, 5)


def test_sweep_reports_every_row_to_the_progress_bar(cli: Cli) -> None:
    """Store.sweep tells the bar each type's rows and advances to the total."""
    from learnprivacy.cli._config import load_keyring
    from learnprivacy.cli._schedules import default_schedule
    from learnprivacy.store import Store

    env, _ = _env(terminal=False)
    with (
        Store(f"sqlite:///{cli.db}", keyring=load_keyring(str(cli.key))) as store,
        progress(env, "Sweeping", unit="rows") as bar,
    ):
        import datetime as dt

        store.sweep(
            default_schedule(),
            now=dt.datetime(2026, 6, 15, tzinfo=dt.UTC),
            dry_run=True,
            progress=bar,
        )
    assert bar.total == 3  # two learners and one invoice
    assert bar.done == 3


# -- [[recipients]] ----------------------------------------------------------------------


def test_recipients_need_a_known_kind_and_an_lrs_url(tmp_path: Path) -> None:
    """A recipient of an unknown kind, or an LRS without its URL, is refused at load."""
    path = tmp_path / "learnprivacy.toml"
    path.write_text('[[recipients]]\nname = "X"\nkind = "pigeon"\n', encoding="utf-8")
    with pytest.raises(ConfigurationError, match="kind must be"):
        load_settings(path)
    path.write_text('[[recipients]]\nname = "X"\nkind = "lrs"\n', encoding="utf-8")
    with pytest.raises(ConfigurationError, match="url"):
        load_settings(path)


@pytest.mark.lrs
def test_an_erasure_request_voids_the_learners_statements_in_the_configured_lrs(
    tmp_path: Path, ralph_lrs: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """[[recipients]] kind = "lrs": the CLI's erasure request reaches the real LRS."""
    import datetime as dt

    from learnprivacy.cli._config import load_keyring
    from learnprivacy.export.xapi import (
        actor_pseudonyms,
        read_statements,
        send_statements,
        statements_for,
    )
    from learnprivacy.records import Progress, Score
    from learnprivacy.store import Store

    username, password = ralph_lrs.auth
    monkeypatch.setenv("TEST_LRS_PASSWORD", password)
    recipients = (
        f'\n[[recipients]]\nname = "lrs"\nkind = "lrs"\nurl = "{ralph_lrs.endpoint}"\n'
        f'username = "{username}"\npassword_env = "TEST_LRS_PASSWORD"\n'
    )
    tool = Cli(tmp_path, config=CONFIG + recipients)
    tool("init")
    data = tmp_path / "records.json"
    data.write_text(json.dumps(LEARNERS), encoding="utf-8")
    tool("import", str(data))
    # The LMS pushed L2's progress live, named by the store's actor pseudonyms.
    keyring = load_keyring(str(tool.key))
    with Store(f"sqlite:///{tool.db}", keyring=keyring) as store:
        pseudonyms = actor_pseudonyms(store)
        progress_row = sample(
            Progress,
            id="P-L2",
            learner_id="L2",
            recorded_at=dt.datetime(2026, 5, 2, 9, 0, tzinfo=dt.UTC),
            score=Score(raw=15, min=0, max=20),
        )
        store.add(progress_row)
        pushed = list(statements_for([progress_row], pseudonyms=pseudonyms))
    assert send_statements(pushed, ralph_lrs.endpoint, ralph_lrs.auth).failed == 0
    actor = pseudonyms.pseudonym("L2")

    def listed() -> list[dict[str, Any]]:
        from learnprivacy.export.xapi import XapiProfile

        return list(
            read_statements(ralph_lrs.endpoint, ralph_lrs.auth, agent=XapiProfile().actor(actor))
        )

    assert len(listed()) == 1
    created = tool.json("requests", "new", "erasure", "L2", "--requester-name", "Bob")
    tool("requests", "advance", created["id"], "--identity", "email_confirmation")
    done = tool.json("requests", "advance", created["id"], "--export-dir", str(tmp_path))
    assert done["state"] == "completed"
    assert listed() == []


def test_cli_export_page_names_the_controller_and_states_every_retention(cli: Cli) -> None:
    """The CLI's export page is French (first configured language), names the configured
    controller and DPO, and states a retention for every kind of data (Art. 15(1)(d))."""
    out = cli.folder / "ana.zip"
    cli("export", "L1", "--out", str(out), "--now", "2026-06-15")
    with zipfile.ZipFile(out) as archive:
        page = archive.read("index.html").decode("utf-8")
    assert '<html lang="fr">' in page
    assert "Formation Exemple SAS" in page
    assert "Claire Martin" in page
    assert "CNIL" in page
    assert "non indiqué" not in page  # "not stated" in French
    assert "18 mois (P18M)" in page
    english = cli.folder / "ana-en.zip"
    cli("export", "L1", "--out", str(english), "--now", "2026-06-15", "--language", "en")
    with zipfile.ZipFile(english) as archive:
        assert "Retention: not stated" not in archive.read("index.html").decode("utf-8")


def test_progress_bar_takes_absolute_counts() -> None:
    """set(done, total) serves callers that report absolute counts (migrate-encrypt)."""
    env, sink = _env(terminal=True)
    with progress(env, "Encrypting", unit="rows") as bar:
        bar.describe("Encrypting users")
        bar.set(7, 20)
        bar.set(20, 20)
    assert (bar.done, bar.total) == (20, 20)
    assert "Encrypting users" in sink.getvalue()


def test_xapi_section_names_the_lms_in_exported_statements(tmp_path: Path) -> None:
    """[xapi] home_page and platform reach the statements of a CLI export: actors are
    accounts of the configured LMS, and context.platform names it (not the library)."""
    from tests.test_cli import CONFIG

    config = CONFIG + '\n[xapi]\nhome_page = "https://lms.acme.test"\nplatform = "Acme LMS"\n'
    tool = Cli(tmp_path, config=config)
    tool("init")
    records = dict(LEARNERS)
    records["Progress"] = [
        {
            "id": "P1",
            "learner_id": "L2",
            "course_id": "C1",
            "status": "passed",
            "recorded_at": "2026-05-01T09:00:00+02:00",
        }
    ]
    data = tmp_path / "records.json"
    data.write_text(json.dumps(records), encoding="utf-8")
    tool("import", str(data))
    out = tmp_path / "bob.zip"
    tool("export", "L2", "--out", str(out), "--now", "2026-06-15")
    with zipfile.ZipFile(out) as archive:
        statements = json.loads(archive.read("xapi/statements.json"))
    assert statements
    for statement in statements:
        assert statement["actor"]["account"]["homePage"] == "https://lms.acme.test"
        assert statement["context"]["platform"] == "Acme LMS"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[xapi]\nhome_page = 'lms.acme.test'\n", "http"),
        ("[xapi]\nplatfrom = 'typo'\n", "unknown keys: platfrom"),
    ],
)
def test_bad_xapi_section_is_refused(tmp_path: Path, text: str, message: str) -> None:
    """A home page that is not an address, or a misspelt key, is a ConfigurationError."""
    path = tmp_path / "learnprivacy.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigurationError, match=message):
        load_settings(path)
