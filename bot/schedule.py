"""Placeholder for the digest scheduler (issue: Trusted Advisor digests)."""

from __future__ import annotations

import threading
from typing import Any


class DigestScheduler:
    def __init__(self, services: Any) -> None:
        self.services = services


class ScheduleWorker:
    name = "scheduler"

    def __init__(self, services: Any) -> None:
        self.services = services
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._stop.wait, name="scheduler", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    def health(self) -> dict[str, Any]:
        return {}
