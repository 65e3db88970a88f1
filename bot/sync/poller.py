"""The poller: the sync's cycle over every followed case, then the watched channels, every
POLL_INTERVAL_SECONDS beside the web server; and what an EventBridge event of a case sets off."""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime

from bot.ack_first import AckFirst, running_behind
from bot.errors import AwsError
from bot.events.watch import PipelineWatch
from bot.slack.channels import SlackRefused
from bot.sync.cycle import CaseSync, CycleReport
from bot.sync.state import utcnow
from bot.sync.watch import Watches

logger = logging.getLogger(__name__)


class Poller:
    """Runs a cycle every `interval` seconds in its own thread; a failing cycle backs off."""

    name = "poller"
    MAX_BACKOFF_SECONDS = 300.0

    def __init__(
        self,
        sync: CaseSync,
        watches: Watches,
        *,
        interval: float,
        pipeline: PipelineWatch | None = None,
        behind: AckFirst | None = None,
    ) -> None:
        self.sync = sync
        # The gate of the requests its cycles yield to (bot.ack_first): Slack's acks come first.
        self.behind = behind
        self.watches = watches
        self.interval = interval
        # With live updates: a cycle that posts something found what an event should have brought.
        self.pipeline = pipeline
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._started_at = utcnow()
        self._last_completed: datetime | None = None
        self._last_report = CycleReport()
        self._last_error = ""
        self._failures = 0
        self._cycles = 0

    def run_cycle(self) -> CycleReport:
        """One pass over every followed case, then the watched channels."""
        started, calls_before = time.monotonic(), self.sync.gateway.calls
        report = self.sync.run_cycle()
        if not self.sync.stopping.is_set():
            report.posted += self.watches.card_new_cases()
        report.aws_calls = self.sync.gateway.calls - calls_before
        report.seconds = time.monotonic() - started
        if self.pipeline is not None:
            self.pipeline.note_poll_found_changes(report.posted)
        return report

    # The background loop

    def start(self) -> None:
        if self._thread is not None:
            return
        # A replica that regains the background lease runs a new Poller (bot/replicas.py): the one it
        # stopped left the shared sync stopping.
        self.sync.stopping.clear()
        self._started_at = utcnow()
        self._thread = threading.Thread(target=running_behind(self.behind, self._run), name="poller", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self.sync.stop()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=10)

    def is_alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def health(self) -> dict[str, object]:
        reference = self._last_completed or self._started_at
        return {
            "interval_seconds": self.interval,
            "last_cycle_at": self._last_completed.isoformat() if self._last_completed else None,
            "lag_seconds": round((utcnow() - reference).total_seconds(), 3),
            "last_cycle_seconds": round(self._last_report.seconds, 3),
            "cases_followed": self._last_report.followed,
            "aws_calls_last_cycle": self._last_report.aws_calls,
            "posted_last_cycle": self._last_report.posted,
            "cycles": self._cycles,
            "last_error": self._last_error,
            # Several accounts: alias -> why its cases were not polled last cycle (the others were).
            "accounts_failing": dict(self.sync.account_errors),
        }

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                report = self.run_cycle()
            except AwsError as error:
                self._failed(f"AWS {error.code or error.key}")
                logger.warning("poll cycle stopped by AWS (%s); backing off", error.code or error.key)
            except SlackRefused as refused:
                self._failed(f"Slack {refused.error}")
                logger.error("poll cycle stopped by Slack: %s", refused.error)
            except Exception as error:  # noqa: BLE001 - the poller's one boundary: log, keep polling
                self._failed(type(error).__name__)
                logger.exception("poll cycle failed")
            else:
                self._last_report = report
                self._last_completed = utcnow()
                self._cycles += 1
                self._failures = 0
                self._last_error = "" if not report.failed_cases else f"{report.failed_cases} case(s) will retry"
            # A throttled or failing cycle waits longer each time; the next one resumes without loss.
            wait = min(self.interval * 2**self._failures, max(self.interval, self.MAX_BACKOFF_SECONDS))
            self._stop.wait(max(0.0, wait - (time.monotonic() - started)))

    def _failed(self, error: str) -> None:
        self._failures = min(self._failures + 1, 10)
        self._last_error = error
