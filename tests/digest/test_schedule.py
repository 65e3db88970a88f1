"""Schedules in a channel's zone, across DST, restarts and downtime: time travel, never waiting."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from bot.digest.schedule import (
    GRACE,
    POSTED,
    SKIPPED,
    Schedule,
    Schedules,
    decide,
    parse_cron,
    parse_zone,
    split_schedule_args,
)
from bot.digest.service import Posted
from bot.digest.worker import ScheduleWorker
from bot.errors import AwsError, BotError, UserInputError
from bot.store.tables import Store

PARIS = ZoneInfo("Europe/Paris")
NEW_YORK = ZoneInfo("America/New_York")


def paris(*args: int) -> datetime:
    return datetime(*args, tzinfo=PARIS).astimezone(UTC)


def schedule(cron: str, zone: str = "Europe/Paris", created: datetime | None = None, **kw: Any) -> Schedule:
    return Schedule(
        channel="C1",
        cron=cron,
        timezone=zone,
        created_by="UADMIN",
        created_at=created or paris(2025, 3, 1, 0, 0),
        generation="g1",
        **kw,
    )


# Parsing -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["0 9 * * 1-5", "*/15 * * * *", "30 2 * * SUN", "0 0 L * *", "0 9 1,15 * *"])
def test_valid_cron_expressions(text: str) -> None:
    assert parse_cron(text.split()) == text


@pytest.mark.parametrize(
    "text, key",
    [
        ("0 9 * *", "digest_cron_fields"),
        ("0 0 9 * * 1-5", "digest_cron_fields"),
        ("61 9 * * *", "digest_bad_cron"),
        ("0 25 * * *", "digest_bad_cron"),
        ("a b c d e", "digest_bad_cron"),
        ("0 0 31 2 *", "digest_bad_cron"),
    ],
)
def test_invalid_cron_expressions_get_a_clear_answer(text: str, key: str) -> None:
    with pytest.raises(UserInputError) as caught:
        parse_cron(text.split())

    assert caught.value.key == key


@pytest.mark.parametrize(
    "name, canonical", [("Europe/Paris", "Europe/Paris"), ("europe/paris", "Europe/Paris"), ("UTC", "UTC")]
)
def test_zones_are_spelled_canonically(name: str, canonical: str) -> None:
    assert parse_zone(name) == canonical


@pytest.mark.parametrize("name", ["Mars/Olympus", "Europe", "../../etc/passwd", "", "1-5"])
def test_unknown_zones_are_refused(name: str) -> None:
    with pytest.raises(UserInputError) as caught:
        parse_zone(name)

    assert caught.value.key == "digest_bad_zone"


def test_schedule_arguments_split_cron_and_zone_and_tolerate_quotes() -> None:
    assert split_schedule_args(['"0', "9", "*", "*", '1-5"', "Europe/Paris"]) == (
        ["0", "9", "*", "*", "1-5"],
        "Europe/Paris",
    )
    assert split_schedule_args(["0", "9", "*", "*", "*"]) == (["0", "9", "*", "*", "*"], None)


# When slots fall ----------------------------------------------------------------------------------


def test_slot_fires_at_the_right_minute_in_a_non_utc_zone() -> None:
    weekdays_nine = schedule("0 9 * * 1-5")

    # Monday 3 March 2025, 09:00 in Paris is 08:00 UTC
    assert decide(weekdays_nine, paris(2025, 3, 3, 8, 59, 59)).post is None
    assert decide(weekdays_nine, paris(2025, 3, 3, 9, 0, 0)).post == datetime(2025, 3, 3, 8, 0, tzinfo=UTC)
    assert weekdays_nine.next_run(paris(2025, 3, 3, 9, 0)) == datetime(2025, 3, 4, 8, 0, tzinfo=UTC)


def test_a_posted_slot_is_not_due_again() -> None:
    posted = schedule("0 9 * * 1-5", last_slot=paris(2025, 3, 3, 9, 0), last_outcome=POSTED)

    assert decide(posted, paris(2025, 3, 3, 9, 0, 30)).post is None
    assert decide(posted, paris(2025, 3, 3, 23, 59)).post is None
    assert decide(posted, paris(2025, 3, 4, 9, 0)).post == paris(2025, 3, 4, 9, 0)


def test_a_schedule_set_after_todays_slot_waits_for_tomorrow() -> None:
    late = schedule("0 9 * * *", created=paris(2025, 3, 3, 9, 0, 30))

    assert decide(late, paris(2025, 3, 3, 9, 1)).post is None
    assert decide(late, paris(2025, 3, 4, 9, 0)).post == paris(2025, 3, 4, 9, 0)


def test_spring_forward_a_missing_time_runs_when_the_clocks_have_moved() -> None:
    # 30 March 2025: Paris goes from 02:00 CET straight to 03:00 CEST; 02:30 does not exist.
    nightly = schedule("30 2 * * *", last_slot=paris(2025, 3, 29, 2, 30))

    slot = nightly.next_run(paris(2025, 3, 29, 2, 30))

    assert slot == datetime(2025, 3, 30, 1, 0, tzinfo=UTC)  # 03:00 CEST, once
    assert decide(nightly, slot - timedelta(seconds=1)).post is None
    assert decide(nightly, slot).post == slot
    assert nightly.next_run(slot) == paris(2025, 3, 31, 2, 30)


def test_fall_back_a_repeated_time_runs_once() -> None:
    # 26 October 2025: 02:30 happens twice in Paris (CEST, then CET).
    nightly = schedule("30 2 * * *", last_slot=paris(2025, 10, 25, 2, 30))

    first = nightly.next_run(paris(2025, 10, 25, 2, 30))
    assert first == datetime(2025, 10, 26, 0, 30, tzinfo=UTC)  # 02:30 CEST
    after_first = schedule("30 2 * * *", last_slot=first)
    assert decide(after_first, datetime(2025, 10, 26, 1, 30, tzinfo=UTC)).post is None  # 02:30 CET
    assert after_first.next_run(first) == paris(2025, 10, 27, 2, 30)


def test_hourly_schedules_follow_real_hours_across_dst() -> None:
    hourly = schedule("0 * * * *", zone="America/New_York")
    start = datetime(2025, 3, 9, 5, 30, tzinfo=UTC)  # 00:30 EST, the night clocks go forward

    slots, moment = [], start
    for _ in range(4):
        moment = hourly.next_run(moment)
        slots.append(moment)

    assert [s.hour for s in slots] == [6, 7, 8, 9]  # every real hour once, none doubled or lost


# Downtime --------------------------------------------------------------------------------------


def test_a_slot_missed_within_the_grace_period_is_caught_up_once() -> None:
    daily = schedule("0 9 * * *", last_slot=paris(2025, 3, 2, 9, 0))

    decision = decide(daily, paris(2025, 3, 3, 9, 59))

    assert decision.post == paris(2025, 3, 3, 9, 0) and decision.missed == 0


def test_a_slot_missed_beyond_the_grace_period_is_skipped() -> None:
    daily = schedule("0 9 * * *", last_slot=paris(2025, 3, 2, 9, 0))

    decision = decide(daily, paris(2025, 3, 3, 9, 0) + GRACE + timedelta(seconds=1))

    assert decision.post is None and decision.skip == paris(2025, 3, 3, 9, 0)


def test_after_long_downtime_only_the_latest_slot_is_posted_and_the_rest_logged() -> None:
    every_15 = schedule("*/15 * * * *", last_slot=paris(2025, 3, 3, 6, 0))

    decision = decide(every_15, paris(2025, 3, 3, 9, 5))

    assert decision.post == paris(2025, 3, 3, 9, 0)
    assert decision.missed == 11  # 06:15 … 08:45


# The service, over a real store -------------------------------------------------------------------


@dataclass
class RecordingDigests:
    """Stands in for DigestService: what the scheduler asks it to post (the real one is tested e2e)."""

    clock_now: datetime = field(default_factory=lambda: paris(2025, 3, 3, 8, 0))
    published: list[tuple[str, str]] = field(default_factory=list)
    prepare_error: BotError | None = None
    publish_error: BotError | None = None

    def clock(self) -> datetime:
        return self.clock_now

    def prepare(self, channel: str, *, zone: ZoneInfo, account: str = "") -> tuple[Any, list, str]:
        if self.prepare_error:
            raise self.prepare_error
        return object(), [], "digest"

    def publish(self, channel: str, snapshot: Any, blocks: list, text: str) -> Posted:
        if self.publish_error:
            raise self.publish_error
        self.published.append((channel, self.clock_now.isoformat()))
        return Posted(channel=channel, ts=f"{len(self.published)}.000")


@dataclass
class Scheduling:
    """The schedules over a real store, and the worker that posts their due slots through `digests`."""

    store: Store
    schedules: Schedules
    worker: ScheduleWorker


def make_scheduler(path: str, digests: RecordingDigests) -> Scheduling:
    store = Store(path)
    schedules = Schedules(store, default_zone="Europe/Paris", clock=digests.clock)
    # Refreshes are not these tests' concern: the worker's run_due never looks at them.
    return Scheduling(store, schedules, ScheduleWorker(schedules, digests, refresher=None))  # type: ignore[arg-type]


@pytest.fixture
def db(tmp_path: Any) -> str:
    return str(tmp_path / "bot.sqlite")


def test_set_status_and_remove(db: str) -> None:
    digests = RecordingDigests()
    schedules = make_scheduler(db, digests).schedules

    saved, replaced = schedules.set("C1", ["0", "9", "*", "*", "1-5"], "UADMIN")
    assert (saved.cron, saved.timezone, replaced) == ("0 9 * * 1-5", "Europe/Paris", False)
    assert schedules.next_run(saved) == paris(2025, 3, 3, 9, 0)
    assert "09:00" in schedules.explain(saved)
    _, replaced = schedules.set("C1", ["30", "7", "*", "*", "*", "america/new_york"], "UADMIN")
    assert replaced and schedules.get("C1").timezone == "America/New_York"
    assert schedules.remove("C1") and schedules.get("C1") is None and not schedules.remove("C1")


def test_each_slot_posts_once_even_when_ticks_repeat(db: str) -> None:
    digests = RecordingDigests()
    scheduling = make_scheduler(db, digests)
    schedules, worker = scheduling.schedules, scheduling.worker
    schedules.set("C1", ["0", "9", "*", "*", "*"], "UADMIN")

    for now in [
        paris(2025, 3, 3, 8, 59, 59),
        paris(2025, 3, 3, 9, 0, 0),
        paris(2025, 3, 3, 9, 0, 0),
        paris(2025, 3, 3, 9, 1, 0),
        paris(2025, 3, 3, 9, 30, 0),
    ]:
        digests.clock_now = now
        worker.run_due(now=now)

    assert len(digests.published) == 1
    assert schedules.get("C1").last_outcome == POSTED


def test_a_restart_on_the_same_store_does_not_post_again(db: str) -> None:
    digests = RecordingDigests()
    first = make_scheduler(db, digests)
    first.schedules.set("C1", ["0", "9", "*", "*", "*"], "UADMIN")
    first.worker.run_due(now=paris(2025, 3, 3, 9, 0, 5))
    first.store.close()

    second = make_scheduler(db, digests)
    second.worker.run_due(now=paris(2025, 3, 3, 9, 0, 20))

    assert len(digests.published) == 1


def test_a_slot_claimed_before_a_crash_is_never_posted_again(db: str) -> None:
    digests = RecordingDigests()
    schedules = make_scheduler(db, digests).schedules
    schedules.set("C1", ["0", "9", "*", "*", "*"], "UADMIN")
    # As if kill -9 hit between the claim and the post:
    assert schedules.claim(schedules.get("C1"), paris(2025, 3, 3, 9, 0))

    make_scheduler(db, digests).worker.run_due(now=paris(2025, 3, 3, 9, 0, 30))

    assert digests.published == []


def test_aws_failure_leaves_the_slot_for_a_later_tick_within_grace(db: str) -> None:
    digests = RecordingDigests(prepare_error=AwsError("throttled", code="ThrottlingException", retryable=True))
    scheduling = make_scheduler(db, digests)
    schedules, worker = scheduling.schedules, scheduling.worker
    schedules.set("C1", ["0", "9", "*", "*", "*"], "UADMIN")

    worker.run_due(now=paris(2025, 3, 3, 9, 0))
    digests.prepare_error = None
    worker.run_due(now=paris(2025, 3, 3, 9, 0, 30))  # too soon: backing off
    worker.run_due(now=paris(2025, 3, 3, 9, 2))

    assert len(digests.published) == 1


def test_slack_refusal_is_recorded_not_retried(db: str) -> None:
    digests = RecordingDigests(publish_error=BotError("digest_not_in_channel", error="not_in_channel"))
    scheduling = make_scheduler(db, digests)
    schedules, worker = scheduling.schedules, scheduling.worker
    schedules.set("C1", ["0", "9", "*", "*", "*"], "UADMIN")

    worker.run_due(now=paris(2025, 3, 3, 9, 0))
    digests.publish_error = None
    worker.run_due(now=paris(2025, 3, 3, 9, 1))

    assert digests.published == [] and schedules.get("C1").last_outcome == "failed"


def test_downtime_beyond_grace_skips_and_records(db: str) -> None:
    digests = RecordingDigests()
    scheduling = make_scheduler(db, digests)
    schedules, worker = scheduling.schedules, scheduling.worker
    schedules.set("C1", ["0", "9", "*", "*", "*"], "UADMIN")

    worker.run_due(now=paris(2025, 3, 3, 10, 30))

    assert digests.published == []
    current = schedules.get("C1")
    assert (current.last_slot, current.last_outcome) == (paris(2025, 3, 3, 9, 0), SKIPPED)
    worker.run_due(now=paris(2025, 3, 4, 9, 0))
    assert len(digests.published) == 1


def test_a_schedule_replaced_meanwhile_is_not_claimed_for_the_old_one(db: str) -> None:
    digests = RecordingDigests()
    schedules = make_scheduler(db, digests).schedules
    old, _ = schedules.set("C1", ["0", "9", "*", "*", "*"], "UADMIN")
    schedules.set("C1", ["0", "18", "*", "*", "*"], "UADMIN")

    assert schedules.claim(old, paris(2025, 3, 3, 9, 0)) is False


def test_a_damaged_schedule_does_not_stop_the_others(db: str) -> None:
    digests = RecordingDigests()
    scheduling = make_scheduler(db, digests)
    schedules, worker = scheduling.schedules, scheduling.worker
    schedules.set("C1", ["0", "9", "*", "*", "*"], "UADMIN")
    schedules.set("C2", ["0", "9", "*", "*", "*"], "UADMIN")
    schedules.table.update("C2", lambda r: dict(r, timezone="Atlantis/Lost"))

    worker.run_due(now=paris(2025, 3, 3, 9, 0))

    assert [channel for channel, _ in digests.published] == ["C1"]
    assert schedules.get("C2") is None
