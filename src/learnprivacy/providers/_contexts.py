"""Contexts and the lists a request passes between the manager and the providers.

A :class:`Context` is where data lives (the whole site, a user, a category, a course, an
activity module, a block), as Moodle's ``context`` table; its level is the shared
:class:`learnprivacy.ContextLevel`. Providers answer ``get_contexts_for_userid`` with a
:class:`ContextList`; the manager approves it into an immutable
:class:`ApprovedContextList` before asking for an export or a deletion. The user-list pair
(:class:`UserList`, :class:`ApprovedUserList`) works the other way round: the users who
have data in one context.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator
from typing import Any, Generic, TypeVar

import attrs

from learnprivacy._vocabulary import ContextLevel
from learnprivacy.errors import ValidationError

__all__ = [
    "ApprovedContextList",
    "ApprovedUserList",
    "Context",
    "ContextList",
    "UserList",
]


def _level(value: object) -> ContextLevel:
    try:
        return ContextLevel(value)  # type: ignore[arg-type]
    except (ValueError, TypeError):
        raise ValidationError("unknown context level", field="Context.level") from None


def _identifier(value: object, field: str) -> str:
    # Moodle ids are integers and ours are strings: both are accepted, stored as text.
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ValidationError(f"{field} must be a string or an integer", field=field)
    text = str(value)
    if not text:
        raise ValidationError(f"{field} must not be empty", field=field)
    return text


def _instance(value: object) -> str:
    return _identifier(value, "Context.instance_id")


def _mask(_value: object) -> str:
    return "'***'"


@attrs.frozen(order=True)
class Context:
    """Where data lives: ``Context(ContextLevel.COURSE, "C1")``.

    The system context has instance ``"0"`` (Moodle's ``instanceid`` for it); a user
    context's instance is the user id, which ``repr`` masks.
    """

    level: ContextLevel = attrs.field(converter=_level)
    instance_id: str = attrs.field(converter=_instance)

    def __attrs_post_init__(self) -> None:
        if self.level is ContextLevel.SYSTEM and self.instance_id != "0":
            raise ValidationError(
                "the system context has instance id '0'", field="Context.instance_id"
            )

    def __repr__(self) -> str:
        # A user context's instance is a user id: personal, so masked.
        shown = _mask(None) if self.level is ContextLevel.USER else repr(self.instance_id)
        return f"Context({self.level.name}, {shown})"

    def __str__(self) -> str:
        if self.level is ContextLevel.USER:
            return "user/***"
        return f"{self.level.name.lower()}/{self.instance_id}"

    @classmethod
    def system(cls) -> Context:
        """The one system (site-wide) context."""
        return cls(ContextLevel.SYSTEM, "0")

    @classmethod
    def user(cls, user_id: str | int) -> Context:
        """The context of a user (their profile, preferences, private files)."""
        return cls(ContextLevel.USER, user_id)

    @classmethod
    def course(cls, course_id: str | int) -> Context:
        """The context of a course."""
        return cls(ContextLevel.COURSE, course_id)

    @classmethod
    def module(cls, module_id: str | int) -> Context:
        """The context of an activity module (a forum, a quiz, a video-conference)."""
        return cls(ContextLevel.MODULE, module_id)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form."""
        return {"level": self.level.name.lower(), "instance_id": self.instance_id}


def _contexts(values: Iterable[Context]) -> tuple[Context, ...]:
    result: dict[Context, None] = {}
    for context in values:
        if not isinstance(context, Context):
            raise ValidationError("a context list holds Context objects", field="contexts")
        result[context] = None
    return tuple(result)


_T = TypeVar("_T")


class Ordered(Generic[_T]):
    """What a mutable, ordered collection of a provider API answers: iteration (over a
    snapshot, so adding while iterating is safe), length and membership of ``_held``."""

    _held: Collection[_T]

    def __iter__(self) -> Iterator[_T]:
        return iter(tuple(self._held))

    def __len__(self) -> int:
        return len(self._held)

    def __contains__(self, item: object) -> bool:
        return item in self._held


class ContextList(Ordered[Context]):
    """The contexts where a provider holds data about one user (mutable, de-duplicated).

    Order is kept (first added first), duplicates are dropped, as Moodle's ``contextlist``.
    """

    def __init__(self, contexts: Iterable[Context] = (), *, component: str | None = None) -> None:
        self._held: dict[Context, None] = dict.fromkeys(_contexts(contexts))
        self.component = component

    def add(self, context: Context) -> ContextList:
        """Add one context; returns the list for chaining."""
        self._held.update(dict.fromkeys(_contexts((context,))))
        return self

    def add_all(self, contexts: Iterable[Context]) -> ContextList:
        """Add several contexts; returns the list for chaining."""
        self._held.update(dict.fromkeys(_contexts(contexts)))
        return self

    def add_system_context(self) -> ContextList:
        """Add the system context."""
        return self.add(Context.system())

    def add_user_context(self, user_id: str | int) -> ContextList:
        """Add the context of ``user_id``."""
        return self.add(Context.user(user_id))

    @property
    def contexts(self) -> tuple[Context, ...]:
        """The contexts, in the order they were added."""
        return tuple(self._held)

    def __repr__(self) -> str:
        return f"ContextList(component={self.component!r}, contexts={len(self._held)})"


def normalise_user_id(value: object) -> str:
    """A user id as text (integers accepted, as Moodle's); empty or other types raise."""
    return _identifier(value, "user_id")


@attrs.frozen(kw_only=False)
class ApprovedContextList:
    """The contexts approved for one user's request to one component (immutable).

    Providers receive it in ``export_user_data`` and ``delete_data_for_user`` and must
    act on exactly these contexts for exactly this user.
    """

    user_id: str = attrs.field(converter=normalise_user_id, repr=_mask)
    contexts: tuple[Context, ...] = attrs.field(converter=_contexts)
    component: str = attrs.field(default="", kw_only=True)

    @classmethod
    def approve(cls, user_id: str | int, contextlist: ContextList) -> ApprovedContextList:
        """Approve everything ``contextlist`` holds for ``user_id``."""
        return cls(user_id, contextlist.contexts, component=contextlist.component or "")

    def __iter__(self) -> Iterator[Context]:
        return iter(self.contexts)

    def __len__(self) -> int:
        return len(self.contexts)

    def __contains__(self, context: object) -> bool:
        return context in self.contexts


def _users(values: Iterable[str | int]) -> tuple[str, ...]:
    if isinstance(values, str | bytes):
        raise ValidationError("user ids must be given as a collection", field="user_ids")
    return tuple(dict.fromkeys(normalise_user_id(v) for v in values))


class UserList(Ordered[str]):
    """The users who have data in one context for one component (mutable, de-duplicated).

    A :class:`UserListProvider` fills it in ``get_users_in_context``.
    """

    def __init__(self, context: Context, component: str) -> None:
        if not isinstance(context, Context):
            raise ValidationError("a user list belongs to a Context", field="context")
        self.context = context
        self.component = component
        self._held: dict[str, None] = {}

    def add_user(self, user_id: str | int) -> UserList:
        """Add one user id; returns the list for chaining."""
        self._held[normalise_user_id(user_id)] = None
        return self

    def add_users(self, user_ids: Iterable[str | int]) -> UserList:
        """Add several user ids; returns the list for chaining."""
        self._held.update(dict.fromkeys(_users(user_ids)))
        return self

    @property
    def user_ids(self) -> tuple[str, ...]:
        """The user ids, in the order they were added."""
        return tuple(self._held)

    def __contains__(self, user_id: object) -> bool:
        return str(user_id) in self._held

    def __repr__(self) -> str:
        return f"UserList({self.context!r}, {self.component!r}, users={len(self._held)})"


@attrs.frozen
class ApprovedUserList:
    """The users approved for deletion in one context of one component (immutable)."""

    context: Context
    component: str
    user_ids: tuple[str, ...] = attrs.field(converter=_users, repr=lambda v: f"<{len(v)} users>")

    @classmethod
    def from_userlist(cls, userlist: UserList) -> ApprovedUserList:
        """Approve every user ``userlist`` holds."""
        return cls(userlist.context, userlist.component, userlist.user_ids)

    def __iter__(self) -> Iterator[str]:
        return iter(self.user_ids)

    def __len__(self) -> int:
        return len(self.user_ids)

    def __contains__(self, user_id: object) -> bool:
        return str(user_id) in self.user_ids
