"""The Create case form with several accounts, end to end: the Account field (channel rules, the
channel's default preselected), options from the chosen account, CreateCase and its attachments in
that account, replies' attachments in the case's account, refusals."""

from __future__ import annotations

import json

from tests.accounts.e2e import ALIAS_OF, SERVICE
from tests.cases.helpers import card_text
from tests.cases.test_modal import values
from tests.support.harness import ADMIN


def open_form(bot, channel="C1"):
    before = len(bot.slack.calls("views.open"))
    bot.command("create Disk full", channel=channel)
    return bot.slack.wait_for("views.open", count=before + 1)[-1].response["view"]


def block(view, prefix):
    return next(b for b in view["blocks"] if b["block_id"] == prefix or b["block_id"].startswith(prefix + ":"))


def account_state(alias):
    option = {"text": {"type": "plain_text", "text": alias}, "value": alias}
    chosen = {"type": "static_select", "selected_option": option}
    return {"account": {"account": chosen}}


def with_account(alias, **changes):
    state = values(**changes)
    # The dependent fields carry the account in their block IDs.
    for name in ("service", "severity"):
        state[f"{name}:{alias}"] = state.pop(name)
    state[f"category:{alias}:{SERVICE}"] = state.pop("category")
    return {**account_state(alias), **state}


def sandbox_of(bot, alias):
    return bot.sandbox.accounts.account(ALIAS_OF[alias])


def test_the_form_offers_the_accounts_of_the_channel_first_with_its_default_chosen(accounts_bot):
    view = open_form(accounts_bot, "C1")
    first = view["blocks"][0]
    assert first["block_id"] == "account" and "account" in first["label"]["text"].lower()
    assert [o["value"] for o in first["element"]["options"]] == ["main", "stage"]  # prod is CPROD's only
    assert first["element"]["initial_option"]["value"] == "main"
    assert first["element"]["initial_option"]["text"]["text"] == "main (123456789012)"
    assert json.loads(view["private_metadata"]) == {"channel": "C1", "account": "main"}

    view = open_form(accounts_bot, "CPROD")
    assert [o["value"] for o in view["blocks"][0]["element"]["options"]] == ["main", "prod", "stage"]

    accounts_bot.command("account stage", channel="C1", user=ADMIN)
    accounts_bot.wait_for_response()
    view = open_form(accounts_bot, "C1")
    assert view["blocks"][0]["element"]["initial_option"]["value"] == "stage"


def test_picking_an_account_redraws_the_form_with_that_accounts_options(accounts_bot):
    view = open_form(accounts_bot, "C1")
    stage = sandbox_of(accounts_bot, "stage")
    stage.reset_calls()
    picked = {**account_state("stage")["account"]["account"], "action_id": "account", "block_id": "account"}
    subject = {"subject": {"subject": {"type": "plain_text_input", "value": "Kept as typed"}}}
    accounts_bot.requests.block_actions(picked, view=view, state_values={**account_state("stage"), **subject})
    [update] = accounts_bot.slack.wait_for("views.update")
    redrawn = update.params["view"]
    assert redrawn["blocks"][0]["element"]["initial_option"]["value"] == "stage"
    assert block(redrawn, "subject")["element"]["initial_value"] == "Kept as typed"
    # Service, Category and Severity are stage's now: new block IDs, so no earlier pick survives.
    assert block(redrawn, "service")["block_id"] == "service:stage"
    assert block(redrawn, "severity")["block_id"] == "severity:stage"
    assert stage.calls["DescribeSeverityLevels"] == 1
    suggested = accounts_bot.requests.block_suggestion(
        "service", "elastic compute", view={**update.response["view"], "state": {"values": account_state("stage")}}
    )
    assert SERVICE in [o["value"] for o in suggested.body["options"]]
    assert stage.calls["DescribeServices"] == 1


def test_a_case_opened_in_another_account_goes_there_with_its_attachment(accounts_bot):
    log = accounts_bot.slack.add_file("db-1.log", b"disk full at 03:12\n", "text/plain")
    view = open_form(accounts_bot, "C1")
    main, stage = sandbox_of(accounts_bot, "main"), sandbox_of(accounts_bot, "stage")
    answer = accounts_bot.requests.view_submission(view, values=with_account("stage", files=[log]))
    assert answer.status == 200 and not answer.body
    [post] = accounts_bot.slack.wait_for("chat.postMessage", lambda c: c.params.get("blocks") is not None, timeout=15)
    card = accounts_bot.slack.message("C1", post.response["ts"])
    assert "stage (200000000003)" in card_text(card)
    accounts_bot.services.work.wait_idle(timeout=10)
    case_id = accounts_bot.services.cases.case_for_thread("C1", card["ts"])
    assert case_id.startswith("case-200000000003-")
    assert stage.calls["CreateCase"] == 1 and main.calls["CreateCase"] == 0
    # The attachment set is stage's: a set made in another account would be refused by CreateCase.
    assert stage.calls["AddAttachmentsToSet"] == 1 and main.calls["AddAttachmentsToSet"] == 0
    [first] = accounts_bot.services.gateway.communications(case_id)
    [attachment] = first.attachments
    assert accounts_bot.services.gateways["stage"].attachment(attachment.attachment_id).data == b"disk full at 03:12\n"


def test_a_thread_reply_to_another_accounts_case_uploads_there(accounts_bot):
    view = open_form(accounts_bot, "C1")
    accounts_bot.requests.view_submission(view, values=with_account("stage"))
    [post] = accounts_bot.slack.wait_for("chat.postMessage", lambda c: c.params.get("blocks") is not None, timeout=15)
    accounts_bot.services.work.wait_idle(timeout=10)
    case_id = accounts_bot.services.cases.case_for_thread("C1", post.response["ts"])
    main, stage = sandbox_of(accounts_bot, "main"), sandbox_of(accounts_bot, "stage")
    shot = accounts_bot.slack.add_file("graph.png", b"\x89PNG fake", "image/png")
    delivery = accounts_bot.user_message(
        "C1", "see graph", thread_ts=post.response["ts"], files=[shot], subtype="file_share"
    )
    accounts_bot.slack.wait_for("reactions.add", lambda c: c.params["timestamp"] == delivery.event["ts"])
    assert stage.calls["AddAttachmentsToSet"] == 1 and main.calls["AddAttachmentsToSet"] == 0
    [attachment] = accounts_bot.services.gateway.communications(case_id)[-1].attachments
    assert accounts_bot.services.gateways["stage"].attachment(attachment.attachment_id).data == b"\x89PNG fake"


def test_creating_in_an_account_the_channel_may_not_use_is_refused_on_the_field(accounts_bot):
    view = open_form(accounts_bot, "C1")
    answer = accounts_bot.requests.view_submission(view, values=with_account("prod"))
    assert answer.body["response_action"] == "errors"
    assert "prod" in answer.body["errors"]["account"] and "may not be used" in answer.body["errors"]["account"]
    assert all(sandbox_of(accounts_bot, a).calls["CreateCase"] == 0 for a in ("main", "prod", "stage"))
    # The same account from its own channel opens the case there.
    view = open_form(accounts_bot, "CPROD")
    assert not accounts_bot.requests.view_submission(view, values=with_account("prod")).body
    accounts_bot.slack.wait_for("chat.postMessage", lambda c: c.params.get("blocks") is not None, timeout=15)
    accounts_bot.services.work.wait_idle(timeout=10)
    assert sandbox_of(accounts_bot, "prod").calls["CreateCase"] == 1


def test_an_unreachable_default_opens_the_form_in_a_reachable_account_with_a_note(
    accounts_bot_factory, accounts_sandbox
):
    accounts_sandbox.accounts.deny_assume_role("sandbox-3")  # stage
    bot = accounts_bot_factory()
    bot.command("account stage", channel="C1", user=ADMIN)
    bot.wait_for_response()
    view = open_form(bot, "C1")
    first = view["blocks"][0]
    assert first["block_id"] == "account"
    assert first["element"]["initial_option"]["value"] == "main"
    assert json.loads(view["private_metadata"]) == {"channel": "C1", "account": "main"}
    note = next(b for b in view["blocks"] if b["block_id"] == "account_note")
    text = note["elements"][0]["text"]
    assert "stage (200000000003)" in text and "assuming its role was denied" in text and "main" in text
    assert block(view, "severity")["block_id"] == "severity:main"


def test_no_reachable_account_gets_a_clear_answer_naming_each(accounts_bot_factory, accounts_sandbox):
    for alias in ("sandbox-2", "sandbox-3"):
        accounts_sandbox.accounts.deny_assume_role(alias)
    bot = accounts_bot_factory()
    accounts_sandbox.accounts.account("sandbox").inject_fault(
        "DescribeSeverityLevels", "SubscriptionRequiredException", count=20
    )
    before = len(bot.slack.calls("views.open"))
    bot.command("create Disk full", channel="CPROD")
    answer = bot.wait_for_response(timeout=30)
    assert answer["response_type"] == "ephemeral"
    text = answer["text"]
    for label in ("main (123456789012)", "prod (200000000002)", "stage (200000000003)"):
        assert label in text
    assert "assuming its role was denied" in text and "no Business or Enterprise support plan" in text
    assert "Traceback" not in text
    assert len(bot.slack.calls("views.open")) == before


def pick(bot, view, alias, state=None):
    """The person picks `alias` in the form's Account field; the form as Slack redraws it."""
    before = len(bot.slack.calls("views.update"))
    picked = {**account_state(alias)["account"]["account"], "action_id": "account", "block_id": "account"}
    bot.requests.block_actions(picked, view=view, state_values={**account_state(alias), **(state or {})})
    return bot.slack.wait_for("views.update", count=before + 1)[-1].params["view"]


def test_picking_an_unreachable_account_keeps_it_shown_says_why_and_refuses_to_open_there(
    accounts_bot_factory, accounts_sandbox
):
    accounts_sandbox.accounts.deny_assume_role("sandbox-3")  # stage
    bot = accounts_bot_factory()
    view = open_form(bot, "C1")  # main, the channel's default
    redrawn = pick(bot, view, "stage")
    # The person's choice stays: the form is stage's, not silently main's.
    assert redrawn["blocks"][0]["element"]["initial_option"]["value"] == "stage"
    assert json.loads(redrawn["private_metadata"])["account"] == "stage"
    note = next(b for b in redrawn["blocks"] if b["block_id"] == "account_note")["elements"][0]["text"]
    assert "stage (200000000003)" in note and "assuming its role was denied" in note
    assert "opened in" not in note
    # No field belongs to another account than the one shown.
    ids = [b["block_id"] for b in redrawn["blocks"]]
    assert not [i for i in ids if i.split(":")[0] in ("service", "category", "severity") and ":stage" not in i]

    # Submitting for stage is refused on the Account field, whatever fields came with it (here main's,
    # as when the redraw had not reached the person yet); nothing is opened anywhere.
    state = {**values(), **account_state("stage")}
    for name in ("service", "severity"):
        state[f"{name}:main"] = state.pop(name)
    state[f"category:main:{SERVICE}"] = state.pop("category")
    answer = bot.requests.view_submission(redrawn, values=state)
    assert answer.body["response_action"] == "errors"
    assert list(answer.body["errors"]) == ["account"]
    error = answer.body["errors"]["account"]
    assert "stage" in error and "assuming its role was denied" in error and "Traceback" not in error
    bot.services.work.wait_idle(timeout=10)
    assert all(sandbox_of(bot, a).calls["CreateCase"] == 0 for a in ("main", "prod", "stage"))


def test_a_submitted_account_whose_fields_are_another_accounts_is_refused(accounts_bot):
    view = open_form(accounts_bot, "C1")  # main's fields
    state = {**with_account("main"), **account_state("stage")}  # stage picked, the redraw not arrived
    answer = accounts_bot.requests.view_submission(view, values=state)
    assert answer.body["response_action"] == "errors" and list(answer.body["errors"]) == ["account"]
    accounts_bot.services.work.wait_idle(timeout=10)
    assert all(sandbox_of(accounts_bot, a).calls["CreateCase"] == 0 for a in ("main", "prod", "stage"))
