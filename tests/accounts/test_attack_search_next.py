"""search's Next button with a tampered or stale value (adversarial review of the kept pages): every
click gets an answer, never silence. End to end: real Bolt over HTTP with signed requests, fake Slack."""

from __future__ import annotations

import json

import pytest

from tests.accounts.e2e import open_case_in
from tests.accounts.test_search import buttons, search, shown


@pytest.mark.parametrize("page", ["²", "9" * 5000, "-3", "0", "2.5", None, [2], {"p": 2}])
def test_next_with_a_tampered_page_answers_a_page(accounts_bot, page):
    for i in range(7):
        open_case_in(accounts_bot, "main", subject=f"Queue stuck {i}")
    first = search(accounts_bot, "queue")
    [next_button] = buttons(first, "search_next")
    token = json.loads(next_button["value"])["t"]
    message = {"type": "message", "ts": "1700000000.000300", "text": "", "blocks": first["blocks"]}
    forged = {**next_button, "value": json.dumps({"t": token, "p": page})}
    click = accounts_bot.requests.block_actions(forged, message=message, user_id="U1", channel_id="C1")
    answer = accounts_bot.wait_for_response(response_url=click.response_url)
    assert "page 1 of 2" in shown(answer) or "page 2 of 2" in shown(answer)
