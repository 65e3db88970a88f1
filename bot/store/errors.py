"""The store's failures, in a module of their own so that every backend can raise them without importing
the module that chooses between backends."""

from __future__ import annotations

from bot.errors import StateUnavailable


class StoreError(StateUnavailable):
    """The store cannot answer now (database unreachable, connection lost); the write did not happen or
    its outcome is unknown. Callers treat it like any transient failure: retry later, never assume."""

    # False when the store said the write did not happen (it refused it, or it was never sent): a
    # caller that reads back what it wrote after an unknown outcome need not look.
    may_have_written = True


class StoreRefused(StoreError):
    """The database answered that it did not do it (a lock it waited too long for, a deadlock), or no
    connection could be had to ask it: nothing of the write happened."""

    may_have_written = False


class StoreUnavailable(StoreError):
    """The SQLite file refused a read or a write (disk full, I/O error, damaged): raised to the caller at
    once, and nothing of that write is kept. /healthz is red until a write succeeds again."""

    may_have_written = False

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"the state file cannot be used now: {reason}")
