"""Issue 8's promise for a reply: under any single fault it reaches AWS exactly once, and is confirmed
(✅) only when it did. kill -9 runs the bot as `python -m bot serve` in a subprocess (as
tests/sync/test_crash.py does); the other faults come from the sandbox and FakeSlack."""

from __future__ import annotations

import time

import pytest

from bot.bootstrap import sandbox_gateway
from bot.sandbox.faults import CONNECTION_DROPPED
from tests.cases.helpers import fast_retries, sent_texts
from tests.cases.helpers import linked_for_ana as linked
from tests.support.http import request
from tests.support.slack_requests import SlackRequests
from tests.sync.test_crash import kill, start_bot, wait_until


def confirmed(slack, ts) -> bool:
    return any(c.status == 200 for c in slack.calls("reactions.add", lambda c: c.params["timestamp"] == ts))


@pytest.mark.slow(seconds=12)
def test_kill_9_before_during_and_after_the_aws_call_sends_each_reply_once(bot_factory, fake_slack, sandbox):
    setup = bot_factory()
    case, card = linked(setup)
    db_path = setup.db_path
    setup.stop()

    def ready(url: str) -> bool:
        try:
            return request("GET", url + "/healthz").status == 200
        except OSError:
            return False

    def deliver(url: str, text: str) -> dict:
        event = fake_slack.add_message("C1", text, user="U1", thread_ts=card["ts"])
        assert SlackRequests(url, "test-secret").event_callback(event).status == 200
        return event

    gateway = sandbox_gateway(sandbox.url)  # AWS as seen from here: the sandbox outlives every bot

    def texts() -> list[str]:
        return [c.body.split(": ", 1)[1] for c in gateway.communications(case.case_id) if " via Slack" in c.body]

    def at_aws(text: str) -> bool:
        return text in texts()

    events = []

    # 1. Killed right after the ack: AWS is slow, nothing has reached it yet.
    sandbox.set_latency(0.5)
    process, url = start_bot(db_path, fake_slack, sandbox)
    wait_until(lambda: ready(url), what="the bot")
    events.append(deliver(url, "one"))
    kill(process)
    # 2. Killed while AddCommunicationToCase is on its way: AWS takes it, the bot never hears back.
    process, url = start_bot(db_path, fake_slack, sandbox)
    wait_until(lambda: ready(url), what="the bot")
    wait_until(lambda: at_aws("one"), what="the first reply, resumed")
    events.append(deliver(url, "two"))
    wait_until(lambda: sandbox.calls["AddCommunicationToCase"] >= 2, what="the second reply's call")
    kill(process)
    wait_until(lambda: at_aws("two"), what="AWS to take the second reply")
    # 3. Killed after AWS has it, while the ✅ is on its way.
    sandbox.set_latency(0)
    fake_slack.set_latency(1.0, "reactions.add")
    process, url = start_bot(db_path, fake_slack, sandbox)
    wait_until(lambda: ready(url), what="the bot")
    events.append(deliver(url, "three"))
    wait_until(lambda: at_aws("three"), what="the third reply")
    kill(process)
    assert not confirmed(fake_slack, events[2]["ts"])
    # The last start finishes everything.
    fake_slack.set_latency(0, "reactions.add")
    process, url = start_bot(db_path, fake_slack, sandbox)
    try:
        for event in events:
            wait_until(lambda event=event: confirmed(fake_slack, event["ts"]), what=f"✅ on {event['text']}")
    finally:
        kill(process)
    assert texts() == ["one", "two", "three"]


def test_an_answer_aws_lost_after_taking_the_reply_counts_as_sent(bot):
    case, card = linked(bot)
    bot.sandbox.inject_fault("AddCommunicationToCase", "InternalServerError", after_processing=True)
    delivery = bot.user_message("C1", "sent once", thread_ts=card["ts"])
    bot.slack.wait_for("reactions.add", lambda c: c.params["timestamp"] == delivery.event["ts"], timeout=20)
    assert sent_texts(bot, case.case_id) == ["sent once"]


@pytest.mark.parametrize("after_processing", [False, True], ids=["before-aws-took-it", "after-aws-took-it"])
def test_a_connection_dropped_on_the_reply_sends_it_once_and_confirms_it(bot, after_processing):
    # The connection closes without an answer (botocore: ConnectionClosedError), before or after AWS
    # did the work: the bot cannot tell which, and asks AWS by the reply's reference.
    case, card = linked(bot)
    fast_retries(bot, deadline_seconds=30)
    bot.sandbox.inject_fault("AddCommunicationToCase", CONNECTION_DROPPED, after_processing=after_processing)
    delivery = bot.user_message("C1", "sent as the line dropped", thread_ts=card["ts"])
    bot.slack.wait_for("reactions.add", lambda c: c.params["timestamp"] == delivery.event["ts"], timeout=20)
    assert sent_texts(bot, case.case_id) == ["sent as the line dropped"]
    assert bot.sandbox.calls["AddCommunicationToCase"] == (1 if after_processing else 2)


def test_a_connection_dropped_while_aws_still_works_on_the_reply_does_not_send_it_twice(bot):
    # AWS may finish a request after its connection dropped: a check "is it at AWS?" made at once finds
    # nothing, and a resend then would add the reply a second time.
    case, card = linked(bot)
    fast_retries(bot, deadline_seconds=30)
    bot.services.cases.replies.unclear_settle_seconds = 5.0  # stands for the minute the bot gives AWS
    bot.sandbox.inject_fault("AddCommunicationToCase", CONNECTION_DROPPED, late_seconds=1.5)
    delivery = bot.user_message("C1", "sent while AWS was slow", thread_ts=card["ts"])
    bot.slack.wait_for("reactions.add", lambda c: c.params["timestamp"] == delivery.event["ts"], timeout=20)
    time.sleep(2.0)  # the late AddCommunicationToCase has surely landed
    assert sent_texts(bot, case.case_id) == ["sent while AWS was slow"]


def test_throttling_past_the_deadline_is_reported_and_never_confirmed(bot):
    case, card = linked(bot)
    fast_retries(bot, deadline_seconds=1.0)  # stands for the minutes the bot waits
    bot.sandbox.inject_fault("AddCommunicationToCase", "ThrottlingException", count=10_000)
    delivery = bot.user_message("C1", "too early", thread_ts=card["ts"])
    bot.slack.wait_for("chat.postMessage", lambda c: "not* sent" in c.params.get("text", ""), timeout=20)
    bot.sandbox.clear_faults()
    assert sent_texts(bot, case.case_id) == []
    assert not bot.slack.calls("reactions.add", lambda c: c.params["timestamp"] == delivery.event["ts"])


def test_a_replayed_reply_command_is_sent_once(bot):
    case, _ = linked(bot)
    bot.command(f"reply {case.display_id} only once", trigger_id="T-replayed")
    assert "Sent to AWS Support" in bot.wait_for_response(timeout=15)["text"]
    bot.slack.clear()
    bot.command(f"reply {case.display_id} only once", trigger_id="T-replayed")
    bot.services.work.wait_idle(timeout=10)
    bot.slack.assert_no_calls(within=0.5, method="response_url")  # the first answer stands alone
    assert sent_texts(bot, case.case_id) == ["only once"]
