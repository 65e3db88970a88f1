"""The digest end to end: the real Bolt app over HTTP, the AWS sandbox, the fake Slack Web API.

Nothing is patched. Time travel: the digest feature reads one injectable clock
(`services.digests.clock`), the sandbox has its own (`sandbox.advance_clock`), and the scheduler
worker's tick is called with a chosen `now` instead of waiting for it.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.digest.factories import assert_valid_message
from tests.support.slack_requests import button_action

PARIS = ZoneInfo("Europe/Paris")
TA_OPS = (
    "DescribeTrustedAdvisorChecks",
    "DescribeTrustedAdvisorCheckSummaries",
    "DescribeTrustedAdvisorCheckResult",
    "RefreshTrustedAdvisorCheck",
    "DescribeTrustedAdvisorCheckRefreshStatuses",
)


def expected_from_sandbox(sandbox: Any) -> dict[str, Any]:
    """What the digest must say, read from the sandbox's own model (not through the bot's code)."""
    checks = sandbox.trusted_advisor.describe_checks()["checks"]
    summaries = sandbox.trusted_advisor.summaries([c["id"] for c in checks])["summaries"]
    statuses = Counter({"error": 0, "warning": 0, "ok": 0, "not_available": 0})
    by_id = {s["checkId"]: s for s in summaries}
    for c in checks:
        statuses[by_id[c["id"]]["status"] if c["id"] in by_id else "not_available"] += 1
    savings = math.fsum(
        ((s.get("categorySpecificSummary") or {}).get("costOptimizing") or {}).get("estimatedMonthlySavings") or 0
        for s in summaries
    )
    return {"statuses": statuses, "savings": savings, "total": len(checks)}


def digest_posts(bot: Any, channel: str = "C1", count: int = 1) -> list[Any]:
    return bot.slack.wait_for(
        "chat.postMessage",
        lambda c: (
            c.params.get("channel") == channel
            and not c.params.get("thread_ts")
            and any(b.get("block_id") == "digest_header" for b in c.params.get("blocks") or [])
        ),
        count=count,
    )


def blocks_by_id(blocks: list[dict]) -> dict[str, dict]:
    return {b["block_id"]: b for b in blocks if "block_id" in b}


def count_in(blocks: list[dict], marker: str) -> int:
    fields = blocks_by_id(blocks)["digest_counts"]["fields"]
    [text] = [f["text"] for f in fields if f["text"].startswith(marker)]
    return int(re.search(r"\*([\d,]+)\*", text).group(1).replace(",", ""))


def post_digest(bot: Any, channel: str = "C1") -> dict[str, Any]:
    """`/aws-support digest` and the message it posted, as Slack stored it."""
    response = bot.command("digest", channel=channel)
    assert response.status == 200
    [post] = digest_posts(bot, channel)
    return bot.slack.message(channel, post.response["ts"])


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


# On demand --------------------------------------------------------------------------------------


def test_digest_posts_the_sandbox_numbers_in_two_aws_calls(bot: Any) -> None:
    expected = expected_from_sandbox(bot.sandbox)
    bot.sandbox.reset_calls()

    message = post_digest(bot)

    blocks = message["blocks"]
    assert_valid_message(blocks)
    assert count_in(blocks, ":red_circle:") == expected["statuses"]["error"]
    assert count_in(blocks, ":large_yellow_circle:") == expected["statuses"]["warning"]
    assert count_in(blocks, ":large_green_circle:") == expected["statuses"]["ok"]
    assert count_in(blocks, ":white_circle:") == expected["statuses"]["not_available"]
    assert f"${expected['savings']:,.2f}" in blocks_by_id(blocks)["digest_savings"]["text"]["text"]
    assert "Operational excellence" in str(blocks_by_id(blocks)["digest_categories"])
    calls = bot.sandbox.calls
    assert (calls["DescribeTrustedAdvisorChecks"], calls["DescribeTrustedAdvisorCheckSummaries"]) == (1, 1)
    assert "red" in message["text"]  # the notification text


def test_second_digest_shows_what_changed_in_this_channel_only(bot: Any) -> None:
    post_digest(bot, "C1")
    post_digest(bot, "C2")
    bot.sandbox.set_trusted_advisor_check_status("zXCkfM1nI3", "error")  # IAM Use: ok -> red
    bot.sandbox.set_trusted_advisor_check_status("1iG5NDGVre", "ok")  # Unrestricted access: red -> ok
    bot.slack.clear()

    second = post_digest(bot, "C1")

    by_id = blocks_by_id(second["blocks"])
    assert "IAM Use" in by_id["digest_new"]["text"]["text"]
    assert "Security Groups - Unrestricted Access" in by_id["digest_recovered"]["text"]["text"]
    bot.sandbox.set_trusted_advisor_check_status("zXCkfM1nI3", "ok")
    other = blocks_by_id(post_digest(bot, "C2")["blocks"])
    assert "Security Groups - Unrestricted Access" in other["digest_recovered"]["text"]["text"]
    assert "IAM Use" not in other["digest_new"]["text"]["text"]  # turned red and back before C2's digest


def test_aws_failure_gets_a_clear_answer_and_posts_nothing(bot: Any) -> None:
    bot.sandbox.inject_fault("DescribeTrustedAdvisorChecks", "SubscriptionRequiredException")

    bot.command("digest")

    answer = bot.wait_for_response()
    assert answer["response_type"] == "ephemeral" and "support plan" in answer["text"]
    assert not bot.slack.calls("chat.postMessage")


def test_digest_in_a_channel_the_bot_is_not_in_says_what_to_do(bot: Any) -> None:
    bot.slack.fail("chat.postMessage", error="not_in_channel", count=5)

    bot.command("digest")

    assert "/invite" in bot.wait_for_response()["text"]


def test_unknown_digest_word_shows_usage(bot: Any) -> None:
    bot.command("digest weekly")

    assert "digest schedule" in bot.wait_for_response()["text"]


# Buttons ----------------------------------------------------------------------------------------


def click(bot: Any, message: dict, action_id: str, value: str = "", block_id: str = "digest_actions") -> Any:
    response = bot.requests.block_actions(
        button_action(action_id, value, block_id=block_id), message=message, channel_id="C1"
    )
    assert response.status == 200
    return response


def test_details_posts_the_flagged_resources_in_the_thread_with_a_csv_when_long(bot: Any) -> None:
    message = post_digest(bot)
    top = blocks_by_id(message["blocks"])["digest_top_1"]
    check_id = top["accessory"]["value"]

    click(bot, message, "digest_details", check_id, "digest_top_1")

    [post] = bot.slack.wait_for("chat.postMessage", lambda c: c.params.get("thread_ts") == message["ts"])
    assert_valid_message(post.params["blocks"])
    table = blocks_by_id(post.params["blocks"])["digest_top"]["text"]["text"]
    result = bot.sandbox.trusted_advisor.result(check_id)["result"]
    shown = [r for r in result["flaggedResources"] if not r["isSuppressed"]]
    assert table.startswith("```") and table.count("\n") == len(shown) + 2  # fences, header, one line each
    columns = next(c for c in bot.sandbox.trusted_advisor.describe_checks()["checks"] if c["id"] == check_id)
    assert columns["metadata"][1] in table


def test_details_too_wide_for_slack_attach_the_full_csv(bot: Any) -> None:
    # A Well-Architected check has 13 columns: the table shows what fits, the CSV has them all.
    # (The sandbox flags at most 9 resources a check; a list too long for Slack is covered in test_render.)
    message = post_digest(bot)
    check_id = "Wxdfp4B1L3"
    result = bot.sandbox.trusted_advisor.result(check_id)["result"]
    total = sum(not r["isSuppressed"] for r in result["flaggedResources"])

    click(bot, message, "digest_details", check_id, "digest_top_1")

    [upload] = bot.slack.wait_for("files.completeUploadExternal")
    assert upload.params.get("thread_ts") == message["ts"]
    [file] = upload.response["files"]
    csv_lines = bot.slack.file_bytes(file["id"]).decode().strip().splitlines()
    assert len(csv_lines) == total + 1
    assert csv_lines[0].count(",") == 3 + 13 - 1  # status, region, resource ID, then every AWS column
    [post] = bot.slack.wait_for("chat.postMessage", lambda c: c.params.get("thread_ts") == message["ts"])
    assert "more columns in the CSV file below" in str(post.params["blocks"])


def test_refresh_refreshes_what_it_may_then_follows_up_in_the_thread(bot: Any) -> None:
    message = post_digest(bot)
    bot.sandbox.reset_calls()
    checks = bot.sandbox.trusted_advisor.checks
    automatic = sum(1 for c in checks if c.auto_refresh)

    clicked = click(bot, message, "digest_refresh")

    answer = bot.wait_for_response(response_url=clicked.response_url)
    assert answer["response_type"] == "ephemeral"
    assert f"Refreshing {len(checks) - automatic} checks" in answer["text"]
    assert f"{automatic} checks refresh automatically" in answer["text"]
    assert bot.sandbox.calls["RefreshTrustedAdvisorCheck"] == len(checks) - automatic

    # The worker follows the refresh: not done yet, then done once the sandbox has processed it.
    worker = bot.services.scheduler
    digests = bot.services.digests
    clock = Clock(datetime.now(UTC))
    digests.clock = clock
    worker.run_once(clock.now + timedelta(seconds=11))
    bot.sandbox.advance_clock(10)
    clock.now += timedelta(seconds=30)
    worker.run_once(clock.now)

    [follow_up] = bot.slack.wait_for("chat.postMessage", lambda c: c.params.get("thread_ts") == message["ts"])
    assert_valid_message(follow_up.params["blocks"])
    refreshed = blocks_by_id(follow_up.params["blocks"])["digest_refresh"]["text"]["text"]
    assert f"{len(checks) - automatic} checks refreshed" in refreshed
    worker.run_once(clock.now + timedelta(minutes=1))
    assert len(bot.slack.calls("chat.postMessage", lambda c: c.params.get("thread_ts") == message["ts"])) == 1

    # Clicking again within five minutes: nothing may be refreshed yet, and the answer says when.
    clicked = click(bot, message, "digest_refresh")
    again = bot.wait_for_response(response_url=clicked.response_url)
    assert "Nothing to refresh right now" in again["text"] and "can be refreshed again from" in again["text"]


def test_a_refresh_under_way_is_still_followed_up_after_a_restart(bot_factory: Any, tmp_path: Any) -> None:
    db = tmp_path / "shared.sqlite"
    first = bot_factory(db_path=db)
    message = post_digest(first)
    clicked = click(first, message, "digest_refresh")
    assert "Refreshing" in first.wait_for_response(response_url=clicked.response_url)["text"]
    first.stop()

    second = bot_factory(db_path=db)
    second.sandbox.advance_clock(10)
    second.services.scheduler.run_once(datetime.now(UTC) + timedelta(seconds=20))

    [follow_up] = second.slack.wait_for("chat.postMessage", lambda c: c.params.get("thread_ts") == message["ts"])
    assert "Refresh finished" in str(follow_up.params["blocks"])
    assert second.services.refresher.pending_refreshes() == []


def start_refresh(bot: Any) -> tuple[dict[str, Any], Any]:
    """A digest, and a click on its Refresh checks: (the digest message, the refresh being followed)."""
    message = post_digest(bot)
    clicked = click(bot, message, "digest_refresh")
    assert "Refreshing" in bot.wait_for_response(response_url=clicked.response_url)["text"]
    [pending] = bot.services.refresher.pending_refreshes()
    return message, pending


def follow_ups(bot: Any, message: dict[str, Any]) -> list[Any]:
    return bot.slack.calls("chat.postMessage", lambda c: c.params.get("thread_ts") == message["ts"])


def test_a_refresh_whose_progress_aws_refuses_is_followed_up_at_once_as_unfinished(bot: Any) -> None:
    message, pending = start_refresh(bot)
    bot.sandbox.inject_fault("DescribeTrustedAdvisorCheckRefreshStatuses", "AccessDeniedException")

    bot.services.scheduler.run_once(pending.next_poll_at + timedelta(seconds=1))

    [follow_up] = follow_ups(bot, message)
    refreshed = blocks_by_id(follow_up.params["blocks"])["digest_refresh"]["text"]["text"]
    assert f"{len(pending.check_ids):,} still running (shown as last refreshed)" in refreshed
    assert bot.services.refresher.pending_refreshes() == []


def test_a_refresh_aws_keeps_failing_on_is_followed_up_at_its_deadline(bot_factory: Any) -> None:
    # One attempt per call, so that botocore does not back off between throttled attempts.
    bot = bot_factory(aws_attempts=1)
    message, pending = start_refresh(bot)
    bot.sandbox.inject_fault("DescribeTrustedAdvisorCheckRefreshStatuses", "ThrottlingException", count=100)
    worker = bot.services.scheduler

    worker.run_once(pending.next_poll_at + timedelta(seconds=1))
    assert follow_ups(bot, message) == []  # throttling passes: looked at again later
    assert len(bot.services.refresher.pending_refreshes()) == 1

    worker.run_once(pending.deadline + timedelta(seconds=1))
    [follow_up] = follow_ups(bot, message)
    assert "still running (shown as last refreshed)" in str(follow_up.params["blocks"])
    assert bot.services.refresher.pending_refreshes() == []


def test_a_follow_up_aws_will_not_collect_is_dropped(bot: Any) -> None:
    message, pending = start_refresh(bot)
    bot.sandbox.advance_clock(10)  # the refreshes are done
    bot.sandbox.inject_fault("DescribeTrustedAdvisorChecks", "SubscriptionRequiredException")

    bot.services.scheduler.run_once(pending.next_poll_at + timedelta(seconds=1))

    assert bot.services.refresher.pending_refreshes() == []  # not asked again every 10 s
    assert follow_ups(bot, message) == []


def test_the_console_link_is_acknowledged(bot: Any) -> None:
    message = post_digest(bot)

    response = click(bot, message, "digest_console")

    assert response.status == 200


# Schedules ----------------------------------------------------------------------------------------


def test_schedule_status_and_off(bot: Any) -> None:
    bot.command("digest schedule 0 9 * * 1-5 Europe/Paris", user="UADMIN")
    set_answer = bot.wait_for_response()
    bot.command("digest status", user="U1")
    status = bot.wait_for_response()
    bot.command("digest off", user="UADMIN")
    off = bot.wait_for_response()

    assert set_answer["response_type"] == "in_channel"
    assert "`0 9 * * 1-5` in Europe/Paris" in set_answer["text"] and "Next digest" in set_answer["text"]
    assert re.search(r"Next digest: \*\w{3} \d+ \w{3} \d{4}, 09:00 CES?T\*", status["text"])
    assert "removed" in off["text"]
    assert bot.services.schedules.get("C1") is None


@pytest.mark.parametrize(
    "text, words",
    [
        ("digest schedule 0 9 * *", "has 4 fields"),
        ("digest schedule 0 99 * * *", "not a valid cron expression"),
        ("digest schedule 0 9 * * * Mars/Olympus", "not an IANA time zone"),
        ("digest schedule", "Usage"),
    ],
)
def test_bad_schedules_get_a_clear_answer(bot: Any, text: str, words: str) -> None:
    bot.command(text, user="UADMIN")

    answer = bot.wait_for_response()
    assert answer["response_type"] == "ephemeral" and words in answer["text"]
    assert bot.services.schedules.get("C1") is None


def test_only_admins_change_schedules(bot: Any) -> None:
    bot.command("digest schedule 0 9 * * *", user="U1")
    assert "admins" in bot.wait_for_response()["text"]
    bot.command("digest off", user="U1")
    assert "admins" in bot.wait_for_response()["text"]


def test_anyone_may_schedule_when_no_admins_are_set(bot_factory: Any) -> None:
    bot = bot_factory(env={"BOT_ADMINS": None, "DIGEST_TIMEZONE": "America/New_York"})

    bot.command("digest schedule 30 8 * * *", user="U1")

    assert "America/New_York" in bot.wait_for_response()["text"]


def test_schedule_fires_at_the_right_minute_in_paris_once(bot: Any) -> None:
    clock = Clock(datetime(2025, 3, 2, 12, 0, tzinfo=PARIS).astimezone(UTC))
    bot.services.digests.clock = clock
    bot.command("digest schedule 0 9 * * 1-5 Europe/Paris", user="UADMIN")
    bot.wait_for_response()
    worker = bot.services.scheduler

    for moment in [(3, 8, 59, 59), (3, 9, 0, 0), (3, 9, 0, 1), (3, 9, 30, 0), (4, 8, 59, 0)]:
        clock.now = datetime(2025, 3, *moment, tzinfo=PARIS).astimezone(UTC)
        worker.run_once(clock.now)

    [post] = digest_posts(bot)
    assert "Mon 3 Mar 2025, 09:00 CET" in str(post.params["blocks"])
    clock.now = datetime(2025, 3, 4, 9, 0, tzinfo=PARIS).astimezone(UTC)
    worker.run_once(clock.now)
    assert len(digest_posts(bot, count=2)) == 2


def test_schedule_across_the_dst_change(bot: Any) -> None:
    clock = Clock(datetime(2025, 3, 29, 12, 0, tzinfo=UTC))
    bot.services.digests.clock = clock
    bot.command("digest schedule 30 2 * * * Europe/Paris", user="UADMIN")
    bot.wait_for_response()
    worker = bot.services.scheduler

    # 30 March 2025: 02:30 does not exist in Paris; the digest comes at 03:00 CEST (01:00 UTC).
    for minute in range(0, 24 * 60, 10):
        clock.now = datetime(2025, 3, 29, 12, 0, tzinfo=UTC) + timedelta(minutes=minute)
        worker.run_once(clock.now)
    clock.now = datetime(2025, 3, 30, 1, 0, tzinfo=UTC)
    worker.run_once(clock.now)

    posts = digest_posts(bot)
    assert len(posts) == 1
    assert "Sun 30 Mar 2025, 03:00 CEST" in str(posts[0].params["blocks"])
    status = bot.services.schedules.get("C1")
    assert status.next_run(clock.now) == datetime(2025, 3, 31, 0, 30, tzinfo=UTC)  # 02:30 CEST


def test_restart_neither_doubles_nor_loses_a_slot(bot_factory: Any, tmp_path: Any) -> None:
    db = tmp_path / "shared.sqlite"
    first = bot_factory(db_path=db)
    clock = Clock(datetime(2025, 3, 3, 7, 0, tzinfo=UTC))
    first.services.digests.clock = clock
    first.command("digest schedule 0 9 * * * Europe/Paris", user="UADMIN")
    first.wait_for_response()
    clock.now = datetime(2025, 3, 3, 8, 0, 5, tzinfo=UTC)
    first.services.scheduler.run_once(clock.now)
    digest_posts(first)
    first.stop()

    second = bot_factory(db_path=db)
    second.services.digests.clock = clock
    clock.now = datetime(2025, 3, 3, 8, 0, 30, tzinfo=UTC)
    second.services.scheduler.run_once(clock.now)
    assert len(second.slack.calls("chat.postMessage")) == 1

    # Down over the next slot, back 40 minutes later: caught up once.
    second.stop()
    third = bot_factory(db_path=db)
    third.services.digests.clock = clock
    clock.now = datetime(2025, 3, 4, 8, 40, tzinfo=UTC)
    worker = third.services.scheduler
    worker.run_once(clock.now)
    worker.run_once(clock.now + timedelta(minutes=1))
    assert len(digest_posts(third, count=2)) == 2

    # Down for a whole day past the grace period: that slot is skipped, the next one posts.
    clock.now = datetime(2025, 3, 5, 10, 30, tzinfo=UTC)
    worker.run_once(clock.now)
    assert third.services.schedules.get("C1").last_outcome == "skipped"
    clock.now = datetime(2025, 3, 6, 8, 0, tzinfo=UTC)
    worker.run_once(clock.now)
    assert len(digest_posts(third, count=3)) == 3


def test_the_running_worker_catches_up_after_a_restart(bot_factory: Any, tmp_path: Any) -> None:
    """The real background thread on real time: a slot missed minutes ago is posted once at start."""
    db = tmp_path / "shared.sqlite"
    first = bot_factory(db_path=db)
    first.services.digests.clock = Clock(datetime.now(UTC) - timedelta(hours=3))  # set up 3 hours ago
    first.command("digest schedule 0 * * * * UTC", user="UADMIN")  # hourly: the last slot is < 1 h old
    first.wait_for_response()
    first.stop()

    second = bot_factory(db_path=db, workers=True)
    digest_posts(second)
    assert second.health().status == 200

    second.stop()
    second.slack.clear()
    third = bot_factory(db_path=db, workers=True)

    def ticked() -> bool:
        return third.services.health()[1]["workers"]["scheduler"]["last_tick"] is not None

    deadline = datetime.now(UTC) + timedelta(seconds=10)
    while not ticked() and datetime.now(UTC) < deadline:
        third.slack.assert_no_calls(within=0.05, method="chat.postMessage")
    assert ticked()
    third.slack.assert_no_calls(within=0.1, method="chat.postMessage")
