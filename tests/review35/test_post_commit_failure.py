"""Review 35 of ecc0ac8: `SyncStates.save` now commits the resolved case's recheck first, and only then asks
whether a reply woke the case since its snapshot was read (and makes it due with `change`). When that
post-commit step fails (the store refused one statement: lock_timeout, the pool's 5 s, a dropped
connection), the recheck in 30 minutes is already committed and the wake-up it was there to catch is lost.
Before, the check ran inside the save's transaction: its failure rolled the save back, and the case
stayed due. Now the state is saved as due first, and a check the store refuses leaves a recheck in two
minutes (review36: a check refused for good must not make the case due every cycle)."""

from __future__ import annotations

import contextlib
import time

from bot.store.errors import StoreRefused
from bot.sync.state import UNKNOWN_WAKE_RECHECK_SECONDS
from tests.sync.helpers import (
    resolved_card_on_two_replicas,
    texts,
)


def test_a_failed_check_after_the_save_does_not_lose_the_wake(bot_factory, pg_url, fake_slack):
    holder, other, case, thread = resolved_card_on_two_replicas(bot_factory, pg_url, fake_slack)
    assert holder.services.sync.state(case.case_id) is None  # no row yet: the wake's `change` writes nothing

    sync = holder.services.sync
    describe = sync.gateway.describe_cases
    replied = []

    def then_a_reply_elsewhere(ids):
        found = describe(ids)
        if not replied and case.case_id in ids:
            replied.append(1)  # read "resolved"; the reply is sent (and wakes) on the other replica now
            other.user_message("C1", "not fixed, it is down again", thread_ts=thread)
            assert other.services.work.wait_idle(timeout=20)
            assert other.services.gateway.get_case(case.case_id).status == "reopened"
        return found

    def refused(case_id, read_at):
        raise StoreRefused("canceling statement due to lock timeout")

    sync.gateway.describe_cases = then_a_reply_elsewhere
    sync._woken_since = refused  # the post-commit read of woken_at: one refused statement
    try:
        with contextlib.suppress(StoreRefused):  # the cycle fails; the poller backs off and runs the next one
            sync.run_cycle()
    finally:
        del sync._woken_since
        del sync.gateway.describe_cases
    assert replied
    # The store could not tell whether a reply woke it: looked at again within two minutes, not 30.
    waits = sync.state(case.case_id).next_check_at - time.time()
    assert waits <= UNKNOWN_WAKE_RECHECK_SECONDS + 1, ("not looked at: next_check_at in", waits)

    def two_minutes_later(state):
        state.next_check_at = time.time() - 1
        return state

    sync.states.change(case.case_id, two_minutes_later)
    holder.sandbox.add_aws_reply(case.case_id, "we looked again: the disk is full")
    sync.run_cycle()
    assert "we looked again: the disk is full" in texts(holder, thread)
