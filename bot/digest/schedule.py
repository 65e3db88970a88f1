"""Digest schedules: a cron expression in a channel's time zone, each slot posted at most once.
The records and their store are here; the worker that posts the due slots is worker.py.

Exactly once, in practice at most once: a slot is claimed in the store (committed) before the
digest is posted, so a restart, even after kill -9, never posts a slot again. A slot whose digest
could not be collected (AWS down) is tried again on later ticks while within the grace period.
After downtime, the latest missed slot is posted once if it is at most GRACE old, else skipped and
logged; older missed slots are only logged.

cronsim does the calendar, Debian cron's way around DST: a job at a time that does not exist on
the day clocks go forward runs when they have; a time that happens twice runs the first time.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from cronsim import CronSim, CronSimError

from bot.domain import parse_aws_time
from bot.errors import UserInputError
from bot.store.backend import Store, Table

logger = logging.getLogger(__name__)

GRACE = timedelta(hours=1)
CRON_FIELDS = 5
MISSED_COUNT_CAP = 1000

POSTING, POSTED, FAILED, SKIPPED = "posting", "posted", "failed", "skipped"


# Parsing what a person typed -------------------------------------------------------------------


@lru_cache(maxsize=1)
def _zones_by_lower_name() -> dict[str, str]:
    return {name.lower(): name for name in available_timezones()}


def parse_zone(name: str) -> str:
    """An IANA zone name, spelled as the database spells it (europe/paris -> Europe/Paris)."""
    canonical = _zones_by_lower_name().get(name.strip().lower())
    if canonical is None:
        raise UserInputError("digest_bad_zone", zone=name)
    return canonical


def parse_cron(fields: Sequence[str]) -> str:
    """Five cron fields, validated by cronsim; six-field (seconds) and macro forms are refused."""
    expr = " ".join(fields)
    if len(fields) != CRON_FIELDS:
        raise UserInputError("digest_cron_fields", cron=expr, count=len(fields))
    try:
        iterator = CronSim(expr, datetime.now(UTC))
    except CronSimError as exc:
        raise UserInputError("digest_bad_cron", cron=expr, reason=str(exc)) from exc
    try:
        next(iterator)
    except StopIteration as exc:
        raise UserInputError("digest_never_runs", cron=expr) from exc
    return expr


def split_schedule_args(args: Sequence[str]) -> tuple[list[str], str | None]:
    """`0 9 * * 1-5 Europe/Paris` -> (cron fields, zone); quotes around the cron are tolerated."""
    words = " ".join(args).translate(str.maketrans("", "", "\"'“”‘’`")).split()
    if len(words) == CRON_FIELDS + 1:
        return words[:CRON_FIELDS], words[CRON_FIELDS]
    return words, None


# The record ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Schedule:
    channel: str
    cron: str
    timezone: str
    created_by: str
    created_at: datetime
    # A new one each time the schedule is set, so that a slot claimed for an old schedule is refused.
    generation: str
    last_slot: datetime | None = None  # the latest slot handled (posted, being posted, failed, skipped)
    last_outcome: str = ""
    last_posted_at: datetime | None = None
    last_ts: str = ""
    # The account the digest is of: "" the channel's default, an alias, or "all" (the roll-up).
    account: str = ""

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def anchor(self) -> datetime:
        """Slots after this one are due; earlier ones were handled or predate the schedule."""
        return self.last_slot or self.created_at

    def next_run(self, after: datetime) -> datetime | None:
        """The first slot strictly after `after`, in UTC."""
        try:
            return next(CronSim(self.cron, after.astimezone(self.zone))).astimezone(UTC)
        except StopIteration:
            return None

    def latest_slot(self, now: datetime) -> datetime | None:
        """The last slot at or before `now`, in UTC."""
        # cronsim's reverse iteration steps one second back before searching: start one second late.
        start = now.replace(microsecond=0) + timedelta(seconds=1)
        try:
            return next(CronSim(self.cron, start.astimezone(self.zone), reverse=True)).astimezone(UTC)
        except StopIteration:
            return None

    def slots_between(self, after: datetime, before: datetime, cap: int = MISSED_COUNT_CAP) -> int:
        """How many slots lie strictly between two moments (for the log), at most `cap`."""
        count = 0
        for slot in CronSim(self.cron, before.astimezone(self.zone), reverse=True):
            if slot.astimezone(UTC) <= after or count >= cap:
                break
            count += 1
        return count

    def to_record(self) -> dict[str, Any]:
        return {
            "channel": self.channel,
            "cron": self.cron,
            "timezone": self.timezone,
            "created_by": self.created_by,
            "created_at": self.created_at.isoformat(),
            "generation": self.generation,
            "last_slot": self.last_slot.isoformat() if self.last_slot else None,
            "last_outcome": self.last_outcome,
            "last_posted_at": self.last_posted_at.isoformat() if self.last_posted_at else None,
            "last_ts": self.last_ts,
            "account": self.account,
        }

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Schedule:
        return cls(
            channel=record["channel"],
            cron=record["cron"],
            timezone=record.get("timezone") or "UTC",
            created_by=record.get("created_by", ""),
            created_at=parse_aws_time(record.get("created_at")) or datetime.now(UTC),
            generation=record.get("generation", ""),
            last_slot=parse_aws_time(record.get("last_slot")),
            last_outcome=record.get("last_outcome", ""),
            last_posted_at=parse_aws_time(record.get("last_posted_at")),
            last_ts=record.get("last_ts", ""),
            account=record.get("account") or "",
        )


def utcnow() -> datetime:
    return datetime.now(UTC)


def _load(record: Any) -> Schedule | None:
    """A stored schedule, or None when it cannot run (a zone gone from tzdata, a damaged record):
    one bad record must not stop the others."""
    if not isinstance(record, dict):
        return None
    try:
        schedule = Schedule.from_record(record)
        CronSim(schedule.cron, datetime.now(schedule.zone))
    except (KeyError, TypeError, ValueError, CronSimError, ZoneInfoNotFoundError) as exc:
        logger.warning("digest schedule %r cannot run and is ignored: %s", record.get("channel"), exc)
        return None
    return schedule


@dataclass(frozen=True)
class SlotDecision:
    """What to do with a schedule at a moment."""

    post: datetime | None = None  # the slot to post now
    skip: datetime | None = None  # the latest slot, missed by more than the grace period
    missed: int = 0  # earlier slots passed over (logged)


def decide(schedule: Schedule, now: datetime, grace: timedelta = GRACE) -> SlotDecision:
    latest = schedule.latest_slot(now)
    anchor = schedule.anchor
    if latest is None or latest <= anchor:
        return SlotDecision()
    missed = schedule.slots_between(anchor, latest)
    if now - latest <= grace:
        return SlotDecision(post=latest, missed=missed)
    return SlotDecision(skip=latest, missed=missed)


# The store -------------------------------------------------------------------------------------


class Schedules:
    """The channels' schedules ("schedules" table): set, shown and removed by people; each slot
    claimed, then settled, by the worker."""

    def __init__(self, store: Store, *, default_zone: str, clock: Callable[[], datetime] = utcnow) -> None:
        self.store = store
        self.default_zone = default_zone
        self.clock = clock
        self.changed = threading.Event()  # wakes the worker when a schedule is set or removed

    @property
    def table(self) -> Table:
        return self.store.table("schedules")

    def wake(self) -> None:
        self.changed.set()

    # What a person asks for

    def set(self, channel: str, args: Sequence[str], user: str, account: str = "") -> tuple[Schedule, bool]:
        """Validate and store a schedule; (schedule, whether it replaced one)."""
        fields, zone_name = split_schedule_args(args)
        cron = parse_cron(fields)
        zone = parse_zone(zone_name) if zone_name else self.default_zone
        schedule = Schedule(
            channel=channel,
            cron=cron,
            timezone=zone,
            created_by=user,
            created_at=self.clock(),
            generation=uuid.uuid4().hex,
            account=account,
        )
        replaced = channel in self.table
        self.table.put(channel, schedule.to_record())
        self.wake()
        return schedule, replaced

    def remove(self, channel: str) -> bool:
        existed = channel in self.table
        self.table.delete(channel)
        self.wake()
        return existed

    def get(self, channel: str) -> Schedule | None:
        return _load(self.table.get(channel))

    def all(self) -> list[Schedule]:
        return [s for s in (_load(r) for r in self.table.values()) if s]

    def __len__(self) -> int:
        return len(self.table)

    def zone_for(self, channel: str) -> ZoneInfo:
        """The channel's schedule zone when it has one, else DIGEST_TIMEZONE."""
        schedule = self.get(channel)
        return ZoneInfo(schedule.timezone if schedule else self.default_zone)

    def next_run(self, schedule: Schedule) -> datetime | None:
        return schedule.next_run(self.clock())

    @staticmethod
    def explain(schedule: Schedule) -> str:
        """cronsim's English reading of the expression ("At 09:00 on every day-of-week from …")."""
        try:
            return CronSim(schedule.cron, datetime.now(UTC)).explain()
        except Exception:  # noqa: BLE001 - the explanation is a nicety; the schedule itself is valid
            return ""

    # What the worker does

    def next_wakeup(self, now: datetime) -> datetime | None:
        times = [t for t in (s.next_run(now) for s in self.all()) if t]
        return min(times) if times else None

    def warn_interrupted(self) -> None:
        """At start: a slot claimed but not confirmed may or may not have reached Slack."""
        for schedule in self.all():
            if schedule.last_outcome == POSTING:
                logger.warning(
                    "digest for %s at %s may not have been posted (the bot stopped while posting); "
                    "not posted again so that it is never doubled",
                    schedule.channel,
                    schedule.last_slot,
                )

    def claim(self, schedule: Schedule, slot: datetime) -> bool:
        """Mark the slot as being posted, unless it was handled or the schedule changed meanwhile."""
        claimed = False

        def change(record: Any) -> Any:
            nonlocal claimed
            if not isinstance(record, dict):
                return record
            current = Schedule.from_record(record)
            if current.generation != schedule.generation or current.anchor >= slot:
                return record
            claimed = True
            return replace(current, last_slot=slot, last_outcome=POSTING).to_record()

        if schedule.channel not in self.table:
            return False
        self.table.update(schedule.channel, change)
        return claimed

    def settle(
        self, schedule: Schedule, slot: datetime, outcome: str, *, ts: str = "", posted_at: datetime | None = None
    ) -> None:
        """Record how a slot ended (posted, failed, skipped), unless the schedule changed meanwhile."""

        def change(record: Any) -> Any:
            if not isinstance(record, dict):
                return record
            current = Schedule.from_record(record)
            if current.generation != schedule.generation or (current.last_slot and current.last_slot > slot):
                return record
            updated = replace(current, last_slot=slot, last_outcome=outcome)
            if outcome == POSTED:
                updated = replace(updated, last_ts=ts, last_posted_at=posted_at)
            return updated.to_record()

        if schedule.channel in self.table:
            self.table.update(schedule.channel, change)
