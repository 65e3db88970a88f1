"""After-ack work: jobs sharing a key run in order, others in parallel, they yield to acks; journal
records are retried until a deadline, then reported."""

from __future__ import annotations

import threading
import time

import pytest

from bot.ack_first import AckFirst
from bot.errors import BotError
from bot.store.journal import Journal
from bot.store.tables import Store
from bot.work import JournalWork, OrderedWork, RetryPolicy


def test_jobs_with_one_key_run_in_submission_order():
    work = OrderedWork(max_workers=8)
    seen: list[int] = []
    for i in range(50):
        work.submit(lambda i=i: (time.sleep(0.001 if i % 3 else 0), seen.append(i)), key="thread-1")
    assert work.wait_idle(timeout=10)
    assert seen == list(range(50))
    work.shutdown()


def test_jobs_with_different_keys_run_in_parallel():
    work = OrderedWork(max_workers=4)
    both_running = threading.Barrier(2, timeout=5)
    work.submit(both_running.wait, key="a")
    work.submit(both_running.wait, key="b")
    assert work.wait_idle(timeout=10)  # a Barrier timeout would leave it broken
    assert not both_running.broken
    work.shutdown()


def test_a_failing_job_is_logged_and_the_queue_goes_on(caplog):
    work = OrderedWork(max_workers=2)
    seen: list[str] = []
    work.submit(lambda: 1 / 0, key="k")
    work.submit(lambda: seen.append("after"), key="k")
    assert work.wait_idle(timeout=10)
    assert seen == ["after"]
    assert "background job failed" in caplog.text
    work.shutdown()


def test_work_waits_for_requests_in_flight_but_not_forever():
    gate = AckFirst(max_wait_seconds=5)
    work = OrderedWork(max_workers=2, gate=gate)
    started = threading.Event()
    gate.request_started()
    work.submit(started.set)
    assert not started.wait(0.2)  # a request is being answered: the job waits
    gate.request_finished()
    assert started.wait(5)

    impatient = OrderedWork(max_workers=2, gate=AckFirst(max_wait_seconds=0.05))
    impatient.gate.request_started()  # never finishes
    done = threading.Event()
    impatient.submit(done.set)
    assert done.wait(5)
    work.shutdown()
    impatient.shutdown()


def test_a_moment_between_two_requests_of_a_burst_does_not_release_the_work():
    gate = AckFirst(max_wait_seconds=30, settle_seconds=0.5)
    work = OrderedWork(max_workers=2, gate=gate)
    started = threading.Event()
    gate.request_started()
    work.submit(started.set)
    gate.request_finished()  # the first request of a burst is answered ...
    gate.request_started()  # ... and the next arrives at once
    assert not started.wait(0.8), "the job waited for the burst, not for a gap inside it"
    gate.request_finished()
    assert started.wait(10), "the burst is over: the job runs once the server has been quiet a moment"
    work.shutdown()


@pytest.mark.slow(seconds=4)
def test_work_released_by_a_quiet_moment_goes_a_job_at_a_time_and_stops_for_the_next_burst():
    """Released together, twenty `show` jobs did their botocore work (about 1.2 ms of CPU each) at
    once, and the next burst's acks, arriving meanwhile, waited behind all of it (`bench.ack`)."""
    gate = AckFirst(max_wait_seconds=30, settle_seconds=0.01, pace_seconds=1.5)  # a wide margin under load
    work = OrderedWork(max_workers=4, gate=gate)
    ran: list[int] = []
    first = threading.Event()
    work.submit(lambda: (ran.append(1), first.set()))
    work.submit(lambda: ran.append(2))
    work.submit(lambda: ran.append(3))
    assert first.wait(5)
    gate.request_started()  # the next burst arrives while the jobs are being released
    time.sleep(2)
    assert ran == [1], "jobs kept starting under the new burst"
    gate.request_finished()
    assert work.wait_idle(timeout=10), "the burst is over: the rest run, a pace apart"
    assert sorted(ran) == [1, 2, 3]
    work.shutdown()


def test_under_a_steady_stream_of_requests_queued_work_is_late_by_the_gate_once_not_per_job():
    """Each job yielded up to max_wait from when it reached a worker: the fifth reply queued in one
    thread waited five times that, behind the four before it, each of which had waited."""
    gate = AckFirst(max_wait_seconds=1.0)
    work = OrderedWork(max_workers=4, gate=gate)
    gate.request_started()  # requests keep coming: never quiet
    started = time.monotonic()
    for _ in range(6):
        work.submit(lambda: None, key="thread-1")
    assert work.wait_idle(timeout=30)
    assert time.monotonic() - started < 3.5, "each job waited its own max_wait, one after the other"
    gate.request_finished()
    work.shutdown()


# The journal's runner ------------------------------------------------------------------------


class Busy(BotError):
    retryable = True


class Recorder:
    """A handler that fails `failures` times with `error`, then succeeds."""

    def __init__(self, failures: int = 0, error: BotError | None = None) -> None:
        self.failures = failures
        self.error = error or Busy("throttled")
        self.runs = 0
        self.told: list[str] = []

    def run(self, job):
        self.runs += 1
        if self.runs <= self.failures:
            raise self.error
        return {"runs": self.runs}

    def failed(self, job, error):
        self.told.append(error.key)


@pytest.fixture
def runner(tmp_path):
    store = Store(str(tmp_path / "work.sqlite"))
    work = OrderedWork(max_workers=4)
    retry = RetryPolicy(deadline_seconds=0.5, first_wait_seconds=0.01, max_wait_seconds=0.05)
    journal = Journal(store.table("journal"))
    runner = JournalWork(journal, work, is_retryable=lambda e: getattr(e, "retryable", False), retry=retry)
    yield runner
    runner.stop()
    work.shutdown()
    store.close()


def test_waits_out_retryable_failures_then_finishes_the_record(runner):
    handler = Recorder(failures=3)
    runner.handle("reply", handler)
    lease = runner.journal.record("k", "reply", "t", {})
    runner.submit(lease)
    assert runner.work.wait_idle(timeout=10)
    assert handler.runs == 4 and handler.told == []
    assert runner.journal.get("k").state == "done"


def test_tells_the_person_only_once_the_deadline_passed(runner):
    handler = Recorder(failures=10_000)
    runner.handle("reply", handler)
    runner.submit(runner.journal.record("k", "reply", "t", {}))
    assert runner.work.wait_idle(timeout=10)
    assert handler.runs > 3 and handler.told == ["throttled"]
    assert runner.journal.get("k").state == "failed"


def test_a_final_failure_is_not_retried(runner):
    handler = Recorder(failures=1, error=BotError("case_not_found"))
    runner.handle("reply", handler)
    with pytest.raises(BotError):
        runner.run(runner.journal.record("k", "reply", "t", {}))
    assert handler.runs == 1


def test_stopping_gives_the_record_back_instead_of_failing_it(runner):
    handler = Recorder(failures=10_000)
    runner.handle("reply", handler)
    runner.retry = RetryPolicy(deadline_seconds=60, first_wait_seconds=5, max_wait_seconds=5)
    runner.submit(runner.journal.record("k", "reply", "t", {}))
    time.sleep(0.2)
    runner.stop()
    assert runner.work.wait_idle(timeout=10)
    entry = runner.journal.get("k")
    assert entry.state == "pending" and not entry.holder and handler.told == []
