"""The case card's buttons: Reply (modal), Resolve (authorised, confirmed by Slack), Refresh, Reopen."""

from __future__ import annotations

import json

from tests.cases.helpers import action_ids, attributed, card_text, communications, link_case, open_case_at_aws
from tests.support.slack_requests import button_action


def click(bot, card, action_id, user="U1"):
    value = next(
        e["value"]
        for b in card["blocks"]
        if b["type"] == "actions"
        for e in b["elements"]
        if e["action_id"] == action_id
    )
    return bot.requests.block_actions(
        button_action(action_id, value, block_id="case_actions"), user_id=user, message=card
    )


def reply_values(text, cc=""):
    return {
        "text": {"text": {"type": "plain_text_input", "value": text}},
        "cc": {"cc": {"type": "plain_text_input", "value": cc}},
        "attachments": {"attachments": {"type": "file_input", "files": []}},
    }


def test_reply_button_opens_a_modal_whose_text_reaches_aws_and_the_thread(bot):
    bot.slack.add_user("U1", real_name="Ana Lima", display_name="ana")
    case = open_case_at_aws(bot)
    card = link_case(bot, case)
    assert click(bot, card, "case_reply").status == 200
    [opened] = bot.slack.wait_for("views.open")
    view = opened.response["view"]
    assert json.loads(view["private_metadata"]) == {"case_id": case.case_id, "channel": "C1"}

    answer = bot.requests.view_submission(view, values=reply_values("Rebooted, still down", cc="lead@example.com"))
    assert answer.status == 200
    bot.slack.wait_for("chat.postMessage", lambda c: c.params.get("thread_ts") == card["ts"])
    key = f"reply:view:{view['id']}"
    assert communications(bot, case.case_id)[-1].body == attributed("ana", key, "Rebooted, still down")


def test_reply_modal_validates_on_the_field(bot):
    case = open_case_at_aws(bot)
    card = link_case(bot, case)
    click(bot, card, "case_reply")
    [opened] = bot.slack.wait_for("views.open")
    answer = bot.requests.view_submission(opened.response["view"], values=reply_values("", cc="nope"))
    assert set(answer.body["errors"]) == {"text", "cc"}


def test_resolve_button_refuses_strangers_and_resolves_for_the_linker(bot):
    case = open_case_at_aws(bot)
    card = link_case(bot, case, user="U1")
    click(bot, card, "case_resolve", user="U2")
    [refusal] = bot.slack.wait_for("chat.postEphemeral")
    assert refusal.params["user"] == "U2" and "Only the person" in refusal.params["text"]
    assert bot.sandbox.calls["ResolveCase"] == 0

    click(bot, card, "case_resolve", user="U1")
    [update] = bot.slack.wait_for("chat.update", lambda c: "case_reopen" in json.dumps(c.params.get("blocks")))
    assert "Resolved" in card_text(update.params)
    assert bot.services.gateway.get_case(case.case_id).status == "resolved"


def test_resolve_button_carries_a_confirmation(bot):
    case = open_case_at_aws(bot)
    card = link_case(bot, case)
    resolve = next(
        e for b in card["blocks"] if b["type"] == "actions" for e in b["elements"] if e["action_id"] == "case_resolve"
    )
    assert resolve["confirm"]["confirm"]["text"] == "Resolve"


def test_refresh_redraws_the_card_with_the_status_at_aws(bot):
    case = open_case_at_aws(bot)
    card = link_case(bot, case)
    bot.sandbox.add_aws_reply(case.case_id, "Please try again", status="pending-customer-action")
    click(bot, card, "case_refresh")
    [update] = bot.slack.wait_for("chat.update", lambda c: c.params["ts"] == card["ts"])
    assert "Waiting for your answer" in card_text(update.params)


def test_reopen_replies_to_a_resolved_case_which_reopens_it(bot):
    case = open_case_at_aws(bot)
    card = link_case(bot, case, user="U1")
    bot.services.cases.resolve(case.case_id, "U1", "C1")
    card = bot.slack.message("C1", card["ts"])
    assert action_ids(card) == ["case_reply", "case_reopen", "case_refresh"]
    click(bot, card, "case_reopen")
    [opened] = bot.slack.wait_for("views.open")
    assert "Reopen" in opened.response["view"]["title"]["text"]
    bot.requests.view_submission(opened.response["view"], values=reply_values("It broke again"))
    bot.slack.wait_for("chat.postMessage", lambda c: c.params.get("thread_ts") == card["ts"])
    assert bot.services.gateway.get_case(case.case_id).status == "reopened"
