"""``manage.py learnprivacy_register``: its options, as ``learnprivacy register``'s.

Attacks: a purpose promised internal-only must not hide an external recipient (it is a
gap); an empty purpose name is refused; ``--out`` writes the same register as stdout.
"""

from __future__ import annotations

import io
import json
import tempfile
from pathlib import Path
from typing import Any

import attrs
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import TestCase

from lms.privacy import CONTROLLER

#: The example's controller without its internal-only promise.
BARE = attrs.evolve(CONTROLLER, internal_only=())


def register(*args: str) -> str:
    out = io.StringIO()
    call_command("learnprivacy_register", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


class RegisterCommandTests(TestCase):
    """``--internal-only``, ``--format``, ``--out`` and ``--language``."""

    databases = {"default", "learnprivacy_keys"}

    def setUp(self) -> None:
        options = {**settings.LEARNPRIVACY, "CONTROLLER": "lms.test_register.BARE"}
        patcher = self.settings(LEARNPRIVACY=options)
        patcher.enable()
        self.addCleanup(patcher.disable)

    def activities(self, *args: str) -> tuple[dict[str, Any], list[str]]:
        data = json.loads(register("--json", *args))
        return {a["purpose"]: a for a in data["activities"]}, data["gaps"]

    def test_internal_only_purposes_lose_their_recipient_gap(self) -> None:
        """Without the option every purpose lacks a declared recipient; with
        ``--internal-only billing,forum --internal-only accounts`` those three are
        promised internal and show no recipient gap, the others still do."""
        plain, gaps = self.activities()
        assert not any(a["internal_only"] for a in plain.values())
        assert any(g.startswith("billing: no recipient declared") for g in gaps)
        named, gaps = self.activities(
            "--internal-only", "billing, forum", "--internal-only", "accounts"
        )
        promised = {p for p, a in named.items() if a["internal_only"]}
        assert promised == {"billing", "forum", "accounts"}
        assert not [g for g in gaps if g.startswith(("billing:", "forum:", "accounts:"))]
        assert any(g.startswith("learning: no recipient declared") for g in gaps)

    def test_attack_a_purpose_nobody_has_is_a_gap(self) -> None:
        """Promising a purpose the declarations do not have cannot pass silently."""
        _named, gaps = self.activities("--internal-only", "marketing")
        assert "marketing: declared shared internally only, but no activity has that " in (
            " ".join(gaps)
        )

    def test_attack_an_empty_purpose_is_refused(self) -> None:
        """``--internal-only billing,`` is a typing error, not a promise about nothing."""
        with self.assertRaises(CommandError):
            register("--internal-only", "billing,")

    def test_a_purpose_with_a_comma_is_named_in_double_quotes(self) -> None:
        """``--internal-only '"marketing, partners", billing'`` names two purposes, the
        first with its comma; an open quote is refused."""
        named, gaps = self.activities("--internal-only", '"marketing, partners", billing')
        assert named["billing"]["internal_only"]
        assert any(g.startswith("marketing, partners: declared shared internally") for g in gaps)
        assert not [g for g in gaps if g.startswith(("marketing:", '"marketing'))]
        with self.assertRaises(CommandError):
            register("--internal-only", '"marketing, partners')

    def test_formats_and_out(self) -> None:
        """``--format csv|html``, ``--language fr`` and ``--out`` (same text as stdout)."""
        assert "lms_invoice" in register("--format", "csv")
        assert "<html" in register("--format", "html").lower()
        french = register("--language", "fr")
        assert french != register()
        with tempfile.TemporaryDirectory() as folder:
            target = Path(folder) / "register.md"
            assert register("--out", str(target)) == ""
            assert target.read_text(encoding="utf-8") == register()
