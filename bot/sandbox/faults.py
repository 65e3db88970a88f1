"""Injected failures of the sandbox: an operation answers an error, before or after doing its work."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from bot.sandbox.control import ANY_OPERATION

# Not an AWS error code: the connection closes without an answer (botocore: ConnectionClosedError).
CONNECTION_DROPPED = "ConnectionDropped"


class DroppedConnection(Exception):
    """The request's connection is to be closed without an answer."""


@dataclass
class Fault:
    operation: str
    code: str
    remaining: int
    message: str | None
    # True: the operation is carried out, then the error is answered (a response lost on the way,
    # as when AWS answers 5xx or times out after doing the work).
    after_processing: bool = False
    # Seconds after the failure that the operation is carried out: AWS still at work on a request
    # whose connection dropped (with CONNECTION_DROPPED).
    late_seconds: float = 0.0


class Faults:
    """Injected failures, used up one call at a time, oldest first."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._lock = threading.Lock()

    def add(
        self,
        operation: str,
        code: str,
        count: int,
        message: str | None,
        after_processing: bool = False,
        late_seconds: float = 0.0,
    ) -> None:
        if count < 1:
            raise ValueError("count must be >= 1")
        if not 0 <= late_seconds <= 3600 or (late_seconds and (after_processing or code != CONNECTION_DROPPED)):
            # AWS answers an error only for work it did not do, and does late only what it never answered.
            raise ValueError(f"late_seconds must be 0 to 3600, and only with {CONNECTION_DROPPED} before processing")
        with self._lock:
            self._faults.append(Fault(operation, code, count, message, after_processing, late_seconds))

    def take(self, operation: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.operation in (operation, ANY_OPERATION):
                    fault.remaining -= 1
                    if fault.remaining == 0:
                        self._faults.remove(fault)
                    return fault
        return None

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()
