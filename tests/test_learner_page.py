"""The learner's page (index.html of an export): language, time zone, controller, rights.

Rendered from a real store, read back as text, and opened in a real headless Chromium
(its DOM read back, a screenshot saved to build/artifacts/ for people to look at).
"""

from __future__ import annotations

import datetime as dt
import io
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from examples.policies.belgian_b2b_lms import CONTROLLER as JOB_ACCESS

from learnprivacy import CNIL, Controller
from learnprivacy._documents import catalogue
from learnprivacy.crypto import Keyring
from learnprivacy.export import export_subject
from learnprivacy.providers import PrivacyManager, StoreProvider
from learnprivacy.records import Invoice, Learner, Progress, Score
from learnprivacy.retention.presets import french_training_organisation
from learnprivacy.store import Store
from tests import PageReader, assert_says, at, sample

UTC = dt.UTC
NOW = dt.datetime(2026, 6, 15, 9, 0, 0, 123456, tzinfo=UTC)
ARTIFACTS = Path(os.environ.get("LEARNPRIVACY_ARTIFACTS", "build/artifacts"))
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

CONTROLLER = Controller(
    name="Formation Exemple SAS",
    address="12 rue de la République, 69002 Lyon, France",
    contact="privacy@formation-exemple.fr",
    dpo="Claire Martin <dpo@formation-exemple.fr>",
    authority=CNIL,
)


def text_of(page: str) -> str:
    """The visible text of ``page``."""
    return PageReader(page).text


#: Léa's account (created at a microsecond), two scored progress rows and an invoice.
RECORDS = [
    sample(
        Learner,
        username="lea.dupont",
        email="lea@example.org",
        given_name="Léa",
        family_name="Dupont",
        created_at=at(2025, 1, 6, 8, 30, 15, 654321),
        last_activity_at=at(2026, 5, 2, 21, 45),
    ),
    sample(Progress, recorded_at=at(2026, 3, 1, 23, 30), score=Score(raw=17, min=0, max=20)),
    sample(
        Progress,
        id="P2",
        course_id="C2",
        recorded_at=at(2026, 4, 1, 8),
        score=Score(raw=12, min=0, max=20),
    ),
    sample(
        Invoice,
        billing_name="Léa Dupont",
        billing_address="1 rue de la Paix, Paris",
        amount=Decimal("1450.00"),
        issued_at=at(2026, 2, 1, 9),
    ),
]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store(f"sqlite:///{tmp_path / 'lms.db'}", keyring=Keyring.generate()) as opened:
        opened.add_all(RECORDS)
        yield opened


def _page(
    store: Store,
    folder: Path,
    *,
    language: str,
    timezone: str = "Europe/Paris",
    controller: Controller | None = CONTROLLER,
    scope: str = "access",
) -> Path:
    manager = PrivacyManager(
        providers=[StoreProvider(store, schedule=french_training_organisation())],
        discover=False,
    )
    out = folder / f"export-{language}-{scope}"
    export_subject(
        manager,
        "L1",
        out,
        now=NOW,
        controller=controller,
        language=language,
        timezone=timezone,
        scope=scope,
    )
    return out / "index.html"


def test_french_page_names_the_controller_rights_complaint_route_and_retention(
    store: Store, tmp_path: Path
) -> None:
    """In French: who holds the data, the DPO, every right, the CNIL, each retention."""
    html = _page(store, tmp_path, language="fr").read_text("utf-8")
    text = text_of(html)
    assert '<html lang="fr">' in html
    assert_says(
        text,
        "Vos données personnelles",
        "Formation Exemple SAS",
        "12 rue de la République, 69002 Lyon, France",
        "Claire Martin <dpo@formation-exemple.fr>",
    )
    for right in (
        "Accès (art. 15)",
        "Rectification (art. 16)",
        "Effacement (art. 17)",
        "Limitation (art. 18)",
        "Portabilité (art. 20)",
        "Opposition (art. 21)",
        "Retrait du consentement",
        "Directives post mortem",
    ):
        assert right in text
    assert_says(
        text,
        "Écrivez à Claire Martin <dpo@formation-exemple.fr>",
        "un mois",
        "CNIL",
        "3 place de Fontenoy",
        "https://www.cnil.fr/fr/plaintes",
        "18 mois (P18M) à compter de la dernière activité",
    )
    assert "120 mois" in text or "10 ans" in text  # the invoices' legal minimum
    assert "Factures" in text
    assert "Progression" in text
    # Plurals agree: two progress rows, one invoice.
    assert "2 enregistrements" in text
    assert "1 enregistrement" in text
    assert "1 records" not in text


def test_dates_are_in_the_learners_time_zone_without_microseconds(
    store: Store, tmp_path: Path
) -> None:
    """09:00 UTC is 11:00 in Paris in June; stored microseconds never show."""
    text = text_of(_page(store, tmp_path, language="fr").read_text("utf-8"))
    assert "15 juin 2026" in text
    assert "11:00" in text
    assert "Europe/Paris" in text
    # Progress P1 at 2026-03-01 23:30 UTC is already March 2nd in Paris.
    assert "2 mars 2026" in text
    assert not re.search(r"\d{2}:\d{2}:\d{2}\.\d", text)
    assert "+00:00" not in text
    (tmp_path / "ca").mkdir()
    page = _page(store, tmp_path / "ca", language="fr", timezone="America/Montreal")
    montreal = text_of(page.read_text("utf-8"))
    assert "05:00" in montreal  # 09:00 UTC in Montreal (UTC-4 in June)


def test_english_page_and_belgian_authority(store: Store, tmp_path: Path) -> None:
    """In English, for a Belgian controller: the APD/GBA is the complaint route."""
    text = text_of(_page(store, tmp_path, language="en", controller=JOB_ACCESS).read_text("utf-8"))
    assert_says(
        text,
        "Your personal data",
        "Job Access solutions SRL",
        "APD/GBA",
        "Rue de la Presse 35",
    )
    assert "CNIL" not in text.replace("in France the CNIL", "")
    assert "2 records" in text
    assert "1 record " in text or "1 record)" in text
    assert "18 months (P18M) from last activity" in text
    assert "15 June 2026" in text


def test_dutch_and_german_fall_back_to_english_until_translated(
    store: Store, tmp_path: Path
) -> None:
    """nl and de are accepted: the page says its language and shows the English text."""
    for language in ("nl", "de"):
        (tmp_path / language).mkdir()
        html = _page(store, tmp_path / language, language=language).read_text("utf-8")
        assert f'<html lang="{language}">' in html
        assert "Your rights" in text_of(html)


def test_without_a_controller_the_page_says_so_and_invents_nobody(
    store: Store, tmp_path: Path
) -> None:
    """No controller given: the page says it was not stated; no example company appears."""
    text = text_of(_page(store, tmp_path, language="en", controller=None).read_text("utf-8"))
    assert "did not state its name" in text
    assert "Example" not in text


def test_controller_values_are_escaped(store: Store, tmp_path: Path) -> None:
    """A controller name with markup is shown as text (Jinja2 autoescape)."""
    evil = Controller(name="<script>alert(1)</script>", contact="<b>x</b>@example.org")
    html = _page(store, tmp_path, language="fr", controller=evil).read_text("utf-8")
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<b>x</b>" not in html


def test_column_headers_never_break_inside_a_word(store: Store, tmp_path: Path) -> None:
    """Headers keep their words whole ("username", not "userna me"); wide tables scroll."""
    html = _page(store, tmp_path, language="en").read_text("utf-8")
    rule = re.search(r"th\{[^}]*\}", html)
    assert rule is not None
    assert "white-space:nowrap" in rule.group(0)
    assert "overflow-wrap:anywhere" not in html
    assert '<div class="wide">' in html


# -- the catalogues ----------------------------------------------------------------------


def test_message_template_is_current() -> None:
    """locale/messages.pot holds exactly what the templates and code ask to translate."""
    saved = (catalogue.LOCALE_DIR / "messages.pot").read_text("utf-8")
    assert saved == catalogue.template_text(), "run: make catalogue"


def test_french_is_complete_and_dutch_and_german_are_ready() -> None:
    """Every message has a French translation; nl and de catalogues list every message."""
    from babel.messages.pofile import read_po

    wanted = {m.id for m in catalogue.extract() if m.id}
    for language in ("fr", "nl", "de"):
        path = catalogue.LOCALE_DIR / language / "LC_MESSAGES" / "messages.po"
        catalog = read_po(io.BytesIO(path.read_bytes()), locale=language)
        present = {m.id: m for m in catalog if m.id}
        assert wanted <= set(present), language
        if language == "fr":
            untranslated = [
                m
                for m in wanted
                if not all(present[m].string)
                if isinstance(present[m].string, tuple) or not present[m].string
            ]
            assert untranslated == []


# -- a real browser ----------------------------------------------------------------------


def _chromium(*args: str, profile: Path) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    return subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",  # tests run as root in CI containers
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile}",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (.ci/run installs it)")
def test_page_renders_in_a_real_browser(store: Store, tmp_path: Path) -> None:
    """Chromium opens the French page offline: its DOM has the text; a screenshot is kept."""
    page = _page(store, tmp_path, language="fr")
    dom = _chromium("--dump-dom", page.as_uri(), profile=tmp_path / "profile-dom").stdout
    text = text_of(dom)
    assert_says(
        text,
        "Vos données personnelles",
        "Formation Exemple SAS",
        "Vos droits",
        "CNIL",
        "18 mois (P18M) à compter de la dernière activité",
    )
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "learner-page-fr.png"
    shot.unlink(missing_ok=True)
    _chromium(
        f"--screenshot={shot.resolve()}",
        "--window-size=1280,2400",
        page.as_uri(),
        profile=tmp_path / "profile-shot",
    )
    data = shot.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    assert len(data) > 20_000  # a blank page is a few kilobytes
