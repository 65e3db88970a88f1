"""Controls for test_sync_lease.py (these pass): the same steps with one replica doing both parts. Its
per-case lock and its per-process `_applied_snapshot_at` cover them; across replicas nothing does."""

from __future__ import annotations

import threading
import time

from tests.review30.test_sync_lease import GatedPacer, status_texts, texts
from tests.sync.helpers import click_card_button, linked_case, open_case


def test_control_a_reply_sent_by_the_holder_while_it_syncs_the_resolution_is_looked_at_soon(
    bot_factory, pg_url, fake_slack
):
    holder = bot_factory(env={"DATABASE_URL": pg_url})
    case, thread = linked_case(holder)
    fake_slack.add_user("U1", real_name="Ana Lima", display_name="ana")
    holder.services.gateway.resolve_case(case.case_id)
    answer = fake_slack.hold_after_acting("chat.postMessage")
    cycle = threading.Thread(target=holder.services.sync.run_cycle)
    try:
        cycle.start()
        fake_slack.wait_for("chat.postMessage", lambda c: "resolved" in (c.params.get("text") or ""))
        holder.user_message("C1", "not fixed, it is down again", thread_ts=thread)
        time.sleep(1.0)  # its wake() waits for the case's lock
    finally:
        answer.set()
    cycle.join(timeout=20)
    assert holder.services.work.wait_idle(timeout=20)
    holder.sandbox.add_aws_reply(case.case_id, "we looked again: the disk is full")
    holder.services.sync.run_cycle()
    assert texts(holder, thread) == ["we looked again: the disk is full"]


def test_control_a_refresh_on_the_holder_during_its_batch_leaves_one_status_line(bot_factory, pg_url):
    holder = bot_factory(env={"DATABASE_URL": pg_url})
    busy, quiet = sorted([open_case(holder, "Busy case"), open_case(holder, "Quiet case")], key=lambda c: c.case_id)
    cards = {
        case.case_id: holder.services.cases.post_card(case, channel, linked_by="U1").thread_ts
        for case, channel in ((busy, "C1"), (quiet, "C2"))
    }
    linked_case(holder)
    holder.services.sync.run_cycle()
    pacer = holder.services.sync.poster.pacer = GatedPacer("C1")
    holder.sandbox.add_aws_reply(busy.case_id, "an answer on the busy case")
    cycle = threading.Thread(target=holder.services.sync.run_cycle)
    cycle.start()
    try:
        assert pacer.reached.wait(20)
        holder.services.gateway.resolve_case(quiet.case_id)
        click_card_button(holder, "C2", cards[quiet.case_id], "case_refresh")
        assert holder.services.work.wait_idle(timeout=20)
    finally:
        pacer.gate.set()
    cycle.join(timeout=20)
    holder.services.sync.run_cycle()
    assert len(status_texts(holder, "C2", cards[quiet.case_id])) == 1
