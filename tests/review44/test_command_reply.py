"""Review 44, F1: `/aws-support reply` answers its person through the command's on_done
(bot/listeners/commands/cases.py `reply.answer`), which renders only `render.error_text(error)`; the new
outcome logic of Replies.failed (in doubt, partly sent) never runs for it. A reply whose answer AWS lost
while AWS still takes it, or a long reply whose part 1 reached AWS, is answered "AWS Support could not be
reached. Nothing was changed; please try again in a minute." -- the person sends it again, and AWS has
it twice."""

from __future__ import annotations

import time

from bot.errors import AwsError
from bot.sandbox.faults import CONNECTION_DROPPED
from tests.cases.helpers import a_two_part_text, fast_retries, parts_after_the_first_failing, sent_texts
from tests.cases.helpers import linked_for_ana as linked


def test_a_command_reply_whose_deadline_passes_while_aws_may_take_it_is_not_told_nothing_was_changed(bot):
    case, _ = linked(bot)
    fast_retries(bot, deadline_seconds=1.0)
    bot.services.cases.replies.unclear_settle_seconds = 5.0  # AWS's minute
    bot.sandbox.inject_fault("AddCommunicationToCase", CONNECTION_DROPPED, late_seconds=2.0)
    bot.command(f"reply {case.display_id} maybe sent", trigger_id="T-maybe")
    told = bot.wait_for_response(timeout=20)["text"]
    time.sleep(2.5)  # AWS finished the call whose answer was lost
    at_aws = sent_texts(bot, case.case_id)
    assert at_aws == ["maybe sent"]
    assert "Nothing was changed" not in told and "try again" not in told, f"told {told!r} while AWS has {at_aws}"


def test_a_long_command_reply_whose_second_part_fails_is_not_told_nothing_was_changed(bot):
    case, _ = linked(bot)
    fast_retries(bot, deadline_seconds=1.0)
    with parts_after_the_first_failing(bot, AwsError("aws_internal_error", code="InternalServerError", retryable=True)):
        bot.command(f"reply {case.display_id} {a_two_part_text()}", trigger_id="T-long")
        told = bot.wait_for_response(timeout=20)["text"]
    assert len(sent_texts(bot, case.case_id)) == 1  # part 1 of 2 is at AWS
    assert "Nothing was changed" not in told, f"told {told!r} while part 1 is at AWS"
