"""LeasedWorker: background workers run only on the replica holding the lease, one replica at a time,
stop when the lease is lost or cannot be renewed, and start afresh when it comes back."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.replicas import LeasedWorker, background_workers
from bot.store.backend import StoreError
from bot.store.lease import Leases
from bot.store.tables import Store
from tests.sync.helpers import communication_messages, linked_case, shown_text

TTL = 0.9  # short, so that the tests see several renewals and an expiry within a second or two


class Recorder:
    """A background worker that records when it ran (a thread, like the poller's)."""

    name = "recorder"

    def __init__(self, runs: list[list[float]], label: str) -> None:
        self.runs = runs
        self.label = label
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._stop.wait, daemon=True)
        self.span: list[Any] = [label, None, None]

    def start(self) -> None:
        self.span[1] = time.monotonic()
        self.runs.append(self.span)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.span[2] = time.monotonic()

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    def health(self) -> dict[str, Any]:
        return {"label": self.label}


class FlakyStore:
    """A store whose clock (every lease call asks it first) fails while `down` is set."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self.down = threading.Event()
        self.hung = threading.Event()
        self.answers = threading.Event()
        self.answers.set()

    def table(self, name: str) -> Any:
        return self._store.table(name)

    def now(self) -> float:
        if self.down.is_set():
            raise StoreError("database unavailable")
        if not self.answers.is_set():
            self.hung.set()
            self.answers.wait(30)
        return self._store.now()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store(str(tmp_path / "bot.sqlite"))
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def replicas(store: Store) -> Iterator[Callable[..., LeasedWorker]]:
    made: list[LeasedWorker] = []

    def make(owner: str, runs: list[list[float]], on: Any = None) -> LeasedWorker:
        worker = LeasedWorker(on or store, [lambda: Recorder(runs, owner)], ttl=TTL, owner=owner)
        made.append(worker)
        return worker

    yield make
    for worker in made:
        worker.stop()


def wait_until(condition: Callable[[], Any], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def running(runs: list[list[float]]) -> list[str]:
    return [label for label, _, stopped in runs if stopped is None]


def assert_never_overlapping(runs: list[list[float]]) -> None:
    spans = sorted((started, stopped or time.monotonic(), label) for label, started, stopped in runs)
    for (_, end, first), (start, _, second) in zip(spans, spans[1:], strict=False):
        assert start >= end, f"{first} and {second} ran at once"


def test_only_the_holder_runs_its_workers_and_health_says_who_holds_the_lease(replicas) -> None:
    runs: list[list[float]] = []
    a, b = replicas("replica-a", runs), replicas("replica-b", runs)
    a.start()
    wait_until(lambda: running(runs) == ["replica-a"])
    b.start()
    time.sleep(TTL * 2)  # several renewals against b's attempts

    assert running(runs) == ["replica-a"]
    assert a.health() | {"expires_at": None} == {
        "lease": "background",
        "replica": "replica-a",
        "holder": "replica-a",
        "held_here": True,
        "expires_at": None,
        "ttl_seconds": TTL,
        "takeovers": 1,
    }
    assert a.health()["expires_at"]
    assert b.health()["holder"] == "replica-a" and b.health()["held_here"] is False
    [member_a], [member_b] = a.members, b.members
    assert member_a.name == "recorder" and member_a.is_alive() and member_b.is_alive()
    assert member_a.health() == {"label": "replica-a", "standby": False}
    assert member_b.health() == {"standby": True, "lease_holder": "replica-a"}


def test_a_stopped_holder_hands_over_at_once_and_the_two_never_run_together(replicas, store) -> None:
    runs: list[list[float]] = []
    a, b = replicas("replica-a", runs), replicas("replica-b", runs)
    a.start()
    wait_until(lambda: running(runs) == ["replica-a"])
    b.start()

    a.stop()

    wait_until(lambda: running(runs) == ["replica-b"], timeout=TTL)  # released: b need not wait for expiry
    assert_never_overlapping(runs)
    assert Leases(store).current("background").holder == "replica-b"


def test_a_replica_that_stops_renewing_is_taken_over_after_the_ttl(replicas, store) -> None:
    runs: list[list[float]] = []
    a = replicas("replica-a", runs)
    a.start()
    wait_until(lambda: running(runs) == ["replica-a"])
    a._stop.set()  # the loop dies as in a kill: no release, its worker left as it was
    a._thread.join(5)
    runs[0][2] = time.monotonic()  # a dead process runs nothing
    b = replicas("replica-b", runs)

    b.start()

    wait_until(lambda: running(runs) == ["replica-b"], timeout=TTL * 3)
    assert_never_overlapping(runs)


def test_a_holder_whose_lease_is_taken_stops_its_workers_at_the_next_renewal(replicas, store) -> None:
    runs: list[list[float]] = []
    a = replicas("replica-a", runs)
    a.start()
    wait_until(lambda: running(runs) == ["replica-a"])

    # Another replica got it (a's renewals were late, say): the record says so.
    store.table("leases").put("background", {"holder": "replica-z", "expires_at": time.time() + 60, "since": 1.0})

    wait_until(lambda: running(runs) == [], timeout=TTL * 2)
    assert a.health()["holder"] == "replica-z" and a.health()["held_here"] is False
    assert a.members[0].health() == {"standby": True, "lease_holder": "replica-z"}


def test_a_holder_that_cannot_renew_stops_before_its_lease_could_expire(replicas, store) -> None:
    runs: list[list[float]] = []
    flaky = FlakyStore(store)
    a = replicas("replica-a", runs, on=flaky)
    a.start()
    wait_until(lambda: running(runs) == ["replica-a"])
    expires_at = Leases(store).current("background").expires_at

    flaky.down.set()

    wait_until(lambda: running(runs) == [], timeout=TTL * 2)
    assert time.time() < expires_at, "stopped while the lease was still its own, before anyone could take it"
    assert a.is_alive(), "the loop keeps trying"
    flaky.down.clear()
    wait_until(lambda: running(runs) == ["replica-a"], timeout=TTL * 3)
    assert len(runs) == 2, "a fresh worker: a stopped one cannot be started again"
    assert a.health()["takeovers"] == 2


def test_a_holder_whose_store_hangs_stops_before_its_lease_could_expire(replicas, store) -> None:
    runs: list[list[float]] = []
    flaky = FlakyStore(store)
    a = replicas("replica-a", runs, on=flaky)
    a.start()
    wait_until(lambda: running(runs) == ["replica-a"])
    expires_at = Leases(store).current("background").expires_at

    flaky.answers.clear()  # the next renewal never comes back (a frozen server, a dead socket)

    wait_until(lambda: running(runs) == [], timeout=TTL * 2)
    assert flaky.hung.is_set() and time.time() < expires_at
    flaky.answers.set()
    wait_until(lambda: running(runs) == ["replica-a"], timeout=TTL * 3)


def test_a_sqlite_bot_runs_its_workers_without_a_lease(store: Store) -> None:
    runs: list[list[float]] = []

    workers = background_workers(store, [lambda: Recorder(runs, "only")], shared=False)

    assert [type(worker).__name__ for worker in workers] == ["Recorder"]
    assert len(store.table("leases")) == 0


def test_a_poller_started_after_another_one_stopped_still_posts(bot) -> None:
    """A replica that loses and regains the lease runs a new Poller on the same services."""
    from bot.sync.poller import Poller

    case, thread = linked_case(bot)
    services = bot.services
    first = Poller(services.sync, services.watches, interval=0.2)
    first.start()
    first.stop()
    second = Poller(services.sync, services.watches, interval=0.2)
    second.start()
    try:
        bot.sandbox.add_aws_reply(case.case_id, "after the takeover")
        wait_until(lambda: communication_messages(bot, "C1", thread))
    finally:
        second.stop()

    assert [shown_text(m) for m in communication_messages(bot, "C1", thread)] == ["after the takeover"]
