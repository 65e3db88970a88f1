"""Review 44, F2: Replies.failed reads `sent` against the parts, but never asks whether every part
reached AWS. A reply that is wholly at AWS and fails afterwards (Slack's reactions.add busy past the
deadline, the command's DescribeCases failing) is reported "only part 1 of the 1 parts of your reply
reached AWS Support; the rest did not ... Send only what is missing" -- with, for an AWS error, "Nothing
was changed" in the same breath."""

from __future__ import annotations

from tests.cases.helpers import fast_retries, sent_texts
from tests.cases.helpers import linked_for_ana as linked


def test_a_reply_wholly_at_aws_whose_confirmation_fails_is_not_said_to_be_partly_sent(bot):
    case, card = linked(bot)
    fast_retries(bot, deadline_seconds=1.0)
    bot.slack.fail("reactions.add", retry_after=0.05, count=None)  # Slack busy past the deadline
    try:
        bot.user_message("C1", "all of it", thread_ts=card["ts"])
        [told] = bot.slack.wait_for("chat.postMessage", lambda c: "your reply" in c.params.get("text", ""), timeout=20)
    finally:
        bot.slack.heal("reactions.add")
    assert sent_texts(bot, case.case_id) == ["all of it"]  # the whole reply is at AWS
    text = told.params["text"]
    assert "the rest did not" not in text and "*not* sent" not in text, f"told {text!r} while AWS has all of it"
