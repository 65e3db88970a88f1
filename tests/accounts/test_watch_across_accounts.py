"""Watches and `reply` across accounts, end to end: a watched channel is carded only the new cases of
accounts it may use (all of them, or the one named), and a bare display ID in `reply` is looked for
only in the channel's accounts."""

from __future__ import annotations

from datetime import timedelta

from bot.sync.poster import ChannelPacer
from tests.accounts.e2e import ALIAS_OF, open_case_in
from tests.cases.helpers import card_text
from tests.support.harness import ADMIN


def watching(bot, words="", channel="C1"):
    bot.services.watches.grace = timedelta(0)
    bot.services.sync.poster.pacer = ChannelPacer(per_second=100, burst=100)
    bot.command(f"watch {words}".strip(), user=ADMIN, channel=channel)
    return bot.wait_for_response()


def carded(bot, channel):
    found = [m for m in bot.slack.messages(channel) if m.get("blocks") and m.get("thread_ts", m["ts"]) == m["ts"]]
    return "\n".join(card_text(m) for m in found)


def test_a_watched_channel_gets_only_the_cases_of_accounts_it_may_use(accounts_bot):
    answer = watching(accounts_bot)
    assert answer["response_type"] == "in_channel" and "every account this channel may use" in answer["text"]
    open_case_in(accounts_bot, "main", subject="Main new case")
    open_case_in(accounts_bot, "stage", subject="Stage new case")
    open_case_in(accounts_bot, "prod", subject="Prod secret case")
    accounts_bot.services.poller.run_cycle()
    accounts_bot.services.poller.run_cycle()
    text = carded(accounts_bot, "C1")
    assert "Main new case" in text and "Stage new case" in text
    assert "Prod secret case" not in text  # prod may be used only in CPROD


def test_a_watch_of_one_account_cards_only_its_cases(accounts_bot):
    answer = watching(accounts_bot, "high stage")
    assert "account *stage*" in answer["text"] and "high, urgent or critical" in answer["text"]
    assert accounts_bot.services.watches.all()[0].account == "stage"
    open_case_in(accounts_bot, "main", subject="Main high case")
    open_case_in(accounts_bot, "stage", subject="Stage high case")
    accounts_bot.services.poller.run_cycle()
    accounts_bot.services.poller.run_cycle()
    text = carded(accounts_bot, "C1")
    assert "Stage high case" in text and "Main high case" not in text


def test_watching_an_account_the_channel_may_not_use_is_refused(accounts_bot):
    answer = watching(accounts_bot, "all prod")
    assert "prod" in answer["text"] and "may not be used" in answer["text"]
    assert accounts_bot.services.watches.all() == []
    assert "no account" in watching(accounts_bot, "all nope")["text"].lower()
    assert "every account" not in watching(accounts_bot, "prod", channel="CPROD")["text"]


def test_reply_by_bare_display_id_never_reaches_an_account_the_channel_may_not_use(accounts_bot):
    prod = open_case_in(accounts_bot, "prod", subject="Prod only")
    for alias in ("main", "stage"):  # display IDs count per account: make sure only prod has this one
        assert prod.display_id not in {c.display_id for c in accounts_bot.services.gateways[alias].list_cases()}
    sandbox = accounts_bot.sandbox.accounts.account(ALIAS_OF["prod"])
    sandbox.reset_calls()
    accounts_bot.command(f"reply {prod.display_id} leaking into prod", channel="C1")
    assert "has no case" in accounts_bot.wait_for_response(timeout=15)["text"]
    assert sandbox.calls["AddCommunicationToCase"] == 0
    # From its own channel the same words reach it.
    accounts_bot.command(f"reply {prod.display_id} hello prod", channel="CPROD")
    accounts_bot.wait_for_response()
    assert sandbox.calls["AddCommunicationToCase"] == 1
