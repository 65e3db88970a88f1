"""Review 29 (B3): "One account that cannot be reached (AssumeRole denied, no support plan, throttled) is
reported by name and never stops the others." An account whose Support endpoint keeps answering a 5xx
(InternalServerError, ServiceUnavailable: retryable, but not in routing.ACCOUNT_WIDE) makes
AccountGateways.list_cases_in raise for every account: `search` answers only the error, and a watch
cards no new case of any account. Fails on 46a2f3c."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.accounts.e2e import ALIAS_OF, open_case_in
from tests.accounts.test_search import search, shown


def failing(bot, alias, code="InternalServerError"):
    bot.sandbox.accounts.account(ALIAS_OF[alias]).inject_fault("DescribeCases", code, count=1000)


def test_search_answers_from_the_others_while_one_account_answers_errors(accounts_bot):
    open_case_in(accounts_bot, "main", subject="Cache evictions main")
    open_case_in(accounts_bot, "stage", subject="Cache evictions stage")
    failing(accounts_bot, "stage")
    # The fault is stage's alone: main answers a search of its own.
    assert "Cache evictions main" in shown(search(accounts_bot, "cache account:main"))
    answer = search(accounts_bot, "cache")
    text = shown(answer)
    assert "Cache evictions main" in text, f"main's case is not shown: {text!r}"
    assert "stage" in text and "200000000003" in text


def test_a_watch_cards_the_new_cases_of_the_others_while_one_account_answers_errors(accounts_bot):
    watches = accounts_bot.services.watches
    watches.settings = type("Admins", (), {"is_admin": staticmethod(lambda user: True)})()  # U1 is an admin
    watches.watch("C1", "U1", "all", "all")
    # The watch began a minute ago; the case was opened after it, outside Slack, past the grace.
    record = accounts_bot.services.store.table("watches").get("C1")
    record["accounts"]["all"]["since"] = (datetime.now(UTC) - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    accounts_bot.services.store.table("watches").put("C1", record)
    case = open_case_in(accounts_bot, "main", subject="New main case")
    watches.grace = timedelta(0)
    failing(accounts_bot, "stage")
    try:
        posted = watches.card_new_cases()
    except Exception as error:  # noqa: BLE001
        raise AssertionError(f"stage's failure stopped main's card: {error!r}") from error
    assert posted == 1, case.case_id
