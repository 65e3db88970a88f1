"""A thread pool for the path of an ack: Bolt's listeners and the after-ack work they hand on."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future
from typing import Any

_Task = tuple[Future, Callable[..., Any], tuple[Any, ...], dict[str, Any]]


class ThreadPool(Executor):
    """concurrent.futures.ThreadPoolExecutor without its process-wide lock.

    Every ThreadPoolExecutor.submit in a process takes one shared lock, and holds it while it starts
    a new thread and waits for that thread to run. In a burst of twenty slash commands, twenty
    listener submits and twenty after-ack submits queued on it while the work pool grew (each `show`
    holds a worker for its AWS call): acks stalled 20-60 ms behind a lock that only guards the
    interpreter's exit (measured with `python -m bench.ack` and stack samples of the bot). Here a
    submit takes this pool's own lock for a counter, hands the task over a SimpleQueue, and starts
    a thread, when none is idle, outside any lock.

    Workers are daemon threads: Services.close waits for the work it wants finished, and what a
    stopped process leaves is resumed from the journal at the next start.
    """

    def __init__(self, max_workers: int, name: str) -> None:
        if max_workers <= 0:
            raise ValueError("max_workers must be greater than 0")
        self.max_workers = max_workers
        self.name = name
        self._tasks: queue.SimpleQueue[_Task | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._idle = 0
        self._threads: list[threading.Thread] = []
        self._shut_down = False

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        future: Future = Future()
        with self._lock:
            if self._shut_down:
                raise RuntimeError("cannot schedule new futures after shutdown")
            self._tasks.put((future, fn, args, kwargs))
            if self._idle > 0:
                self._idle -= 1
                return future
            if len(self._threads) >= self.max_workers:
                return future  # a busy worker takes it next
            worker = threading.Thread(target=self._work, name=f"{self.name}_{len(self._threads)}", daemon=True)
            self._threads.append(worker)
        try:
            worker.start()
        except BaseException:  # the thread limit: not a worker, so not counted against max_workers
            with self._lock:
                self._threads.remove(worker)
            if self._threads:
                return future  # the task stays queued for the workers there are
            future.cancel()  # no worker will run it; if one starts later, it skips it
            raise
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._lock:
            self._shut_down = True
            threads = list(self._threads)
        if cancel_futures:
            while True:
                try:
                    task = self._tasks.get_nowait()
                except queue.Empty:
                    break
                if task is not None:
                    task[0].cancel()
        for _ in threads:
            self._tasks.put(None)
        if wait:
            for thread in threads:
                if thread is not threading.current_thread() and thread.ident is not None:
                    thread.join()  # one a submit has not started yet takes its sentinel once it runs

    def _work(self) -> None:
        while True:
            task = self._tasks.get()
            if task is None:
                return
            future, fn, args, kwargs = task
            del task
            if future.set_running_or_notify_cancel():
                try:
                    result = fn(*args, **kwargs)
                except BaseException as error:  # the future carries it, as ThreadPoolExecutor's does
                    future.set_exception(error)
                    del error
                else:
                    future.set_result(result)
                    del result
            del future, fn, args, kwargs
            with self._lock:
                self._idle += 1
