"""Review 34: the control of test_wake_orderings (the same steps, the reply after the save): passes."""

from __future__ import annotations

import threading
import time

from bot.sync.poster import ChannelPacer
from tests.review30.replicas import as_another_replica
from tests.sync.helpers import communication_messages, open_case, shown_text


def texts(bot, thread):
    return [shown_text(m) for m in communication_messages(bot, "C1", thread)]


def test_control_a_reply_after_the_first_save_is_looked_at(bot_factory, pg_url, fake_slack):
    """As the failing test, but the reply is sent once the first save has committed: looked at next cycle."""
    holder = bot_factory(env={"DATABASE_URL": pg_url})
    other = bot_factory(env={"DATABASE_URL": pg_url})
    as_another_replica(other)
    fake_slack.add_user("U1", real_name="Ana Lima", display_name="ana")
    holder.services.sync.poster.pacer = ChannelPacer(per_second=100, burst=100)
    case = open_case(holder)
    holder.services.gateway.resolve_case(case.case_id)  # linked while resolved (to answer it)
    thread = holder.services.cases.post_card(
        holder.services.gateway.get_case(case.case_id), "C1", linked_by="U1"
    ).thread_ts
    assert holder.services.sync.state(case.case_id) is None  # never synced: no row yet

    sync = holder.services.sync
    woken_since = sync._woken_since
    seen = []

    def then_a_reply_elsewhere(case_id, read_at):
        found = woken_since(case_id, read_at)
        if False:
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
    reply = threading.Thread(target=other.user_message, args=("C1", "not fixed"), kwargs={"thread_ts": thread})
    reply.start()
    reply.join(20)
    assert other.services.work.wait_idle(timeout=20)

    holder.sandbox.add_aws_reply(case.case_id, "we looked again: the disk is full")
    sync.run_cycle()
    assert "we looked again: the disk is full" in texts(holder, thread), (
        "not looked at: next_check_at in",
        sync.state(case.case_id).next_check_at - time.time(),
    )
