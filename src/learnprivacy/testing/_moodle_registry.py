"""A fixture data registry shaped after the promises in real French training-provider policies.

Accounts are kept 18 months after the last activity, training records 3 years, security
logs one year; one funded course keeps its records 6 years (funder files, protected:
an erasure request does not cut it short). The defaults for course, category and module
levels sit in ``config_plugins`` as Moodle keeps them.
"""

from __future__ import annotations

from learnprivacy.testing._moodle_state import SiteState

__all__ = ["add_registry"]

_CATEGORIES = (
    (1, "Identité et compte", "Nom, adresse électronique, identifiant de connexion."),
    (2, "Suivi pédagogique", "Progression, notes, attestations."),
    (3, "Journaux techniques", "Connexions et adresses IP."),
    (4, "Données de santé", "Aménagements liés à un handicap."),
)
# id, name, lawful bases, special-category conditions, retention, protected
_PURPOSES = (
    (1, "Plateforme et sécurité", "gdpr_art_6_1_f", None, "P1Y", 0),
    (2, "Gestion du compte", "gdpr_art_6_1_b", None, "P18M", 0),
    (3, "Suivi de formation", "gdpr_art_6_1_b,gdpr_art_6_1_f", None, "P3Y", 0),
    (4, "Dossiers financeurs (OPCO)", "gdpr_art_6_1_c", None, "P6Y", 1),
    (5, "Accompagnement du handicap", "gdpr_art_6_1_a", "gdpr_art_9_2_a", "P2Y", 0),
)


def add_registry(state: SiteState, protected_course: int | None) -> None:
    """Categories, purposes, level assignments and one course with a purpose of its own."""
    stamps = {"usermodified": 2, "timecreated": state.start, "timemodified": state.start}
    for cid, name, description in _CATEGORIES:
        state.add(
            "tool_dataprivacy_category",
            {"id": cid, "name": name, "description": description, "descriptionformat": 2, **stamps},
        )
    for pid, name, bases, reasons, period, protected in _PURPOSES:
        state.add(
            "tool_dataprivacy_purpose",
            {
                "id": pid,
                "name": name,
                "description": None,
                "descriptionformat": 1,
                "lawfulbases": bases,
                "sensitivedatareasons": reasons,
                "retentionperiod": period,
                "protected": protected,
                **stamps,
            },
        )
    # Moodle keeps the system and user levels in their own table and mirrors them in config.
    for level, purpose, category, stem in ((10, 1, 3, "system"), (30, 2, 1, "user")):
        state.add(
            "tool_dataprivacy_ctxlevel",
            {"contextlevel": level, "purposeid": purpose, "categoryid": category, **stamps},
        )
        _config(state, stem, purpose, category)
    _config(state, "coursecat", -1, -1)
    _config(state, "course", 3, 2)
    _config(state, "module", -1, -1)
    state.add(
        "config_plugins",
        {"plugin": "tool_dataprivacy", "name": "requireallenddatesforuserdeletion", "value": "1"},
    )
    if protected_course is not None:
        state.add(
            "tool_dataprivacy_ctxinstance",
            {
                "contextid": state.context_of[(50, protected_course)],
                "purposeid": 4,
                "categoryid": 2,
                **stamps,
            },
        )


def _config(state: SiteState, stem: str, purpose: int, category: int) -> None:
    for element, value in (("purpose", purpose), ("category", category)):
        state.add(
            "config_plugins",
            {
                "plugin": "tool_dataprivacy",
                "name": f"context_{stem}_{element}",
                "value": str(value),
            },
        )
