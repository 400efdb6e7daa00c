"""Random 96-bit nonces, drawn from the operating system in blocks.

``os.urandom(12)`` costs a system call per value, about as much as the AES-GCM operation
it serves. Drawing 4,096 nonces per call and handing them out one by one keeps every nonce
a fresh output of the operating system's CSPRNG (nonces are public, so holding a few in
memory ahead of use reveals nothing), at a fraction of the cost.

Two hazards are handled:

* threads: ``deque.popleft`` is atomic, so no nonce is ever handed out twice;
* ``fork``: a child process would inherit the parent's unused nonces and reuse them
  under the same keys, so the pool is emptied in the child right after a fork.
"""

from __future__ import annotations

import os
from collections import deque

__all__ = ["NONCE_SIZE", "inject", "random_nonce", "take"]

NONCE_SIZE = 12
_BATCH = 4096
# The slices cutting one block into nonces, made once: ``map`` over them cuts a block at
# about half the cost of a comprehension computing each bound. The first nonce of a
# block is returned at once, so the cuts start at the second.
_CUTS = tuple(slice(i, i + NONCE_SIZE) for i in range(NONCE_SIZE, NONCE_SIZE * _BATCH, NONCE_SIZE))

_pool: deque[bytes] = deque()
os.register_at_fork(after_in_child=_pool.clear)

#: The next pooled nonce; raises ``IndexError`` when the pool is empty, in which case
#: call :func:`random_nonce`. Hot paths call it directly to save a function call.
take = _pool.popleft


def random_nonce() -> bytes:
    """A fresh 12-byte random nonce, never returned twice in this process."""
    try:
        return _pool.popleft()
    except IndexError:
        block = os.urandom(NONCE_SIZE * _BATCH)
        _pool.extend(map(block.__getitem__, _CUTS))
        return block[:NONCE_SIZE]


def inject(nonce: bytes) -> None:
    """Make ``nonce`` the next one handed out. For the test vectors only: a nonce must
    never be reused with the same key, which only a fixed test key makes harmless.
    """
    _pool.appendleft(nonce)
