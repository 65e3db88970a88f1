"""Bolt runs the bot's listeners on the request's own thread and answers Slack when they return:
no listener may hold that answer for a Web API call after its ack. Opening or redrawing a modal
happens on the prompt pool, at once (a trigger_id lives 3 s), while Slack already has its 200.

Each test holds the Web API call the listener makes after its ack: were the answer waiting for it,
the request would time out (the harness gives 15 s; the hold lasts 60)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from tests.cases.helpers import SERVICE, link_case, open_case_at_aws
from tests.cases.test_card_buttons import click
from tests.cases.test_modal import open_modal
from tests.support.fake_slack import FakeSlack


@contextmanager
def slack_holding(slack: FakeSlack, method: str) -> Iterator[threading.Event]:
    released = slack.hold_after_acting(method)
    try:
        yield released
    finally:
        released.set()
        slack.heal(method)


def test_create_answers_slack_before_its_form_is_opened(bot):
    with slack_holding(bot.slack, "views.open"):
        response = bot.command("create Disk full on db-1")
        assert response.status == 200
        [opened] = bot.slack.wait_for("views.open")  # meanwhile, with the command's trigger_id
        assert opened.params["trigger_id"] == response.extra["trigger_id"]


def test_a_reply_button_answers_slack_before_its_modal_is_opened(bot):
    card = link_case(bot, open_case_at_aws(bot))
    with slack_holding(bot.slack, "views.open"):
        assert click(bot, card, "case_reply").status == 200
        [opened] = bot.slack.wait_for("views.open")
        assert opened.params["view"]["callback_id"] == "case_reply"


def test_a_chosen_service_answers_slack_before_the_form_is_redrawn(bot):
    view = open_modal(bot)
    chosen = {
        "type": "external_select",
        "action_id": "service",
        "block_id": "service",
        "selected_option": {"text": {"type": "plain_text", "text": "EC2"}, "value": SERVICE},
    }
    with slack_holding(bot.slack, "views.update"):
        response = bot.requests.block_actions(chosen, view=view, state_values={"service": {"service": chosen}})
        assert response.status == 200
        [update] = bot.slack.wait_for("views.update")
        assert update.params["view_id"] == view["id"]


def test_help_is_answered_in_the_ack_itself(bot):
    """The ack's body is what Bolt returns once the listener ends: help has no second request."""
    response = bot.command("help")
    assert response.status == 200 and response.body["response_type"] == "ephemeral"
    assert response.body["blocks"]
    bot.slack.assert_no_calls(method="response_url")
