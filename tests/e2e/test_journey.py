"""The whole round trip a person makes against the sandbox, with the bot running as `python -m bot` does:
open a case through the modal with an attachment, see its card, reply in the thread, see the AWS
engineer's answer appear in the thread, resolve from the card."""

from __future__ import annotations

import json

from tests.cases.helpers import CATEGORY, SERVICE, action_ids, card_text
from tests.support.slack_requests import button_action


def chosen(value: str) -> dict:
    return {"selected_option": {"text": {"type": "plain_text", "text": value}, "value": value}}


def test_open_follow_answer_and_resolve_a_case_from_slack(bot_with_workers):
    bot = bot_with_workers
    bot.sandbox.set_reply_delay(0.3)  # the emulated engineer answers on his own, as with --sandbox
    bot.slack.add_user("U1", real_name="Ana Lima", display_name="ana")

    # 1. /aws-support create, the form, one attachment
    bot.command("create Checkout latency spikes")
    [opened] = bot.slack.wait_for("views.open")
    trace = bot.slack.add_file("trace.txt", b"p99 2.4s at 10:02", "text/plain")
    values = {
        "subject": {"subject": {"type": "plain_text_input", "value": "Checkout latency spikes"}},
        "service": {"service": {"type": "external_select", **chosen(SERVICE)}},
        "category": {"category": {"type": "external_select", **chosen(CATEGORY)}},
        "severity": {"severity": {"type": "static_select", **chosen("high")}},
        "issue_type": {"issue_type": {"type": "static_select", **chosen("technical")}},
        "description": {"description": {"type": "plain_text_input", "value": "p99 went from 200 ms to 2.4 s."}},
        "cc": {"cc": {"type": "plain_text_input", "value": None}},
        "language": {"language": {"type": "static_select", **chosen("en")}},
        "attachments": {"attachments": {"type": "file_input", "files": [trace]}},
    }
    assert bot.requests.view_submission(opened.response["view"], values=values).status == 200

    # 2. the card
    [post] = bot.slack.wait_for("chat.postMessage", lambda c: c.params.get("blocks") is not None, timeout=15)
    card = bot.slack.message("C1", post.response["ts"])
    assert "Checkout latency spikes" in card_text(card)
    thread = card["ts"]

    # 3. the engineer's answer to the opening message appears in the thread, once
    first_answer = bot.slack.wait_for(
        "chat.postMessage",
        lambda c: c.params.get("thread_ts") == thread and "Amazon Web Services" in json.dumps(c.params),
        timeout=20,
    )
    assert len(first_answer) == 1

    # 4. a reply in the thread goes to AWS, confirmed, and the engineer answers it too
    reply = bot.user_message("C1", "Here is the trace from 10:02", thread_ts=thread)
    bot.slack.wait_for("reactions.add", lambda c: c.params["timestamp"] == reply.event["ts"], timeout=15)
    bot.slack.wait_for(
        "chat.postMessage",
        lambda c: c.params.get("thread_ts") == thread and "Amazon Web Services" in json.dumps(c.params),
        count=2,
        timeout=20,
    )
    bot.services.work.wait_idle(timeout=10)
    posted = [m for m in bot.slack.messages("C1", thread) if m["ts"] != thread]
    assert not any("ana via Slack" in json.dumps(m.get("blocks")) for m in posted), "our own reply was echoed"

    # 5. resolve from the card
    case_id = bot.services.cases.case_for_thread("C1", thread)
    bot.requests.block_actions(button_action("case_resolve", case_id, block_id="case_actions"), message=card)
    bot.slack.wait_for("chat.update", lambda c: "case_reopen" in json.dumps(c.params.get("blocks")), timeout=15)
    assert bot.services.gateway.get_case(case_id).status == "resolved"
    assert action_ids(bot.slack.message("C1", thread)) == ["case_reply", "case_reopen", "case_refresh"]
