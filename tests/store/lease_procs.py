"""Replicas for the lease tests: each a fresh interpreter holding the "background" lease in a LeasedWorker."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from typing import Any

NAME = "background"


class Marker:
    """A background worker that reports through `status` whether it runs (pid -> bool)."""

    name = "marker"

    def __init__(self, status: Any) -> None:
        self.status = status
        self._alive = False

    def start(self) -> None:
        self._alive = True
        self.status[os.getpid()] = True

    def stop(self) -> None:
        self._alive = False
        self.status[os.getpid()] = False

    def is_alive(self) -> bool:
        return self._alive

    def health(self) -> dict[str, Any]:
        return {}


def hold_lease(url: str, ttl: float, status: Any) -> None:
    """Run a LeasedWorker until killed."""
    from bot.replicas import LeasedWorker
    from bot.store.postgres import PostgresStore

    store = PostgresStore.connect(url, pool_size=2)
    status[os.getpid()] = False
    worker = LeasedWorker(store, [lambda: Marker(status)], lease=NAME, ttl=ttl)
    worker.start()
    threading.Event().wait()


def running(status: Any) -> set[int]:
    return {pid for pid, flag in dict(status).items() if flag}


def wait_for(condition: Callable[[], Any], timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)
