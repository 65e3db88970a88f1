"""Review 32 of 9a96077: a wake-up (a reply sent reopens a resolved case) must outlive the sync's saves."""

from __future__ import annotations

import time

from tests.review30.replicas import as_another_replica
from tests.sync.helpers import linked_case, texts


def _resting_and_due(bot, case_id):
    """Resolved, seen by the poller (rechecked in 30 minutes), and those 30 minutes are over."""
    bot.services.gateway.resolve_case(case_id)
    bot.services.sync.run_cycle()
    states = bot.services.sync.states
    assert states.get(case_id).next_check_at > time.time() + 60

    def due(state):
        state.next_check_at = time.time() - 1
        return state

    states.change(case_id, due)


def test_a_wake_between_the_describe_and_the_syncs_read_is_not_lost(bot_factory, pg_url, fake_slack):
    """The holder's poller reads the resting case at AWS (resolved); before its sync reads the state, a
    reply is sent on another replica (AWS reopens the case) and wakes it: next_check_at = 0 in the row.
    The sync then reads 0 (so `_held` remembers 0), applies its older snapshot (resolved) and saves
    next_check_at = now + 30 min: `save` keeps a wake only when the sync had read a non-zero value. The
    reopened case, and AWS's answer to the reply, are looked at 30 minutes later (no event)."""
    holder = bot_factory(env={"DATABASE_URL": pg_url})
    other = bot_factory(env={"DATABASE_URL": pg_url})
    as_another_replica(other)
    case, thread = linked_case(holder)
    fake_slack.add_user("U1", real_name="Ana Lima", display_name="ana")
    _resting_and_due(holder, case.case_id)

    gateway = holder.services.sync.gateway
    describe = gateway.describe_cases
    replied = []

    def describe_then_a_reply_elsewhere(ids, *args, **kwargs):
        found = describe(ids, *args, **kwargs)  # "resolved"
        if not replied:
            replied.append(True)
            other.user_message("C1", "not fixed, it is down again", thread_ts=thread)
            assert other.services.work.wait_idle(timeout=20)
            assert other.services.gateway.get_case(case.case_id).status == "reopened"
            assert holder.services.sync.state(case.case_id).next_check_at == 0.0  # woken
        return found

    gateway.describe_cases = describe_then_a_reply_elsewhere
    try:
        holder.services.sync.run_cycle()
    finally:
        gateway.describe_cases = describe
    assert replied

    holder.sandbox.add_aws_reply(case.case_id, "we looked again: the disk is full")
    holder.services.sync.run_cycle()
    assert texts(holder, thread) == ["we looked again: the disk is full"], (
        "not looked at: next_check_at in",
        holder.services.sync.state(case.case_id).next_check_at - time.time(),
    )


def test_the_same_on_one_process(bot, fake_slack):
    """Not new (no replica needed): the wake's `due_now` runs under the case's lock, but the snapshot was
    read before the sync took it; the same stale snapshot overwrites the wake on SQLite."""
    case, thread = linked_case(bot)
    fake_slack.add_user("U1", real_name="Ana Lima", display_name="ana")
    _resting_and_due(bot, case.case_id)

    gateway = bot.services.sync.gateway
    describe = gateway.describe_cases
    replied = []

    def describe_then_a_reply(ids, *args, **kwargs):
        found = describe(ids, *args, **kwargs)
        if not replied:
            replied.append(True)
            bot.user_message("C1", "not fixed, it is down again", thread_ts=thread)
            assert bot.services.work.wait_idle(timeout=20)
            assert bot.services.sync.state(case.case_id).next_check_at == 0.0  # woken
        return found

    gateway.describe_cases = describe_then_a_reply
    try:
        bot.services.sync.run_cycle()
    finally:
        gateway.describe_cases = describe
    assert replied

    bot.sandbox.add_aws_reply(case.case_id, "we looked again: the disk is full")
    bot.services.sync.run_cycle()
    assert texts(bot, thread) == ["we looked again: the disk is full"], (
        "not looked at: next_check_at in",
        bot.services.sync.state(case.case_id).next_check_at - time.time(),
    )
