"""AWS text on the surfaces several accounts added (search's kept pages, the roll-up digest, its
refresh answer) stays inert mrkdwn, as on every older surface (tests/e2e/test_hostile_aws.py)."""

from __future__ import annotations

from tests.accounts.e2e import open_case_in
from tests.accounts.test_search import buttons, search
from tests.e2e.test_hostile_aws import HOSTILE, problems, surfaces


def test_search_pages_and_the_rollup_keep_aws_text_inert(accounts_bot):
    for i in range(7):
        open_case_in(accounts_bot, "main" if i % 2 else "stage", subject=f"Queue stuck {i}")
    accounts_bot.sandbox.set_hostile_prefix(HOSTILE)

    first = search(accounts_bot, "queue")
    [next_button] = buttons(first, "search_next")
    message = {"type": "message", "ts": "1700000000.000100", "text": "", "blocks": first["blocks"]}
    click = accounts_bot.requests.block_actions(next_button, message=message)
    accounts_bot.wait_for_response(response_url=click.response_url)  # page 2, from the kept record

    accounts_bot.command("digest all")
    accounts_bot.slack.wait_for("chat.postMessage", lambda c: "digest_header" in str(c.params.get("blocks")))

    shown = "\n".join(str(call.params) for call in surfaces(accounts_bot))
    assert "U0BOSS" in shown  # AWS's text was drawn: as text
    assert [problem for call in surfaces(accounts_bot) for problem in problems(call.params)] == []
