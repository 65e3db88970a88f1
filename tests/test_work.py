"""After-ack work: jobs sharing a key run in order, others in parallel, and they yield to acks."""

from __future__ import annotations

import threading
import time

from bot.work import AckFirst, OrderedWork


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
