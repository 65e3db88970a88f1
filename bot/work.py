"""Work that runs after Slack has its ack: a thread pool where jobs sharing a key run in order.

Listeners ack within Slack's 3 s and hand the slow part (AWS calls) here, so an ack never waits
for a free thread behind slow AWS calls. Replies in one case thread share a key, so they reach AWS
in the order people wrote them.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

logger = logging.getLogger(__name__)

Job = Callable[[], None]


class AckFirst:
    """Work after an ack yields to requests still being answered: Slack's 3 s clock runs on those.

    Python threads share one interpreter lock, so a burst of after-ack AWS calls would otherwise
    slow the acks of the requests behind them. A job waits (briefly, bounded) until no request is
    in flight.
    """

    def __init__(self, max_wait_seconds: float = 0.25) -> None:
        self.max_wait_seconds = max_wait_seconds
        self._in_flight = 0
        self._quiet = threading.Condition()

    def request_started(self) -> None:
        with self._quiet:
            self._in_flight += 1

    def request_finished(self) -> None:
        with self._quiet:
            self._in_flight -= 1
            if self._in_flight == 0:
                self._quiet.notify_all()

    def wait_until_quiet(self) -> None:
        with self._quiet:
            self._quiet.wait_for(lambda: self._in_flight == 0, timeout=self.max_wait_seconds)


class OrderedWork:
    def __init__(self, max_workers: int = 32, name: str = "work", gate: AckFirst | None = None) -> None:
        self.gate = gate or AckFirst()
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix=name)
        self._queues: dict[str, deque[Job]] = {}
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._pending = 0

    def submit(self, job: Job, key: str | None = None) -> None:
        with self._lock:
            self._pending += 1
            if key is None:
                self._pool.submit(self._run, job)
                return
            queue = self._queues.get(key)
            if queue is not None:
                queue.append(job)  # a runner for this key is active and will take it
                return
            self._queues[key] = deque([job])
        self._pool.submit(self._drain, key)

    def _drain(self, key: str) -> None:
        while True:
            with self._lock:
                queue = self._queues[key]
                if not queue:
                    del self._queues[key]
                    return
                job = queue.popleft()
            self._run(job)

    def _run(self, job: Job) -> None:
        try:
            self.gate.wait_until_quiet()
            job()
        except Exception:  # the one boundary for work after an ack: log, never kill the pool
            logger.exception("background job failed")
        finally:
            with self._lock:
                self._pending -= 1
                self._idle.notify_all()

    def wait_idle(self, timeout: float | None = None) -> bool:
        """True once every submitted job has run (tests and shutdown use it)."""
        with self._lock:
            return self._idle.wait_for(lambda: self._pending == 0, timeout=timeout)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
