"""auth.test, asked when first needed: a failure costs one log line and a pause, never a request."""

from __future__ import annotations

from bot.config import load_settings
from bot.slack.identity import BotIdentity
from tests.support.fake_slack import FakeSlack
from tests.support.harness import bot_env


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_bot_is_asked_for_again_only_after_the_pause_then_kept(fake_slack: FakeSlack, tmp_path) -> None:
    clock = Clock()
    identity = BotIdentity(load_settings(bot_env(fake_slack, tmp_path / "b.sqlite")), retry_seconds=30, clock=clock)
    fake_slack.fail("auth.test", "internal_error", status=500)

    assert identity.get() == {}
    clock.now += 29
    assert identity.get() == {}
    assert len(fake_slack.calls("auth.test")) == 1

    clock.now += 2
    assert identity.get()["user_id"] == fake_slack.bot_user_id
    clock.now += 3600
    assert identity.get()["bot_id"] == fake_slack.bot_id
    assert len(fake_slack.calls("auth.test")) == 2
