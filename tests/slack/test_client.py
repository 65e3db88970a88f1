"""The one Slack client factory: a post Slack stored is never sent again, a 429 is."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from slack_sdk.errors import SlackApiError

from bot.config import load_settings
from bot.slack.client import slack_client
from tests.cases.helpers import link_case, open_case_at_aws
from tests.support.fake_slack import FakeSlack
from tests.support.harness import BotHarness, bot_env


def _client(fake_slack: FakeSlack, tmp_path: Any) -> Any:
    return slack_client(load_settings(bot_env(fake_slack, tmp_path / "bot.sqlite")))


def test_a_post_whose_connection_drops_after_slack_stored_it_is_not_sent_again(fake_slack, tmp_path) -> None:
    fake_slack.drop_after_acting("chat.postMessage")

    with pytest.raises(OSError):
        _client(fake_slack, tmp_path).chat_postMessage(channel="C1", text="once")

    assert [m["text"] for m in fake_slack.messages("C1")] == ["once"]
    assert len(fake_slack.calls("chat.postMessage")) == 1


def test_a_rate_limited_call_is_sent_again_after_retry_after(fake_slack, tmp_path) -> None:
    fake_slack.fail("chat.postMessage", "ratelimited", retry_after=0)

    _client(fake_slack, tmp_path).chat_postMessage(channel="C1", text="after 429")

    assert [c.status for c in fake_slack.calls("chat.postMessage")] == [429, 200]
    assert [m["text"] for m in fake_slack.messages("C1")] == ["after 429"]


def test_a_server_error_is_not_sent_again(fake_slack, tmp_path) -> None:
    fake_slack.fail("chat.postMessage", "internal_error", status=500)

    with pytest.raises(SlackApiError):
        _client(fake_slack, tmp_path).chat_postMessage(channel="C1", text="maybe stored")

    assert len(fake_slack.calls("chat.postMessage")) == 1


# End to end: the bot's own clients (Services, Bolt's per-request client) ---------------------------


def _settle(bot: BotHarness, posts: Callable[[], list[Any]]) -> None:
    """Wait until the command answered on its response URL or posted twice, whichever comes first."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not bot.responses() and len(posts()) < 2:
        time.sleep(0.05)


def test_a_card_is_posted_once_when_the_connection_drops_after_slack_stored_it(bot: BotHarness) -> None:
    case = open_case_at_aws(bot)
    bot.slack.drop_after_acting("chat.postMessage")

    bot.command(f"link {case.display_id}")
    _settle(bot, lambda: bot.slack.messages("C1"))

    cards = [m for m in bot.slack.messages("C1") if case.display_id in str(m.get("blocks"))]
    assert len(cards) == 1, cards


def test_a_mirrored_reply_is_posted_once_when_the_connection_drops(bot: BotHarness) -> None:
    case = open_case_at_aws(bot)
    card = link_case(bot, case)
    bot.slack.drop_after_acting("chat.postMessage")

    bot.command(f"reply {case.display_id} Restarted the instance at noon.")

    def mirrors() -> list[dict[str, Any]]:
        thread = bot.slack.messages("C1", thread_ts=card["ts"])
        return [m for m in thread if "Restarted the instance at noon." in m.get("text", "")]

    _settle(bot, mirrors)
    assert len(mirrors()) == 1, mirrors()


def test_a_digest_is_posted_once_when_the_connection_drops(bot: BotHarness) -> None:
    bot.slack.drop_after_acting("chat.postMessage")

    bot.command("digest")

    def digests() -> list[dict[str, Any]]:
        return [m for m in bot.slack.messages("C1") if "digest_header" in str(m.get("blocks"))]

    _settle(bot, digests)
    assert len(digests()) == 1, digests()


def test_an_answer_on_the_response_url_is_posted_once_when_the_connection_drops(bot: BotHarness) -> None:
    # Bolt's respond() builds a WebhookClient with slack_sdk's default handlers, which resend once
    # on a dropped connection: the person would read the answer twice.
    bot.slack.drop_after_acting("response_url")

    bot.command("unlink 999999")
    bot.slack.wait_for("response_url")
    assert bot.services.work.wait_idle(timeout=10)

    assert len(bot.slack.calls("response_url")) == 1


def test_an_answer_on_the_response_url_is_posted_again_after_a_429(bot: BotHarness) -> None:
    bot.slack.fail("response_url", "ratelimited", retry_after=0)

    bot.command("unlink 999999")

    bot.slack.wait_for("response_url", count=2)
    assert bot.services.work.wait_idle(timeout=10)
    assert [c.status for c in bot.slack.calls("response_url")] == [429, 200]


def test_bolts_client_made_yielding_keeps_all_it_was_given() -> None:
    """review26: a setting Bolt or slack_sdk gives the client must not go missing."""
    from slack_sdk import WebClient

    from bot.slack.client import yielding

    original = WebClient(token="xoxb-1", base_url="https://slack.com/api/", timeout=7, team_id="T1")
    given = dict(vars(original))
    made = yielding(original)
    assert vars(made) == given
    assert type(made).api_call is not WebClient.api_call, "its calls do not yield"
