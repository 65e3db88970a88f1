"""The thread pool on the path of an ack: an executor as concurrent.futures' is, without its
process-wide lock; and the heap built at start is kept out of the collector's way."""

from __future__ import annotations

import concurrent.futures.thread
import gc
import threading
import time

import pytest

from bot.bootstrap import prepare_to_serve
from bot.pool import ThreadPool
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
    release = threading.Event()
    busy = pool.submit(release.wait, 5)
    queued = pool.submit(lambda: None)
    pool.shutdown(wait=False, cancel_futures=True)
    assert queued.cancelled()
    with pytest.raises(RuntimeError):
        pool.submit(lambda: None)
    release.set()
    assert busy.result(timeout=5) is True


@pytest.mark.parametrize("pool_of", [Services, OrderedWork], ids=["listeners", "after-ack work"])
def test_a_submit_on_the_ack_path_does_not_wait_for_another_pool_starting_a_thread(pool_of: type) -> None:
    """concurrent.futures' pools share one lock, held by a submit while it starts a thread: in a burst
    the acks queued behind the work pool growing (`bench.ack`)."""
    if pool_of is Services:
        executor = Services.__dataclass_fields__["listener_executor"].default_factory()  # type: ignore[misc]
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
