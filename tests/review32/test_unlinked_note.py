"""Review 32 of 61e8997: the note to a person who wrote in the thread of an unlinked card."""

from __future__ import annotations

from tests.cases.helpers import communications, link_case, open_case_at_aws


def test_slacks_retry_of_a_reply_that_reached_aws_is_not_told_it_did_not(bot):
    """A reply written while the thread followed the case is noted before the ack and sent to AWS. Slack
    retries the event (the ack took over 3 s: a slow store, a restart) after the case was unlinked: the
    retry finds the reply noted (lease None), then explain_unlinked_thread finds the thread unlinked and
    tells the writer that the message was *not* sent to AWS - it was. They send it again with
    `/aws-support reply`, as the note tells them: AWS gets it twice."""
    case = open_case_at_aws(bot)
    card = link_case(bot, case, user="U1")
    delivery = bot.user_message("C1", "the disk is replaced, please check", user="U2", thread_ts=card["ts"])
    assert bot.services.work.wait_idle(timeout=20)
    assert any("disk is replaced" in c.body for c in communications(bot, case.case_id)), "sent to AWS"

    bot.command(f"unlink {case.display_id}")
    assert "no longer synced" in bot.wait_for_response()["text"]
    assert bot.redeliver(delivery, retry_num=1).status == 200  # Slack's retry, within its 5 minutes
    # A new message after it: once its note is there, the retry was handled too.
    bot.user_message("C1", "hello?", user="U2", thread_ts=card["ts"])
    bot.slack.wait_for("chat.postEphemeral", lambda c: c.params.get("thread_ts") == card["ts"])
    assert bot.services.work.wait_idle(timeout=20)
    notes = bot.slack.calls("chat.postEphemeral", lambda c: c.params.get("thread_ts") == card["ts"])
    assert len(notes) == 1, f"{len(notes)} notes for one message not sent; the reply AWS has was told it was not"
