"""The Bolt app when Slack cannot tell it who the bot is: requests are still answered, one log line."""

from __future__ import annotations

import json
import logging

import pytest

from tests.support.harness import BotHarness


def _auth_lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if "auth.test" in r.getMessage()]


def test_slack_unreachable_at_the_first_request_still_gets_help_and_one_clear_log_line(
    bot: BotHarness, caplog: pytest.LogCaptureFixture
) -> None:
    bot.slack.stop()  # nothing listens on SLACK_API_URL any more

    with caplog.at_level(logging.WARNING):
        response = bot.command("help")

    assert response.status == 200
    assert "/aws-support create" in json.dumps(response.json["blocks"])
    [line] = _auth_lines(caplog)
    assert line.levelno == logging.WARNING and line.exc_info is None
    assert "SLACK_API_URL" in line.getMessage()
    assert not [r for r in caplog.records if r.exc_info], "no traceback"


@pytest.mark.parametrize(("error", "status"), [("internal_error", 500), ("fatal_error", 200)])
def test_slack_failing_auth_test_still_answers_the_command(
    bot: BotHarness, caplog: pytest.LogCaptureFixture, error: str, status: int
) -> None:
    bot.slack.fail("auth.test", error, status=status)

    with caplog.at_level(logging.WARNING):
        response = bot.command("list")

    assert response.status == 200
    assert response.text == "", "acked; the answer follows on the response URL"
    assert bot.wait_for_response()["response_type"] == "ephemeral"
    [line] = _auth_lines(caplog)
    assert error in line.getMessage() and line.exc_info is None


def test_a_refused_token_is_logged_once_with_what_to_check(bot: BotHarness, caplog: pytest.LogCaptureFixture) -> None:
    bot.slack.fail("auth.test", "invalid_auth")

    with caplog.at_level(logging.WARNING):
        assert "bogus" in bot.command("bogus").json["text"]
        assert "bogus" in bot.command("bogus").json["text"]

    [line] = _auth_lines(caplog)
    assert "invalid_auth" in line.getMessage() and "SLACK_BOT_TOKEN" in line.getMessage()


def test_the_bot_is_looked_up_once_and_its_own_messages_are_ignored(bot: BotHarness) -> None:
    for _ in range(3):
        assert bot.command("bogus").status == 200
    own = bot.requests.event_callback(
        {"type": "message", "channel": "C1", "user": "UBOT", "text": "mine", "ts": "1.000001", "thread_ts": "1.0"}
    )

    assert own.status == 200
    assert len(bot.slack.calls("auth.test")) == 1
