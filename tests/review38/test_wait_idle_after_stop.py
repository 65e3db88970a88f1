"""Review 38 of 79d04d9: tests/review30/test_narrowed_channels.py now asserts `work.wait_idle(timeout=30)`
after `first.stop()`. Services.close ends with OrderedWork.shutdown(), i.e. ThreadPool.shutdown(cancel_futures=True):
a job submitted but not yet taken by a worker is cancelled, its `_run` never runs, and `_pending` is never
decremented. wait_idle after a stop then waits its whole timeout and returns False."""

from __future__ import annotations

import threading

from bot.work import OrderedWork


def test_wait_idle_after_shutdown_returns_once_the_running_job_ends():
    work = OrderedWork(max_workers=1, name="r38")
    started, release = threading.Event(), threading.Event()

    def running():
        started.set()
        release.wait(10)

    work.submit(running)  # the call under way when the bot stops
    assert started.wait(5)
    work.submit(lambda: None)  # queued behind it (a key's drain, a retry enqueued just before the stop)
    work.shutdown()  # what Services.close does last: cancels what no worker took yet
    release.set()
    assert work.wait_idle(timeout=3), f"never idle: {work._pending} job(s) counted that will never run"
