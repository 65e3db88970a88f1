"""Review 33 of 67582ce (2b): `explain_unlinked_thread` now stays silent whenever the journal holds the
message's reply. But a message in an unlinked thread is noted too (ref "") while any card is being posted
in the channel whose ts is not known yet: its job ends `not_a_case_thread`, telling no one, and now
Slack's retry is silent as well. The writer never learns their message reached no one."""

from __future__ import annotations

import time

from tests.cases.helpers import link_case, open_case_at_aws


def _a_card_being_posted_in(bot, channel, case_id):
    """What `Cards.post_step` leaves while chat.postMessage is in flight: a pending card record, listed
    under the channel's postings, its ts not known yet."""
    journal = bot.services.cases.journal
    key = f"card:{case_id}|{channel}|review33"
    lease = journal.record(key, "card", f"case:{case_id}", {"case_id": case_id, "channel": channel, "linked_by": "U1"})
    journal.save(lease, card_posting=True, card_posting_at=time.time())
    journal.note_under(f"cards-posting:{channel}", key)
    return key


def test_a_message_in_an_unlinked_thread_while_another_card_posts_is_told(bot):
    case = open_case_at_aws(bot)
    card = link_case(bot, case, user="U1")
    bot.command(f"unlink {case.display_id}")
    assert "no longer synced" in bot.wait_for_response()["text"]

    other = open_case_at_aws(bot, subject="Another one")
    key = _a_card_being_posted_in(bot, "C1", other.case_id)  # within a minute of the unlinked card's
    delivery = bot.user_message("C1", "anyone here?", user="U2", thread_ts=card["ts"])
    assert bot.services.cases.journal.get(f"reply:C1:{delivery.event['ts']}") is not None  # noted, ref ""
    bot.services.cases.journal.strike_from("cards-posting:C1", key)  # that card is posted elsewhere
    bot.services.cases.journal.table.delete(key)
    assert bot.services.work.wait_idle(timeout=30)
    assert bot.redeliver(delivery, retry_num=1).status == 200  # Slack's retry
    time.sleep(1.0)
    assert bot.services.work.wait_idle(timeout=20)
    notes = bot.slack.calls("chat.postEphemeral", lambda c: c.params.get("thread_ts") == card["ts"])
    assert len(notes) == 1, "the writer of a message in an unlinked thread was never told it reached no one"
