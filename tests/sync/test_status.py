"""Status changes: the card is redrawn in place, the thread gets one short line; resolved cases rest."""

from __future__ import annotations

import threading

from bot.sync.poster import ChannelPacer
from tests.cases.helpers import action_ids, card_text
from tests.sync.helpers import (
    click_card_button,
    communication_messages,
    linked_case,
    open_case,
    shown_text,
    status_messages,
)


def card(bot, thread):
    return bot.slack.message("C1", thread)


def test_status_changes_update_the_card_and_say_so_once(bot):
    case, thread = linked_case(bot)
    assert "Opened" in card_text(card(bot, thread))

    bot.sandbox.add_aws_reply(case.case_id, "Which instance?")  # AWS now waits for the customer
    bot.services.sync.run_cycle()
    bot.services.sync.run_cycle()

    assert "Waiting for your answer" in card_text(card(bot, thread))
    [line] = status_messages(bot, "C1", thread)
    assert "waiting for an answer" in line["text"] and "<@U1>" in line["text"]  # called out: someone must answer
    assert bot.slack.calls("chat.update", lambda c: c.params["ts"] == thread)

    bot.services.gateway.add_communication(case.case_id, "i-0abc, from the console")
    bot.sandbox.add_aws_reply(case.case_id, "Working on it.", status="work-in-progress")
    bot.services.sync.run_cycle()

    assert "AWS is working on it" in card_text(card(bot, thread))
    assert [shown_text(m) for m in communication_messages(bot, "C1", thread)] == [
        "Which instance?",
        "i-0abc, from the console",  # written in the console, not from Slack: the thread shows it
        "Working on it.",
    ]
    lines = status_messages(bot, "C1", thread)
    assert len(lines) == 2 and "AWS is working on it" in lines[1]["text"]
    # Each line comes after the communications that changed the status.
    texts = [m.get("text") for m in bot.slack.messages("C1", thread)]
    assert texts.index(lines[1]["text"]) == len(texts) - 1


def test_a_resolved_case_gets_a_final_sweep_then_rests_until_reopened(bot):
    case, thread = linked_case(bot)
    bot.sandbox.add_aws_reply(case.case_id, "Fixed on our side.")
    bot.services.gateway.resolve_case(case.case_id)
    bot.sandbox.reset_calls()

    bot.services.sync.run_cycle()

    assert [shown_text(m) for m in communication_messages(bot, "C1", thread)] == ["Fixed on our side."]
    assert "resolved" in status_messages(bot, "C1", thread)[-1]["text"]
    assert "case_reopen" in action_ids(card(bot, thread))
    assert bot.sandbox.calls["DescribeCommunications"] == 1  # the final sweep

    bot.sandbox.reset_calls()
    bot.services.sync.run_cycle()
    bot.services.sync.run_cycle()
    assert bot.sandbox.calls["DescribeCases"] == 0  # resolved cases are looked at rarely

    bot.services.gateway.add_communication(case.case_id, "It broke again.")  # reopens the case
    bot.services.sync.wake(case.case_id)  # what a reply from Slack, a button or an event would do
    bot.services.sync.run_cycle()

    assert "case_resolve" in action_ids(card(bot, thread))
    assert "reopened" in status_messages(bot, "C1", thread)[-1]["text"]
    assert shown_text(communication_messages(bot, "C1", thread)[-1]) == "It broke again."


def test_sync_case_now_is_one_call_any_trigger_can_make(bot):
    case, thread = linked_case(bot)
    bot.sandbox.add_aws_reply(case.case_id, "pushed")
    bot.sandbox.reset_calls()

    posted = bot.services.sync.sync_case(case.case_id)

    assert posted == 2  # the reply and the status line
    assert [shown_text(m) for m in communication_messages(bot, "C1", thread)] == ["pushed"]
    assert bot.sandbox.calls["DescribeCases"] == 1
    assert bot.services.sync.run_cycle().posted == 0  # the poller, as backstop, finds nothing left


def test_a_resting_resolved_case_reopened_from_slack_is_followed_again_at_once(bot):
    case, thread = linked_case(bot)
    bot.services.gateway.resolve_case(case.case_id)
    bot.services.sync.run_cycle()
    bot.sandbox.reset_calls()
    bot.services.sync.run_cycle()
    assert bot.sandbox.calls["DescribeCases"] == 0  # resting

    bot.command(f"reply {case.display_id} It broke again", user="U1", channel="C1")
    bot.wait_for_response()
    bot.services.work.wait_idle(timeout=10)
    bot.sandbox.add_aws_reply(case.case_id, "Looking again.")
    bot.services.sync.run_cycle()

    assert [shown_text(m) for m in communication_messages(bot, "C1", thread)] == ["Looking again."]
    assert "waiting for an answer" in status_messages(bot, "C1", thread)[-1]["text"]


def test_a_snapshot_read_before_a_refresh_click_never_undoes_it(bot):
    sync = bot.services.sync
    sync.poster.pacer = ChannelPacer(per_second=100, burst=100)
    # A cycle's batch goes through its cases in case ID order: `busy` first, then `clicked`.
    busy, clicked = sorted([open_case(bot), open_case(bot)], key=lambda c: c.case_id)
    busy_thread = bot.services.cases.post_card(busy, "C1", linked_by="U1").thread_ts
    clicked_thread = bot.services.cases.post_card(clicked, "C2", linked_by="U1").thread_ts
    sync.run_cycle()

    # The poller reads both cases, then waits on Slack's pace in C1 (an answer, then a status line).
    bot.sandbox.add_aws_reply(busy.case_id, "Which instance?")
    sync.poster.pacer = ChannelPacer(per_second=0.5, burst=1)
    cycle = threading.Thread(target=sync.run_cycle)
    cycle.start()
    bot.slack.wait_for("chat.postMessage", lambda c: c.params.get("thread_ts") == busy_thread)

    # Meanwhile the other case is resolved in the console, and someone clicks Refresh on its card.
    bot.services.gateway.resolve_case(clicked.case_id)
    click_card_button(bot, "C2", clicked_thread, "case_refresh")
    bot.slack.wait_for("chat.postMessage", lambda c: c.params.get("thread_ts") == clicked_thread)
    cycle.join(timeout=30)
    assert not cycle.is_alive()
    sync.poster.pacer = ChannelPacer(per_second=100, burst=100)
    sync.wake(clicked.case_id)
    sync.run_cycle()

    lines = [m["text"] for m in status_messages(bot, "C2", clicked_thread)]
    assert len(lines) == 1 and "now *resolved*" in lines[0], lines  # not resolved -> opened -> resolved
    assert "case_reopen" in action_ids(bot.slack.message("C2", clicked_thread))
    assert bot.services.cases.record(clicked.case_id).status == "resolved"
    assert "waiting for an answer" in status_messages(bot, "C1", busy_thread)[-1]["text"]  # the poller did its part
