"""Notices a silent event pipeline: polls keep finding changes that events should have brought.

With events on, an event's sync posts a new communication seconds after AWS writes it, so the
backstop poll finds nothing new. A poll that does find changes means an event was missed; AWS
delivers events best-effort, so one miss says little. Many misses while no event at all arrives for
a long time say the rule, the queue policy or the forwarding from member accounts is broken.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

logger = logging.getLogger(__name__)

DEFAULT_SILENCE_SECONDS = 6 * 3600.0
DEFAULT_MISSES = 2


class PipelineWatch:
    """`note_event()` from the consumer, `note_poll_found_changes()` from the poller; thread-safe."""

    def __init__(
        self,
        silence_seconds: float = DEFAULT_SILENCE_SECONDS,
        misses: int = DEFAULT_MISSES,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.silence_seconds = silence_seconds
        self.misses = misses
        self._clock = clock
        self._lock = threading.Lock()
        # Counted from the start: a pipeline that never delivered anything is the likeliest broken one.
        self._since = clock()
        self._last_event: float | None = None
        self._missed = 0
        self._warned_at: float | None = None

    def note_event(self) -> None:
        with self._lock:
            self._last_event = self._since = self._clock()
            self._missed = 0
            self._warned_at = None

    def note_poll_found_changes(self, changes: int = 1) -> bool:
        """A poll cycle found `changes` new communications or statuses; True when this logged the warning."""
        if changes <= 0:
            return False
        with self._lock:
            now = self._clock()
            self._missed += 1
            quiet = now - self._since
            if quiet < self.silence_seconds or self._missed < self.misses:
                return False
            # Once per silence period: the log should say it, not shout it every cycle.
            if self._warned_at is not None and now - self._warned_at < self.silence_seconds:
                return False
            self._warned_at = now
            missed, last = self._missed, self._last_event
        logger.warning(
            "the event pipeline looks broken: %d polls found changes while no event arrived for %.0f s "
            "(last event: %s); check the EventBridge rule, the queue policy and member-account forwarding",
            missed,
            quiet,
            _iso(last) or "none since start",
        )
        return True

    def health(self) -> dict[str, Any]:
        with self._lock:
            return {
                "last_event_at": _iso(self._last_event),
                "polls_with_changes_since_last_event": self._missed,
                "looks_broken": self._warned_at is not None,
            }


def _iso(epoch: float | None) -> str | None:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds") if epoch else None
