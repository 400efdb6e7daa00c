"""The ``learnprivacy`` command."""

from __future__ import annotations

import click
from rich.console import Console
from rich.table import Table

from learnprivacy.records import default_basis, fields_of, record_types

__all__ = ["main"]


@click.group()
@click.version_option(package_name="learnprivacy")
def main() -> None:
    """Keep learning records lawfully."""


@main.command()
def demo() -> None:
    """Show the built-in records' privacy metadata."""
    console = Console()
    for cls in record_types():
        basis = default_basis(cls)
        table = Table(
            title=f"{cls.__name__} — purpose {cls.processing_purpose}, "
            f"lawful basis {basis.article} ({basis.name.lower()})",
            title_justify="left",
        )
        for column in ("field", "personal", "category", "encrypted", "exported", "description"):
            table.add_column(column)
        for info in fields_of(cls):
            table.add_row(
                info.name,
                "yes" if info.personal else "no",
                info.category.value,
                "yes" if info.encrypted else "no",
                "yes" if info.exported else "no",
                info.description,
            )
        console.print(table)
