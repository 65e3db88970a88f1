"""Watches and `reply` across accounts, end to end: a watched channel is carded only the new cases of
accounts it may use (all of them, or the one named), and a bare display ID in `reply` is looked for
only in the channel's accounts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

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
    assert set(accounts_bot.services.watches.all()[0].accounts) == {"stage"}
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


def open_in(bot, alias, subject, severity):
    from bot.domain import NewCase
    from tests.accounts.e2e import CATEGORY, SERVICE

    gateway = bot.services.gateways[alias]
    return gateway.get_case(gateway.create_case(NewCase(subject, SERVICE, CATEGORY, severity, "It stopped.")))


def run_cycles(bot):
    bot.services.poller.run_cycle()
    bot.services.poller.run_cycle()


def test_watches_of_several_accounts_accumulate_and_a_later_one_replaces_only_its_account(accounts_bot):
    watching(accounts_bot, "high prod", channel="CPROD")
    second = watching(accounts_bot, "all stage", channel="CPROD")
    assert "*prod*" in second["text"] and "*stage*" in second["text"]  # says what is watched now
    open_in(accounts_bot, "prod", "Prod high case", "high")
    open_in(accounts_bot, "prod", "Prod low case", "low")
    open_in(accounts_bot, "stage", "Stage low case", "low")
    open_in(accounts_bot, "main", "Main high case", "high")
    run_cycles(accounts_bot)
    text = carded(accounts_bot, "CPROD")
    assert "Prod high case" in text and "Stage low case" in text
    assert "Prod low case" not in text and "Main high case" not in text

    # The same watch again changes nothing, and says what is watched.
    again = watching(accounts_bot, "all stage", channel="CPROD")
    assert "already" in again["text"] and "*prod*" in again["text"] and "*stage*" in again["text"]
    # A later watch of prod replaces prod's level only.
    watching(accounts_bot, "all prod", channel="CPROD")
    open_in(accounts_bot, "prod", "Prod second low case", "low")
    open_in(accounts_bot, "stage", "Stage second low case", "low")
    run_cycles(accounts_bot)
    text = carded(accounts_bot, "CPROD")
    assert "Prod second low case" in text and "Stage second low case" in text

    accounts_bot.command("unwatch", user=ADMIN, channel="CPROD")
    assert accounts_bot.wait_for_response()["response_type"] == "in_channel"
    assert accounts_bot.services.watches.all() == []
    open_in(accounts_bot, "stage", "After the unwatch", "high")
    run_cycles(accounts_bot)
    assert "After the unwatch" not in carded(accounts_bot, "CPROD")


def test_watch_all_covers_every_account_and_unwatch_of_one_account_stops_only_it(accounts_bot):
    watching(accounts_bot, "high all", channel="CPROD")
    accounts_bot.command("unwatch prod", user=ADMIN, channel="CPROD")
    answer = accounts_bot.wait_for_response()
    assert answer["response_type"] == "in_channel" and "prod" in answer["text"]
    open_in(accounts_bot, "prod", "Prod high case", "high")
    open_in(accounts_bot, "stage", "Stage high case", "high")
    open_in(accounts_bot, "main", "Main high case", "high")
    run_cycles(accounts_bot)
    text = carded(accounts_bot, "CPROD")
    assert "Stage high case" in text and "Main high case" in text and "Prod high case" not in text


def test_a_watch_recorded_by_the_previous_release_keeps_working_and_is_migrated(accounts_bot_factory, tmp_path):
    db = tmp_path / "kept.sqlite"
    first = accounts_bot_factory(db_path=db)
    since = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    legacy = {"channel": "C1", "level": "high", "by": ADMIN, "since": since, "carded": {}, "account": "stage"}
    first.services.store.table("watches").put("C1", legacy)
    first.stop()

    bot = accounts_bot_factory(db_path=db)
    record = bot.services.store.table("watches").get("C1")
    assert "level" not in record and set(record["accounts"]) == {"stage"}  # migrated at start
    added = watching(bot, "all main", channel="C1")
    assert "*stage*" in added["text"] and "*main*" in added["text"]
    open_in(bot, "stage", "Stage high case", "high")
    open_in(bot, "stage", "Stage low case", "low")
    open_in(bot, "main", "Main low case", "low")
    run_cycles(bot)
    text = carded(bot, "C1")
    assert "Stage high case" in text and "Main low case" in text and "Stage low case" not in text
