"""The listeners' one error boundary: what a person hears when work fails, and what is logged."""

from __future__ import annotations

import logging

import pytest

from bot.errors import UserInputError
from bot.listeners.boundary import guarded
from bot.store.errors import StoreUnavailable


def run_guarded(failure: Exception) -> list[str]:
    answers: list[str] = []

    def work() -> None:
        raise failure

    guarded("search", lambda text: answers.append(str(text)), work)()
    return answers


def test_a_store_that_cannot_be_written_gets_a_clear_answer_and_no_traceback(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        [answer] = run_guarded(StoreUnavailable("database or disk is full"))

    assert "disk is full" in answer and "try again" in answer
    assert "Something went wrong" not in answer
    assert not any(record.exc_info for record in caplog.records)


def test_a_known_failure_gets_its_own_message_and_an_unknown_one_a_traceback(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        [known] = run_guarded(UserInputError("reply_usage"))
        [unknown] = run_guarded(RuntimeError("boom"))

    assert "Something went wrong" not in known
    assert "Something went wrong" in unknown and "boom" not in unknown
    assert [record for record in caplog.records if record.exc_info]
