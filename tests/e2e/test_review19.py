"""Review 19: a replay with unsigned headers that the door reads as a retry but Bolt reads as a form."""

from __future__ import annotations

from tests.e2e.test_http import FORM, _command_fields, _signed_form
from tests.support.harness import BotHarness


def test_a_replayed_command_with_a_retry_header_and_a_json_seq_type_is_refused(bot: BotHarness) -> None:
    """Content-Type and X-Slack-Retry-Num are not signed. The door skips the replay claim for any
    Content-Type that *starts with* application/json; Bolt parses JSON only for exactly
    "application/json", so it reads the form body as the same slash command and serves it again."""
    body, headers = _signed_form(_command_fields(bot, "bogus"))
    assert "bogus" in bot.requests.post(body, FORM, signing="unsigned", headers=headers).text

    forged = dict(headers, **{"X-Slack-Retry-Num": "1"})
    replay = bot.requests.post(body, "application/json-seq", signing="unsigned", headers=forged)

    assert "bogus" not in replay.text, f"the replay was served again: {replay.status} {replay.text!r}"
