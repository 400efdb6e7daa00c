"""Contexts, context lists and user lists."""

from __future__ import annotations

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from learnprivacy.errors import ValidationError
from learnprivacy.providers import (
    ApprovedContextList,
    ApprovedUserList,
    Context,
    ContextLevel,
    ContextList,
    UserList,
)

contexts = st.builds(
    Context,
    st.sampled_from([ContextLevel.USER, ContextLevel.COURSE, ContextLevel.MODULE]),
    st.text("abc123", min_size=1, max_size=3),
) | st.just(Context.system())


def test_levels_are_moodle_constants() -> None:
    """The levels carry Moodle's CONTEXT_* values."""
    assert [int(level) for level in ContextLevel] == [10, 30, 40, 50, 70, 80]
    assert Context(50, "C1") == Context.course("C1")


def test_constructors_and_text_forms() -> None:
    """Shortcuts build the four levels; integer ids become text; user ids are masked."""
    assert Context.system() == Context(ContextLevel.SYSTEM, 0)
    assert Context.module(7).instance_id == "7"
    assert str(Context.course("C1")) == "course/C1"
    assert "ana" not in repr(Context.user("ana"))
    assert "ana" not in str(Context.user("ana"))
    assert Context.course("C1").to_dict() == {"level": "course", "instance_id": "C1"}


@pytest.mark.parametrize(
    "args", [(ContextLevel.SYSTEM, "3"), (99, "1"), (ContextLevel.COURSE, ""), (50, None)]
)
def test_bad_contexts_are_refused(args: tuple[object, object]) -> None:
    """Unknown levels, empty ids and a system context other than '0' are refused."""
    with pytest.raises(ValidationError):
        Context(*args)  # type: ignore[arg-type]


@given(st.lists(contexts, max_size=12))
def test_context_list_keeps_first_order_without_duplicates(values: list[Context]) -> None:
    """A ContextList is an ordered set of contexts."""
    listed = ContextList(values[:3]).add_all(values[3:])
    expected = list(dict.fromkeys(values))
    assert list(listed) == expected
    assert len(listed) == len(expected)
    assert all(c in listed for c in values)


def test_context_list_helpers() -> None:
    """System and user contexts can be added directly; the list chains."""
    listed = ContextList(component="mod_x").add_system_context().add_user_context("u1")
    assert listed.contexts == (Context.system(), Context.user("u1"))
    with pytest.raises(ValidationError):
        ContextList(["course/C1"])  # type: ignore[list-item]


def test_approved_context_list_is_immutable() -> None:
    """An approved list cannot be changed and masks the user id in repr."""
    approved = ApprovedContextList("ana", [Context.course("C1"), Context.course("C1")])
    assert approved.contexts == (Context.course("C1"),)
    assert len(approved) == 1
    assert Context.course("C1") in approved
    assert "ana" not in repr(approved)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        approved.user_id = "ben"  # type: ignore[misc]
    source = ContextList([Context.course("C2")], component="mod_x")
    from_list = ApprovedContextList.approve(7, source)
    source.add(Context.course("C3"))
    assert from_list.contexts == (Context.course("C2"),)
    assert from_list.user_id == "7"
    assert from_list.component == "mod_x"


def test_user_lists() -> None:
    """A UserList collects distinct ids; its approval is an immutable copy."""
    userlist = UserList(Context.module("F1"), "mod_forum").add_user("a").add_users(["b", 3, "a"])
    assert userlist.user_ids == ("a", "b", "3")
    assert 3 in userlist
    assert "c" not in userlist
    approved = ApprovedUserList.from_userlist(userlist)
    userlist.add_user("d")
    assert approved.user_ids == ("a", "b", "3")
    assert approved.context == Context.module("F1")
    assert approved.component == "mod_forum"
    assert "'a'" not in repr(approved)
    with pytest.raises(ValidationError):
        ApprovedUserList(Context.system(), "mod_x", "abc")  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        UserList("course/C1", "mod_x")  # type: ignore[arg-type]
