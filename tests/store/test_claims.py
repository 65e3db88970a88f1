"""Fast claims before an ack (bot.store.claims): decided in memory and written right after, a burst's
claims in one transaction; on a shared store the database confirms them, atomic across processes."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.ack_first import AckFirst
from bot.store.backend import Store, StoreError, Table
from bot.store.claims import RememberedClaims, SharedClaims, fast_claims
from bot.store.tables import Store as SqliteStore


class CountingTable:
    """A real table that counts its claim_many calls, and can hold the first one until let go."""

    def __init__(self, table: Table) -> None:
        self.table = table
        self.batches: list[dict[str, Any]] = []
        self.hold_first = threading.Event()
        self.holding = threading.Event()
        self.hold_first.set()

    def claim_many(self, items: dict[str, Any], *, durable: bool = True) -> set[str]:
        self.batches.append(dict(items))
        if len(self.batches) == 1:
            self.holding.set()
            assert self.hold_first.wait(30)
        return self.table.claim_many(items, durable=durable)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.table, name)


Shared = Callable[..., SharedClaims]


@pytest.fixture
def shared() -> Iterator[Shared]:
    """SharedClaims(table, ...), each one's writer stopped at teardown, passed or failed."""
    made: list[SharedClaims] = []

    def make(table: Any, **options: Any) -> SharedClaims:
        made.append(SharedClaims(table, **options))
        return made[-1]

    yield make
    for claims in made:
        claims.close()


def start_all(targets: list[Callable[[], None]]) -> list[threading.Thread]:
    threads = [threading.Thread(target=target) for target in targets]
    for thread in threads:
        thread.start()
    return threads


def test_claims_made_while_one_is_written_share_the_next_transaction_and_never_wait_for_it(
    store: Store, shared: Shared
) -> None:
    table = CountingTable(store.table("requests"))
    claims = shared(table)
    table.hold_first.clear()

    first = claims.admit("v0=first", 1)
    assert first is not None and table.holding.wait(30)
    burst = [claims.admit(f"v0=burst-{n}", 1) for n in range(20)]  # answered while the first write hangs
    assert claims.admit("v0=burst-0", 1) is None, "the same request again: refused from memory"
    table.hold_first.set()

    assert first.won() and all(pending is not None and pending.won() for pending in burst)
    assert len(table.batches) == 2, "the burst waited for the first write, then went in one transaction"
    assert set(table.batches[1]) == {f"v0=burst-{n}" for n in range(20)}
    assert len(store.table("requests")) == 21
    claims.close()
    assert not claims._writer.is_alive(), "close() stops the writer"


def test_claims_are_written_once_the_requests_in_flight_are_answered(store: Store, shared: Shared) -> None:
    """Written during the burst, the claims' transactions cost each of its acks about 4 ms at the
    median on PostgreSQL (`python -m bench.ack`); the work that waits for them waits for the same lull."""
    gate = AckFirst(settle_seconds=0.01)
    table = CountingTable(store.table("requests"))
    claims = shared(table, wait_for_lull=gate.wait_for_lull, lull_wait_seconds=60)

    gate.request_started()
    burst = [claims.admit(f"v0=burst-{n}", 1) for n in range(5)]
    time.sleep(0.5)
    assert table.batches == [], "written while requests were being answered"
    gate.request_finished()

    assert all(pending is not None and pending.won() for pending in burst)
    assert len(table.batches) == 1


def test_under_a_steady_stream_of_requests_claims_are_written_all_the_same(store: Store, shared: Shared) -> None:
    gate = AckFirst()
    table = CountingTable(store.table("requests"))
    claims = shared(table, wait_for_lull=gate.wait_for_lull, lull_wait_seconds=0.2)

    gate.request_started()  # never answered
    pending = claims.admit("v0=steady", 1)
    deadline = time.monotonic() + 30
    while not table.batches and time.monotonic() < deadline:  # nobody asks: that would end the wait
        time.sleep(0.01)

    assert table.batches and pending is not None and pending.won()
    gate.request_finished()


def test_a_claim_someone_waits_for_is_written_without_waiting_for_the_lull(store: Store, shared: Shared) -> None:
    """A modal's trigger_id lasts 3 s, and the prompt pool's job asks for its claim right after the ack
    (review23: views.open went out a second late under a steady stream of requests)."""
    gate = AckFirst()
    claims = shared(store.table("requests"), wait_for_lull=gate.wait_for_lull, lull_wait_seconds=60, confirm_timeout=30)

    gate.request_started()  # never answered
    try:
        pending = claims.admit("v0=modal", 1)
        asked_at = time.monotonic()
        assert pending is not None and pending.won()
        assert time.monotonic() - asked_at < 10, "the claim waited for a lull that never came"
    finally:
        gate.request_finished()


def test_of_two_replicas_that_admit_one_request_only_one_is_confirmed(store: Store, shared: Shared) -> None:
    """Two processes on one database: both admit from their own memory; the database decides."""
    here, there = shared(store.table("requests")), shared(store.table("requests"))

    admitted = [here.admit("v0=twice", 1), there.admit("v0=twice", 1)]

    assert all(pending is not None for pending in admitted)
    assert sorted(pending.won() for pending in admitted if pending is not None) == [False, True]
    assert here.admit("v0=twice", 1) is None and there.admit("v0=twice", 1) is None


class RefusingTable:
    name = "requests"

    def __init__(self) -> None:
        self.refusing = True
        self.written: dict[str, Any] = {}

    def items(self) -> list[tuple[str, Any]]:
        return list(self.written.items())

    def claim_many(self, items: dict[str, Any], *, durable: bool = True) -> set[str]:
        if self.refusing:
            raise StoreError("connection refused")
        self.written.update(items)
        return set(items)


def test_a_claim_the_store_refuses_fails_its_confirmation_and_can_be_made_again(shared: Shared) -> None:
    table = RefusingTable()
    claims = shared(table)

    refused = claims.admit("v0=a")
    assert refused is not None
    with pytest.raises(StoreError):
        refused.won()
    table.refusing = False
    again = claims.admit("v0=a")

    assert again is not None and again.won() is True
    assert table.written == {"v0=a": True}


def test_a_claim_the_store_does_not_answer_in_time_fails_its_confirmation(store: Store, shared: Shared) -> None:
    table = CountingTable(store.table("requests"))
    table.hold_first.clear()
    claims = shared(table, confirm_timeout=0.2)
    try:
        pending = claims.admit("v0=slow")
        assert pending is not None
        with pytest.raises(StoreError):
            pending.won()
    finally:
        table.hold_first.set()
    claims.flush()


def test_the_last_writes_at_shutdown_give_up_on_a_database_that_does_not_answer(store: Store) -> None:
    """A locked table at shutdown must not hold the stop past a container's grace (review18, of a version
    that wrote on the closing thread): flush and close each wait a bounded time, whatever the write does."""
    table = CountingTable(store.table("requests"))
    table.hold_first.clear()
    claims = SharedClaims(table)  # type: ignore[arg-type]
    try:
        assert claims.admit("v0=stuck") is not None and table.holding.wait(30)
        started = time.monotonic()
        claims.flush(timeout=0.3)
        claims.close()
        assert time.monotonic() - started < 5
    finally:
        table.hold_first.set()
    claims.close()


def test_on_a_store_no_other_process_uses_a_claim_touches_no_table_before_it_answers(tmp_path: Path) -> None:
    store = SqliteStore.open(str(tmp_path / "bot.sqlite"))
    table = store.table("requests")
    submitted: list[Callable[[], None]] = []
    claims = fast_claims(store, table, submitted.append)
    assert isinstance(claims, RememberedClaims)

    assert claims.claim("v0=a", 1) is True
    assert claims.claim("v0=a", 1) is False
    assert claims.claim("v0=b", 2) is True
    assert "v0=a" not in table, "decided in memory; the write comes after"
    assert len(submitted) == 1, "one write queued for the claims made before it runs"

    submitted[0]()
    assert table.get("v0=a") == 1 and table.get("v0=b") == 2
    assert claims.claim("v0=c", 3) is True and len(submitted) == 2
    store.close()


def test_claims_written_before_a_restart_are_still_refused_after_it(tmp_path: Path) -> None:
    path = str(tmp_path / "bot.sqlite")
    store = SqliteStore.open(path)
    claims = RememberedClaims(store.table("requests"), lambda write: write())
    assert claims.claim("v0=before", 1) is True
    store.close()

    again = SqliteStore.open(path)
    after = RememberedClaims(again.table("requests"), lambda write: write())
    assert after.claim("v0=before", 1) is False
    assert after.claim("v0=new", 2) is True
    again.close()


def test_claims_the_store_refused_are_written_later_without_another_request(tmp_path: Path) -> None:
    store = SqliteStore.open(str(tmp_path / "bot.sqlite"))
    table = store.table("requests")
    refusing = threading.Event()
    refusing.set()

    class Flaky:
        def put_many(self, items: dict[str, Any]) -> None:
            if refusing.is_set():
                raise StoreError("disk full")
            table.put_many(items)

        def keys(self) -> Any:
            return table.keys()

    claims = RememberedClaims(Flaky(), lambda write: write(), retry_seconds=0.05)  # type: ignore[arg-type]
    assert claims.claim("v0=a", 1) is True
    assert "v0=a" not in table
    assert claims.claim("v0=a", 1) is False, "still refused, from memory"

    refusing.clear()  # space is back; no request comes
    deadline = threading.Event()
    for _ in range(400):
        if table.get("v0=a") == 1:
            break
        deadline.wait(0.05)
    assert table.get("v0=a") == 1
    store.close()


def test_a_shared_store_claims_in_the_database(store: Store) -> None:
    claims = fast_claims(store, store.table("requests"), lambda write: write())
    try:
        assert isinstance(claims, RememberedClaims) == store.exclusive
        assert claims.claim("v0=a", 1) is True
        assert claims.claim("v0=a", 1) is False
        claims.flush()
        assert store.table("requests").get("v0=a") == 1
    finally:
        claims.close()


class SlowTable:
    """put_many holds until let go; a closed store refuses what comes after."""

    def __init__(self) -> None:
        self.rows: dict[str, Any] = {}
        self.writing, self.release = threading.Event(), threading.Event()
        self.closed = False

    def keys(self) -> list[str]:
        return list(self.rows)

    def put_many(self, items: dict[str, Any]) -> None:
        self.writing.set()
        assert self.release.wait(10)
        if self.closed:
            raise StoreError("the store is closed")
        self.rows.update(items)


def test_the_last_write_at_shutdown_waits_for_a_write_still_under_way() -> None:
    """It found nothing queued while the batch was being written, returned, and the store closed under
    that write: the claims were lost, and a replay after the restart was served again (review10)."""
    table = SlowTable()
    claims = RememberedClaims(table, submit=lambda job: threading.Thread(target=job, daemon=True).start())  # type: ignore[arg-type]
    assert claims.claim("sig-1", 1)
    assert table.writing.wait(5)  # the write after the ack has the batch
    last = threading.Thread(target=claims.flush)  # Services.close's last write
    last.start()
    last.join(0.3)
    assert last.is_alive(), "the last write returned while a write was under way"
    table.release.set()
    last.join(5)
    table.closed = True  # the store closes after the last writes
    assert "sig-1" in table.rows


class _SlowFirstWrite:
    """A table whose first claim_many takes `seconds` (a slow database), the others none."""

    def __init__(self, table: Table, seconds: float) -> None:
        self._table = table
        self._seconds = seconds
        self.writing = threading.Event()
        self.written_at: list[float] = []
        self._first = True

    def claim_many(self, claims: dict[str, Any], **options: Any) -> Any:
        self.written_at.append(time.monotonic())
        if self._first:
            self._first = False
            self.writing.set()
            time.sleep(self._seconds)
        return self._table.claim_many(claims, **options)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._table, name)


@pytest.mark.slow(seconds=7)
def test_under_a_steady_stream_a_claim_made_during_a_slow_write_waits_for_the_lull_from_its_admission(
    tmp_path: Path,
) -> None:
    """The writer's lull wait is bounded from the oldest claim it takes (SharedClaims._first_waiting_at),
    not from when the writer gets to it: else a claim admitted during a slow write waited that write
    plus a whole max_wait more (about 5.5 s here instead of 3; review21: no test held it)."""
    gate = AckFirst(settle_seconds=0.01)
    store = SqliteStore(str(tmp_path / "state" / "bot.sqlite"))
    table = _SlowFirstWrite(store.table("requests"), seconds=3.0)
    claims = SharedClaims(table, wait_for_lull=gate.wait_for_lull, confirm_timeout=60, lull_wait_seconds=3.0)  # type: ignore[arg-type]
    gate.request_started()  # a steady stream: never a lull
    try:
        first = claims.admit("v0=first", 1)
        assert first is not None
        assert table.writing.wait(20), "the first claim is written once the writer's wait is over"
        time.sleep(0.5)
        admitted_at = time.monotonic()
        second = claims.admit("v0=during-the-write", 1)
        assert second is not None
        # Nobody asks for the answers until they are written: asking would end the writer's wait.
        deadline = time.monotonic() + 30
        while len(table.written_at) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        took = table.written_at[1] - admitted_at
        assert first.won() and second.won()
        assert took < 4.25, f"written {took:.1f} s after admission: the wait restarted after the slow write"
    finally:
        gate.request_finished()
        claims.close()
        store.close()
