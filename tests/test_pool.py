"""The thread pool on the path of an ack: an executor as concurrent.futures' is, without its
process-wide lock; and the heap built at start is kept out of the collector's way."""

from __future__ import annotations

import concurrent.futures.thread
import gc
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from bot.ack_first import AckFirst
from bot.bootstrap import prepare_to_serve
from bot.pool import ThreadPool, map_in_callers_context
from bot.services import Services
from bot.work import OrderedWork
from tests.support.harness import BotHarness


@pytest.fixture
def pool():
    executor = ThreadPool(max_workers=4, name="test")
    yield executor
    executor.shutdown(wait=True, cancel_futures=True)


def test_submitted_work_returns_its_result_or_its_error(pool: ThreadPool) -> None:
    assert pool.submit(lambda a, b=0: a + b, 2, b=3).result(timeout=5) == 5
    with pytest.raises(ZeroDivisionError):
        pool.submit(lambda: 1 / 0).result(timeout=5)


def test_no_more_workers_than_max_and_every_task_runs(pool: ThreadPool) -> None:
    running, most = 0, 0
    lock = threading.Lock()

    def task() -> None:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        time.sleep(0.01)
        with lock:
            running -= 1

    futures = [pool.submit(task) for _ in range(40)]
    for future in futures:
        future.result(timeout=10)
    assert most <= 4
    assert len(pool._threads) <= 4


def test_idle_workers_are_reused_rather_than_new_ones_started(pool: ThreadPool) -> None:
    for _ in range(20):
        pool.submit(lambda: None).result(timeout=5)
    assert len(pool._threads) == 1


def test_after_shutdown_queued_work_is_cancelled_and_new_work_refused() -> None:
    pool = ThreadPool(max_workers=1, name="test")
    running, release = threading.Event(), threading.Event()
    busy = pool.submit(lambda: (running.set(), release.wait(5))[1])
    assert running.wait(5)
    queued = pool.submit(lambda: None)
    pool.shutdown(wait=False, cancel_futures=True)
    assert queued.cancelled()
    with pytest.raises(RuntimeError):
        pool.submit(lambda: None)
    release.set()
    assert busy.result(timeout=5) is True


@pytest.mark.parametrize("pool_of", [Services, OrderedWork], ids=["prompt work", "after-ack work"])
def test_a_submit_on_the_ack_path_does_not_wait_for_another_pool_starting_a_thread(pool_of: type) -> None:
    """concurrent.futures' pools share one lock, held by a submit while it starts a thread: in a burst
    the acks queued behind the work pool growing (`bench.ack`)."""
    if pool_of is Services:
        executor = Services.__dataclass_fields__["prompt_work"].default_factory()  # type: ignore[misc]
        submit = executor.submit
    else:
        work = OrderedWork(max_workers=2)
        executor, submit = work, work.submit
    ran = threading.Event()
    with concurrent.futures.thread._global_shutdown_lock:  # as another pool's submit holds it
        submitted = threading.Thread(target=submit, args=(ran.set,), daemon=True)
        submitted.start()
        submitted.join(timeout=2)
        assert not submitted.is_alive(), "the submit waited for another pool's lock"
    assert ran.wait(5)
    executor.shutdown()


def test_the_heap_built_at_start_is_frozen_out_of_the_collector(bot: BotHarness) -> None:
    """A full collection walked every object start-up made (AWS models, templates): 40-70 ms holding
    the interpreter lock, in the middle of a burst of acks."""
    gc.unfreeze()
    try:
        prepare_to_serve(bot.services).join(timeout=10)
        assert gc.get_freeze_count() > 10_000
    finally:
        gc.unfreeze()


_start_thread = threading.Thread.start


def test_a_submit_never_starts_a_worker_on_the_callers_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    """Starting a thread waits for the interpreter lock (26 ms median with four busy threads), and the
    replay claims' write is submitted on a request thread before its ack."""
    pool = ThreadPool(max_workers=8, name="grows")
    pool.submit(lambda: None).result(timeout=5)  # the pool's starter is started once, here
    started_from: list[str] = []

    def start(thread: threading.Thread) -> None:
        started_from.append(threading.current_thread().name)
        _start_thread(thread)

    monkeypatch.setattr(threading.Thread, "start", start)
    all_running = threading.Barrier(6, timeout=5)
    busy = [pool.submit(all_running.wait) for _ in range(6)]  # six at once: the pool must grow
    for future in busy:
        future.result(timeout=10)
    assert set(started_from) == {"grows_starter"}
    pool.shutdown(wait=True)


def test_a_worker_that_could_not_start_is_started_again_and_its_task_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    """Counted as a worker, it held a place under max_workers for good: with one, every task waited forever."""
    pool = ThreadPool(max_workers=1, name="limited")
    refused: list[threading.Thread] = []

    def start(thread: threading.Thread) -> None:
        if thread.name == "limited_0" and not refused:
            refused.append(thread)
            raise RuntimeError("can't start new thread")
        _start_thread(thread)

    monkeypatch.setattr(threading.Thread, "start", start)
    first = pool.submit(lambda: "first")
    assert first.result(timeout=10) == "first"
    assert refused
    assert pool.submit(lambda: "second").result(timeout=5) == "second"
    pool.shutdown(wait=True)


def test_shutdown_while_a_submit_is_still_starting_its_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    pool = ThreadPool(max_workers=2, name="starting")
    starting = threading.Event()

    def slow_start(thread: threading.Thread) -> None:
        if thread.name.startswith("starting_"):
            starting.set()
            time.sleep(0.3)  # a thread start waiting for the interpreter lock, as in a burst
        _start_thread(thread)

    monkeypatch.setattr(threading.Thread, "start", slow_start)
    submitter = threading.Thread(target=pool.submit, args=(lambda: None,), daemon=True)
    submitter.start()
    assert starting.wait(5)
    pool.shutdown(wait=True)  # joined a thread not started yet: RuntimeError
    submitter.join(5)


def test_a_submit_with_no_key_does_not_wait_while_another_starts_a_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    """The replay claims' write is submitted on the request thread before its ack; it queued behind
    OrderedWork's lock while a listener's submit held it to start a thread."""
    work = OrderedWork(max_workers=4, gate=AckFirst(max_wait_seconds=0))
    starting = threading.Event()

    def slow_start(thread: threading.Thread) -> None:
        if thread.name.startswith("work_") and not starting.is_set():
            starting.set()
            time.sleep(3)  # far beyond the bound below, which leaves room for a loaded machine
        _start_thread(thread)

    monkeypatch.setattr(threading.Thread, "start", slow_start)
    threading.Thread(target=work.submit, args=(lambda: None,), daemon=True).start()
    assert starting.wait(5)
    other = threading.Thread(target=work.submit, args=(lambda: None, "case-1"), daemon=True)
    began = time.monotonic()
    other.start()
    other.join(5)
    assert time.monotonic() - began < 1.5, "the keyed submit waited for the other's thread start"
    assert work.wait_idle(10)
    work.shutdown()


def test_a_job_ending_in_a_base_exception_does_not_strand_the_jobs_after_it_on_its_key(caplog) -> None:
    work = OrderedWork(max_workers=2, gate=AckFirst(max_wait_seconds=0))

    def exits() -> None:
        raise SystemExit(3)

    ran = threading.Event()
    work.submit(exits, key="case-1")
    work.submit(ran.set, key="case-1")
    assert ran.wait(5)
    assert "background job failed" in caplog.text
    work.shutdown()


def test_a_pool_never_starts_a_thread_on_a_submit_not_even_its_first(monkeypatch: pytest.MonkeyPatch) -> None:
    """The listener pool's first submit is the first request's, before its ack (review9b)."""
    started_from: list[str] = []

    def start(thread: threading.Thread) -> None:
        started_from.append(threading.current_thread().name)
        _start_thread(thread)

    pool = ThreadPool(max_workers=2, name="first")
    monkeypatch.setattr(threading.Thread, "start", start)
    assert pool.submit(lambda: "ran").result(timeout=5) == "ran"
    assert threading.current_thread().name not in started_from
    pool.shutdown(wait=True)


def start_workers_late(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pools start their workers 0.3 s late: a shutdown comes before the starter has got to the request."""
    original = ThreadPool._start_workers

    def late_starter(self: ThreadPool) -> None:
        time.sleep(0.3)
        original(self)

    monkeypatch.setattr(ThreadPool, "_start_workers", late_starter)


def test_shutdown_runs_what_is_queued_even_when_no_worker_was_started_yet(monkeypatch: pytest.MonkeyPatch) -> None:
    """Left neither run nor cancelled, a queued task's future kept its waiter waiting forever (review9b)."""
    start_workers_late(monkeypatch)
    pool = ThreadPool(max_workers=2, name="late")
    future = pool.submit(lambda: "ran")
    pool.shutdown(wait=True)
    assert future.done()
    assert future.result() == "ran"


def test_shutdown_waits_for_a_worker_that_was_still_being_started(monkeypatch: pytest.MonkeyPatch) -> None:
    pool = ThreadPool(max_workers=2, name="slow")
    starting = threading.Event()

    def slow_start(thread: threading.Thread) -> None:
        if thread.name == "slow_0":
            starting.set()
            time.sleep(0.3)  # the start waiting for the interpreter lock
        _start_thread(thread)

    monkeypatch.setattr(threading.Thread, "start", slow_start)
    done = threading.Event()
    pool.submit(lambda: (time.sleep(0.2), done.set()))
    assert starting.wait(5)
    pool.shutdown(wait=True)
    assert done.is_set(), "shutdown(wait=True) returned before the task ran"


def test_keyed_work_submitted_after_shutdown_is_not_counted_as_pending_forever() -> None:
    """The key's queue stayed behind, so later jobs on the key were counted and never run (review9b)."""
    work = OrderedWork(max_workers=2, gate=AckFirst(max_wait_seconds=0))
    work.shutdown()
    work.submit(lambda: None, key="case-1")
    work.submit(lambda: None, key="case-1")
    assert work.wait_idle(timeout=1)


def test_shutdown_waits_for_queued_work_at_most_its_timeout() -> None:
    """Services.close gives the prompt pool's modals and answers a few seconds, not forever."""
    pool = ThreadPool(max_workers=1, name="test")
    release = threading.Event()
    ran = threading.Event()
    pool.submit(release.wait, 10)
    pool.submit(ran.set)
    started = time.monotonic()
    pool.shutdown(wait=True, timeout=0.3)
    assert time.monotonic() - started < 2
    assert not ran.is_set()  # still queued behind the stuck job, not cancelled
    release.set()
    assert ran.wait(5)


def test_a_second_shutdown_leaves_no_worker_behind(monkeypatch: pytest.MonkeyPatch) -> None:
    """Services.close shuts the prompt pool down twice (wait, then cancel): the worker the first
    started for what was queued lost its stop marker to the second, and waited forever (review15)."""
    start_workers_late(monkeypatch)
    pool = ThreadPool(max_workers=2, name="twice")
    release = threading.Event()
    pool.submit(release.wait)
    pool.shutdown(wait=True, timeout=0.05)
    pool.shutdown(wait=False, cancel_futures=True)
    release.set()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(t.name.startswith("twice_") for t in threading.enumerate()):
        time.sleep(0.05)
    assert [t.name for t in threading.enumerate() if t.name.startswith("twice_")] == []


def test_after_a_failure_the_calls_not_started_yet_are_not_started() -> None:
    """As pool.map: an account that fails does not leave the accounts queued behind it to run anyway."""
    started: list[int] = []
    release = threading.Event()

    def one(n: int) -> int:
        started.append(n)
        if n == 0:
            raise ValueError("the first account failed")
        release.wait(5)
        return n

    with ThreadPoolExecutor(max_workers=2) as pool:
        with pytest.raises(ValueError):
            map_in_callers_context(pool, one, range(6))
        release.set()
    assert set(started) <= {0, 1, 2}, f"queued calls ran after the failure: {started}"
