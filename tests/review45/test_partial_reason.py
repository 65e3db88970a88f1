"""Review 45, F2 (Review 44 F3's second half, still open): the partly-sent branch of reply_not_sent and
reply_failed inserts `{{ reason }}`, which for aws_internal_error / aws_unreachable is the generic
"... Nothing was changed; please try again in a few minutes." -- said right after "Only part 1 of the 2
parts of your reply reached AWS Support". Part 1 is on the case: something was changed, and "please try
again" contradicts "send only what is missing". 2fa92c6 now sends /aws-support reply through the same
text (Replies.told), so the live command path says it too.

Reached when part 2's call is refused (throttled: the doubt ends) and the look that must precede its
next call (Replies._at_aws, DescribeCommunications) then fails with a 5xx until the deadline."""

from __future__ import annotations

from bot import render
from bot.errors import AwsError
from tests.cases.helpers import a_two_part_text, fast_retries, parts_after_the_first_failing, sent_texts
from tests.cases.helpers import linked_for_ana as linked


def test_a_long_command_reply_partly_sent_is_not_told_nothing_was_changed(bot):
    case, _ = linked(bot)
    fast_retries(bot, deadline_seconds=1.5)
    gateway = bot.services.cases.replies.gateway
    real_look = gateway.communications
    # Part 2: refused, nothing done (throttled) ...
    throttled = AwsError("throttled", code="ThrottlingException", retryable=True)

    def communications(*args, **kwargs):
        if len(calls) >= 2:  # ... and the look before it is sent again: AWS in trouble until the deadline
            raise AwsError("aws_internal_error", code="InternalServerError", retryable=True)
        return real_look(*args, **kwargs)

    gateway.communications = communications
    try:
        with parts_after_the_first_failing(bot, throttled) as calls:
            bot.command(f"reply {case.display_id} {a_two_part_text()}", trigger_id="T-partial")
            told = bot.wait_for_response(timeout=20)["text"]
    finally:
        del gateway.communications
    assert len(sent_texts(bot, case.case_id)) == 1  # part 1 of 2 is at AWS
    said = told.split("\nHere is what you wrote")[0]
    assert "Only part 1 of the 2 parts" in said, said
    assert "Nothing was changed" not in said, f"told {said!r} while part 1 is at AWS"


def test_the_partly_sent_texts_never_say_nothing_was_changed():
    for key in ("aws_internal_error", "aws_unreachable"):
        reason = render.error_text(AwsError(key))
        outcome = {"reason": reason, "sent": 1, "parts": 2, "maybe": False, "cause": key}
        for text in (
            render.text("reply_not_sent", text="hello", **outcome),
            render.text("reply_failed", user="U1", **outcome),
        ):
            assert "Nothing was changed" not in text, text
