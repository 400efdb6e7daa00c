"""One context-manager protocol for what holds connections: ``with`` closes it."""

from __future__ import annotations

import abc
from typing import Self

__all__ = ["Closing"]


class Closing(abc.ABC):
    """``with thing:`` gives ``thing`` and calls its :meth:`close` on the way out, whether
    the block raised or not (an error is never swallowed)."""

    __slots__ = ()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    @abc.abstractmethod
    def close(self) -> None:
        """Release what the object holds; calling it again does nothing."""
