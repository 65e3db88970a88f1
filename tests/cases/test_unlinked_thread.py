"""A card stays in its channel after its case is unlinked (by `unlink`, or at start when the accounts file
took the channel off the case's account): someone who still answers AWS in its thread is told that the
message went nowhere, rather than left to wait for an answer that cannot come."""

from __future__ import annotations

from tests.cases.helpers import communications, link_case, open_case_at_aws


def told(bot, thread):
    return bot.slack.calls("chat.postEphemeral", lambda c: c.params.get("thread_ts") == thread)


def test_a_reply_in_the_thread_of_an_unlinked_card_is_answered_once_and_sent_nowhere(bot):
    case = open_case_at_aws(bot)
    card = link_case(bot, case, user="U1")
    bot.command(f"unlink {case.display_id}")
    assert "no longer synced" in bot.wait_for_response()["text"]

    delivery = bot.user_message("C1", "the disk is replaced, please check", user="U2", thread_ts=card["ts"])
    [note] = bot.slack.wait_for("chat.postEphemeral", lambda c: c.params.get("thread_ts") == card["ts"])
    assert note.params["user"] == "U2" and note.params["channel"] == "C1"
    assert "not* sent to AWS" in note.params["text"] and "unlinked" in note.params["text"]
    assert f"/aws-support reply {case.display_id}" in note.params["text"]

    # Slack's retry of the same event, and a second message: one note per message written.
    assert bot.redeliver(delivery, retry_num=1).status == 200
    bot.user_message("C1", "hello?", user="U2", thread_ts=card["ts"])
    bot.slack.wait_for("chat.postEphemeral", lambda c: c.params.get("thread_ts") == card["ts"], count=2)
    assert bot.services.work.wait_idle(timeout=20)
    assert len(told(bot, card["ts"])) == 2
    assert not any("disk is replaced" in c.body for c in communications(bot, case.case_id))


def test_a_reply_in_a_thread_that_never_followed_a_case_gets_no_note(bot):
    case = open_case_at_aws(bot)
    card = link_case(bot, case, user="U1")
    bot.command(f"unlink {case.display_id}")
    bot.wait_for_response()
    chat = bot.slack.add_message("C1", "lunch?", user="U3")
    bot.user_message("C1", "yes", user="U2", thread_ts=chat["ts"])
    # Served after the message above: once its note is there, the chat thread's event was handled too.
    bot.user_message("C1", "any news?", user="U2", thread_ts=card["ts"])
    bot.slack.wait_for("chat.postEphemeral", lambda c: c.params.get("thread_ts") == card["ts"])
    assert told(bot, chat["ts"]) == []


def test_an_unlinked_thread_is_remembered_for_a_month_then_pruned(bot):
    import time

    case = open_case_at_aws(bot)
    card = link_case(bot, case, user="U1")
    bot.command(f"unlink {case.display_id}")
    bot.wait_for_response()
    unlinked = bot.services.store.table("unlinked")
    unlinked.put(
        "C9|1.000001", {"case_id": "case-old", "display_id": "1", "reason": "unlink", "at": time.time() - 31 * 86400}
    )

    bot.services.recover()  # prunes, as every start and the keeper do

    assert "C9|1.000001" not in unlinked
    assert f"C1|{card['ts']}" in unlinked  # a week old would be kept as well
