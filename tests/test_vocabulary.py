"""One vocabulary: each shared word is defined once, below every package, and used everywhere."""

from __future__ import annotations

import ast
import datetime as dt
import importlib
import pkgutil
import re
from pathlib import Path

import pytest

import learnprivacy
from learnprivacy import Action, Article, ContextLevel, Controller
from learnprivacy.errors import ValidationError
from learnprivacy.records import Learner, Progress
from learnprivacy.retention import Hold, Period, RetentionRule, Schedule, Trigger
from tests import NOW, sample

SRC = Path(learnprivacy.__file__).parent


def _configure_django() -> None:
    """A minimal Django configuration, so that ``learnprivacy.django``'s models import and
    are checked like every other module (Django itself is an optional extra)."""
    try:
        import django
        from django.conf import settings
    except ImportError:
        return
    if not settings.configured:
        settings.configure(
            INSTALLED_APPS=[
                "django.contrib.contenttypes",
                "django.contrib.auth",
                "learnprivacy.django",
            ],
            DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
            USE_TZ=True,
        )
        django.setup()


def _modules() -> list[object]:
    """Every module of the library that imports without optional extras."""
    _configure_django()
    found = [learnprivacy]
    for info in pkgutil.walk_packages(learnprivacy.__path__, "learnprivacy."):
        if ".migrations" in info.name or info.name.endswith("pytest_plugin"):
            continue
        try:
            found.append(importlib.import_module(info.name))
        except ImportError:  # an optional extra that is not installed
            continue
    return found


def _sources() -> list[tuple[Path, ast.Module]]:
    return [(p, ast.parse(p.read_text())) for p in sorted(SRC.rglob("*.py"))]


@pytest.mark.parametrize("name", ["Controller", "ContextLevel", "Action", "Article"])
def test_each_shared_word_is_one_class(name: str) -> None:
    """No module of the library defines or holds a second class of a shared word's name."""
    word = getattr(learnprivacy, name)
    for module in _modules():
        for attr, value in vars(module).items():
            if isinstance(value, type) and value.__name__ == name:
                assert value is word, f"{module.__name__}.{attr} is another {name}"
    defined = [
        path.relative_to(SRC)
        for path, tree in _sources()
        for node in ast.walk(tree)
        if isinstance(node, ast.ClassDef) and node.name == name
    ]
    assert len(defined) == 1, defined


def test_context_levels_are_moodles() -> None:
    """ContextLevel carries Moodle's CONTEXT_* constants, all six of them."""
    assert {level.name: int(level) for level in ContextLevel} == {
        "SYSTEM": 10,
        "USER": 30,
        "COURSECAT": 40,
        "COURSE": 50,
        "MODULE": 70,
        "BLOCK": 80,
    }
    from learnprivacy.providers import Context

    assert Context.module(7).level is ContextLevel.MODULE
    assert Context(ContextLevel.BLOCK, 3).level is ContextLevel.BLOCK


def test_gdpr_articles_are_written_once() -> None:
    """An article reference ("GDPR Art. 17(1)", "Art. 45") is a string constant only in the
    Article table (docstrings aside)."""
    article = re.compile(r"^(GDPR )?Art\. \d+(\(\w+\))*$")
    elsewhere = [
        f"{path.relative_to(SRC)}:{node.lineno}"
        for path, tree in _sources()
        if path.name != "_vocabulary.py" or path.parent != SRC
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and article.match(node.value)
    ]
    assert elsewhere == []
    assert Article.ART_17_3_B == "GDPR Art. 17(3)(b)"
    assert Article.ART_45.short == "Art. 45"


def test_one_timezone_check() -> None:
    """No module but the validators tests tzinfo/utcoffset() against None by hand."""
    hand_written = []
    for path, tree in _sources():
        if path.name == "_validators.py":
            continue
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Compare)
                and any(isinstance(op, ast.Is | ast.IsNot) for op in node.ops)
                and any(isinstance(c, ast.Constant) and c.value is None for c in node.comparators)
            ):
                left = node.left
                if isinstance(left, ast.Attribute) and left.attr == "tzinfo":
                    hand_written.append(f"{path.relative_to(SRC)}:{node.lineno}")
                if (
                    isinstance(left, ast.Call)
                    and isinstance(left.func, ast.Attribute)
                    and left.func.attr == "utcoffset"
                ):
                    hand_written.append(f"{path.relative_to(SRC)}:{node.lineno}")
    assert hand_written == []
    functions = [
        path.relative_to(SRC)
        for path, tree in _sources()
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef) and node.name == "require_aware"
    ]
    assert functions == [Path("_validators.py")]


def _files_saying(text: str) -> list[str]:
    """The modules with a string (or a piece of an f-string) containing ``text``."""
    return sorted(
        {
            str(path.relative_to(SRC))
            for path, tree in _sources()
            for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and text in node.value
        }
    )


def test_one_hash_chain() -> None:
    """Every audit log and request history walks its links with the one chain code, and
    every audit log checks its sealed head with one head check: each refusal is worded
    in one place (a second walk or check, as Django's audit log once had, words it again)."""
    assert _files_saying("missing or out of order") == ["_chain.py"]
    assert _files_saying("head seal is invalid") == ["store/_audit.py"]
    assert _files_saying("content altered") == ["_chain.py"]


def test_action_is_what_retention_store_and_requests_report() -> None:
    """Decisions, erasure outcomes and request outcomes all carry the one Action enum."""
    from learnprivacy.requests._outcomes import RecordOutcome
    from learnprivacy.retention import Action as RetentionAction
    from learnprivacy.store._reports import ErasureOutcome

    assert RetentionAction is Action
    for cls in (RecordOutcome, ErasureOutcome):
        assert cls.__annotations__["action"] == "Action", cls
    outcome = RecordOutcome(
        record_type="Learner", record_id="L1", action=Action.ERASE, article=Article.ART_17_1
    )
    assert RecordOutcome.from_dict(outcome.to_dict()) == outcome
    # A request book written with the past tense still loads.
    assert RecordOutcome.from_dict({**outcome.to_dict(), "action": "erased"}) == outcome
    assert Action.ERASE.done == "erased"
    assert Action.UPHOLD_OBJECTION.done == "objection_upheld"


def test_a_retention_rule_only_takes_retention_actions() -> None:
    """A rule asking to 'export' or 'rectify' is refused: those are request outcomes."""
    from learnprivacy.errors import ConfigurationError

    with pytest.raises(ConfigurationError):
        RetentionRule(Period.parse("P1Y"), Trigger.CREATED, action=Action.EXPORT)
    assert RetentionRule(Period.parse("P1Y"), Trigger.CREATED, action=Action.ANONYMISE)


def _ana() -> Learner:
    return sample(Learner, last_activity_at=dt.datetime(2024, 1, 31, tzinfo=dt.UTC))


def _progress() -> Progress:
    return sample(Progress, recorded_at=dt.datetime(2024, 1, 31, tzinfo=dt.UTC))


SCHEDULE = Schedule({Progress: RetentionRule(Period.parse("P18M"), Trigger.LAST_ACTIVITY)})


def test_subject_is_a_learner_id_and_learner_the_object() -> None:
    """evaluate(subject="L1") checks ownership; learner= gives the dates; both agree."""
    ana, progress = _ana(), _progress()
    by_learner = SCHEDULE.evaluate(progress, now=NOW, learner=ana)
    assert by_learner.action is Action.ERASE
    assert SCHEDULE.evaluate(progress, now=NOW, subject="L1", learner=ana) == by_learner
    # An id alone proves ownership but gives no activity date: a person must review.
    assert SCHEDULE.evaluate(progress, now=NOW, subject="L1").action is Action.REVIEW
    with pytest.raises(ValidationError):
        SCHEDULE.evaluate(progress, now=NOW, subject="L2")
    with pytest.raises(ValidationError):
        SCHEDULE.evaluate(progress, now=NOW, subject="L2", learner=ana)
    # Holds speak the same word: subject is a learner id.
    held = SCHEDULE.evaluate(progress, now=NOW, learner=ana, holds=[Hold("audit", subject="L1")])
    assert held.action is Action.KEEP


def test_the_contracts_subject_learner_spelling_still_works() -> None:
    """DESIGN.md's evaluate(record, subject=learner) reads the Learner object as learner=."""
    ana, progress = _ana(), _progress()
    assert SCHEDULE.evaluate(progress, now=NOW, subject=ana, holds=(), erasure_requested=False) == (
        SCHEDULE.evaluate(progress, now=NOW, learner=ana)
    )
    other = _ana().__class__(**{**_learner_fields(ana), "id": "L2"})
    with pytest.raises(ValidationError):
        SCHEDULE.evaluate(progress, now=NOW, subject=other)


def _learner_fields(learner: Learner) -> dict[str, object]:
    import attrs

    return {a.name: getattr(learner, a.name) for a in attrs.fields(Learner)}


def test_one_controller_serves_register_and_letters() -> None:
    """The register's controller is the letters' controller; the DPO answers when declared."""
    controller = Controller(name="Acme", contact="info@acme.example", dpo="dpo@acme.example")
    assert controller.reply_to == "dpo@acme.example"
    assert Controller(name="Acme", contact="info@acme.example").reply_to == "info@acme.example"
    with pytest.raises(ValidationError):
        Controller(name=" ", contact="info@acme.example")


def test_the_architecture_page_names_the_vocabulary() -> None:
    """docs/architecture.md is in the site's navigation and names every shared word."""
    root = SRC.parents[1]
    page = (root / "docs" / "architecture.md").read_text()
    assert "architecture.md" in (root / "mkdocs.yml").read_text()
    for word in ("Action", "Article", "ContextLevel", "Controller", "subject"):
        assert f"`{word}`" in page or f"**`{word}`**" in page, word


#: ``batch_size`` parameters whose unit is not rows or keys per transaction: statements
#: per HTTP request to an LRS (a request of 10,000 statements would be refused).
_OTHER_BATCH_UNITS = {"learnprivacy.export._lrs.send_statements"}


def _batch_size_defaults() -> dict[str, object]:
    """The ``batch_size`` default of every function and method a public module exports
    (a required ``batch_size``, or ``None`` for "the store's own", is not a default)."""
    import inspect

    found: dict[str, object] = {}
    for module in _modules():
        if any(part.startswith("_") for part in module.__name__.split(".")):
            continue
        for name in getattr(module, "__all__", ()):
            value = getattr(module, name)
            members = [(name, value)]
            if inspect.isclass(value):
                members += [
                    (f"{name}.{m}", f)
                    for m, f in vars(value).items()
                    if inspect.isfunction(f) and (m == "__init__" or not m.startswith("_"))
                ]
            for qualified, function in members:
                try:
                    parameter = inspect.signature(function).parameters.get("batch_size")
                except (TypeError, ValueError):
                    continue
                if parameter is not None and isinstance(parameter.default, int):
                    where = getattr(function, "__module__", module.__name__)
                    found[f"{where}.{qualified}"] = parameter.default
    return found


def test_one_batch_size_default() -> None:
    """Every ``batch_size`` counted in rows or keys defaults to the one ``BATCH_SIZE``
    (``Schedule.plan`` once batched 4,096 records while the store's sweep batched 10,000)."""
    from learnprivacy._vocabulary import BATCH_SIZE

    defaults = _batch_size_defaults()
    assert "learnprivacy.retention._schedule.Schedule.plan" in defaults
    assert "learnprivacy.store._store.Store.__init__" in defaults
    others = {k: v for k, v in defaults.items() if k not in _OTHER_BATCH_UNITS}
    assert {k: v for k, v in others.items() if v != BATCH_SIZE} == {}
    assert set(defaults) >= _OTHER_BATCH_UNITS


def test_one_now_for_tests() -> None:
    """No test module declares the shared test instant ``tests.NOW`` again under its own
    name: a second copy drifts the day one of them changes."""
    tests = Path(__file__).parent
    again = []
    for path in sorted(tests.rglob("*.py")):
        if path == tests / "__init__.py":
            continue
        for node in ast.parse(path.read_text()).body:
            if not isinstance(node, ast.Assign) or not isinstance(node.value, ast.Call):
                continue
            call = node.value
            if not (isinstance(call.func, ast.Attribute) and call.func.attr == "datetime"):
                continue
            if not all(isinstance(a, ast.Constant) for a in call.args):
                continue
            naive = dt.datetime(*[a.value for a in call.args])
            if naive == NOW.replace(tzinfo=None):
                again.append(f"{path.name}:{node.lineno}")
    assert again == []


def test_field_declarations_read_alike() -> None:
    """A record's ``personal``/``not_personal`` take their leading arguments as the
    SQLAlchemy binding's do (category, description; description), and ``optional=True``
    means what it means for ``dated``: ``None`` by default and accepted."""
    import inspect

    import attrs

    from learnprivacy import sqlalchemy as lps
    from learnprivacy.basis import DataCategory
    from learnprivacy.records import not_personal, personal

    def leading(function: object, count: int) -> list[str]:
        return list(inspect.signature(function).parameters)[:count]  # type: ignore[arg-type]

    assert leading(personal, 2) == leading(lps.personal, 2) == ["category", "description"]
    assert leading(not_personal, 1) == leading(lps.not_personal, 1) == ["description"]

    def filled(_instance: object, _attribute: object, value: object) -> None:
        if not isinstance(value, str) or not value.strip():
            raise ValidationError("blank", field="text")

    @attrs.frozen(kw_only=True)
    class Note:
        text: str | None = personal(
            DataCategory.COMMUNICATION, "Text", validator=filled, optional=True
        )
        room: str | None = not_personal("Room", validator=filled, optional=True)

    assert Note().text is None
    assert Note(text=None, room=None).room is None
    assert Note(text="hello", room="B2").text == "hello"
    for bad in ({"text": " "}, {"room": " "}):
        with pytest.raises(ValidationError):
            Note(**bad)  # type: ignore[arg-type]
