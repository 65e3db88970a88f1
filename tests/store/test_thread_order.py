"""One thread's records run oldest first across replicas: the order index in the journal, not a queue in memory."""

from __future__ import annotations

import threading

import pytest

from bot.errors import BotError
from bot.store.journal import ORDER_PREFIX, Journal
from bot.store.tables import Store
from bot.work import JournalWork, OrderedWork, RetryPolicy


class Clock:
    now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


class Recorder:
    def __init__(self) -> None:
        self.ran: list[str] = []
        self.lock = threading.Lock()

    def run(self, job):
        with self.lock:
            self.ran.append(job.entry.key)
        return {}

    def failed(self, job, error: BotError) -> None:
        pass


@pytest.fixture
def replicas(tmp_path):
    """Two journals (two replicas) on one store, each with its runner."""
    store, clock = Store(str(tmp_path / "bot.sqlite")), Clock()
    made = []
    for _ in range(2):
        journal = Journal(store.table("journal"), lease_seconds=60, clock=clock)
        work = OrderedWork(max_workers=4)
        runner = JournalWork(journal, work, is_retryable=lambda e: False, retry=RetryPolicy(deadline_seconds=1))
        recorder = Recorder()
        runner.handle("reply", recorder)
        made.append((journal, work, runner, recorder))
    yield store, clock, made
    for _, work, runner, _ in made:
        runner.stop()
        work.shutdown()
    store.close()


def test_a_younger_record_waits_for_an_older_one_a_dead_replica_held_then_takes_it_over(replicas):
    store, clock, [(dead, _, _, _), (journal, work, runner, recorder)] = replicas
    assert dead.record("reply:C1:1", "reply", "C1|0", {}) is not None  # its replica dies right after
    runner.submit(journal.record("reply:C1:2", "reply", "C1|0", {}))
    assert not work.wait_idle(timeout=1)  # waiting: the older one's lease is still live
    assert recorder.ran == []
    clock.now += 61  # the dead replica's lease runs out
    assert work.wait_idle(timeout=10)
    assert recorder.ran == ["reply:C1:1", "reply:C1:2"]
    assert store.table("journal").get(ORDER_PREFIX + "C1|0")["keys"] == []


def test_an_older_record_that_failed_or_is_done_does_not_hold_up_the_thread(replicas):
    _, _, [(other, _, _, _), (journal, work, runner, recorder)] = replicas
    failed = other.record("reply:C1:1", "reply", "C1|0", {})
    other.fail(failed, error="aws_error")
    runner.submit(journal.record("reply:C1:2", "reply", "C1|0", {}))
    assert work.wait_idle(timeout=5)
    assert recorder.ran == ["reply:C1:2"]


def test_another_threads_pending_record_does_not_hold_up_this_one(replicas):
    _, _, [(other, _, _, _), (journal, work, runner, recorder)] = replicas
    other.record("reply:C1:1", "reply", "C1|0", {})  # held and live, another thread
    runner.submit(journal.record("reply:C2:2", "reply", "C2|0", {}))
    assert work.wait_idle(timeout=5)
    assert recorder.ran == ["reply:C2:2"]


def test_an_idle_order_index_is_pruned_with_the_records(replicas):
    store, clock, [(_, _, _, _), (journal, work, runner, _)] = replicas
    runner.submit(journal.record("reply:C1:1", "reply", "C1|0", {}))
    assert work.wait_idle(timeout=5)
    clock.now += 8 * 24 * 3600
    assert journal.prune() == 2
    assert ORDER_PREFIX + "C1|0" not in store.table("journal")
