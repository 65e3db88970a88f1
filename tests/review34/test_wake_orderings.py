"""Review 34 of 1673561: orderings of a wake-up (`CaseSync.wake`) against a sync's save on another replica
sharing one PostgreSQL database."""

from __future__ import annotations

import threading

from tests.sync.helpers import (
    assert_answer_seen_next_cycle,
    linked_case,
    resolved_card_on_two_replicas,
)


def test_a_reply_during_the_first_save_of_a_resolved_case_is_not_lost(bot_factory, pg_url, fake_slack):
    """A resolved case is linked; its first sync has no `sync` row yet. The save's `update` inserts the
    row (uncommitted) and, with it locked, asks `_woken_since`: no wake. A reply sent on another replica
    right then notes `woken_at` and runs `change`, whose pre-read finds no committed row, so `due_now`
    writes nothing and does not wait for the save's lock. The save commits now + 30 min: the reopened
    case rests for 30 minutes and AWS's answer to the reply is not looked at by the next cycle."""
    holder, other, case, thread = resolved_card_on_two_replicas(bot_factory, pg_url, fake_slack)
    assert holder.services.sync.state(case.case_id) is None  # never synced: no row yet

    sync = holder.services.sync
    woken_since = sync._woken_since
    seen = []

    def then_a_reply_elsewhere(case_id, read_at):
        found = woken_since(case_id, read_at)
        if not seen:
            seen.append(found)
            # With the (inserted, uncommitted) row locked, after the check: the reply, sent elsewhere.
            reply = threading.Thread(
                target=other.user_message, args=("C1", "not fixed, it is down again"), kwargs={"thread_ts": thread}
            )
            reply.start()
            reply.join(timeout=20)
            assert other.services.work.wait_idle(timeout=20)
            assert other.services.gateway.get_case(case.case_id).status == "reopened"
        return found

    sync._woken_since = then_a_reply_elsewhere
    try:
        sync.run_cycle()  # the first sync: reads "resolved", saves the recheck
    finally:
        del sync._woken_since
    assert seen == [False]

    assert_answer_seen_next_cycle(holder, case, thread)


def test_a_wake_racing_the_forgetting_of_its_state_leaves_no_null_row(bot_factory, pg_url, fake_slack):
    """`SyncStates.change` reads the row, then updates it. A wake now always writes when the pre-read
    found a state; when another replica's `_forget_unfollowed` deletes the row in between (an unlinked
    case answered with `/aws-support reply`), `update` inserts a default row and `apply` returns the
    raw None: a JSON null is written to `sync`. `_read_all` skips it, so `_forget_unfollowed` never
    deletes it: it stays for good."""
    bot = bot_factory(env={"DATABASE_URL": pg_url})
    case, _thread = linked_case(bot)
    sync = bot.services.sync
    table = bot.services.store.table("sync")
    assert table.get(case.case_id) is not None

    bot.services.cases.unlink(case.case_id, "C1", user="U1")  # then answered with `/aws-support reply`
    change = sync.states.change

    def forgotten_meanwhile(case_id, changed):
        calls = []

        def first_read_then_forgotten(state):
            result = changed(state)
            if not calls:
                calls.append(1)
                table.delete(case_id)  # another replica's _forget_unfollowed, between the two reads
            return result

        change(case_id, first_read_then_forgotten)

    sync.states.change = forgotten_meanwhile
    try:
        sync.wake(case.case_id)
    finally:
        del sync.states.change
    sync.run_cycle()
    sync.run_cycle()
    assert case.case_id not in table, ("a row left in sync:", table.get(case.case_id, "absent"))
