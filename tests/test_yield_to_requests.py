"""Work after an ack yields to the requests being answered at its later steps too, not only at its
start: AWS answers arrive seconds after the jobs a burst started, all together, and parsing,
rendering and posting them held the acks of the burst then arriving (`python -m bench.ack`)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.ack_first import AckFirst, yield_to_requests
from bot.bootstrap import sandbox_gateway
from bot.config import load_settings
from bot.domain import NewCase
from bot.slack.client import RateLimitedRespond, slack_client
from bot.work import OrderedWork
from tests.support.fake_slack import FakeSlack
from tests.support.harness import bot_env

# A job starts at once whatever is in flight (its start is tested in test_work.py); its later steps
# wait as long as a test needs.
PATIENT = {"max_wait_seconds": 0, "step_max_wait_seconds": 60}


@pytest.fixture
def gated() -> Iterator[tuple[AckFirst, OrderedWork]]:
    gate = AckFirst(**PATIENT)
    work = OrderedWork(max_workers=2, gate=gate)
    yield gate, work
    work.shutdown()


def _runs_once_the_request_is_answered(gate: AckFirst, work: OrderedWork, step: Callable[[], Any]) -> None:
    done = threading.Event()
    gate.request_started()
    try:
        work.submit(lambda: (step(), done.set()))
        assert not done.wait(0.5), "the step ran while a request was being answered"
    finally:
        gate.request_finished()
    assert done.wait(30), "the request is answered: the step runs"


def test_an_aws_answer_to_an_after_ack_job_is_parsed_once_the_requests_in_flight_are_answered(
    sandbox: Any, gated: tuple[AckFirst, OrderedWork]
) -> None:
    gateway = sandbox_gateway(sandbox.url)
    case_id = gateway.create_case(NewCase("Yielding", "general-info", "general-guidance", "low", "Body"))

    _runs_once_the_request_is_answered(*gated, lambda: gateway.get_case(case_id))


def test_a_slack_call_of_an_after_ack_job_waits_for_the_requests_in_flight(
    fake_slack: FakeSlack, tmp_path: Path, gated: tuple[AckFirst, OrderedWork]
) -> None:
    client = slack_client(load_settings(bot_env(fake_slack, tmp_path / "bot.sqlite")))

    _runs_once_the_request_is_answered(*gated, lambda: client.chat_postMessage(channel="C1", text="later"))
    assert [m["text"] for m in fake_slack.messages("C1")] == ["later"]


def test_an_answer_on_a_response_url_from_an_after_ack_job_waits_for_the_requests_in_flight(
    fake_slack: FakeSlack, gated: tuple[AckFirst, OrderedWork]
) -> None:
    respond = RateLimitedRespond(response_url=fake_slack.response_url())

    _runs_once_the_request_is_answered(*gated, lambda: respond(text="later"))
    assert [r["text"] for r in fake_slack.responses()] == ["later"]


def test_outside_after_ack_jobs_aws_and_slack_calls_go_at_once(
    sandbox: Any, fake_slack: FakeSlack, tmp_path: Path, gated: tuple[AckFirst, OrderedWork]
) -> None:
    """A request's own thread (an ack that opens a modal, loads a menu) never waits for the requests
    in flight, its own among them; nor do the prompt pool and the background workers."""
    gate, _ = gated
    gateway = sandbox_gateway(sandbox.url)
    client = slack_client(load_settings(bot_env(fake_slack, tmp_path / "bot.sqlite")))
    gate.request_started()
    try:
        gateway.create_case(NewCase("At once", "general-info", "general-guidance", "low", "Body"))
        client.chat_postMessage(channel="C1", text="at once")
        RateLimitedRespond(response_url=fake_slack.response_url())(text="at once")
    finally:
        gate.request_finished()


def test_under_a_steady_stream_of_requests_a_step_waits_briefly_not_forever() -> None:
    gate = AckFirst(max_wait_seconds=0, step_max_wait_seconds=0.05)
    work = OrderedWork(max_workers=2, gate=gate)
    done = threading.Event()
    gate.request_started()  # never answered
    try:
        work.submit(lambda: (yield_to_requests(), done.set()))
        assert done.wait(30)
    finally:
        gate.request_finished()
        work.shutdown()
