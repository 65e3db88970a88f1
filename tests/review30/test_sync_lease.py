"""Review 30 of 055be21 (a case's sync holds its lease, sync:<case>, 60 s, renewed at each save).

The lease is renewed only between steps, and one step may outlast it: a chat.postMessage that Slack
answers 429 is resent by slack_sdk after Retry-After, up to RATE_LIMIT_RETRIES (5) times, each try with
a 30 s timeout; a file's upload has a 60 s timeout and its share another 30 s. When the holder's step
ends after its lease ran out, another replica has taken the case, found the thread without the message
(reconcile) and posted it: the holder's resent post then lands too. The test scales 60 s down to 2 s
(the lease) and a Retry-After of 3 s (one step longer than the lease)."""

from __future__ import annotations

import json
import threading
import time

from tests.review30.replicas import as_another_replica
from tests.sync.helpers import click_card_button, linked_case, texts

LEASE = 2.0  # stands for SYNC_LEASE_SECONDS (60 s)


def test_a_post_resent_after_the_lease_ran_out_is_not_posted_twice(bot_factory, pg_url, fake_slack):
    holder = bot_factory(env={"DATABASE_URL": pg_url})  # its poller syncs the case
    other = bot_factory(env={"DATABASE_URL": pg_url})  # serves a Refresh click
    as_another_replica(other)
    case, thread = linked_case(holder)
    other.services.sync.poster.pacer = holder.services.sync.poster.pacer
    holder.services.sync.states.lease_seconds = other.services.sync.states.lease_seconds = LEASE

    holder.sandbox.add_aws_reply(case.case_id, "the engineer's answer")
    # Slack is busy: the holder's post is answered 429, Retry-After longer than what is left of the lease.
    fake_slack.fail("chat.postMessage", "ratelimited", retry_after=LEASE + 1, count=1)
    cycle = threading.Thread(target=holder.services.sync.run_cycle)
    cycle.start()
    fake_slack.wait_for("chat.postMessage", lambda c: c.status == 429)
    time.sleep(LEASE + 0.2)  # the holder waits out Retry-After; its lease has run out

    # Someone clicks Refresh (the answer's message is late); another replica serves it.
    click_card_button(other, "C1", thread, "case_refresh")
    assert other.services.work.wait_idle(timeout=20)
    cycle.join(timeout=20)

    assert texts(holder, thread) == ["the engineer's answer"]


def test_a_reply_sent_on_another_replica_while_the_holder_syncs_the_resolution_is_looked_at_soon(
    bot_factory, pg_url, fake_slack
):
    """wake() (after every reply sent) changes the state in one atomic update; a sync holding the case on
    another replica then saves what it read before, next_check_at = now + 30 min: the reply that reopened
    the resolved case, and AWS's answer to it, are looked at only 30 minutes later (without events)."""
    holder = bot_factory(env={"DATABASE_URL": pg_url})
    other = bot_factory(env={"DATABASE_URL": pg_url})
    as_another_replica(other)
    case, thread = linked_case(holder)
    fake_slack.add_user("U1", real_name="Ana Lima", display_name="ana")

    holder.services.gateway.resolve_case(case.case_id)
    answer = fake_slack.hold_after_acting("chat.postMessage")  # Slack posts the status line, answers late
    cycle = threading.Thread(target=holder.services.sync.run_cycle)
    try:
        cycle.start()
        fake_slack.wait_for("chat.postMessage", lambda c: "resolved" in (c.params.get("text") or ""))
        # Meanwhile someone answers in the thread; another replica sends it (AWS reopens the case) and wakes the sync.
        other.user_message("C1", "not fixed, it is down again", thread_ts=thread)
        assert other.services.work.wait_idle(timeout=20)
        assert other.services.gateway.get_case(case.case_id).status == "reopened"
        assert holder.services.sync.state(case.case_id).next_check_at == 0.0  # woken
    finally:
        answer.set()
    cycle.join(timeout=20)

    holder.sandbox.add_aws_reply(case.case_id, "we looked again: the disk is full")
    holder.services.sync.run_cycle()
    assert texts(holder, thread) == ["we looked again: the disk is full"], (
        "not looked at: next_check_at in",
        holder.services.sync.state(case.case_id).next_check_at - time.time(),
    )


def test_a_watch_taking_the_whole_case_on_another_replica_while_the_holder_syncs_it_is_kept(
    bot_factory, pg_url, fake_slack
):
    """follow_whole_case (a watch channel's card: its thread gets the whole case) changes the state in one
    atomic update; a sync holding the case on another replica kept it only if its save did not write
    over it with the channels it read before."""
    holder = bot_factory(env={"DATABASE_URL": pg_url})
    other = bot_factory(env={"DATABASE_URL": pg_url})
    as_another_replica(other)
    case, thread = linked_case(holder)

    holder.sandbox.add_aws_reply(case.case_id, "an answer")
    answer = fake_slack.hold_after_acting("chat.postMessage")  # Slack posts the answer, answers late
    cycle = threading.Thread(target=holder.services.sync.run_cycle)
    try:
        cycle.start()
        fake_slack.wait_for("chat.postMessage", lambda c: "an answer" in json.dumps(c.params))
        other.services.sync.follow_whole_case(case, "CWATCH")
        assert holder.services.sync.state(case.case_id).full_history == ["CWATCH"]
    finally:
        answer.set()
    cycle.join(timeout=20)

    assert holder.services.sync.state(case.case_id).full_history == ["CWATCH"]


class GatedPacer:
    """The poller's pace in `channel` waits for `gate`: its cycle is still posting (Slack's one message a
    second a channel, dozens of answers at once) while the rest of its batch's snapshot grows old."""

    def __init__(self, channel):
        self.channel = channel
        self.reached = threading.Event()
        self.gate = threading.Event()

    def wait(self, channel):
        if channel == self.channel:
            self.reached.set()
            assert self.gate.wait(20)


def status_texts(bot, channel, thread):
    from tests.sync.helpers import status_messages

    return [m.get("text") for m in status_messages(bot, channel, thread)]


def test_a_snapshot_older_than_the_one_another_replica_applied_posts_no_status_line(bot_factory, pg_url):
    """cycle.py: "Snapshots apply in the order they were read: a case read by the poller at the start of a
    batch may reach its case's lock after a Refresh click applied a newer read", and an older one is
    skipped -- by `_applied_snapshot_at`, which is per process. A Refresh served by another replica applies
    a newer read the poller's process never hears of; the poller then applies its older one."""
    from tests.sync.helpers import open_case

    holder = bot_factory(env={"DATABASE_URL": pg_url})
    other = bot_factory(env={"DATABASE_URL": pg_url})
    as_another_replica(other)
    busy, quiet = sorted([open_case(holder, "Busy case"), open_case(holder, "Quiet case")], key=lambda c: c.case_id)
    cards = {
        case.case_id: holder.services.cases.post_card(case, channel, linked_by="U1").thread_ts
        for case, channel in ((busy, "C1"), (quiet, "C2"))
    }
    linked_case(holder)  # a third case; sets fast pacers
    other.services.sync.poster.pacer = holder.services.sync.poster.pacer
    holder.services.sync.run_cycle()
    assert status_texts(holder, "C2", cards[quiet.case_id]) == []

    pacer = holder.services.sync.poster.pacer = GatedPacer("C1")
    holder.sandbox.add_aws_reply(busy.case_id, "an answer on the busy case")
    # The quiet case has news too, so the cycle's old read of it is not quiet against the state the cycle
    # began with: only the status another replica applied meanwhile can tell that read is old.
    holder.sandbox.add_aws_reply(quiet.case_id, "an answer on the quiet case")
    cycle = threading.Thread(target=holder.services.sync.run_cycle)  # reads both cases at once
    cycle.start()
    try:
        assert pacer.reached.wait(20)  # still posting the busy case's answer
        holder.services.gateway.resolve_case(quiet.case_id)  # the quiet case is resolved meanwhile
        click_card_button(other, "C2", cards[quiet.case_id], "case_refresh")  # Refresh, on the other replica
        assert other.services.work.wait_idle(timeout=20)
        assert len(status_texts(holder, "C2", cards[quiet.case_id])) == 1  # "resolved"
    finally:
        pacer.gate.set()
    cycle.join(timeout=20)
    holder.services.sync.run_cycle()

    shown = status_texts(holder, "C2", cards[quiet.case_id])
    assert len(shown) == 1, shown
