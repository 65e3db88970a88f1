"""Refresh checks: Trusted Advisor is asked to refresh what it may, and each refresh is followed
until it ends, when the updated digest is posted in the digest's thread.

The followed refreshes are recorded in the store before anyone relies on them, so that the scheduler
worker (worker.py) still posts the follow-up after a restart, and never posts it twice.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.digest.schedule import Schedules
from bot.digest.service import DigestService
from bot.digest.shaping import RefreshReport
from bot.domain import RefreshStatus, parse_aws_time
from bot.errors import AwsError, BotError
from bot.store.backend import Store, Table

logger = logging.getLogger(__name__)

# AWS answers InvalidParameterValue when asked to refresh (or for the refresh status of) a check
# that Trusted Advisor refreshes by itself; the code's spelling differs between endpoints.
AUTO_REFRESH_CODES = frozenset({"InvalidParameterValue", "InvalidParameterValueException"})
REFRESH_RUNNING = frozenset({"enqueued", "processing", "in_progress"})
REFRESH_POLL_SECONDS = 10.0  # the AWS user guide's recommended polling interval
REFRESH_DEADLINE = timedelta(minutes=30)

# Records of the "digests" table beside the channel IDs (which never start with "@").
AUTO_REFRESH_KEY = "@auto-refresh"  # checks learned to refresh by themselves
PENDING_REFRESHES_KEY = "@refreshes"  # refreshes whose follow-up the worker still owes


@dataclass(frozen=True)
class RefreshOutcome:
    """What clicking "Refresh checks" did."""

    started: tuple[str, ...] = ()
    running: tuple[str, ...] = ()  # a refresh someone else asked for is still under way
    automatic: int = 0  # checks Trusted Advisor refreshes by itself
    waiting: tuple[tuple[str, int], ...] = ()  # (check ID, ms until it may be refreshed again)
    failed: int = 0
    already_pending: bool = False

    @property
    def followed(self) -> tuple[str, ...]:
        return self.started + self.running

    @property
    def next_refreshable_in(self) -> timedelta | None:
        if not self.waiting:
            return None
        return timedelta(milliseconds=min(ms for _, ms in self.waiting))


@dataclass(frozen=True)
class PendingRefresh:
    """A refresh whose end the scheduler worker waits for, to post the follow-up in the thread."""

    channel: str
    thread_ts: str
    check_ids: tuple[str, ...]
    user: str
    started_at: datetime
    next_poll_at: datetime
    deadline: datetime
    posting: bool = False  # set before the follow-up is posted: it is never posted twice

    @property
    def key(self) -> str:
        return pending_key(self.channel, self.thread_ts)

    def to_record(self) -> dict[str, Any]:
        return {
            "channel": self.channel,
            "thread_ts": self.thread_ts,
            "check_ids": list(self.check_ids),
            "user": self.user,
            "started_at": self.started_at.isoformat(),
            "next_poll_at": self.next_poll_at.isoformat(),
            "deadline": self.deadline.isoformat(),
            "posting": self.posting,
        }

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> PendingRefresh:
        return cls(
            channel=record["channel"],
            thread_ts=record["thread_ts"],
            check_ids=tuple(record.get("check_ids") or ()),
            user=record.get("user", ""),
            started_at=parse_aws_time(record["started_at"]) or datetime.now(UTC),
            next_poll_at=parse_aws_time(record["next_poll_at"]) or datetime.now(UTC),
            deadline=parse_aws_time(record["deadline"]) or datetime.now(UTC),
            posting=bool(record.get("posting")),
        )


class CheckRefresher:
    """Starts the refreshes a digest's "Refresh checks" button asks for, and follows them to the
    follow-up; reads the digest service's clock and gateway, and posts through it in the zone of the
    channel's schedule."""

    def __init__(self, digests: DigestService, schedules: Schedules, store: Store) -> None:
        self.digests = digests
        self.schedules = schedules
        self.store = store
        self.poll_seconds = REFRESH_POLL_SECONDS
        self.deadline = REFRESH_DEADLINE

    @property
    def table(self) -> Table:
        # Beside each channel's digest state in the "digests" table (channel IDs never start with "@").
        return self.store.table("digests")

    def learned_automatic(self) -> set[str]:
        return set(self.table.get(AUTO_REFRESH_KEY) or [])

    def _learn_automatic(self, check_ids: Iterable[str]) -> None:
        ids = set(check_ids)
        if ids:
            self.table.update(AUTO_REFRESH_KEY, lambda known: sorted(set(known or []) | ids), [])

    def refresh_statuses(self, check_ids: Sequence[str]) -> list[RefreshStatus]:
        """Refresh statuses of many checks in one call; a check that refreshes by itself fails the
        whole call, so the batch is split to find it, and it is remembered and left out next time."""
        if not check_ids:
            return []
        try:
            return self.digests.gateway.trusted_advisor_refresh_statuses(check_ids)
        except AwsError as error:
            if error.code not in AUTO_REFRESH_CODES:
                raise
            if len(check_ids) == 1:
                self._learn_automatic(check_ids)
                return []
        middle = len(check_ids) // 2
        return self.refresh_statuses(check_ids[:middle]) + self.refresh_statuses(check_ids[middle:])

    def refresh(self, channel: str, thread_ts: str, user: str) -> RefreshOutcome:
        """Ask Trusted Advisor to refresh every check that may be refreshed now; the scheduler
        worker then waits for them and posts the follow-up in the digest's thread."""
        now = self.digests.clock()
        key = pending_key(channel, thread_ts)
        if key in self._pending():
            return RefreshOutcome(already_pending=True)
        checks = self.digests.gateway.trusted_advisor_checks(self.digests.language)
        automatic = self.learned_automatic()
        candidates = [c.check_id for c in checks if c.check_id not in automatic]
        statuses = self.refresh_statuses(candidates)
        running = tuple(s.check_id for s in statuses if s.status in REFRESH_RUNNING)
        waiting = [
            (s.check_id, s.millis_until_next_refreshable)
            for s in statuses
            if s.status not in REFRESH_RUNNING and s.millis_until_next_refreshable > 0
        ]
        refreshable = [
            s.check_id for s in statuses if s.status not in REFRESH_RUNNING and s.millis_until_next_refreshable <= 0
        ]
        started: list[str] = []
        learned: list[str] = []
        failed = 0
        for index, check_id in enumerate(refreshable):
            try:
                status = self.digests.gateway.refresh_trusted_advisor_check(check_id)
            except AwsError as error:
                if error.code in AUTO_REFRESH_CODES:
                    learned.append(check_id)
                elif error.retryable:
                    # Throttled, or AWS in trouble: what was started is followed, the rest can wait.
                    logger.warning("refresh stopped after %d checks: %s", len(started), error)
                    failed += len(refreshable) - index
                    break
                else:
                    failed += 1
                continue
            if status.status not in REFRESH_RUNNING and status.millis_until_next_refreshable > 0:
                waiting.append((check_id, status.millis_until_next_refreshable))
            else:
                started.append(check_id)
        self._learn_automatic(learned)
        outcome = RefreshOutcome(
            started=tuple(started),
            running=running,
            automatic=len(self.learned_automatic() & {c.check_id for c in checks}),
            waiting=tuple(waiting),
            failed=failed,
        )
        if outcome.followed:
            pending = PendingRefresh(
                channel=channel,
                thread_ts=thread_ts,
                check_ids=outcome.followed,
                user=user,
                started_at=now,
                next_poll_at=now + timedelta(seconds=self.poll_seconds),
                deadline=now + self.deadline,
            )
            # Recorded before anyone relies on it: a restart still posts the follow-up.
            if not self._save_pending(pending, only_if_absent=True):
                return RefreshOutcome(already_pending=True)
        return outcome

    # Followed refreshes live in one record, so that a worker tick reads one small value.

    def _pending(self) -> dict[str, Any]:
        record = self.table.get(PENDING_REFRESHES_KEY)
        return record if isinstance(record, dict) else {}

    def _save_pending(self, pending: PendingRefresh, *, only_if_absent: bool = False) -> bool:
        saved = False

        def change(record: Any) -> dict[str, Any]:
            nonlocal saved
            current = dict(record) if isinstance(record, dict) else {}
            if only_if_absent and pending.key in current:
                return current
            current[pending.key] = pending.to_record()
            saved = True
            return current

        self.table.update(PENDING_REFRESHES_KEY, change, {})
        return saved

    def _drop_pending(self, pending: PendingRefresh) -> None:
        self.table.update(
            PENDING_REFRESHES_KEY,
            lambda record: {k: v for k, v in (record or {}).items() if k != pending.key},
            {},
        )

    def pending_refreshes(self) -> list[PendingRefresh]:
        return [PendingRefresh.from_record(r) for r in self._pending().values() if isinstance(r, dict)]

    def next_refresh_poll(self) -> datetime | None:
        times = [p.next_poll_at for p in self.pending_refreshes() if not p.posting]
        return min(times) if times else None

    def poll_refreshes(self, now: datetime | None = None) -> int:
        """Check the followed refreshes that are due and settle those that are over (follow-up posted,
        or dropped when Slack refused it or AWS cannot give what it needs). Returns how many were settled."""
        now = now or self.digests.clock()
        posted = 0
        for pending in self.pending_refreshes():
            if pending.posting:
                # A follow-up was being posted when the bot stopped; posting again could double it.
                logger.warning("refresh follow-up in %s may not have been posted; not retried", pending.channel)
                self._drop_pending(pending)
                continue
            if pending.next_poll_at > now:
                continue
            if self._follow_up(pending, now):
                posted += 1
            else:
                self._save_pending(replace(pending, next_poll_at=now + timedelta(seconds=self.poll_seconds)))
        return posted

    def _refresh_report(self, pending: PendingRefresh, now: datetime) -> RefreshReport | None:
        """None while the refresh is still under way and before its deadline."""
        statuses = {s.check_id: s.status for s in self.refresh_statuses(list(pending.check_ids))}
        running = sum(1 for s in statuses.values() if s in REFRESH_RUNNING)
        if running and now < pending.deadline:
            return None
        return RefreshReport(
            succeeded=sum(1 for s in statuses.values() if s == "success"),
            abandoned=sum(1 for s in statuses.values() if s == "abandoned"),
            unfinished=running,
        )

    def _follow_up(self, pending: PendingRefresh, now: datetime) -> bool:
        """Post the updated digest in the thread once the refresh is over; False: look again later.

        AWS failing is waited out only while it may pass (a retryable error) and until the deadline:
        then the refresh counts as unfinished, and a follow-up that cannot be collected is dropped.
        """
        try:
            report = self._refresh_report(pending, now)
        except AwsError as error:
            if self._worth_waiting(error, pending, now):
                logger.warning("refresh follow-up for %s postponed: %s", pending.channel, error)
                return False
            logger.warning("refresh of %s not followed to its end: %s", pending.channel, error)
            report = RefreshReport(unfinished=len(pending.check_ids))
        if report is None:
            return False
        try:
            zone = self.schedules.zone_for(pending.channel)
            snapshot, blocks, text = self.digests.prepare(pending.channel, zone=zone, refresh=report)
        except AwsError as error:
            if self._worth_waiting(error, pending, now):
                logger.warning("refresh follow-up for %s postponed: %s", pending.channel, error)
                return False
            logger.warning("refresh follow-up for %s dropped: %s", pending.channel, error)
            self._drop_pending(pending)
            return True
        self._save_pending(replace(pending, posting=True))
        try:
            self.digests.publish(pending.channel, snapshot, blocks, text, thread_ts=pending.thread_ts)
        except BotError as error:
            logger.warning("refresh follow-up for %s not posted: %s", pending.channel, error)
        finally:
            self._drop_pending(pending)
        return True

    @staticmethod
    def _worth_waiting(error: AwsError, pending: PendingRefresh, now: datetime) -> bool:
        return error.retryable and now < pending.deadline


def pending_key(channel: str, thread_ts: str) -> str:
    return f"{channel}:{thread_ts}"
