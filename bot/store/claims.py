"""Fast claims for the path before an ack: many threads' claims in one transaction, or, where the
store is this process's alone, in memory first and written right after.

The replay guard claims every Slack request's signature before Bolt sees it, so a burst of twenty
slash commands made twenty write transactions in a row on the request threads. On SQLite each one
holds the store's lock while it gives up the interpreter lock three times (BEGIN, INSERT, COMMIT) and
waits to get it back from busy threads, so the twentieth ack waited for nineteen of those; on
PostgreSQL each was a round trip. Here the first thread to arrive writes for everyone who arrived
while it waited or wrote (Table.claim_many: one transaction, one round trip), and each thread still
returns only after its own claim is committed, with the answer the database gave: atomic across
processes exactly as Table.claim.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from bot.store.backend import Store, StoreError, Table

logger = logging.getLogger(__name__)

Submit = Callable[[Callable[[], None]], None]


class Claims(Protocol):
    def claim(self, key: str, value: Any = True) -> bool: ...

    def forget(self, keys: list[str]) -> None:
        """The keys were deleted from the table (pruned): let memory follow."""
        ...

    def flush(self) -> None:
        """Write what was decided and not yet written (nothing, where claims are written as made)."""
        ...


def fast_claims(store: Store, table: Table, submit: Submit) -> Claims:
    """RememberedClaims (written by `submit`) where no other process shares the store, else
    GroupedClaims (not waiting for the disk: see ReplayGuard)."""
    return RememberedClaims(table, submit) if store.exclusive else GroupedClaims(table, durable=False)


@dataclass
class _Claim:
    key: str
    value: Any
    done: bool = False
    won: bool = False
    error: BaseException | None = None


class GroupedClaims:
    """Table.claim(key, value, durable=...) for many threads, committed in shared transactions."""

    def __init__(self, table: Table, *, durable: bool = True) -> None:
        self.table = table
        self.durable = durable
        self._changed = threading.Condition()
        self._waiting: list[_Claim] = []
        self._writing = False

    def claim(self, key: str, value: Any = True) -> bool:
        """True when this call wrote `key` (first caller wins); raises what the store raised."""
        mine = _Claim(key, value)
        with self._changed:
            self._waiting.append(mine)
            while not mine.done:
                if self._writing:
                    self._changed.wait()
                    continue
                batch, self._waiting, self._writing = self._waiting, [], True
                self._changed.release()
                try:
                    self._write(batch)
                finally:
                    self._changed.acquire()
                    self._writing = False
                    self._changed.notify_all()
        if mine.error is not None:
            raise mine.error
        return mine.won

    def forget(self, keys: list[str]) -> None:
        """Nothing is kept here."""

    def flush(self) -> None:
        """Every claim was written before it was answered."""

    def _write(self, batch: list[_Claim]) -> None:
        first: dict[str, _Claim] = {}
        for claim in batch:
            first.setdefault(claim.key, claim)  # the same key twice in one batch: the earlier caller wins
        try:
            won = self.table.claim_many({key: claim.value for key, claim in first.items()}, durable=self.durable)
        except BaseException as error:  # every claim of the batch fails as its own call would have
            for claim in batch:
                claim.error, claim.done = error, True
            return
        for claim in batch:
            claim.won = claim.key in won and first[claim.key] is claim
            claim.done = True


class RememberedClaims:
    """Claims decided in memory, for a store no other process can use, and written to it right after.

    Deciding in memory takes microseconds and never gives up the interpreter lock, where a write
    transaction gives it up three times; with the process alone on the store (SQLite's file lock),
    memory decides exactly as the table would. The table is read once at start, so what was claimed
    before a restart is still refused. New claims are written by `submit` (a writer of their own,
    behind no AWS call, once the burst of requests is over: within a second), not on the request's
    thread, which would hold one of the server's threads and the interpreter lock meanwhile
    (measured: `python -m bench.ack`).
    A kill -9 before the write forgets those claims at the next start (PostgreSQL's unflushed claim
    leaves the same kind of window to a crash of the database server). Claims the store refuses (a
    full disk) are kept and written by the next write, or by a retry `retry_seconds` later.
    """

    def __init__(self, table: Table, submit: Submit, *, retry_seconds: float = 5.0) -> None:
        self.table = table
        self.retry_seconds = retry_seconds
        self._submit = submit
        self._lock = threading.Lock()
        self._claimed: set[str] = set(table.keys())
        self._unwritten: dict[str, Any] = {}
        self._write_queued = False
        # One write at a time: the last write at shutdown waits for one still in progress, which the
        # store's close would otherwise cut short.
        self._writing = threading.Lock()

    def claim(self, key: str, value: Any = True) -> bool:
        with self._lock:
            if key in self._claimed:
                return False
            self._claimed.add(key)
            self._unwritten[key] = value
            queue_write = not self._write_queued
            self._write_queued = True
        if queue_write:
            self._submit(self.flush)
        return True

    def forget(self, keys: list[str]) -> None:
        with self._lock:
            self._claimed.difference_update(keys)

    def flush(self) -> None:
        """Writes what is claimed and not yet written (after any write in progress)."""
        with self._writing:
            self._write()

    def _write(self) -> None:
        with self._lock:
            batch, self._unwritten, self._write_queued = self._unwritten, {}, False
        if not batch:
            return
        try:
            self.table.put_many(batch)
        except StoreError as error:
            logger.warning("kept %d request claims in memory: the store refused them (%s)", len(batch), error)
            with self._lock:
                self._unwritten = {**batch, **self._unwritten}
                retry = not self._write_queued
                self._write_queued = True
            if retry:
                timer = threading.Timer(self.retry_seconds, self._submit, args=(self.flush,))
                timer.daemon = True
                timer.start()
