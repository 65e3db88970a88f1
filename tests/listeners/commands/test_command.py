"""/aws-support's parsing and routing, without a server: Bolt's Ack and Respond mocked, as in
Slack's bolt-python starter template. End-to-end behaviour is in tests/e2e/test_http.py and tests/cases/."""

from __future__ import annotations

import json
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any
from unittest.mock import Mock

import pytest
from slack_bolt import Ack, BoltContext, Respond

from bot.listeners.commands import handle_command, parse_command, sub_command


def command(text: str, **fields: str) -> dict[str, str]:
    return {"command": "/aws-support", "text": text, "user_id": "U1", "channel_id": "C1", "trigger_id": "t1", **fields}


class QueuedWork:
    """Keeps what a listener hands over for after the ack, so a test can run it when it likes."""

    def __init__(self) -> None:
        self.jobs: list[tuple[Callable[[], None], str | None]] = []

    def submit(self, job: Callable[[], None], key: str | None = None) -> None:
        self.jobs.append((job, key))


def run(text: str, services: Any = None) -> tuple[Mock, Mock]:
    ack, respond = Mock(Ack), Mock(Respond)
    context = BoltContext({"services": services} if services is not None else {})
    handle_command(ack=ack, command=command(text), respond=respond, client=None, context=context)  # type: ignore[arg-type]
    return ack, respond


# Parsing ----------------------------------------------------------------------------------------


def test_the_text_is_split_into_words_and_the_rest_keeps_its_lines() -> None:
    request = parse_command(command("  reply 1234567890 First line.\nSecond  line. ", team_id="T1"))

    assert request.args == ["reply", "1234567890", "First", "line.", "Second", "line."]
    assert request.rest == "1234567890 First line.\nSecond  line."
    assert (request.user_id, request.channel_id, request.trigger_id, request.team_id) == ("U1", "C1", "t1", "T1")


@pytest.mark.parametrize(("text", "name"), [("", "help"), ("   ", "help"), ("LIST all", "list"), ("Show 1", "show")])
def test_the_sub_command_is_the_first_word_in_lower_case(text: str, name: str) -> None:
    assert sub_command(parse_command(command(text))) == name


def test_a_payload_without_text_is_help() -> None:
    assert sub_command(parse_command({"command": "/aws-support"})) == "help"


# Answered in the ack ----------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["", "help", "HELP"])
def test_help_is_the_ack_itself(text: str) -> None:
    ack, respond = run(text)

    ack.assert_called_once()
    answer = ack.call_args.kwargs
    assert answer["response_type"] == "ephemeral"
    shown = json.dumps(answer["blocks"])
    for word in ("create", "list", "show", "link", "unlink", "reply", "resolve", "watch", "digest"):
        assert f"/aws-support {word}" in shown or f"`{word}" in shown, word
    assert answer["text"]
    respond.assert_not_called()


def test_an_unknown_word_is_answered_in_the_ack_and_made_inert() -> None:
    ack, respond = run("<!channel> please")

    ack.assert_called_once()
    text = ack.call_args.kwargs["text"]
    assert "&lt;!channel&gt;" in text and "<!channel>" not in text
    assert "/aws-support help" in text
    assert ack.call_args.kwargs["response_type"] == "ephemeral"
    respond.assert_not_called()


@pytest.mark.parametrize(("text", "expected"), [("reply", "Usage"), ("reply banana words", "not a case")])
def test_a_reply_with_bad_words_is_refused_in_the_ack_before_anything_is_noted(text: str, expected: str) -> None:
    work = QueuedWork()

    ack, respond = run(text, SimpleNamespace(work=work))

    ack.assert_called_once()
    assert expected in ack.call_args.kwargs["text"]
    assert work.jobs == []
    respond.assert_not_called()


# Dispatched after the ack -----------------------------------------------------------------------


def test_a_known_sub_command_is_acked_empty_and_runs_after_the_ack() -> None:
    work = QueuedWork()

    # One account served (no accounts file): a word that is no sub-command is no account either.
    one_account = SimpleNamespace(single=True, get=lambda alias: None)
    ack, respond = run("digest sometimes", SimpleNamespace(work=work, accounts=one_account))

    ack.assert_called_once_with()
    assert len(work.jobs) == 1
    respond.assert_not_called()
    job, _key = work.jobs[0]
    job()  # a word `digest` does not know: its usage, through the response URL
    respond.assert_called_once()
    assert respond.call_args.kwargs["response_type"] == "ephemeral"
    assert "/aws-support digest" in respond.call_args.kwargs["text"]
