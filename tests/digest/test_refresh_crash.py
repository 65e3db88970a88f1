"""Refresh checks under kill -9 (adversarial review of issue 11): a bot killed among Trusted
Advisor's RefreshTrustedAdvisorCheck calls still follows the refresh up in the digest's thread after
its restart, exactly once. The bot runs as `python -m bot serve` in a subprocess (as
tests/cases/test_exactly_once.py does); AWS is the sandbox, which outlives every bot."""

from __future__ import annotations

import json
import sqlite3

import pytest

from tests.support.http import request
from tests.support.slack_requests import SlackRequests
from tests.sync.test_crash import kill, start_bot, wait_until


def pending_refreshes(db_path: str) -> dict:
    """The follow-ups still owed, read straight from the file (as another process can)."""
    with sqlite3.connect(db_path, timeout=5) as db:
        try:
            row = db.execute('SELECT value FROM "digests" WHERE key = ?', ("@refreshes",)).fetchone()
        except sqlite3.OperationalError:
            return {}
    return json.loads(row[0]) if row else {}


@pytest.mark.slow(seconds=32)
def test_kill_9_among_the_refresh_calls_still_follows_up_once_after_the_restart(fake_slack, sandbox, tmp_path):
    db_path = str(tmp_path / "bot.sqlite")

    def ready(url: str) -> bool:
        try:
            return request("GET", url + "/healthz").status == 200
        except OSError:
            return False

    process, url = start_bot(db_path, fake_slack, sandbox)
    try:
        wait_until(lambda: ready(url), what="the bot")
        slack = SlackRequests(url, "test-secret")
        assert slack.slash_command("digest", channel_id="C1").status == 200
        [post] = fake_slack.wait_for("chat.postMessage", lambda c: c.params.get("channel") == "C1", timeout=30)
        message = fake_slack.message("C1", post.response["ts"])
        button = next(
            e for b in message["blocks"] for e in b.get("elements", []) if e.get("action_id") == "digest_refresh"
        )
        sandbox.reset_calls()
        sandbox.set_latency(0.3)  # slow enough to be killed among the calls
        assert slack.block_actions(button, message=message, channel_id="C1").status == 200
        wait_until(lambda: sandbox.calls["RefreshTrustedAdvisorCheck"] >= 2, what="the first refresh calls")
        kill(process)
        refreshable = sum(1 for c in sandbox.trusted_advisor.checks if not c.auto_refresh)
        assert sandbox.calls["RefreshTrustedAdvisorCheck"] < refreshable  # killed among them

        sandbox.set_latency(0)
        process, url = start_bot(db_path, fake_slack, sandbox)

        def follow_ups() -> list:
            return fake_slack.calls("chat.postMessage", lambda c: c.params.get("thread_ts") == message["ts"])

        def followed_up() -> bool:
            sandbox.advance_clock(5)  # Trusted Advisor finishes what it was asked to refresh
            return bool(follow_ups())

        wait_until(followed_up, timeout=90, what="the refresh's follow-up after the restart")
        wait_until(lambda: not pending_refreshes(db_path), timeout=30, what="the follow-up to be settled")
        assert "Refresh finished" in str(follow_ups()[0].params["blocks"])
        assert len(follow_ups()) == 1
        # Every check that may be refreshed was asked (some twice: harmless at AWS).
        assert sandbox.calls["RefreshTrustedAdvisorCheck"] >= refreshable
    finally:
        kill(process)
