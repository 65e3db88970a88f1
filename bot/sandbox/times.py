"""Time in the sandbox: one adjustable clock, and the two formats AWS Support writes times in."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

MILLISECOND = timedelta(milliseconds=1)


class Clock:
    """Wall-clock UTC plus an offset that tests move forward (attachment expiry, check refreshes).

    Only the sandbox's idea of "now" moves; background timers (the engineer) keep real time.
    """

    def __init__(self) -> None:
        self._offset = timedelta()
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            offset = self._offset
        return datetime.now(UTC) + offset

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._offset += timedelta(seconds=seconds)


def format_millis(moment: datetime) -> str:
    """Case and communication times: ISO 8601 UTC with milliseconds, e.g. 2026-11-23T06:10:00.123Z."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def format_seconds(moment: datetime) -> str:
    """Trusted Advisor timestamps have no fraction, e.g. 2025-05-20T08:33:04Z."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def truncate_to_millis(moment: datetime) -> datetime:
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def parse_time(text: str) -> datetime | None:
    """What callers send as afterTime/beforeTime: ISO 8601 with or without zone, fraction or time."""
    value = text.strip()
    if not value:
        return None
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
