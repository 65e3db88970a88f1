"""Review 33 of 67582ce: the wake-up noted in the case's record (`woken_at`) is read by `_apply` before it
saves; a wake landing after that read but before the save is kept only by `SyncStates.save`'s merge,
which sees a wake-up only when the sync had read a non-zero next_check_at."""

from __future__ import annotations

import threading
import time

from tests.review30.replicas import as_another_replica
from tests.support.replicas import wait_for
from tests.sync.helpers import linked_case, texts


def test_a_reply_elsewhere_during_the_resolving_sync_is_not_lost(bot_factory, pg_url, fake_slack):
    """An open case (next_check_at 0) is resolved at AWS. The holder's poller reads it resolved and applies
    the snapshot: `_woken_since` finds no wake, so next_check = now + 30 min. Before that save, a reply sent
    on another replica reopens the case at AWS and wakes it: `woken_at` is noted, but the wake's `due_now`
    finds next_check_at 0 in the row and writes nothing, and `save`'s merge keeps a wake only when the sync
    read a non-zero next_check_at (it read 0). The reopened case rests for 30 minutes: AWS's answer to the
    reply is not looked at by the next cycle."""
    holder = bot_factory(env={"DATABASE_URL": pg_url})
    other = bot_factory(env={"DATABASE_URL": pg_url})
    as_another_replica(other)
    case, thread = linked_case(holder)
    fake_slack.add_user("U1", real_name="Ana Lima", display_name="ana")
    holder.services.sync.run_cycle()
    assert holder.services.sync.state(case.case_id).next_check_at == 0.0  # open: looked at every cycle

    holder.services.gateway.resolve_case(case.case_id)
    sync = holder.services.sync
    woken_since = sync._woken_since
    replied = []

    reply = threading.Thread(
        target=other.user_message, args=("C1", "not fixed, it is down again"), kwargs={"thread_ts": thread}
    )

    def then_a_reply_elsewhere(case_id, read_at):
        found = woken_since(case_id, read_at)
        if not replied:
            replied.append(found)
            # After the check, before the save's end: the reply is sent meanwhile, on the other replica.
            reply.start()
            wait_for(lambda: other.services.gateway.get_case(case.case_id).status == "reopened", 20, "the reopening")
        return found

    sync._woken_since = then_a_reply_elsewhere
    try:
        sync.run_cycle()  # reads "resolved", posts the status line, saves the recheck
    finally:
        del sync._woken_since
    reply.join(timeout=20)
    assert other.services.work.wait_idle(timeout=20)
    assert replied == [False]

    holder.sandbox.add_aws_reply(case.case_id, "we looked again: the disk is full")
    sync.run_cycle()
    assert texts(holder, thread) == ["we looked again: the disk is full"], (
        "not looked at: next_check_at in",
        sync.state(case.case_id).next_check_at - time.time(),
    )
