"""Entry-point discovery, for real: a package installed as a dist-info directory on sys.path."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from learnprivacy.errors import ConfigurationError, ProviderError
from learnprivacy.providers import PrivacyManager
from learnprivacy.providers._discovery import ENTRY_POINT_GROUP, discover_providers

PLUGIN = """
from learnprivacy.providers import ContextList

class ThemeProvider:
    component = "{prefix}_theme"

    def get_reason(self):
        return "Only site-wide settings."

class CalendarProvider:
    def __init__(self, component):
        self.component = component

    def get_metadata(self, collection):
        return collection.add_database_table(
            "events", {{"user_id": "Owner"}}, "Personal events", purpose="Agenda",
            basis="gdpr_art_6_1_b", retention="P1Y",
        )

    def get_contexts_for_userid(self, user_id):
        return ContextList()

    def export_user_data(self, approved, writer):
        pass

    def delete_data_for_user(self, approved):
        pass

    def delete_data_for_all_users_in_context(self, context):
        pass

def make_calendar():
    return CalendarProvider("{prefix}_calendar")

BADGES = CalendarProvider("{prefix}_badges")
"""


def install_plugin(root: Path, prefix: str, entry_points: dict[str, str]) -> None:
    """Write a package and its dist-info (METADATA + entry_points.txt) under ``root``."""
    package = root / f"{prefix}plug"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(PLUGIN.format(prefix=prefix))
    dist = root / f"{prefix}plug-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {prefix}plug\nVersion: 1.0\n")
    lines = [f"[{ENTRY_POINT_GROUP}]"] + [f"{k} = {v}" for k, v in entry_points.items()]
    (dist / "entry_points.txt").write_text("\n".join(lines) + "\n")


def test_manager_discovers_installed_providers(tmp_path: Path) -> None:
    """In a fresh interpreter, a class, a factory and an instance entry point all register."""
    install_plugin(
        tmp_path,
        "zz",
        {
            "theme": "zzplug:ThemeProvider",
            "calendar": "zzplug:make_calendar",
            "badges": "zzplug:BADGES",
        },
    )
    code = textwrap.dedent(
        """
        import json
        from learnprivacy.providers import PrivacyManager
        manager = PrivacyManager()
        ours = [i for i in manager.component_infos() if i.component.startswith("zz_")]
        print(json.dumps({
            "components": [i.component for i in ours],
            "sources": [i.source for i in ours],
            "null": manager.get_null_reasons().get("zz_theme"),
            "tables": [t.name for t in manager.get_metadata()["zz_calendar"].database_tables],
            "delete": manager.delete_data_for_user("u1").status.value,
        }))
        """
    )
    completed = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"},
    )
    found = json.loads(completed.stdout)
    # Sorted by entry-point name: badges, calendar, theme.
    assert found["components"] == ["zz_badges", "zz_calendar", "zz_theme"]
    assert found["sources"] == [
        "entry point badges",
        "entry point calendar",
        "entry point theme",
    ]
    assert found["null"] == "Only site-wide settings."
    assert found["tables"] == ["events"]
    assert found["delete"] == "completed"


def test_explicit_provider_replaces_a_discovered_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An explicit provider with a discovered component name takes its place."""
    install_plugin(tmp_path, "yy", {"theme": "yyplug:ThemeProvider"})
    monkeypatch.syspath_prepend(str(tmp_path))
    discovered = dict(discover_providers())
    assert type(discovered["theme"]).__name__ == "ThemeProvider"

    class Replacement:
        component = "yy_theme"

        def get_reason(self) -> str:
            return "Replaced."

    manager = PrivacyManager([Replacement()])
    assert manager.component("yy_theme").source == "explicit"
    assert manager.get_null_reasons()["yy_theme"] == "Replaced."
    assert "yy_theme" not in PrivacyManager(discover=False).components


@pytest.mark.parametrize(
    ("prefix", "target", "message"),
    [
        ("xa", "xaplug_missing:Provider", "could not be loaded: ModuleNotFoundError"),
        ("xb", "xbplug:NOT_THERE", "could not be loaded: AttributeError"),
        ("xc", "xcplug:PLUGIN_NAME", "did not give a privacy provider"),
        ("xd", "xdplug:ThemeProvider.get_reason", "could not be loaded: TypeError"),
    ],
)
def test_broken_entry_point_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, prefix: str, target: str, message: str
) -> None:
    """An entry point that cannot give a provider raises ProviderError naming it."""
    install_plugin(tmp_path, prefix, {"broken": target})
    with (tmp_path / f"{prefix}plug" / "__init__.py").open("a") as module:
        module.write('PLUGIN_NAME = "not a provider"\n')
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ProviderError, match=message) as caught:
        PrivacyManager()
    assert caught.value.component == "broken"


def test_two_entry_points_for_one_component(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two installed packages claiming one component is a configuration error."""
    install_plugin(tmp_path, "ww", {"one": "wwplug:ThemeProvider", "two": "wwplug:ThemeProvider"})
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ConfigurationError, match="ww_theme"):
        PrivacyManager()
