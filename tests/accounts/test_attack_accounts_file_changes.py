"""The accounts file changes while something recorded still names an account (adversarial review of
issue #11's follow-ups): a followed refresh, a kept search. End to end: real Bolt over HTTP, fake
Slack, the accounts sandbox; the bot restarted on the same store with another accounts file."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.accounts.e2e import ACCOUNTS, ALIAS_OF
from tests.accounts.test_digest_across_accounts import digest
from tests.accounts.test_digest_refresh_across_accounts import click_refresh
from tests.accounts.test_search import click_next, shown, start_with_accounts, two_pages_found_before_a_restart


def without(alias):
    return [a for a in ACCOUNTS if a["alias"] != alias]


def test_a_followed_refresh_of_an_account_removed_from_the_file_is_dropped_and_blocks_no_other(
    fake_slack, accounts_sandbox, tmp_path
):
    first = start_with_accounts(fake_slack, accounts_sandbox, tmp_path, ACCOUNTS, "before")
    try:
        stage = digest(first, "stage", channel="C1")
        assert "Refreshing" in click_refresh(first, stage, "C1")["text"]
        main = digest(first, "main", channel="C2")
        assert "Refreshing" in click_refresh(first, main, "C2")["text"]
        assert len(first.services.refresher.pending_refreshes()) == 2
    finally:
        first.stop()
    second = start_with_accounts(fake_slack, accounts_sandbox, tmp_path, without("stage"), "after")
    try:
        for alias in ("main", "prod"):
            second.sandbox.accounts.account(ALIAS_OF[alias]).advance_clock(10)
        # The worker's tick neither fails on the removed account nor leaves main's follow-up waiting.
        second.services.scheduler.run_once(datetime.now(UTC) + timedelta(seconds=20))
        [post] = second.slack.wait_for(
            "chat.postMessage", lambda c: c.params.get("channel") == "C2" and c.params.get("thread_ts") == main["ts"]
        )
        assert "Refresh finished" in str(post.params["blocks"])
        assert second.services.refresher.pending_refreshes() == []
        assert not second.slack.calls(
            "chat.postMessage", lambda c: c.params.get("thread_ts") == stage["ts"]
        )  # nothing of an account the bot no longer serves
    finally:
        second.stop()


def test_next_shows_nothing_of_an_account_removed_from_the_file(fake_slack, accounts_sandbox, tmp_path):
    answer = two_pages_found_before_a_restart(fake_slack, accounts_sandbox, tmp_path)
    # stage is no longer served: its case IDs name an account the bot does not know, not the default one.
    second = start_with_accounts(fake_slack, accounts_sandbox, tmp_path, without("stage"), "after")
    try:
        text = shown(click_next(second, answer))
        assert "Queue stuck 1" in text
        assert "stage" not in text and "200000000003" not in text
        assert "Queue stuck 0" not in text and "Queue stuck 2" not in text
    finally:
        second.stop()
