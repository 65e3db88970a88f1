"""Review 43: c74e20e's "look at AWS for a minute before sending again" (bot/cases/unclear.py). The minute
is armed only by note_if_unclear, a store write made after the failure, in the same process: whatever
keeps that write from landing (a full disk, a dropped database connection, the process killed during the
call) leaves a record that looks at AWS at once and sends again while AWS is still at work. And when the
journal's deadline passes inside the minute, the person is told "*not* sent ... Nothing was changed"
while AWS is about to take (or took) the reply or the case."""

from __future__ import annotations

import threading
import time

from bot.errors import AwsError
from bot.sandbox.faults import CONNECTION_DROPPED
from bot.store.errors import StoreUnavailable
from tests.cases.helpers import a_two_part_text, fast_retries, parts_after_the_first_failing, sent_texts
from tests.cases.helpers import linked_for_ana as linked
from tests.cases.test_modal import open_modal, values


def test_a_full_disk_as_the_line_drops_does_not_send_the_reply_twice(bot):
    # The connection drops while AWS still works on the reply (it lands 1.5 s later); for half a second
    # the store takes no write, so note_if_unclear's save fails and unclear_at stays None (the save
    # before the call cleared it). The next try looks at AWS at once, finds nothing, and sends again.
    case, card = linked(bot)
    fast_retries(bot, deadline_seconds=30)
    bot.services.cases.replies.unclear_settle_seconds = 5.0  # stands for the minute the bot gives AWS
    bot.sandbox.inject_fault("AddCommunicationToCase", CONNECTION_DROPPED, late_seconds=1.5)
    store = bot.services.store
    gateway = bot.services.cases.replies.gateway
    real_write, real_add = store._write, gateway.add_communication
    full = threading.Event()

    def write(change):
        if full.is_set():
            raise StoreUnavailable("database or disk is full")
        return real_write(change)

    def add_communication(*args, **kwargs):
        try:
            return real_add(*args, **kwargs)
        except AwsError:
            if not full.is_set():
                full.set()
                threading.Timer(0.5, full.clear).start()
            raise

    store._write, gateway.add_communication = write, add_communication
    try:
        delivery = bot.user_message("C1", "sent as the disk filled", thread_ts=card["ts"])
        bot.slack.wait_for("reactions.add", lambda c: c.params["timestamp"] == delivery.event["ts"], timeout=30)
    finally:
        del store._write, gateway.add_communication
    time.sleep(2.0)  # the late AddCommunicationToCase has surely landed
    assert sent_texts(bot, case.case_id) == ["sent as the disk filled"]


def test_a_reply_whose_deadline_passes_while_aws_may_still_take_it_is_not_reported_as_not_sent(bot):
    # The deadline (600 s) can pass inside the minute: a 5xx or a drop after nine minutes of throttling
    # or of an AWS outage. The person is told "*not* sent ... Nothing was changed" and given the text to
    # send again, while AWS takes the reply a moment later: a careful person sends it twice.
    case, card = linked(bot)
    fast_retries(bot, deadline_seconds=1.0)
    bot.services.cases.replies.unclear_settle_seconds = 5.0
    bot.sandbox.inject_fault("AddCommunicationToCase", CONNECTION_DROPPED, late_seconds=2.0)
    delivery = bot.user_message("C1", "maybe sent", thread_ts=card["ts"])
    [told] = bot.slack.wait_for("chat.postMessage", lambda c: "your reply" in c.params.get("text", ""), timeout=20)
    time.sleep(2.5)  # AWS finished the call whose answer was lost
    at_aws = sent_texts(bot, case.case_id)
    assert at_aws == ["maybe sent"]
    text = told.params["text"]
    assert "*not* sent" not in text and "Nothing was changed" not in text, (
        f"told {text!r} while AWS has the reply: {at_aws}"
    )
    assert delivery.response.status == 200


def test_a_form_whose_deadline_passes_while_aws_may_still_open_the_case_is_not_reported_as_not_opened(bot):
    # As above for CreateCase: "Your case was *not* opened. ... Nothing was changed ... Here is what you
    # wrote" -- and the case AWS opens a moment later has no card, no steward, and a twin once the
    # person submits the form again.
    fast_retries(bot, deadline_seconds=1.0)
    bot.services.cases.intake.unclear_settle_seconds = 5.0
    bot.sandbox.inject_fault("CreateCase", CONNECTION_DROPPED, late_seconds=2.0)
    view = open_modal(bot)
    bot.requests.view_submission(view, values=values(subject="Maybe opened"))
    told = bot.slack.wait_for(
        "chat.postEphemeral", lambda c: "opened" in c.params.get("text", ""), timeout=20
    ) or bot.slack.wait_for("chat.postMessage", lambda c: "opened" in c.params.get("text", ""), timeout=5)
    time.sleep(2.5)
    opened = [c.subject for c in bot.services.gateway.list_cases()]
    assert opened == ["Maybe opened"]
    text = told[0].params["text"]
    assert "*not* opened" not in text and "Nothing was changed" not in text, f"told {text!r} while AWS opened it"


def test_a_long_reply_whose_second_part_fails_for_good_does_not_say_the_reply_was_not_sent(bot):
    # Part 1 is at AWS (and AWS Support reads it); part 2 fails for good. The thread says "your reply
    # was *not* sent" -- the person sends the whole reply again, and part 1 reaches AWS twice.
    case, card = linked(bot)
    fast_retries(bot, deadline_seconds=1.0)
    with parts_after_the_first_failing(bot, AwsError("aws_validation", code="ValidationException", aws_message="no")):
        bot.user_message("C1", a_two_part_text(), thread_ts=card["ts"])
        [told] = bot.slack.wait_for("chat.postMessage", lambda c: "your reply" in c.params.get("text", ""), timeout=20)
    assert len(sent_texts(bot, case.case_id)) == 1  # part 1 of 2 is at AWS
    assert "*not* sent" not in told.params["text"], told.params["text"]
