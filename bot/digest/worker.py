"""The scheduler worker: a background loop that posts each due slot of the channels' schedules once,
and the follow-ups of Trusted Advisor refreshes.

Exactly once, in practice at most once: a slot is claimed in the store (committed) before the
digest is posted, so a restart, even after kill -9, never posts a slot again. A slot whose digest
could not be collected (AWS down) is tried again on later ticks while within the grace period.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta

from bot.ack_first import AckFirst, running_behind
from bot.digest.refresh import CheckRefresher
from bot.digest.schedule import FAILED, GRACE, POSTED, SKIPPED, Schedule, Schedules, decide
from bot.digest.service import DigestService
from bot.errors import AwsError, BotError

logger = logging.getLogger(__name__)

MAX_SLEEP_SECONDS = 30.0
MIN_SLEEP_SECONDS = 0.2
AWS_RETRY_SECONDS = 60.0


class ScheduleWorker:
    """Posts due digests and the follow-ups of Trusted Advisor refreshes, on its own thread."""

    name = "scheduler"

    def __init__(
        self,
        schedules: Schedules,
        digests: DigestService,
        refresher: CheckRefresher,
        *,
        max_sleep: float = MAX_SLEEP_SECONDS,
        behind: AckFirst | None = None,
    ) -> None:
        self.schedules = schedules
        # The gate of the requests its digests yield to (bot.ack_first): Slack's acks come first.
        self.behind = behind
        self.digests = digests
        self.refresher = refresher
        self.grace = GRACE
        self.max_sleep = max_sleep
        # Schedule generation -> when a slot whose digest AWS failed to give is tried again.
        self._retry_at: dict[str, datetime] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_tick: datetime | None = None
        self._failures = 0

    # One tick

    def run_once(self, now: datetime | None = None) -> None:
        """One tick (tests call it with a chosen `now` instead of waiting)."""
        now = now or self.schedules.clock()
        self.run_due(now)
        self.refresher.poll_refreshes(now)
        self._last_tick = now

    def run_due(self, now: datetime | None = None) -> list[str]:
        """Post every due slot once; returns the channels posted to."""
        now = now or self.schedules.clock()
        return [schedule.channel for schedule in self.schedules.all() if self._run_one(schedule, now)]

    def _run_one(self, schedule: Schedule, now: datetime) -> bool:
        decision = decide(schedule, now, self.grace)
        if decision.missed:
            logger.warning(
                "digest schedule of %s: %d slot(s) between %s and %s missed while the bot was down; skipped",
                schedule.channel,
                decision.missed,
                schedule.anchor.isoformat(),
                (decision.post or decision.skip or now).isoformat(),
            )
        if decision.skip:
            logger.warning(
                "digest for %s at %s skipped: missed by more than %s",
                schedule.channel,
                decision.skip.isoformat(),
                self.grace,
            )
            self.schedules.settle(schedule, decision.skip, SKIPPED)
            return False
        slot = decision.post
        if slot is None:
            return False
        retry_at = self._retry_at.get(schedule.generation)
        if retry_at and retry_at > now:
            return False

        try:
            # Collected before the slot is claimed: when AWS fails, nothing is spent and a later
            # tick tries again within the grace period.
            snapshot, blocks, text = self.digests.prepare(
                schedule.channel, zone=schedule.zone, account=schedule.account
            )
        except AwsError as error:
            logger.warning("digest for %s at %s: AWS failed (%s); will retry", schedule.channel, slot, error)
            self._retry_at[schedule.generation] = now + timedelta(seconds=AWS_RETRY_SECONDS)
            return False
        self._retry_at.pop(schedule.generation, None)

        if not self.schedules.claim(schedule, slot):
            return False
        try:
            message = self.digests.publish(schedule.channel, snapshot, blocks, text)
        except BotError as error:
            logger.warning("digest for %s at %s not posted: %s", schedule.channel, slot, error)
            self.schedules.settle(schedule, slot, FAILED)
            return False
        self.schedules.settle(schedule, slot, POSTED, ts=message.ts, posted_at=now)
        logger.info("digest posted in %s for %s", schedule.channel, slot.isoformat())
        return True

    # The loop

    def start(self) -> None:
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=running_behind(self.behind, self._loop), name="scheduler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self.schedules.wake()
        if self._thread is not None and self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout=5)

    def is_alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def health(self) -> dict[str, object]:
        return {
            "schedules": len(self.schedules),
            "last_tick": self._last_tick.isoformat() if self._last_tick else None,
            "failed_ticks": self._failures,
        }

    def _sleep_seconds(self) -> float:
        now = self.schedules.clock()
        wakeups = [t for t in (self.schedules.next_wakeup(now), self.refresher.next_refresh_poll()) if t]
        if not wakeups:
            return self.max_sleep
        seconds = (min(wakeups) - now).total_seconds()
        return min(self.max_sleep, max(MIN_SLEEP_SECONDS, seconds))

    def _loop(self) -> None:
        starting = True
        while not self._stop.is_set():
            try:
                if starting:
                    self.schedules.warn_interrupted()
                    starting = False
                self.run_once()
                self._failures = 0
                sleep = self._sleep_seconds()
            except Exception:
                # The worker's one error boundary: a bad tick is logged and the next one tries again.
                logger.exception("scheduler tick failed")
                self._failures += 1
                sleep = min(self.max_sleep, 2.0**self._failures)
            self.schedules.changed.wait(sleep)
            self.schedules.changed.clear()
