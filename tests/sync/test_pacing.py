"""Slack's pace: about one message per second per channel, after a short burst; other channels need not wait."""

from __future__ import annotations

from tests.sync.helpers import linked_case


def test_posts_into_one_channel_keep_about_one_per_second(bot):
    case, thread = linked_case(bot, fast=False)
    for i in range(1, 5):
        bot.sandbox.add_aws_reply(case.case_id, f"answer {i}")

    bot.services.sync.run_cycle()

    posts = bot.slack.calls("chat.postMessage", lambda c: c.params.get("thread_ts") == thread)
    assert len(posts) == 5  # four replies and the status line
    # A burst of three, then one a second: the fifth goes out two seconds after the first.
    assert posts[4].at - posts[0].at >= 1.9
    assert posts[2].at - posts[0].at < 1.0
