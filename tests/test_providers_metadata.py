"""MetadataCollection and its typed, immutable items."""

from __future__ import annotations

import attrs
import pytest

from learnprivacy import DataCategory, LawfulBasis
from learnprivacy.errors import UnknownCodeError, ValidationError
from learnprivacy.providers import MetadataCollection
from learnprivacy.providers._items import (
    DatabaseTable,
    ExternalLocation,
    ItemKind,
    SubsystemLink,
    UserPreference,
)
from learnprivacy.retention import Period, Trigger


def forum_collection() -> MetadataCollection:
    """A collection declaring one item of each kind."""
    return (
        MetadataCollection("mod_forum")
        .add_database_table(
            "forum_posts",
            {"user_id": "The author", "message": "The text"},
            "Posts",
            purpose="Course discussions",
            basis="gdpr_art_6_1_b",
            categories=["communication", DataCategory.LEARNING],
            retention="P18M",
            retention_from="last_activity",
            summary_id="privacy:metadata:forum_posts",
            field_ids={"message": "privacy:metadata:forum_posts:message"},
        )
        .add_external_location_link(
            "opco",
            {"user_id": "The trainee", "progress": "Hours completed"},
            "Attendance sent to the funder",
            purpose="Training funding",
            basis=LawfulBasis.LEGAL_OBLIGATION,
            recipient="OPCO Atlas",
            country="fr",
        )
        .add_subsystem_link("core_files", "Attachments of posts")
        .add_user_preference("forum_digest", "Whether posts are mailed as a digest")
    )


def test_items_are_typed_and_in_order() -> None:
    """Each add_* call adds one typed item; the collection keeps declaration order."""
    collection = forum_collection()
    assert collection.component == "mod_forum"
    assert [type(i) for i in collection] == [
        DatabaseTable,
        ExternalLocation,
        SubsystemLink,
        UserPreference,
    ]
    assert [i.kind for i in collection.items] == list(ItemKind)
    assert collection.database_tables[0].name == "forum_posts"
    assert collection.external_locations[0].recipient == "OPCO Atlas"
    assert collection.of_type(SubsystemLink)[0].summary == "Attachments of posts"
    assert collection.of_type(UserPreference)[0].name == "forum_digest"
    assert len(collection) == 4


def test_register_facts_are_normalised() -> None:
    """Moodle codes become LawfulBasis, names become DataCategory, ISO text becomes Period."""
    table = forum_collection().database_tables[0]
    assert table.basis is LawfulBasis.CONTRACT
    assert table.categories == (DataCategory.COMMUNICATION, DataCategory.LEARNING)
    assert table.retention == Period(months=18)
    assert table.retention_from is Trigger.LAST_ACTIVITY
    assert table.field_names == ("user_id", "message")
    assert table.summary_id == "privacy:metadata:forum_posts"
    assert forum_collection().external_locations[0].country == "FR"


def test_items_are_immutable() -> None:
    """Neither an item's attributes nor its fields mapping can be changed."""
    table = forum_collection().database_tables[0]
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        table.name = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        table.fields["extra"] = "sneaked in"  # type: ignore[index]
    fields = {"user_id": "The author"}
    collection = MetadataCollection("mod_x").add_database_table("t", fields, "T")
    fields["message"] = "added later"
    assert collection.database_tables[0].field_names == ("user_id",)


def test_items_compare_and_hash() -> None:
    """Equal declarations are equal and hashable, so they can be collected in sets."""
    first = forum_collection().database_tables[0]
    second = forum_collection().database_tables[0]
    assert first == second
    assert len({first, second}) == 1


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"basis": "gdpr_art_6_1_z"}, UnknownCodeError),
        ({"basis": 6}, ValidationError),
        ({"categories": ["gossip"]}, UnknownCodeError),
        ({"retention": "18 months"}, ValidationError),
        ({"retention_from": "birthday"}, ValidationError),
        ({"purpose": "  "}, ValidationError),
        ({"summary_id": "not an id!"}, ValidationError),
        ({"field_ids": {"user_id": "bad id"}}, ValidationError),
    ],
)
def test_bad_register_facts_are_refused(kwargs: dict[str, object], error: type[Exception]) -> None:
    """Unknown codes, categories, malformed periods and ids raise the library's errors."""
    with pytest.raises(error):
        MetadataCollection("mod_x").add_database_table(
            "t",
            {"user_id": "User"},
            "T",
            **kwargs,  # type: ignore[arg-type]
        )


def test_a_table_needs_fields_and_a_name() -> None:
    """A table without fields or a name is refused (Moodle only warns)."""
    with pytest.raises(ValidationError, match="declares no field"):
        MetadataCollection("mod_x").add_database_table("t", {}, "T")
    with pytest.raises(ValidationError):
        MetadataCollection("mod_x").add_database_table("", {"a": "b"}, "T")
    with pytest.raises(ValidationError):
        MetadataCollection("mod_x").add_database_table("t", {"a": 3}, "T")  # type: ignore[dict-item]


def test_one_table_per_purpose() -> None:
    """A table may serve two purposes, but the same purpose twice is refused."""
    collection = MetadataCollection("learnprivacy_store")
    collection.add_database_table("Invoice", {"amount": "Amount"}, "Invoices", purpose="Billing")
    collection.add_database_table("Invoice", {"amount": "Amount"}, "Invoices", purpose="Audit")
    with pytest.raises(ValidationError, match="twice"):
        collection.add_database_table("Invoice", {"amount": "A"}, "Invoices", purpose="Audit")
    assert len(collection.database_tables) == 2


def test_to_dict_is_json_ready() -> None:
    """to_dict gives codes and ISO strings, ready for json.dumps."""
    data = forum_collection().to_dict()
    table = data["items"][0]
    assert table["basis"] == "gdpr_art_6_1_b"
    assert table["retention"] == "P18M"
    assert table["retention_from"] == "last_activity"
    assert table["categories"] == ["communication", "learning"]
    assert table["fields"] == {"user_id": "The author", "message": "The text"}
    assert data["items"][1]["recipient"] == "OPCO Atlas"


def test_collection_needs_a_component() -> None:
    """A collection without component name is refused."""
    with pytest.raises(ValidationError):
        MetadataCollection("")
