"""/aws-support case sub-commands, end to end: signed slash commands in, Slack and AWS calls out."""

from __future__ import annotations

import pytest

from tests.cases.helpers import action_ids, attributed, card_text, communications, link_case, open_case_at_aws


@pytest.mark.parametrize("text", ["", "help"])
def test_help_lists_every_sub_command(bot, text):
    response = bot.command(text)
    assert response.status == 200
    answer = response.json  # in the ack itself
    assert answer["response_type"] == "ephemeral"
    shown = card_text(answer)
    for word in ("create", "list", "show", "link", "unlink", "reply", "resolve", "watch", "digest"):
        assert f"/aws-support {word}" in shown or f"`{word}" in shown, word


def test_unknown_sub_command_is_answered_in_the_ack(bot):
    response = bot.command("frobnicate now")
    assert response.status == 200
    assert "frobnicate" in response.body["text"]
    assert "/aws-support help" in response.body["text"]
    assert bot.sandbox.calls.total() == 0


def test_link_posts_the_card_once_and_its_thread_follows_the_case(bot):
    case = open_case_at_aws(bot)
    card = link_case(bot, case)
    text = card_text(card)
    assert case.subject in text and case.display_id in text
    assert "Production system impaired" in text or "high" in text.lower()
    assert "Elastic Compute Cloud" in text
    assert f"displayId={case.display_id}" in text  # the console link
    assert action_ids(card) == ["case_reply", "case_resolve", "case_refresh"]
    assert bot.services.cases.case_for_thread("C1", card["ts"]) == case.case_id

    bot.command(f"link {case.case_id}")
    assert "already linked" in bot.wait_for_response()["text"]
    assert len(bot.slack.calls("chat.postMessage")) == 1


def test_show_summarises_the_case_with_its_last_communications_only_to_the_asker(bot):
    case = open_case_at_aws(bot, body="first words")
    bot.sandbox.add_aws_reply(case.case_id, "Hello from AWS, please send logs")
    bot.command(f"show {case.display_id}")
    answer = bot.wait_for_response()
    assert answer["response_type"] == "ephemeral"
    text = card_text(answer)
    assert case.subject in text
    assert "first words" in text and "Hello from AWS, please send logs" in text
    assert text.index("first words") < text.index("Hello from AWS")
    assert not bot.slack.calls("chat.postMessage")


def test_show_asks_aws_once_for_the_case_and_its_last_five_communications(bot):
    case = open_case_at_aws(bot, body="first words")
    for n in range(6):
        bot.sandbox.add_aws_reply(case.case_id, f"Update number {n}")
    before = dict(bot.sandbox.calls)

    bot.command(f"show {case.display_id}")
    text = card_text(bot.wait_for_response())

    asked = {name: count - before.get(name, 0) for name, count in bot.sandbox.calls.items()}
    # One call for the case: DescribeCases brings its five most recent communications.
    assert (asked.get("DescribeCases", 0), asked.get("DescribeCommunications", 0)) == (1, 0), asked
    assert "first words" not in text and "Update number 0" not in text
    assert [n for n in range(6) if f"Update number {n}" in text] == [1, 2, 3, 4, 5]
    assert text.index("Update number 1") < text.index("Update number 5")


def test_list_shows_open_cases_linked_here_and_list_all_is_for_admins(bot):
    linked = open_case_at_aws(bot, subject="Linked one")
    open_case_at_aws(bot, subject="Elsewhere")
    link_case(bot, linked)

    bot.command("list")
    text = card_text(bot.wait_for_response())
    assert "Linked one" in text and "Elsewhere" not in text

    bot.command("list all", user="U1")
    assert "admins" in bot.wait_for_response()["text"].lower()

    bot.command("list all", user="UADMIN")
    text = card_text(bot.wait_for_response())
    assert "Linked one" in text and "Elsewhere" in text


def test_reply_command_sends_attributed_text_and_mirrors_it_into_the_thread(bot):
    bot.slack.add_user("U1", real_name="Ana Lima", display_name="ana")
    case = open_case_at_aws(bot)
    card = link_case(bot, case)

    trigger_id = "T-reply-42"
    bot.command(f"reply {case.display_id} Logs are attached to ticket 42.\nSecond line.", trigger_id=trigger_id)
    assert "Sent to AWS Support" in bot.wait_for_response()["text"]
    latest = communications(bot, case.case_id)[-1]
    key = f"reply:trigger:{trigger_id}"
    assert latest.body == attributed("ana", key, "Logs are attached to ticket 42.\nSecond line.")
    [mirror] = bot.slack.wait_for("chat.postMessage", lambda c: c.params.get("thread_ts") == card["ts"])
    assert "Logs are attached to ticket 42." in mirror.params["text"]


def test_reply_without_text_or_case_gets_usage_in_the_ack(bot):
    assert "Usage" in bot.command("reply").body["text"]
    assert "Usage" in bot.command("reply 1234567890").body["text"]
    assert "not a case" in bot.command("reply banana some text").body["text"]
    assert bot.sandbox.calls.total() == 0


def test_resolve_is_for_the_linker_opener_or_admins_and_redraws_the_card(bot):
    case = open_case_at_aws(bot)
    card = link_case(bot, case, user="U1")

    bot.command(f"resolve {case.display_id}", user="U2")
    assert "Only the person who opened" in bot.wait_for_response()["text"]
    assert bot.sandbox.calls["ResolveCase"] == 0

    bot.command(f"resolve {case.display_id}", user="U1")
    assert "resolved" in bot.wait_for_response()["text"]
    assert bot.services.gateway.get_case(case.case_id).status == "resolved"
    [update] = bot.slack.wait_for("chat.update", lambda c: c.params["ts"] == card["ts"])
    assert action_ids(update.params) == ["case_reply", "case_reopen", "case_refresh"]


def test_admin_may_resolve_any_case(bot):
    case = open_case_at_aws(bot)
    link_case(bot, case, user="U1")
    bot.command(f"resolve {case.case_id}", user="UADMIN")
    assert "resolved" in bot.wait_for_response()["text"]


def test_unlink_stops_following_the_thread(bot):
    case = open_case_at_aws(bot)
    card = link_case(bot, case)
    bot.command(f"unlink {case.display_id}")
    assert "no longer synced" in bot.wait_for_response()["text"]
    assert bot.services.cases.case_for_thread("C1", card["ts"]) is None
    [update] = bot.slack.wait_for("chat.update", lambda c: c.params["ts"] == card["ts"])
    assert "case_resolve" not in action_ids(update.params)

    bot.command(f"unlink {case.display_id}")
    assert "not linked" in bot.wait_for_response()["text"]


@pytest.mark.parametrize("ref", ["banana", "case-", "12ab"])
def test_malformed_case_reference_gets_a_clear_answer(bot, ref):
    bot.command(f"show {ref}")
    text = bot.wait_for_response()["text"]
    assert "not a case" in text
    assert bot.sandbox.calls.total() == 0


def test_missing_case_reference_gets_usage(bot):
    bot.command("show")
    assert "Which case?" in bot.wait_for_response()["text"]


def test_unknown_case_is_reported_not_raised(bot):
    bot.command("show 9999999999")
    assert "no case `9999999999`" in bot.wait_for_response()["text"]
    bot.command("link case-123456789012-muen-2026-0000000000000000")
    assert "no case" in bot.wait_for_response()["text"]


def test_link_in_a_channel_the_bot_is_not_in_says_to_invite_it(bot):
    case = open_case_at_aws(bot)
    bot.slack.fail("chat.postMessage", error="not_in_channel", count=1)
    bot.command(f"link {case.display_id}")
    assert "/invite" in bot.wait_for_response()["text"]
