"""attack2: hostile event content against the envelope and the consumer (moto's SQS and the sandbox's)."""

from __future__ import annotations

import json

import pytest

from bot.events.envelope import Ignored, parse_message
from tests.events.queues import Queues, event_body
from tests.events.test_consumer import Recorder, drained, start_consumer  # noqa: F401 - the fixture
from tests.sandbox.helpers import wait_until


def poison() -> str:
    body = json.loads(event_body(communication_id="comm-poison"))
    body["detail"]["event-name"] = ["AddCommunicationToCase"]  # a list: unhashable
    return json.dumps(body)


@pytest.mark.xfail(
    strict=True,
    reason="attack2: parse_message raises TypeError (`event_name not in EVENT_NAMES` with an unhashable "
    "value) although it promises never to raise",
)
def test_an_event_name_of_the_wrong_type_is_ignored_not_raised() -> None:
    assert isinstance(parse_message(poison()), Ignored)


@pytest.mark.xfail(
    strict=True,
    reason="attack2: one message with a non-string event-name makes process() raise before any handling: "
    "the whole batch is neither handled nor deleted, again on every receive, until the DLQ",
)
def test_a_poison_message_neither_blocks_its_batch_nor_stays_in_the_queue(queues: Queues, start_consumer) -> None:  # noqa: F811
    queues.send(poison())
    queues.send(event_body(communication_id="comm-ok"))
    recorder = Recorder()
    consumer = start_consumer(queues, recorder, batch_size=10)

    assert wait_until(lambda: drained(queues) and recorder.events, timeout=10)
    assert [e.communication_id for e in recorder.events] == ["comm-ok"]
    assert consumer.health()["messages_ignored"] == 1
    assert consumer.health()["consecutive_errors"] == 0
