"""Cases of several accounts from one bot, end to end: links by alias:displayId and by bare display ID,
refusals across channels, the account named on the card and in `show`, `accounts` and `account`."""

from __future__ import annotations

from tests.accounts.e2e import open_case_in
from tests.cases.helpers import card_text
from tests.support.harness import ADMIN


def posted_card(bot, channel):
    [post] = bot.slack.wait_for(
        "chat.postMessage", lambda c: c.params.get("channel") == channel and c.params.get("blocks") is not None
    )
    return bot.slack.message(channel, post.response["ts"])


def test_link_by_alias_and_display_id_posts_a_card_naming_the_account(accounts_bot):
    case = open_case_in(accounts_bot, "stage")
    accounts_bot.command(f"link stage:{case.display_id}", channel="C1")
    assert "linked" in accounts_bot.wait_for_response()["text"]
    text = card_text(posted_card(accounts_bot, "C1"))
    assert case.subject in text
    assert "stage (200000000003)" in text
    [post] = accounts_bot.slack.calls("chat.postMessage")
    assert accounts_bot.services.cases.case_for_thread("C1", post.response["ts"]) == case.case_id


def test_a_bare_display_id_is_found_in_the_account_that_has_it(accounts_bot):
    main = open_case_in(accounts_bot, "main", subject="Main one")
    # Display IDs count per account: make stage's case one that main does not have.
    for _ in range(3):
        open_case_in(accounts_bot, "stage", subject="filler")
    stage = open_case_in(accounts_bot, "stage", subject="Stage one")
    assert stage.display_id != main.display_id
    accounts_bot.command(f"show {stage.display_id}", channel="C1")
    text = card_text(accounts_bot.wait_for_response())
    assert "Stage one" in text and "stage (200000000003)" in text
    accounts_bot.command(f"show {main.display_id}", channel="C1")
    text = card_text(accounts_bot.wait_for_response())
    assert "Main one" in text and "main (123456789012)" in text


def test_a_restricted_account_is_refused_elsewhere_by_name_and_served_in_its_channel(accounts_bot):
    case = open_case_in(accounts_bot, "prod", subject="Prod outage")
    for ref in (f"prod:{case.display_id}", case.case_id):
        accounts_bot.command(f"show {ref}", channel="C1")
        answer = accounts_bot.wait_for_response()
        assert "Prod outage" not in str(answer)
        assert "prod" in answer["text"] and "200000000002" in answer["text"] and "may not be used" in answer["text"]
    # A bare display ID in C1 never reaches prod's case.
    accounts_bot.command(f"link {case.display_id}", channel="C1")
    assert "Prod outage" not in str(accounts_bot.wait_for_response())
    ack = accounts_bot.command(f"reply prod:{case.display_id} hello", channel="C1")
    assert "may not be used" in ack.body["text"]
    # In its own channel it works.
    accounts_bot.command(f"link {case.display_id}", channel="CPROD")
    assert "linked" in accounts_bot.wait_for_response()["text"]
    assert "prod (200000000002)" in card_text(posted_card(accounts_bot, "CPROD"))


def test_an_unreachable_account_is_named_and_the_others_still_work(accounts_bot):
    stage = open_case_in(accounts_bot, "stage")
    main = open_case_in(accounts_bot, "main", subject="Still fine")
    accounts_bot.sandbox.accounts.deny_assume_role("sandbox-2")
    # A fresh bot: the denied role is met on first use.
    accounts_bot.command("accounts", channel="C1")
    text = accounts_bot.wait_for_response()["text"]
    assert "*main* 123456789012" in text and "AWS Support answers" in text
    assert "*prod* 200000000002" in text and "assuming its role was denied" in text
    assert "*stage* 200000000003" in text
    assert stage.case_id.startswith("case-200000000003")
    accounts_bot.command(f"show {main.display_id}", channel="CPROD")
    assert "Still fine" in card_text(accounts_bot.wait_for_response())


def test_account_sets_the_channel_default_for_admins_only(accounts_bot):
    accounts_bot.command("account stage", channel="C1", user="U1")
    assert "admins" in accounts_bot.wait_for_response()["text"]
    accounts_bot.command("account prod", channel="C1", user=ADMIN)
    assert "may not be used" in accounts_bot.wait_for_response()["text"]
    accounts_bot.command("account stage", channel="C1", user=ADMIN)
    assert "default AWS account is now *stage*" in accounts_bot.wait_for_response()["text"]
    assert accounts_bot.services.accounts.default_for("C1").alias == "stage"
    # A bare display ID is looked for in the channel's default account first: main is not asked.
    stage = open_case_in(accounts_bot, "stage", subject="Stage first")
    main_sandbox = accounts_bot.sandbox.accounts.account("sandbox")
    main_sandbox.reset_calls()
    accounts_bot.command(f"show {stage.display_id}", channel="C1")
    assert "Stage first" in card_text(accounts_bot.wait_for_response())
    assert main_sandbox.calls["DescribeCases"] == 0
