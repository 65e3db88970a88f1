""" "Refresh checks" across accounts, end to end: the button carries its digest's account, the refresh
and its follow-up (also after a restart) happen in that account, the roll-up's refreshes every
account it covers (one that cannot be reached is named), and a button naming an account the channel
may not use refreshes and shows nothing of it. Also `digest all` when no account can be reached."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.accounts.e2e import ALIAS_OF
from tests.accounts.test_digest_across_accounts import digest, sandbox_of, text_of
from tests.digest.test_e2e import blocks_by_id
from tests.support.blocks import texts_in
from tests.support.slack_requests import button_action


def refresh_button(message):
    [button] = [
        e
        for b in message["blocks"]
        if b["type"] == "actions"
        for e in b["elements"]
        if e["action_id"] == "digest_refresh"
    ]
    return button


def click_refresh(bot, message, channel, value=None):
    value = refresh_button(message)["value"] if value is None else value
    action = button_action("digest_refresh", value, block_id="digest_actions")
    response = bot.requests.block_actions(action, message=message, channel_id=channel)
    assert response.status == 200
    return bot.wait_for_response(response_url=response.response_url, timeout=30)


def reset(bot):
    for alias in ALIAS_OF:
        sandbox_of(bot, alias).reset_calls()


def refreshed_in(bot, alias):
    return sandbox_of(bot, alias).calls["RefreshTrustedAdvisorCheck"]


def follow_up_of(bot, message, channel):
    """Let the refreshes end in every account, run the worker, and return the follow-up in the thread."""
    for alias in ALIAS_OF:
        sandbox_of(bot, alias).advance_clock(10)
    bot.services.scheduler.run_once(datetime.now(UTC) + timedelta(seconds=20))
    [post] = bot.slack.wait_for(
        "chat.postMessage", lambda c: c.params.get("channel") == channel and c.params.get("thread_ts") == message["ts"]
    )
    return post.params


def test_refresh_of_another_accounts_digest_refreshes_that_account_and_follows_up_with_it(accounts_bot):
    message = digest(accounts_bot, "stage", channel="C1")  # C1's default is main
    reset(accounts_bot)
    answer = click_refresh(accounts_bot, message, "C1")
    assert "Refreshing" in answer["text"]
    assert refreshed_in(accounts_bot, "stage") > 0
    assert refreshed_in(accounts_bot, "main") == 0
    follow_up = follow_up_of(accounts_bot, message, "C1")
    meta = blocks_by_id(follow_up["blocks"])["digest_meta"]["elements"][0]["text"]
    assert "stage (200000000003)" in meta
    assert "Refresh finished" in str(follow_up["blocks"])
    assert sandbox_of(accounts_bot, "main").calls["DescribeTrustedAdvisorCheckRefreshStatuses"] == 0


def test_a_refresh_of_an_accounts_digest_resumed_after_a_restart_stays_in_that_account(accounts_bot_factory, tmp_path):
    db = tmp_path / "kept.sqlite"
    first = accounts_bot_factory(db_path=db)
    message = digest(first, "stage", channel="C1")
    assert "Refreshing" in click_refresh(first, message, "C1")["text"]
    first.stop()
    second = accounts_bot_factory(db_path=db)
    reset(second)
    follow_up = follow_up_of(second, message, "C1")
    assert "stage (200000000003)" in blocks_by_id(follow_up["blocks"])["digest_meta"]["elements"][0]["text"]
    assert sandbox_of(second, "stage").calls["DescribeTrustedAdvisorCheckRefreshStatuses"] >= 1
    assert sandbox_of(second, "main").calls["DescribeTrustedAdvisorCheckRefreshStatuses"] == 0
    assert second.services.refresher.pending_refreshes() == []


def test_the_roll_ups_refresh_refreshes_every_account_and_names_one_it_cannot_reach(
    accounts_bot_factory, accounts_sandbox
):
    accounts_sandbox.accounts.deny_assume_role("sandbox-3")  # stage
    bot = accounts_bot_factory()
    message = digest(bot, "all", channel="CPROD")
    reset(bot)
    answer = click_refresh(bot, message, "CPROD")
    assert refreshed_in(bot, "main") > 0 and refreshed_in(bot, "prod") > 0
    assert "Refreshing" in answer["text"]
    assert "stage" in answer["text"] and "assuming its role was denied" in answer["text"]
    follow_up = follow_up_of(bot, message, "CPROD")
    text = "\n".join(texts_in(follow_up["blocks"]))
    assert "Trusted Advisor roll-up" in text and "Refresh finished" in text
    for alias in ("main", "prod"):
        assert sandbox_of(bot, alias).calls["DescribeTrustedAdvisorCheckRefreshStatuses"] >= 1


def test_a_refresh_button_naming_an_account_restricted_elsewhere_refreshes_and_shows_nothing(accounts_bot):
    message = digest(accounts_bot, "stage", channel="C1")
    reset(accounts_bot)
    answer = click_refresh(accounts_bot, message, "C1", value="refresh:prod")  # hostile or stale
    assert "prod" in answer["text"] and "may not be used" in answer["text"]
    assert sum(sandbox_of(accounts_bot, "prod").calls.values()) == 0
    assert accounts_bot.services.refresher.pending_refreshes() == []
    # The roll-up's own button in C1 covers only what C1 may use.
    rollup = digest(accounts_bot, "all", channel="C1", count=2)
    reset(accounts_bot)
    click_refresh(accounts_bot, rollup, "C1")
    assert refreshed_in(accounts_bot, "prod") == 0 and refreshed_in(accounts_bot, "main") > 0


def test_digest_all_with_no_account_reachable_names_each_and_why(accounts_bot_factory, accounts_sandbox):
    for alias in ("sandbox-2", "sandbox-3"):
        accounts_sandbox.accounts.deny_assume_role(alias)
    bot = accounts_bot_factory()
    sandbox_of(bot, "main").inject_fault("DescribeTrustedAdvisorChecks", "SubscriptionRequiredException", count=10)
    bot.command("digest all", channel="CPROD")
    answer = bot.wait_for_response(timeout=30)["text"]
    for label in ("main (123456789012)", "prod (200000000002)", "stage (200000000003)"):
        assert label in answer
    assert "assuming its role was denied" in answer and "no Business or Enterprise support plan" in answer


def test_roll_up_digest_has_a_refresh_button_for_all(accounts_bot):
    message = digest(accounts_bot, "all", channel="C1")
    assert refresh_button(message)["value"] == "refresh:all"
    assert "Trusted Advisor roll-up" in text_of(message)
