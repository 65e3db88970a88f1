"""Review 36 of d27004b: after the resolving save is committed, a refused `woken_since_read` now counts as
"woken" and `change(_due_now)` makes the case due. But that `change` is two more statements (a get and a
locked update) on the same store that just refused one: when it is refused too, the wake-up is lost exactly
as in review35's #3. And a read refused for good makes the case due every cycle."""

from __future__ import annotations

import contextlib

from bot.store.errors import StoreRefused
from tests.sync.helpers import (
    assert_answer_seen_next_cycle,
    resolved_card_on_two_replicas,
    times_described,
)


def test_a_refused_check_and_a_refused_change_after_the_save_do_not_lose_the_wake(bot_factory, pg_url, fake_slack):
    holder, other, case, thread = resolved_card_on_two_replicas(bot_factory, pg_url, fake_slack)
    sync = holder.services.sync
    describe = sync.gateway.describe_cases
    replied = []

    def then_a_reply_elsewhere(ids):
        found = describe(ids)
        if not replied and case.case_id in ids:
            replied.append(1)
            other.user_message("C1", "not fixed, it is down again", thread_ts=thread)
            assert other.services.work.wait_idle(timeout=20)
            assert other.services.gateway.get_case(case.case_id).status == "reopened"
        return found

    def refused(*args, **kwargs):
        raise StoreRefused("couldn't get a connection after 5.00 sec")  # the pool, for both statements

    sync.gateway.describe_cases = then_a_reply_elsewhere
    sync._woken_since = refused
    sync.states.change = refused  # the same refusal, a moment later, for the fallback's statements
    try:
        with contextlib.suppress(StoreRefused):
            sync.run_cycle()
    finally:
        del sync._woken_since
        del sync.states.change
        del sync.gateway.describe_cases
    assert replied

    assert_answer_seen_next_cycle(holder, case, thread)


def test_a_check_refused_for_good_does_not_make_a_resolved_case_due_every_cycle(bot_factory, pg_url, fake_slack):
    holder, _other, case, _thread = resolved_card_on_two_replicas(bot_factory, pg_url, fake_slack)
    sync = holder.services.sync

    def refused(*args, **kwargs):
        raise StoreRefused("canceling statement due to statement timeout")

    sync._woken_since = refused  # only this one read fails, every time
    try:
        asked = times_described(holder, case, 4)
    finally:
        del sync._woken_since
    assert asked <= 1, (
        f"the resolved case was described in {asked} of 4 cycles",
        sync.state(case.case_id).next_check_at,
    )
