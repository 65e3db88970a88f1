"""Slack and AWS failing for a while: nothing lost, nothing doubled, Slack requests never wait for the poller."""

from __future__ import annotations

import logging
import time

import pytest

from bot.errors import AwsError
from tests.sync.helpers import click_card_button, communication_messages, linked_case, payload, shown_text


def test_slack_429_with_retry_after_is_honoured(bot):
    case, thread = linked_case(bot)
    bot.sandbox.add_aws_reply(case.case_id, "rate limited answer")
    bot.slack.fail("chat.postMessage", status=429, retry_after=1, count=2)

    started = time.monotonic()
    bot.services.sync.run_cycle()

    assert time.monotonic() - started >= 2  # waited as Slack asked, twice
    [message] = communication_messages(bot, "C1", thread)
    assert shown_text(message) == "rate limited answer"
    attempts = bot.slack.calls(
        "chat.postMessage",
        lambda c: (c.params.get("metadata") or {}).get("event_payload", {}).get("key") == payload(message)["key"],
    )
    assert [a.status for a in attempts] == [429, 429, 200]


def test_slack_5xx_is_reconciled_next_cycle_in_order_and_once(bot):
    case, thread = linked_case(bot)
    for i in range(1, 4):
        bot.sandbox.add_aws_reply(case.case_id, f"answer {i}")
    bot.slack.fail("chat.postMessage", error="internal_error", status=503, count=2)

    first = bot.services.sync.run_cycle()
    assert first.failed_cases == 1 and communication_messages(bot, "C1", thread) == []
    second = bot.services.sync.run_cycle()  # reads the thread back first, then posts what it lacks
    assert second.failed_cases == 1
    bot.services.sync.run_cycle()
    bot.services.sync.run_cycle()

    assert [shown_text(m) for m in communication_messages(bot, "C1", thread)] == ["answer 1", "answer 2", "answer 3"]
    assert bot.slack.calls("conversations.replies", lambda c: c.params["ts"] == thread)


def test_refresh_while_slack_fails_leaves_the_thread_to_the_next_cycle_quietly(bot, caplog):
    caplog.set_level(logging.INFO, logger="bot")
    case, thread = linked_case(bot)
    bot.sandbox.add_aws_reply(case.case_id, "answer during an outage")
    bot.slack.fail("chat.postMessage", error="internal_error", status=503)

    click_card_button(bot, "C1", thread, "case_refresh")
    bot.slack.wait_for("chat.postMessage", lambda c: c.status == 503)
    assert bot.services.work.wait_idle(timeout=10)

    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []  # no stack trace
    assert "the poller resumes it" in caplog.text
    assert bot.slack.calls("chat.postEphemeral") == []  # the card is refreshed: nothing for the clicker to do
    bot.services.sync.run_cycle()
    assert [shown_text(m) for m in communication_messages(bot, "C1", thread)] == ["answer during an outage"]


def test_refresh_tells_the_clicker_when_slack_refuses_the_bot(bot):
    case, thread = linked_case(bot)
    bot.sandbox.add_aws_reply(case.case_id, "an answer Slack will not take")
    bot.slack.fail("chat.postMessage", error="token_revoked")

    click_card_button(bot, "C1", thread, "case_refresh", user="U7")

    [told] = bot.slack.wait_for("chat.postEphemeral")
    assert told.params["user"] == "U7" and told.params["channel"] == "C1"
    assert "Slack refused the bot's messages in the thread of case" in told.params["text"]
    assert case.display_id in told.params["text"] and "`token_revoked`" in told.params["text"]
    bot.services.sync.run_cycle()  # Slack takes them again: the poller posts what was refused
    assert [shown_text(m) for m in communication_messages(bot, "C1", thread)] == ["an answer Slack will not take"]


def test_aws_throttling_stops_the_cycle_and_the_next_one_resumes_without_loss(bot_factory):
    # Two attempts instead of six, so the throttled cycle gives up quickly (botocore backs off between them).
    bot = bot_factory(aws_attempts=2)
    case, thread = linked_case(bot)
    for i in range(1, 8):
        bot.sandbox.add_aws_reply(case.case_id, f"answer {i}")

    bot.sandbox.inject_fault("DescribeCases", "ThrottlingException", count=100)
    with pytest.raises(AwsError) as raised:
        bot.services.sync.run_cycle()
    assert raised.value.retryable
    bot.sandbox.clear_faults()
    bot.sandbox.inject_fault("DescribeCommunications", "ThrottlingException", count=100)
    with pytest.raises(AwsError):
        bot.services.sync.run_cycle()
    assert communication_messages(bot, "C1", thread) == []
    bot.sandbox.clear_faults()

    bot.services.sync.run_cycle()

    assert [shown_text(m) for m in communication_messages(bot, "C1", thread)] == [f"answer {i}" for i in range(1, 8)]


def wait_for_cycles(bot, count, timeout=10.0):
    """/healthz once the poller has completed `count` cycles."""
    deadline = time.monotonic() + timeout
    while True:
        response = bot.health()
        if response.json["workers"]["poller"]["cycles"] >= count or time.monotonic() > deadline:
            return response
        time.sleep(0.05)


def test_the_poller_runs_beside_the_server_and_shows_in_healthz(bot):
    case, thread = linked_case(bot)
    bot.start_workers()
    bot.sandbox.add_aws_reply(case.case_id, "seen within one interval")

    bot.slack.wait_for("chat.postMessage", lambda c: c.params.get("thread_ts") == thread, count=2, timeout=5)
    response = wait_for_cycles(bot, 2)
    poller = response.json["workers"]["poller"]

    assert response.status == 200
    assert poller["alive"] and poller["last_cycle_at"] and poller["cases_followed"] == 1
    assert 0 <= poller["lag_seconds"] < 5 and poller["last_error"] == ""
    assert [shown_text(m) for m in communication_messages(bot, "C1", thread)] == ["seen within one interval"]


def test_a_slow_aws_never_delays_slack_requests(bot):
    case, thread = linked_case(bot)
    # Every Support call now takes 4 s: an ack behind the poller's call would take about as long, well
    # past the bound below (with room for a loaded machine's scheduling).
    bot.sandbox.set_latency(4.0)
    bot.start_workers()
    bot.sandbox.add_aws_reply(case.case_id, "slow")
    time.sleep(0.2)  # the poller is inside a slow DescribeCases now

    started = time.monotonic()
    response = bot.command("help")
    assert response.status == 200
    assert time.monotonic() - started < 2.0
    bot.slack.wait_for("chat.postMessage", lambda c: c.params.get("thread_ts") == thread, timeout=15)
