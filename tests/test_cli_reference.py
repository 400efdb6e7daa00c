"""docs/cli.md is generated from the commands: it cannot drift from what they accept."""

from __future__ import annotations

from pathlib import Path

import click

from learnprivacy.cli import EXIT_CODES, main
from learnprivacy.cli._reference import render_reference

PAGE = Path(__file__).resolve().parent.parent / "docs" / "cli.md"


def test_cli_page_is_what_the_commands_say() -> None:
    """The committed page equals the generated one (regenerate it after changing a command)."""
    assert PAGE.read_text("utf-8") == render_reference(), (
        "docs/cli.md is stale: run `make cli-reference`"
    )


def test_page_lists_every_command_option_and_exit_code() -> None:
    """Each command, each of its options and each exit code appears on the page."""
    page = PAGE.read_text("utf-8")

    def walk(group: click.Group, prefix: str) -> None:
        for name, command in group.commands.items():
            path = f"{prefix} {name}".strip()
            assert f"`learnprivacy {path}" in page, path
            for param in command.params:
                if isinstance(param, click.Option):
                    assert f"`{param.opts[0]}`" in page, (path, param.opts)
            if isinstance(command, click.Group):
                walk(command, path)

    walk(main, "")
    for text, code in EXIT_CODES.items():
        assert f"| {code} | {text}" in page
    assert "| 8 |" in page
    assert "score.raw" in page  # the import CSV columns


def test_a_new_option_makes_the_page_stale() -> None:
    """Attack: an option added to a command changes the generated page."""
    group = click.Group("learnprivacy", params=list(main.params))
    extra = click.Command("frobnicate", params=[click.Option(["--wobble"], help="Wobble.")])
    group.add_command(extra)
    assert "--wobble" in render_reference(group)
    assert "--wobble" not in render_reference()
