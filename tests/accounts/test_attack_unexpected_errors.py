"""An unexpected error (not a BotError) in a button or a modal still gets the person a short, clear
answer in the right place, never the exception's text, and its traceback is logged once. Provoked
through real paths: a stored search record of the wrong shape, a modal's tampered metadata."""

from __future__ import annotations

import json
import logging

from tests.accounts.e2e import open_case_in
from tests.accounts.test_search import buttons, search
from tests.cases.test_modal import values

UNEXPECTED = "Something went wrong on our side"


def tracebacks(caplog, kind):
    return [r for r in caplog.records if r.exc_info and r.exc_info[0] is kind]


def test_next_on_a_corrupt_kept_search_answers_and_logs_once(accounts_bot, caplog):
    caplog.set_level(logging.WARNING)
    for i in range(6):
        open_case_in(accounts_bot, "main", subject=f"Queue stuck {i}")
    first = search(accounts_bot, "queue")
    [next_button] = buttons(first, "search_next")
    token = json.loads(next_button["value"])["t"]
    table = accounts_bot.services.store.table("searches")
    table.put(token, {**table.get(token), "cases": [{"subject": "a case without its ID"}]})  # wrong shape

    message = {"type": "message", "ts": "1700000000.000300", "text": "", "blocks": first["blocks"]}
    click = accounts_bot.requests.block_actions(next_button, message=message, user_id="U1", channel_id="C1")
    assert click.status == 200
    answer = accounts_bot.wait_for_response(response_url=click.response_url)
    assert answer["response_type"] == "ephemeral" and answer.get("replace_original") is False
    assert UNEXPECTED in answer["text"]
    assert "TypeError" not in answer["text"] and "case_id" not in answer["text"]
    accounts_bot.services.work.wait_idle(timeout=10)
    assert len(tracebacks(caplog, TypeError)) == 1


def test_a_reply_modal_with_tampered_metadata_answers_on_the_form(accounts_bot, caplog):
    caplog.set_level(logging.WARNING)
    view = {"id": "V-tampered", "callback_id": "case_reply", "private_metadata": "[1, 2]", "blocks": []}
    text = {"text": {"text": {"type": "plain_text_input", "value": "hello"}}}
    answer = accounts_bot.requests.view_submission(view, values=text)
    assert answer.status == 200
    assert answer.body["response_action"] == "errors"
    [error] = answer.body["errors"].values()
    assert UNEXPECTED in error and "AttributeError" not in error
    assert len(tracebacks(caplog, AttributeError)) == 1


def test_a_create_form_with_tampered_metadata_answers_on_the_form(accounts_bot, caplog):
    caplog.set_level(logging.WARNING)
    view = {"id": "V-tampered-2", "callback_id": "create_case", "private_metadata": "[]", "blocks": []}
    answer = accounts_bot.requests.view_submission(view, values=values())
    assert answer.status == 200 and answer.body["response_action"] == "errors"
    assert UNEXPECTED in next(iter(answer.body["errors"].values()))
    assert len(tracebacks(caplog, AttributeError)) == 1
