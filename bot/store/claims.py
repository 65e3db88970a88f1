"""Fast claims for the path before an ack: decided in memory at once, written to the store right after.

The replay guard claims every Slack request's signature before Bolt sees it, so every ack waits for
its claim. As a write transaction on the request's thread, a burst of twenty slash commands made
twenty in a row: on SQLite each held the store's lock while it gave up the interpreter lock three
times (BEGIN, INSERT, COMMIT) and waited to get it back from busy threads; on PostgreSQL each was a
round trip, then a wait for the interpreter lock, and an ack waited for every claim written before
its own (measured: `python -m bench.ack`). Here a claim is decided in this process's memory, which
takes microseconds, and written after:
- RememberedClaims, where no other process uses the store (SQLite's file lock): memory decides
  exactly as the table would.
- SharedClaims, where other replicas share it (PostgreSQL): memory refuses what this process saw,
  and the database confirms the rest moments later (once the burst of requests is acked), atomically
  across processes. What a request does after its ack waits for that confirmation (`admit` returns
  it; bot.ack_first carries it to the request's after-ack work), so a request that reached two
  replicas is served by one.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from bot.store.backend import Store, StoreError, Table

logger = logging.getLogger(__name__)

Submit = Callable[[Callable[[], None]], None]
# (since, max_wait_seconds) -> True once no request has been answered for a moment, False once
# max_wait_seconds have passed since the monotonic time `since` (bot.ack_first.AckFirst.wait_for_lull).
WaitForLull = Callable[[float, float], bool]
# The writer waits at most this for a lull, from its oldest claim, and looks this often whether
# someone already waits for a claim's answer.
LULL_WAIT_SECONDS = 1.0
ASKED_CHECK_SECONDS = 0.02

# How long work after an ack waits for the database to confirm its request before it gives up (and
# tells the person the bot's state is unavailable): the writer's own wait for a connection is 5 s.
CONFIRM_TIMEOUT_SECONDS = 10.0


class Confirmation(Protocol):
    def won(self) -> bool:
        """True when the store holds this process's claim; False when another process claimed the key
        first. Waits for the store's answer; raises StoreError when the store cannot give it."""
        ...


class Claims(Protocol):
    def admit(self, key: str, value: Any = True) -> Confirmation | None:
        """None when this process already claimed `key`; else the claim's confirmation. Never waits
        for the store."""
        ...

    def claim(self, key: str, value: Any = True) -> bool:
        """True when `key` is this process's: admitted and confirmed."""
        ...

    def forget(self, keys: list[str]) -> None:
        """The keys were deleted from the table (pruned): let memory follow."""
        ...

    def forget_older(self, horizon: float) -> None:
        """Let memory drop the claims whose value (a request's timestamp) is before `horizon`, whoever
        deleted them from the table."""
        ...

    def flush(self) -> None:
        """Write what was decided and not yet written."""
        ...

    def close(self) -> None:
        """Stop what the claims run of their own (after flush)."""
        ...


class _Decided:
    """The confirmation of a claim decided for good when it was made."""

    def won(self) -> bool:
        return True


DECIDED = _Decided()


def fast_claims(store: Store, table: Table, submit: Submit, wait_for_lull: WaitForLull | None = None) -> Claims:
    """RememberedClaims (written by `submit`) where no other process shares the store, else SharedClaims
    (written after `wait_for_lull`)."""
    return RememberedClaims(table, submit) if store.exclusive else SharedClaims(table, wait_for_lull=wait_for_lull)


class PendingClaim:
    """A claim made in memory that the store has not confirmed yet."""

    def __init__(self, key: str, value: Any, timeout: float, asked: Callable[[], None] = lambda: None) -> None:
        self.key = key
        self._asked = asked
        self.value = value
        self._timeout = timeout
        self._settled = threading.Event()
        self._won = False
        self._error: Exception | None = None

    def settle(self, *, won: bool = False, error: Exception | None = None) -> None:
        self._won, self._error = won, error
        self._settled.set()

    def won(self) -> bool:
        if not self._settled.is_set():
            self._asked()  # someone needs the answer now: the writer stops waiting for a lull
        if not self._settled.wait(self._timeout):
            raise StoreError("the database did not record the request in time")
        if isinstance(self._error, StoreError):
            # Raised anew in each thread that asks: one exception object raised in many threads at once
            # would share (and garble) one traceback.
            raise StoreError(f"the request could not be recorded: {self._error}") from self._error
        if self._error is not None:
            raise RuntimeError("the request's claim could not be written") from self._error
        return self._won


class SharedClaims:
    """Claims on a store other replicas share: decided in memory, confirmed by the store after the ack.

    A replay that reaches this process again is refused at once, from memory (which holds this
    process's claims, and the table's as they were at start). Every other claim is written by a thread
    of its own, each transaction holding every claim that arrived while the previous one was written,
    none waiting for the disk (a crash of the database server may forget the claims of its last
    moments, as it may any unflushed commit): the request's thread never waits for the database.
    The writer starts a transaction once the requests in flight are acked (`wait_for_lull`, bounded):
    written during the burst, the claims cost every ack of it about 4 ms at the median (psycopg's
    Python and the database server's work on the same cores). Work after an ack asks for its
    claim's answer only after that same lull, except the prompt pool's (a modal's trigger_id lasts
    3 s): asking ends the writer's wait, so a modal opens at once.
    The cost: a replay that reaches a replica which has not seen the request (within Slack's 5 minutes)
    is acked there, and gets what the ack itself says (help, a menu's options, a form's errors;
    never a case's content, which is always sent after the ack). Nothing after the ack runs for it,
    as the database refuses its claim; and what is noted before an ack (a form, a reply) is keyed by
    what Slack gives once per action, so the replay finds it noted, and the replica holding the
    record sends it without waiting for the claim (bot.listeners.boundary.guarded's `noted`). Keys
    the store could not record are forgotten here, so the request can be sent again; the work that
    waited for them tells the person the bot's state is unavailable. A claim write blocked in the
    database (a table someone locked) holds the writer until the store's lock timeout (5 s on
    PostgreSQL, after at most as long a wait for a connection, which the lock may hold too): its claims
    then fail as on a lost database, and the work waiting for them says so at CONFIRM_TIMEOUT_SECONDS
    at the latest.
    """

    def __init__(
        self,
        table: Table,
        *,
        confirm_timeout: float = CONFIRM_TIMEOUT_SECONDS,
        wait_for_lull: WaitForLull | None = None,
        lull_wait_seconds: float = LULL_WAIT_SECONDS,
    ) -> None:
        self.table = table
        self.confirm_timeout = confirm_timeout
        self._wait_for_lull = wait_for_lull
        self._lull_wait_seconds = lull_wait_seconds
        self._asked = threading.Event()  # someone waits for a claim not written yet
        self._first_waiting_at = 0.0  # time.monotonic() of the oldest claim not yet taken by the writer
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._claimed: dict[str, Any] = {}  # key -> value (the request's timestamp), for forget_older
        self._waiting: list[PendingClaim] = []
        self._writing = False
        self._closed = False
        self._writer = threading.Thread(target=self._write_all, name="claims", daemon=True)
        self._writer.start()

    def admit(self, key: str, value: Any = True) -> PendingClaim | None:
        with self._changed:
            if key in self._claimed:
                return None
            self._claimed[key] = value
            pending = PendingClaim(key, value, self.confirm_timeout, self._asked.set)
            if not self._waiting:
                self._first_waiting_at = time.monotonic()
            self._waiting.append(pending)
            self._changed.notify_all()
        return pending

    def claim(self, key: str, value: Any = True) -> bool:
        pending = self.admit(key, value)
        return pending is not None and pending.won()

    def forget(self, keys: list[str]) -> None:
        with self._lock:
            for key in keys:
                self._claimed.pop(key, None)

    def forget_older(self, horizon: float) -> None:
        with self._lock:
            old = [key for key, stamp in self._claimed.items() if not isinstance(stamp, int | float) or stamp < horizon]
            for key in old:
                del self._claimed[key]

    def flush(self, timeout: float = 2.0) -> None:
        """Waits (at most `timeout` seconds) until every claim made so far has been written or refused:
        at shutdown, with the database away, the work that waits for them is dropped anyway."""
        with self._changed:
            self._changed.wait_for(lambda: not self._waiting and not self._writing, timeout=timeout)

    def close(self) -> None:
        """Stops the writer once what is queued is written; waits at most a second (flush waited before,
        and a daemon thread stuck on the database must not hold a stop past the container's grace)."""
        with self._changed:
            self._closed = True
            self._changed.notify_all()
        self._writer.join(timeout=1)

    def _write_all(self) -> None:
        self._remember_the_table()
        while True:
            with self._changed:
                self._changed.wait_for(lambda: bool(self._waiting) or self._closed)
                if not self._waiting:
                    return
                first_waiting_at, closing = self._first_waiting_at, self._closed
            if self._wait_for_lull is not None and not closing:
                self._until_lull_or_asked(self._wait_for_lull, first_waiting_at)
            self._asked.clear()  # what was asked for goes in the batch taken now
            with self._changed:
                batch, self._waiting, self._writing = self._waiting, [], True
            self._write(batch)
            with self._changed:
                self._writing = False
                self._changed.notify_all()

    def _until_lull_or_asked(self, wait_for_lull: WaitForLull, since: float) -> None:
        deadline = since + self._lull_wait_seconds
        while not self._asked.is_set() and not self._closed:  # closing: write what is queued now
            now = time.monotonic()
            if now >= deadline or wait_for_lull(now, min(ASKED_CHECK_SECONDS, deadline - now)):
                return

    def _remember_the_table(self) -> None:
        """The claims already in the table, so that their replays are refused here too: read on this
        thread, as a database away at start must not stop the bot from serving (the database decides
        every claim anyway)."""
        try:
            known = dict(self.table.items())
        except Exception as error:  # noqa: BLE001 - memory only spares the database a replay; the writer goes on
            if isinstance(error, StoreError):
                logger.warning("could not read the request claims at start (%s); the database decides each", error)
            else:
                logger.exception("could not read the request claims at start; the database decides each")
            return
        with self._lock:
            for key, value in known.items():
                self._claimed.setdefault(key, value)

    def _write(self, batch: list[PendingClaim]) -> None:
        try:
            won = self.table.claim_many({claim.key: claim.value for claim in batch}, durable=False)
        except Exception as error:  # noqa: BLE001 - each claim fails as its own write would; the writer goes on
            if not isinstance(error, StoreError):
                logger.exception("request claims could not be written")
            self.forget([claim.key for claim in batch])
            for claim in batch:
                claim.settle(error=error)
        else:
            for claim in batch:
                claim.settle(won=claim.key in won)


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

    def admit(self, key: str, value: Any = True) -> Confirmation | None:
        return DECIDED if self.claim(key, value) else None

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

    def forget_older(self, horizon: float) -> None:
        """Nothing more to do: this process alone prunes the table, and forget() follows it."""

    def close(self) -> None:
        """Its writes run on the writer it was given, stopped by its owner."""

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
