"""Review 42: promises of CONTRACT.md the bot does not keep (each test fails on the integration branch).

Run: BOT_REQUIRE_POSTGRES=1 python -m pytest -n 0 -p no:cacheprovider tests/review42
"""

from __future__ import annotations

import re

import pytest

from tests.accounts.e2e import open_case_in
from tests.cases.helpers import card_text, link_case, open_case_at_aws
from tests.support.blocks import texts_in


# CONTRACT "Slash command": "`<case>` is either an AWS case ID (`case-…`), the numeric display ID, or
# `<alias>:<display ID>` to name the account." and "Several AWS accounts": "Without `BOT_ACCOUNTS_FILE`
# the bot serves the one account of its own credentials, under the alias `default`."
@pytest.mark.parametrize("sub", ["show", "link"])
def test_alias_form_names_the_one_account_of_a_bot_without_an_accounts_file(bot, sub):
    case = open_case_at_aws(bot, subject="Aliased reference")
    bot.command(f"{sub} default:{case.display_id}")
    answer = bot.wait_for_response()
    shown = (answer.get("text") or "") + "\n" + card_text(answer)
    assert "is not a case" not in shown, shown
    assert case.display_id in shown, shown


def test_reply_in_the_alias_form_is_accepted_by_a_bot_without_an_accounts_file(bot):
    case = open_case_at_aws(bot)
    link_case(bot, case)
    ack = bot.command(f"reply default:{case.display_id} Logs attached.")
    assert "is not a case" not in ((ack.body or {}).get("text") or ""), ack.body
    bot.wait_for_response()
    assert [c for c in bot.services.gateway.communications(case.case_id) if c.body.endswith("Logs attached.")]


def test_another_alias_is_refused_by_a_bot_without_an_accounts_file_and_names_its_one_account(bot):
    case = open_case_at_aws(bot)
    bot.command(f"show prod:{case.display_id}")
    text = bot.wait_for_response()["text"]
    assert "prod" in text and "default" in text, text


# CONTRACT "Several AWS accounts": aliases are served by name (`watch`, `digest`, `account`, `search
# account:` and the check before a `reply`'s ack all read `STAGE` as `stage`); only the case lookup
# after the ack (bot/accounts/routing.py find_case, ALIASED_REF.match(ref) without .lower()) refuses it.
def test_an_alias_in_capitals_names_the_account_in_a_case_reference_as_elsewhere(accounts_bot):
    bot = accounts_bot
    case = open_case_in(bot, "stage", subject="Stage thing")
    bot.command(f"show STAGE:{case.display_id}")
    answer = bot.wait_for_response()
    shown = (answer.get("text") or "") + "\n" + card_text(answer)
    assert "is not a case" not in shown, shown
    assert "Stage thing" in shown, shown


# CONTRACT "Environment": "`AWS_SUPPORT_REGION` | region of the Support endpoint (GovCloud, China)" and
# "Case card": "a link to the case in the AWS console". bot/domain.py Case.console_url always names
# the commercial console, which a GovCloud or China account cannot sign in to.
@pytest.mark.parametrize(
    ("region", "console_host"),
    [("us-gov-west-1", "console.amazonaws-us-gov.com"), ("cn-north-1", "console.amazonaws.cn")],
)
def test_the_cards_console_link_is_of_the_support_regions_partition(bot_factory, region, console_host):
    bot = bot_factory(env={"AWS_SUPPORT_REGION": region})
    case = open_case_at_aws(bot)
    card = link_case(bot, case)
    links = re.findall(r"<(https://[^|>]+)", card_text(card))
    assert links, card_text(card)
    assert all("support.console.aws.amazon.com" not in link for link in links), links
    assert any(console_host in link for link in links), links


# CONTRACT "Slash command": "`` (empty) or `help` | ephemeral help listing every sub-command". The help
# is mrkdwn, where `<…>` is a Slack control sequence (a link, a mention); bot/render.py escapes `<` for
# every value, and the usage answers show `&lt;case&gt;`, but templates/help.json.j2 (and the digest and
# watch usages) send `<case>`, `<alias>`, `<account>` raw, which Slack reads as links to nowhere.
BARE_ANGLE = re.compile(r"<(?![@#!]|https?://|mailto:)[^>]*>")


def test_the_help_shows_its_placeholders_escaped_as_the_usage_answers_do(bot):
    answer = bot.command("help").json
    bare = [m for text in texts_in(answer["blocks"]) for m in BARE_ANGLE.findall(text)]
    assert bare == [], bare


def test_the_digest_usage_shows_its_placeholders_escaped(bot):
    bot.command("digest bogus")
    text = bot.wait_for_response()["text"]
    assert BARE_ANGLE.findall(text) == [], text


def test_unwatch_refused_to_a_non_admin_says_what_was_refused(bot):
    bot.command("unwatch", user="U1", channel="C9")
    text = bot.wait_for_response()["text"]
    assert "stop" in text and "admins" in text, text
