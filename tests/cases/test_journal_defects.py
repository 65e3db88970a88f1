"""Defects the work journal ends, each reproduced end to end first (issue 8: #1, #4, #9, #10, #13, reply order)."""

from __future__ import annotations

import threading
import time

import pytest

from bot.cases.unclear import UNCLEAR_SETTLE_SECONDS
from bot.store.errors import StoreUnavailable
from bot.work import RetryPolicy
from tests.cases.helpers import attributed, fast_retries, link_case, open_case_at_aws, sent_texts
from tests.cases.test_modal import open_modal, values


def linked(bot):
    bot.slack.add_user("U1", real_name="Ana Lima", display_name="ana")
    case = open_case_at_aws(bot)
    card = link_case(bot, case)
    return case, card


def reacted(bot, ts, timeout=20):
    return bot.slack.wait_for("reactions.add", lambda c: c.params["timestamp"] == ts, timeout=timeout)


def test_recovery_at_start_leaves_alone_a_form_the_live_listener_is_opening(bot):
    # 1: a form submitted while start-up recovery runs, AWS answering slowly, opened two cases.
    view = open_modal(bot)
    bot.services.warm_up()  # recovery's own warm-up is quick: the live work and recovery overlap
    bot.sandbox.set_latency(1.0)
    bot.requests.view_submission(view, values=values(subject="Opened once"))
    deadline = time.monotonic() + 10
    while bot.sandbox.calls["CreateCase"] < 1:  # the live listener's CreateCase is on its way
        assert time.monotonic() < deadline
        time.sleep(0.01)
    bot.services.recover()
    bot.slack.wait_for("chat.postMessage", lambda c: c.params.get("blocks") is not None, timeout=15)
    bot.services.work.wait_idle(timeout=20)
    bot.sandbox.set_latency(0)
    assert [c.subject for c in bot.services.gateway.list_cases()] == ["Opened once"]
    assert bot.sandbox.calls["CreateCase"] == 1
    assert len(bot.slack.calls("chat.postMessage", lambda c: c.params.get("blocks") is not None)) == 1


def test_a_reply_equal_to_an_earlier_one_is_sent_not_taken_for_it(bot):
    # 4: an AWS 5xx on the second "thanks" found the first one and called the second one sent.
    case, card = linked(bot)
    first = bot.user_message("C1", "thanks", thread_ts=card["ts"])
    reacted(bot, first.event["ts"])
    bot.sandbox.inject_fault("AddCommunicationToCase", "InternalServerError", count=1)
    second = bot.user_message("C1", "thanks", thread_ts=card["ts"])
    reacted(bot, second.event["ts"])
    assert sent_texts(bot, case.case_id) == ["thanks", "thanks"]


@pytest.mark.slow(seconds=6)
def test_the_bots_own_retry_policy_outlasts_a_minute_of_throttling_and_a_lost_answer(bot):
    # 10: the other tests run a faster policy; the one the bot runs must wait out 60 s of throttling
    # (its last wait included), after AWS's minute to finish a part whose answer was lost.
    policy = bot.services.cases.runner.retry
    assert policy == RetryPolicy()
    assert policy.deadline_seconds >= UNCLEAR_SETTLE_SECONDS + 60 + 2 * policy.max_wait_seconds


def test_throttling_for_seconds_delays_a_thread_reply_but_never_drops_it(bot):
    # 10: three quick tries, then the reply was dropped and reported failed.
    case, card = linked(bot)
    fast_retries(bot, deadline_seconds=60)  # short waits between tries; the deadline is far
    bot.sandbox.inject_fault("AddCommunicationToCase", "ThrottlingException", count=10_000)
    threading.Timer(5.0, bot.sandbox.clear_faults).start()
    delivery = bot.user_message("C1", "patience", thread_ts=card["ts"])
    reacted(bot, delivery.event["ts"], timeout=40)
    assert sent_texts(bot, case.case_id) == ["patience"]
    assert not bot.slack.calls("chat.postMessage", lambda c: "not* sent" in c.params.get("text", ""))


def test_a_command_reply_keeps_its_place_among_the_thread_replies(bot):
    # /aws-support reply ran beside the thread's queue, so it overtook a thread reply written before it.
    case, card = linked(bot)
    log = bot.slack.add_file("app.log", b"boom", "text/plain")
    bot.slack.set_latency(1.0, "file_download")  # the first reply is slow to leave
    bot.user_message("C1", "first, with a file", thread_ts=card["ts"], files=[log], subtype="file_share")
    bot.command(f"reply {case.display_id} second, from the command")
    bot.wait_for_response(timeout=20)
    bot.services.work.wait_idle(timeout=20)
    assert sent_texts(bot, case.case_id) == ["first, with a file", "second, from the command"]


def test_old_records_are_pruned_and_what_is_still_needed_is_kept(bot):
    # 13: events, outbound and cases grew forever.
    case, card = linked(bot)
    store = bot.services.store
    long_ago = time.time() - 30 * 24 * 3600
    store.table("events").put("msg:C9:1.000001", {"state": "sent", "created_at": long_ago})
    store.table("outbound").put("old-body-hash", {"case_id": "case-old", "state": "sent", "at": long_ago})
    gone = open_case_at_aws(bot, subject="Long closed")
    bot.services.cases.update_cards(gone)  # remembered, never linked
    store.table("cases").update(gone.case_id, lambda raw: dict(raw, remembered_at=long_ago))
    recent = bot.user_message("C1", "still fresh", thread_ts=card["ts"])
    reacted(bot, recent.event["ts"])

    bot.services.recover()

    assert store.table("events").get("msg:C9:1.000001") is None
    assert "old-body-hash" not in store.table("outbound")
    assert bot.services.cases.record(gone.case_id) is None
    assert bot.services.cases.record(case.case_id) is not None  # linked: kept however old
    assert len(store.table("outbound")) >= 1  # this week's reply is still known to the poller


def test_a_bot_that_never_restarts_prunes_as_it_runs(bot):
    # 13, without a restart: the journal's keeper prunes every table on its own schedule (hourly).
    store = bot.services.store
    long_ago = time.time() - 30 * 24 * 3600
    store.table("events").put("msg:C9:1.000002", {"state": "sent", "created_at": long_ago})
    store.table("outbound").put("older-body-hash", {"case_id": "case-old", "state": "sent", "at": long_ago})
    gone = open_case_at_aws(bot, subject="Closed long ago")
    bot.services.cases.update_cards(gone)
    store.table("cases").update(gone.case_id, lambda raw: dict(raw, remembered_at=long_ago))
    keeper = bot.services.cases.keeper
    assert not keeper.is_alive()
    keeper.every_seconds, keeper.prune_every_seconds = 0.05, 0.2

    keeper.start()
    try:
        deadline = time.monotonic() + 20
        while bot.services.cases.record(gone.case_id) is not None and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        keeper.stop()

    assert bot.services.cases.record(gone.case_id) is None
    assert store.table("events").get("msg:C9:1.000002") is None
    assert "older-body-hash" not in store.table("outbound")


def test_resume_after_a_crash_keeps_the_thread_order(bot_factory):
    # 9: resume ran in store rowid order: A part 1, then B, then A part 2.
    first = bot_factory()
    case, card = linked(first)
    cases = first.services.cases
    # A (two parts) was noted first, then B; A's progress (part 1 sent) was written after B arrived.
    a = cases.note_thread_reply(
        channel="C1", thread_ts=card["ts"], message_ts="1.000001", user="U1", text="A", files=[]
    )
    cases.note_thread_reply(channel="C1", thread_ts=card["ts"], message_ts="1.000002", user="U1", text="B", files=[])
    bodies = [attributed("ana", a.key, "(1/2) A1"), attributed("ana", a.key, "(2/2) A2")]
    first.services.gateway.add_communication(case.case_id, bodies[0])
    cases.journal.save(a, case_id=case.case_id, bodies=bodies, sent=1)
    db_path = first.db_path
    first.stop()

    second = bot_factory(db_path=db_path)
    second.services.recover()
    second.services.work.wait_idle(timeout=20)
    assert [t.split(") ")[-1] for t in sent_texts(second, case.case_id)] == ["A1", "A2", "B"]


def test_a_thread_reply_the_store_could_not_note_is_delivered_again_not_lost(bot):
    """The note is the event's only record before its answer: a 200 after a failed note (the store
    away, the disk full) told Slack not to redeliver, and the reply was lost without a word."""
    case, card = linked(bot)
    journal = bot.services.cases.journal
    real_record = journal.record
    refusals = []

    def record(*args, **kwargs):
        if not refusals:
            refusals.append(args)
            raise StoreUnavailable("disk I/O error")
        return real_record(*args, **kwargs)

    journal.record = record
    try:
        first = bot.user_message("C1", "the logs are attached", thread_ts=card["ts"])
    finally:
        del journal.record
    assert refusals, "the reply was never noted"
    assert first.response.status >= 500  # Slack delivers it again, minutes apart, three times
    assert bot.redeliver(first).status == 200
    reacted(bot, first.event["ts"])
    assert sent_texts(bot, case.case_id) == ["the logs are attached"]


def test_a_thread_reply_still_unnoted_at_slacks_last_redelivery_is_told_to_its_author(bot):
    """review13: Slack redelivers three times over about 5 minutes, then gives up; a store away
    longer than that lost the reply while its author believed AWS had it."""
    case, card = linked(bot)
    journal = bot.services.cases.journal

    def record(*args, **kwargs):
        raise StoreUnavailable("database or disk is full")

    journal.record = record
    try:
        delivery = bot.user_message("C1", "here are the logs", thread_ts=card["ts"])
        statuses = [delivery.response.status]
        statuses += [bot.redeliver(delivery, retry_num=n, retry_reason="http_error").status for n in (1, 2, 3)]
    finally:
        del journal.record
    assert statuses == [503, 503, 503, 200]  # the last one ends Slack's tries: no pointless 503
    [told] = bot.slack.wait_for("chat.postEphemeral", lambda c: c.params.get("user") == "U1")
    assert told.params["channel"] == "C1" and told.params["thread_ts"] == card["ts"]
    assert "did not reach AWS" in told.params["text"]
    assert sent_texts(bot, case.case_id) == []
