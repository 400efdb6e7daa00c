"""The documentation's code runs as written: the tutorial end to end, every Python block.

The tutorial is replayed in a temporary folder in its own order: files it asks to write
are written, `$ learnprivacy ...` lines are run (each must succeed), Python blocks are
executed. Every other page's Python blocks must at least compile, the home page must lead
to the install page and the tutorial, and the examples page must show every example file.
"""

from __future__ import annotations

import ast
import re
import shlex
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from learnprivacy.cli import main

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
BLOCK = re.compile(
    r"(?:<!-- tutorial: (?P<verb>write|append) (?P<file>\S+) -->\n)?"
    r"```(?P<lang>\w*)\n(?P<code>.*?)```",
    re.S,
)


def _blocks(page: Path) -> list[re.Match[str]]:
    return list(BLOCK.finditer(page.read_text("utf-8")))


def test_tutorial_runs_as_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every step of docs/tutorial.md succeeds, and its promises hold afterwards."""
    for name in ("LEARNPRIVACY_CONFIG", "LEARNPRIVACY_DB", "LEARNPRIVACY_MASTER_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    ran: list[str] = []
    for block in _blocks(DOCS / "tutorial.md"):
        code = block["code"]
        if block["verb"]:
            target = Path.cwd() / block["file"]
            mode = "a" if block["verb"] == "append" else "w"
            with target.open(mode, encoding="utf-8") as handle:
                handle.write("\n" + code)
        elif block["lang"] == "console":
            for line in code.splitlines():
                command = line.removeprefix("$ ").strip()
                if command.startswith("pip install"):
                    continue  # the package under test is installed already
                if command.startswith("mkdir "):
                    folder = Path(shlex.split(command)[1])
                    folder.mkdir()
                    monkeypatch.chdir(folder)
                    continue
                args = shlex.split(command)
                assert args[0] == "learnprivacy", command
                result = runner.invoke(main, args[1:], catch_exceptions=False)
                assert result.exit_code == 0, (command, result.output)
                ran.append(command)
        elif block["lang"] == "python":
            exec(compile(code, "tutorial.md", "exec"), {})  # noqa: S102
    assert any(c.startswith("learnprivacy export") for c in ran)
    assert any(c.startswith("learnprivacy sweep --now") for c in ran)
    # What the tutorial says happened did happen.
    here = Path.cwd()
    assert b"ana@example.org" not in (here / "learnprivacy.db").read_bytes()
    with zipfile.ZipFile(here / "ana.zip") as archive:
        page = archive.read("index.html").decode("utf-8")
    for promised in ("Formation Exemple SAS", "Claire Martin", "Vos droits", "CNIL"):
        assert promised in page
    again = runner.invoke(main, ["--json", "sweep", "--now", "2026-06-15"])
    assert '"erased": 0' in again.stdout  # a second sweep changes nothing
    assert (here / "chloe.zip").exists()


@pytest.mark.parametrize("page", sorted(DOCS.glob("*.md")), ids=lambda p: p.name)
def test_python_blocks_compile(page: Path) -> None:
    """No page shows Python that is not Python."""
    for block in _blocks(page):
        if block["lang"] == "python" and "--8<--" not in block["code"]:
            ast.parse(block["code"], filename=page.name)


@pytest.mark.parametrize("name", ["index.md", "install.md"])
def test_home_and_install_python_runs(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The home page's and install page's Python blocks run."""
    monkeypatch.chdir(tmp_path)
    for block in _blocks(DOCS / name):
        if block["lang"] == "python":
            exec(compile(block["code"], name, "exec"), {})  # noqa: S102


def test_home_page_leads_to_install_and_tutorial() -> None:
    """The home page links to the install page, the tutorial and the examples."""
    home = (DOCS / "index.md").read_text("utf-8")
    for target in ("install.md", "tutorial.md", "examples.md", "cli.md"):
        assert f"({target})" in home
    assert "pip install learnprivacy" in (DOCS / "install.md").read_text("utf-8")


def test_examples_page_shows_every_example() -> None:
    """Each example (a folder of examples/) is on docs/examples.md; every inclusion exists."""
    page = (DOCS / "examples.md").read_text("utf-8")
    included = set(re.findall(r'--8<-- "([^"]+)"', page))
    assert included
    for path in included:
        assert (ROOT / path).is_file(), path
    examples = [
        entry
        for entry in sorted((ROOT / "examples").iterdir())
        if (entry.is_dir() and any(entry.rglob("*.py"))) or entry.suffix == ".ipynb"
    ]
    assert len(examples) >= 5
    for example in examples:
        prefix = example.relative_to(ROOT).as_posix() + "/"
        assert any(path.startswith(prefix) for path in included) or prefix in page, prefix
    for notebook in (ROOT / "examples").rglob("*.ipynb"):
        assert notebook.relative_to(ROOT).as_posix() in page


def test_no_stale_statement_about_the_alembic_table() -> None:
    """The store keeps its revision in learnprivacy_alembic_version; no page says otherwise."""
    for page in DOCS.glob("*.md"):
        text = page.read_text("utf-8")
        assert "migrations use Alembic's default `alembic_version`" not in text, page.name
