"""BOT_EVENTS_QUEUE_URL in Settings: events on, the backstop poll interval, a refused value."""

from __future__ import annotations

import pytest

from bot.config import ConfigError, load_settings

QUEUE = "https://sqs.us-east-1.amazonaws.com/123456789012/support-case-updates"
BASE = {"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_SIGNING_SECRET": "s"}


def test_without_a_queue_events_are_off_and_polls_every_minute() -> None:
    settings = load_settings(BASE)
    assert (settings.events_on, settings.events_queue_url, settings.poll_interval_seconds) == (False, "", 60.0)


@pytest.mark.parametrize("interval", [None, "", "  "])
def test_with_a_queue_polling_is_the_backstop_every_15_minutes(interval: str | None) -> None:
    env = {**BASE, "BOT_EVENTS_QUEUE_URL": f" {QUEUE} "}
    if interval is not None:
        env["POLL_INTERVAL_SECONDS"] = interval
    settings = load_settings(env)
    assert (settings.events_on, settings.events_queue_url, settings.poll_interval_seconds) == (True, QUEUE, 900.0)


def test_an_interval_that_is_set_wins_over_the_events_default() -> None:
    settings = load_settings({**BASE, "BOT_EVENTS_QUEUE_URL": QUEUE, "POLL_INTERVAL_SECONDS": "60"})
    assert settings.poll_interval_seconds == 60.0


def test_a_queue_name_instead_of_its_url_is_refused_with_what_to_set() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings({**BASE, "BOT_EVENTS_QUEUE_URL": "support-case-updates"})
    assert caught.value.key == "config_bad_events_queue_url"
    assert "https://sqs.us-east-1.amazonaws.com/" in str(caught.value)
    assert "support-case-updates" in str(caught.value)
