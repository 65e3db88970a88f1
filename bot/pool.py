"""A thread pool for work handed on from the path of an ack: the after-ack work, the prompt work
and the replay claims' writer, each submitted on a request's thread before Bolt answers."""

from __future__ import annotations

import contextvars
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Executor, Future
from typing import Any, TypeVar

from bot.ack_first import let_go_of_turn

logger = logging.getLogger(__name__)

_Task = tuple[Future, Callable[..., Any], tuple[Any, ...], dict[str, Any]]
RETRY_START_SECONDS = 1.0
Item = TypeVar("Item")
Result = TypeVar("Result")


def map_in_callers_context(pool: Executor, fn: Callable[[Item], Result], items: Iterable[Item]) -> list[Result]:
    """`list(pool.map(fn, items))`, each call in a copy of the caller's context: a pool's threads start
    with an empty one, and an after-ack job or a background worker yields to the acks through its
    context (bot.ack_first), its work for each account included. The caller gives back its turn first
    (bot.ack_first.let_go_of_turn): it only waits meanwhile, and the calls may need it."""
    let_go_of_turn()
    futures = [pool.submit(contextvars.copy_context().run, fn, item) for item in items]
    try:
        return [future.result() for future in futures]
    finally:  # as pool.map: after a failure, the calls not started yet never are
        for future in futures:
            future.cancel()


class ThreadPool(Executor):
    """concurrent.futures.ThreadPoolExecutor without its process-wide lock, and never starting a
    thread on the caller's.

    Every ThreadPoolExecutor.submit in a process takes one shared lock, and holds it while it starts
    a new thread and waits for that thread to run. In a burst of twenty slash commands, the listener
    and after-ack submits queued on it while the work pool grew (each `show` holds a worker for its
    AWS call): acks stalled 20-60 ms behind a lock that only guards the interpreter's exit (measured
    with `python -m bench.ack` and stack samples of the bot). Starting a thread is itself a wait for
    the interpreter lock (26 ms median with four busy threads), and every submit here is made on a
    request's thread before Slack has its answer. Here a submit takes
    this pool's own lock for two counters and hands the task over a SimpleQueue; when no worker is
    idle, it asks the pool's one starter thread for another.

    Workers are daemon threads. Services.close waits a few seconds for after-ack work; a job still
    running when the process exits is cut there, and journaled work resumes at the next start (the
    executor this replaces made the exit wait for it, however long).
    """

    def __init__(self, max_workers: int, name: str) -> None:
        if max_workers <= 0:
            raise ValueError("max_workers must be greater than 0")
        self.max_workers = max_workers
        self.name = name
        self._tasks: queue.SimpleQueue[_Task | None] = queue.SimpleQueue()
        self._wanted: queue.SimpleQueue[bool | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._idle = 0
        self._workers = 0  # started, or asked of the starter
        self._threads: list[threading.Thread] = []
        self._shut_down = False
        self._stopping = threading.Event()
        # Started here, at build time: never on a submit's thread, which may be a request's before its ack.
        self._starter = threading.Thread(target=self._start_workers, name=f"{name}_starter", daemon=True)
        self._starter.start()

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        future: Future = Future()
        with self._lock:
            if self._shut_down:
                raise RuntimeError("cannot schedule new futures after shutdown")
            self._tasks.put((future, fn, args, kwargs))
            if self._idle > 0:
                self._idle -= 1
                return future
            if self._workers >= self.max_workers:
                return future  # a busy worker takes it next
            self._workers += 1
        self._wanted.put(True)
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False, timeout: float | None = None) -> None:
        """As Executor.shutdown; with `wait`, for at most `timeout` seconds (None: however long)."""
        with self._lock:
            self._shut_down = True
        self._stopping.set()
        self._wanted.put(None)
        self._starter.join(timeout=5)  # after it, no thread is half started
        if cancel_futures:
            while True:
                try:
                    task = self._tasks.get_nowait()
                except queue.Empty:
                    break
                if task is not None:
                    task[0].cancel()
        with self._lock:
            if not self._threads and not self._tasks.empty():
                # Nothing was started to run what is queued (shut down before the starter got to it).
                # Kept with the others, so a second shutdown gives it a stop marker too.
                last = threading.Thread(target=self._work, name=f"{self.name}_last", daemon=True)
                self._threads.append(last)
                last.start()
            threads = list(self._threads)
        for _ in threads:
            self._tasks.put(None)  # after the tasks: the workers run what is queued first
        if wait:
            deadline = None if timeout is None else time.monotonic() + timeout
            for thread in threads:
                if thread is not threading.current_thread():
                    thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))

    def _start_workers(self) -> None:
        while self._wanted.get():
            while True:
                with self._lock:
                    if self._shut_down:
                        return
                    worker = threading.Thread(target=self._work, name=f"{self.name}_{len(self._threads)}", daemon=True)
                    self._threads.append(worker)
                try:
                    worker.start()
                    break
                except RuntimeError as error:  # the process's thread limit: wait for it, as the task does
                    with self._lock:
                        self._threads.remove(worker)
                    logger.warning("%s: could not start a worker (%s); trying again", self.name, error)
                    if self._stopping.wait(RETRY_START_SECONDS):
                        return

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
