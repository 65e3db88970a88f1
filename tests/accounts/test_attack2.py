"""attack2: a channel must never act on a case of an account restricted to other channels."""

from __future__ import annotations

import json
import time

from tests.accounts.e2e import open_case_in
from tests.sandbox.helpers import wait_until
from tests.support.harness import ADMIN, BotHarness, write_accounts_file


def test_reply_by_bare_display_id_never_reaches_a_case_of_an_account_restricted_elsewhere(accounts_bot):
    case = open_case_in(accounts_bot, "prod", subject="Prod outage")
    ack = accounts_bot.command(f"reply {case.display_id} sent from the wrong channel", channel="C1")
    assert ack.status == 200
    answer = accounts_bot.wait_for_response()
    prod = accounts_bot.services.gateways["prod"]
    bodies = [c.body for c in prod.communications(case.case_id)]
    assert not any("sent from the wrong channel" in body for body in bodies)
    assert "Prod outage" not in str(answer)


def test_a_watching_channel_never_gets_cards_of_an_account_restricted_elsewhere(accounts_bot):
    watches = accounts_bot.services.watches
    watches.grace = watches.grace * 0
    watches.watch("C1", ADMIN, "all")
    case = open_case_in(accounts_bot, "prod", subject="Prod outage")
    watches.card_new_cases()
    assert accounts_bot.services.cases.link_in(case.case_id, "C1") is None
    assert not [m for m in accounts_bot.slack.messages("C1") if "Prod outage" in str(m)]


def test_digest_in_a_channel_never_shows_the_first_account_when_it_is_restricted_elsewhere(
    fake_slack, accounts_sandbox, tmp_path
):
    restricted_first = [
        {"alias": "prod", "id": "200000000002", "channels": ["CPROD"]},
        {"alias": "main", "id": "123456789012"},
    ]
    path = write_accounts_file(tmp_path / "accounts.toml", restricted_first)
    bot = BotHarness(
        slack=fake_slack, sandbox=accounts_sandbox, db_path=tmp_path / "bot.sqlite", env={"BOT_ACCOUNTS_FILE": path}
    ).start()
    try:
        assert bot.services.accounts.accounts[0].alias == "prod"
        prod = accounts_sandbox.accounts.account("sandbox-2")
        prod.reset_calls()
        bot.command("digest", channel="C1")
        wait_until(lambda: fake_slack.calls("chat.postMessage") or bot.responses(), timeout=10)
        time.sleep(1)
        assert "200000000002" not in json.dumps(fake_slack.messages("C1")) + json.dumps(bot.responses())
        assert sum(prod.calls.values()) == 0  # prod's Trusted Advisor never asked for C1
    finally:
        bot.stop()
